"""The v1 decoder (msgspec) against the stdlib decoder it replaced
(``json.JSONDecoder(parse_float=Decimal)``): the same objects for every
frame Kraken sends and for generated JSON, the same rejections for hostile
text, and the two documented places where it is stricter on purpose."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kraky_anyio.v1.codec import decode
from kraky_anyio.v1.protocol import KrakenProtocol

FIXTURE = (
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "kraken-v1-book10-xbtusd.json"
)
stdlib_decode = json.JSONDecoder(parse_float=Decimal).decode


def exact(obj: Any) -> Any:
    """``obj`` with every value tagged by its type, Decimals by their text:
    ``Decimal("1.0") == Decimal("1.00")`` and ``1 == True`` must not pass."""
    if isinstance(obj, dict):
        return ("dict", [(k, exact(v)) for k, v in obj.items()])
    if isinstance(obj, list):
        return ("list", [exact(v) for v in obj])
    if isinstance(obj, Decimal):
        return ("Decimal", str(obj))
    return (type(obj).__name__, repr(obj))


def outcome(fn: Any, text: str | bytes) -> Any:
    try:
        return exact(fn(text))
    except RecursionError:
        return "RecursionError"
    except ValueError:
        return "ValueError"


def lone_surrogate_or_nonfinite(obj: Any) -> bool:
    """What the stdlib accepted and msgspec rejects on purpose."""
    if isinstance(obj, dict):
        return any(map(lone_surrogate_or_nonfinite, [*obj, *obj.values()]))
    if isinstance(obj, list):
        return any(map(lone_surrogate_or_nonfinite, obj))
    if isinstance(obj, float):
        return not math.isfinite(obj)
    if isinstance(obj, str):
        try:
            obj.encode()
        except UnicodeEncodeError:
            return True
    return False


def assert_same(text: str) -> None:
    ours, theirs = outcome(decode, text), outcome(stdlib_decode, text)
    if ours == theirs:
        return
    # The only divergence allowed: stdlib accepted NaN/Infinity or a lone
    # surrogate, which we reject as a malformed frame.
    assert ours == "ValueError", (text, ours, theirs)
    assert lone_surrogate_or_nonfinite(stdlib_decode(text)), (text, theirs)


def fixture_frames() -> list[str]:
    data = json.loads(FIXTURE.read_text())
    frames = []
    for m in [*data["init"], *data["updates"]]:
        frames.append(json.dumps(m, separators=(",", ":")))
        frames.append(json.dumps(m, indent=1))
    return frames


def test_every_recorded_frame_decodes_to_the_same_objects() -> None:
    frames = fixture_frames()
    assert len(frames) > 100
    for text in frames:
        ours = decode(text)
        assert exact(ours) == exact(stdlib_decode(text))
        assert exact(decode(text.encode())) == exact(ours)  # bytes: one step, same objects


def test_prices_stay_strings_fractions_become_decimal_ints_stay_exact() -> None:
    msg = decode('[336,{"a":[["27120.00000","4.2","1.5"]]},2.50,1e5,18446744073709551617,-0]')
    assert msg[1]["a"][0] == ["27120.00000", "4.2", "1.5"]
    assert exact(msg[2:]) == exact([Decimal("2.50"), Decimal("1E+5"), 18446744073709551617, 0])


HOSTILE = [
    "",
    " ",
    "[1,2",
    "[1] x",
    "[1,]",
    '{"a":1,}',
    "00",
    "1.",
    ".5",
    "-",
    "1e",
    "[01]",
    '"\\x"',
    '"\x01"',
    '"\t"',
    "\ufeff[1]",
    "{'a': 1}",
    '{"a" 1}',
    "[" * 5000 + "]" * 5000,
    '{"a":1,"a":2}',
    '"\\ud83d\\ude00"',
    "1e400",
    "-1e-400",
    "123456789012345678901234567890.123456789",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_rejected_or_decoded_exactly_as_before(text: str) -> None:
    assert_same(text)


@pytest.mark.parametrize(
    "text", ["NaN", "[1,Infinity]", '{"a":-Infinity}', '"\\ud800"', '["\\udc00\\ud800"]']
)
def test_stricter_on_purpose_nonfinite_numbers_and_lone_surrogates(text: str) -> None:
    stdlib_decode(text)  # the stdlib accepted these ...
    with pytest.raises(ValueError):
        decode(text)  # ... into a float or an unencodable str; we reject them


def test_invalid_utf8_bytes_are_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode(b'["\xff"]')


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def render(value: Any) -> str:
    """JSON text of ``value``, a Decimal as its own number text."""
    if isinstance(value, Decimal):
        return str(value) if value.as_tuple().exponent != 0 else format(value, "f")
    if isinstance(value, list):
        return "[" + ",".join(map(render, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{render(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_generated_json_decodes_exactly_as_before(value: Any) -> None:
    assert_same(render(value))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('[]{}",:.-+eE0123456789 \\ntrufalsNI\x00\u00e9')))
def test_generated_hostile_text_is_judged_as_before(text: str) -> None:
    assert_same(text)


def test_the_protocol_counts_the_same_frames_malformed() -> None:
    frames = [*fixture_frames()[:40], *HOSTILE, "NaN", '[1,NaN,"book-10","XBT/USD"]']
    p = KrakenProtocol()
    verdict = p.receive_frames(frames)
    rejected = sum(outcome(decode, f) in ("ValueError", "RecursionError") for f in frames)
    shapeless = sum(
        1
        for m in verdict.messages
        if not isinstance(m, dict | list)  # decoded, but of no Kraken shape
    )
    assert shapeless == 0
    s = p.stats
    assert s.frames_received == len(frames)
    assert s.malformed_frames >= rejected
    assert s.frames_received == s.binary_frames + s.malformed_frames + len(verdict.messages)
    # NaN inside channel data is no longer handed out as a float
    assert not any(isinstance(x, float) for m in verdict.messages if isinstance(m, list) for x in m)
