"""The fake exchange's options: one frozen, validated object used by
``open_fake_kraken``, the server and both sessions."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import anyio
import pytest

from kraky_anyio.testing.options import DEFAULT_PAIRS, FakeKrakenOptions
from kraky_anyio.testing.server import open_fake_kraken
from kraky_anyio.testing.session import FakeKrakenSession
from kraky_anyio.testing.v2_session import FakeKrakenV2Session
from kraky_anyio.transport import connect_websocket


def _provider(*args: Any) -> list[Any]:
    return []


def test_defaults_and_normalisation() -> None:
    options = FakeKrakenOptions()
    assert (options.heartbeat_interval, options.status) == (1.0, "online")
    assert options.pairs == DEFAULT_PAIRS
    assert options.valid_tokens is None
    given = FakeKrakenOptions(valid_tokens=["a", "b", "a"], pairs=("XBT/USD",))
    assert given.valid_tokens == frozenset({"a", "b"})
    assert given.pairs == frozenset({"XBT/USD"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.status = "maintenance"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"heartbeat_interval": 0}, ValueError),
        ({"heartbeat_interval": -1.0}, ValueError),
        ({"heartbeat_interval": float("inf")}, ValueError),
        ({"heartbeat_interval": float("nan")}, ValueError),
        ({"heartbeat_interval": "1"}, TypeError),
        ({"heartbeat_interval": True}, TypeError),
        ({"status": "sleeping"}, ValueError),
        ({"status": None}, TypeError),
        ({"valid_tokens": "tok-1"}, TypeError),  # a str is not a set of tokens
        ({"valid_tokens": [1]}, TypeError),
        ({"pairs": "XBT/USD"}, TypeError),
        ({"pairs": ["XBTUSD"]}, ValueError),
        ({"pairs": ["XBT/USD/EUR"]}, ValueError),
        ({"order_handler": "engine"}, TypeError),
        ({"snapshot_provider": 1}, TypeError),
        ({"private_snapshot_provider": 1}, TypeError),
        ({"v2_snapshot_provider": 1}, TypeError),
        ({"no_such_option": 1}, TypeError),
    ],
)
def test_bad_values_fail_everywhere_at_once(
    changes: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        FakeKrakenOptions(**changes)
    with pytest.raises(error):
        FakeKrakenOptions().replace(**changes)
    with pytest.raises(error):
        FakeKrakenSession(**changes)
    with pytest.raises(error):
        FakeKrakenV2Session(**changes)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "changes",
    [
        {"status": "down"},
        {"no_such_option": 1},
        {"options": "x"},
        {"port": -1},
        {"port": 65536},
        {"port": "80"},
        {"host": 127},
    ],
)
async def test_open_fake_kraken_rejects_bad_options_before_listening(
    changes: dict[str, Any],
) -> None:
    entered = False
    with pytest.raises((TypeError, ValueError)):
        async with open_fake_kraken(**changes):
            entered = True
    assert not entered


def test_every_option_is_a_keyword_of_every_entry_point() -> None:
    values = {
        "heartbeat_interval": 2.0,
        "status": "post_only",
        "valid_tokens": {"t"},
        "pairs": {"ETH/USD"},
        "order_handler": _provider,
        "snapshot_provider": _provider,
        "private_snapshot_provider": _provider,
        "v2_snapshot_provider": _provider,
    }
    # A new option must be added here, and so reaches every entry point below.
    assert set(values) == {f.name for f in dataclasses.fields(FakeKrakenOptions)}
    expected = FakeKrakenOptions(**values)
    assert FakeKrakenSession(**values).options == expected
    assert FakeKrakenV2Session(**values).options == expected
    base = FakeKrakenOptions(status="cancel_only")
    assert FakeKrakenSession(base, heartbeat_interval=3.0).options == base.replace(
        heartbeat_interval=3.0
    )


@pytest.mark.anyio
async def test_open_fake_kraken_takes_private_snapshot_provider() -> None:
    # Regression: open_fake_kraken had no private_snapshot_provider keyword.
    def private(session: FakeKrakenSession, channel: str, sub: dict[str, Any]) -> list[Any]:
        return [[{"OABC": {"status": "open"}}]] if channel == "openOrders" else []

    async with open_fake_kraken(private_snapshot_provider=private) as server:
        assert server.options.private_snapshot_provider is private
        ws = await connect_websocket(server.url)
        try:
            await ws.receive_batch()  # systemStatus
            subscribe = {"event": "subscribe", "subscription": {"name": "openOrders", "token": "t"}}
            await ws.send_text(json.dumps(subscribe))
            got: list[Any] = []
            with anyio.fail_after(10):
                while len(got) < 2:
                    got.extend(json.loads(m) for m in await ws.receive_batch())
            assert got[0]["status"] == "subscribed"
            assert got[1] == [[{"OABC": {"status": "open"}}], "openOrders", {"sequence": 1}]
        finally:
            await ws.aclose()


@pytest.mark.anyio
async def test_configure_applies_to_later_connections() -> None:
    async with open_fake_kraken(options=FakeKrakenOptions(status="post_only")) as server:
        assert server.options.status == "post_only"
        server.valid_tokens = {"new"}
        assert server.options.valid_tokens == frozenset({"new"})
        with pytest.raises(ValueError):
            server.configure(heartbeat_interval=0)
        with pytest.raises(TypeError):
            server.configure(nope=1)
        assert server.options.valid_tokens == frozenset({"new"})
