"""v2 channels, their subscription parameters, and request encoding: no I/O.

:data:`CHANNELS` is the one table of what each channel accepts (Kraken's wire
names: ``depth``, ``interval``, ``event_trigger``, ``snapshot``, ``token``,
...). :func:`subscription_params` checks a ``subscribe``/``unsubscribe`` call
against it and raises a clear :class:`ValueError` (a value Kraken would refuse)
or :class:`TypeError` (a value of the wrong type) before anything is sent.
:func:`encode_request` writes the frame: numbers as JSON numbers with their
exact digits (a ``Decimal`` is written with ``format(d, "f")``, never ``1E-8``),
never as strings, and never a float.

A token is never part of an error message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import msgspec

__all__ = [
    "BOOK_DEPTHS",
    "CHANNELS",
    "LEVEL3_DEPTHS",
    "OHLC_INTERVALS",
    "ChannelSpec",
    "encode_request",
    "normalize_symbols",
    "subscription_params",
]

#: Depths of the L2 ``book`` channel.
BOOK_DEPTHS: Final = (10, 25, 100, 500, 1000)
#: Depths of the ``level3`` channel.
LEVEL3_DEPTHS: Final = (10, 100, 1000)
#: ``ohlc`` intervals, in minutes.
OHLC_INTERVALS: Final = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)

_BOOL: Final = "bool"
_TOKEN: Final = "token"


@dataclass(frozen=True)
class ChannelSpec:
    """What one channel accepts.

    ``symbols``: the channel takes a ``symbol`` list (and needs one).
    ``params``: each optional parameter's allowed values: a tuple of choices,
    ``"bool"``, or ``"token"`` (a non-empty string). ``required``: the
    parameters that must be given. ``endpoint``: where it is served.
    """

    name: str
    symbols: bool
    params: Mapping[str, tuple[object, ...] | str] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    endpoint: str = "production"


#: Every channel a client may subscribe to. ``status`` and ``heartbeat`` are
#: sent unprompted and are not subscribable.
CHANNELS: Final[Mapping[str, ChannelSpec]] = {
    spec.name: spec
    for spec in (
        ChannelSpec("ticker", True, {"event_trigger": ("bbo", "trades"), "snapshot": _BOOL}),
        ChannelSpec("book", True, {"depth": BOOK_DEPTHS, "snapshot": _BOOL}),
        ChannelSpec(
            "level3",
            True,
            {"depth": LEVEL3_DEPTHS, "snapshot": _BOOL, "token": _TOKEN},
            frozenset({"token"}),
            "level3",
        ),
        ChannelSpec("trade", True, {"snapshot": _BOOL}),
        ChannelSpec(
            "ohlc", True, {"interval": OHLC_INTERVALS, "snapshot": _BOOL}, frozenset({"interval"})
        ),
        ChannelSpec("instrument", False, {"snapshot": _BOOL}),
        ChannelSpec(
            "executions",
            False,
            {
                "token": _TOKEN,
                "snap_orders": _BOOL,
                "snap_trades": _BOOL,
                "order_status": _BOOL,
                "ratecounter": _BOOL,
            },
            frozenset({"token"}),
            "production-auth",
        ),
        ChannelSpec(
            "balances",
            False,
            {"token": _TOKEN, "snapshot": _BOOL},
            frozenset({"token"}),
            "production-auth",
        ),
    )
}

_UNPROMPTED: Final = frozenset({"status", "heartbeat"})


def normalize_symbols(symbols: object) -> list[str]:
    """``symbols`` as a list: a single ``str`` or a list/tuple of distinct ``str``.

    Raises :class:`TypeError` for anything else (a set, bytes, a non-str item)
    and :class:`ValueError` for an empty list, an empty symbol, a duplicate, or
    v1's ``XBT`` (v2 spells it ``BTC``).
    """
    if isinstance(symbols, str):
        items: list[object] = [symbols]
    elif isinstance(symbols, (list, tuple)):
        items = list(symbols)
    else:
        raise TypeError(f"symbols must be a str or a list of str, got {type(symbols).__name__}")
    if not items:
        raise ValueError("symbols must name at least one symbol")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"each symbol must be a str, got {type(item).__name__}")
        if not item:
            raise ValueError("a symbol must not be empty")
        if "XBT" in item.split("/"):
            raise ValueError(f"v2 spells bitcoin BTC, not XBT: {item!r}")
        out.append(item)
    if len(set(out)) != len(out):
        raise ValueError(f"symbols lists a symbol twice: {out!r}")
    return out


def _check(channel: str, name: str, rule: tuple[object, ...] | str, value: object) -> None:
    if rule == _BOOL:
        if type(value) is not bool:
            raise TypeError(f"{channel}: {name} must be a bool, got {type(value).__name__}")
    elif rule == _TOKEN:
        if not isinstance(value, str):
            raise TypeError(f"{channel}: {name} must be a str, got {type(value).__name__}")
        if not value:
            raise ValueError(f"{channel}: {name} must not be empty")
    else:
        assert isinstance(rule, tuple)
        # Exact type: True == 1 and 10.0 == 10, but neither is what Kraken takes.
        if type(value) is not type(rule[0]) or value not in rule:
            raise ValueError(f"{channel}: {name} must be one of {rule}, got {value!r:.80}")


def subscription_params(
    channel: object, symbols: object = None, **params: object
) -> dict[str, Any]:
    """The ``params`` object of a ``subscribe``/``unsubscribe`` request, checked.

    Raises :class:`ValueError` for an unknown or unprompted channel, symbols on
    a channel without symbols (or none where they are needed), an unknown or
    missing parameter, or a value outside Kraken's set (depth, interval,
    event_trigger); :class:`TypeError` for a value of the wrong type (see
    :func:`normalize_symbols`; ``snapshot`` must be a bool).
    """
    if not isinstance(channel, str):
        raise TypeError(f"channel must be a str, got {type(channel).__name__}")
    spec = CHANNELS.get(channel)
    if spec is None:
        if channel in _UNPROMPTED:
            raise ValueError(f"{channel!r} is sent unprompted: it cannot be subscribed to")
        raise ValueError(f"unknown channel {channel!r:.80}; known: {sorted(CHANNELS)}")
    out: dict[str, Any] = {"channel": channel}
    if spec.symbols:
        if symbols is None:
            raise ValueError(f"{channel} needs symbols, e.g. ['BTC/USD']")
        out["symbol"] = normalize_symbols(symbols)
    elif symbols is not None:
        raise ValueError(f"{channel} takes no symbols")
    for name, value in params.items():
        rule = spec.params.get(name)
        if rule is None:
            raise ValueError(
                f"{channel} has no parameter {name!r}; it accepts {sorted(spec.params)}"
            )
        _check(channel, name, rule, value)
        out[name] = value
    missing = spec.required - params.keys()
    if missing:
        raise ValueError(f"{channel} needs {', '.join(sorted(missing))}")
    return out


def _exact(value: object) -> object:
    """``value`` with every Decimal as its exact JSON number text; floats refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"a number must be finite, got {value}")
        return msgspec.Raw(format(value, "f").encode())
    if isinstance(value, float):
        raise TypeError("floats are not exact: pass a Decimal (or an int)")
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_exact(item) for item in value]
    return value


_encoder: Final = msgspec.json.Encoder()


def encode_request(
    method: str, params: Mapping[str, Any] | None = None, req_id: int | None = None
) -> bytes:
    """The JSON frame ``{"method", "params", "req_id"}`` (absent parts left out).

    A ``Decimal`` becomes a JSON number with exactly its digits
    (``Decimal("0.00000001")`` -> ``0.00000001``). Raises :class:`TypeError` for a
    float anywhere in ``params`` or a ``req_id`` that is not an int, and
    :class:`ValueError` for a negative ``req_id`` or a non-finite Decimal.
    """
    if not isinstance(method, str) or not method:
        raise TypeError("method must be a non-empty str")
    frame: dict[str, object] = {"method": method}
    if params is not None:
        frame["params"] = _exact(dict(params))
    if req_id is not None:
        if type(req_id) is not int:
            raise TypeError(f"req_id must be an int, got {type(req_id).__name__}")
        if not 0 <= req_id < 2**63:
            raise ValueError(f"req_id must be between 0 and 2**63-1, got {req_id}")
        frame["req_id"] = req_id
    return _encoder.encode(frame)
