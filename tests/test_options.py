"""Options are checked once, on entering open_kraken, before any task starts."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kraky_anyio import ConnectionOptions, check_url, open_kraken
from kraky_anyio.options import resolve_url

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("url", "exc"),
    [
        ("ws://127.0.0.1:notaport", ValueError),
        ("ws://127.0.0.1:99999", ValueError),
        ("ws://127.0.0.1:0", ValueError),
        ("ws://", ValueError),
        ("wss:///nohost", ValueError),
        ("http://example.com", ValueError),
        ("nonsense", ValueError),
        ("", TypeError),
        (42, TypeError),
    ],
)
async def test_a_malformed_url_fails_on_entry_and_is_never_retried(url: Any, exc: type) -> None:
    # Regression (11.11, 12.6): these looped on "not a WebSocket URL" or ended
    # as ConnectionFailedError("internal error ... ValueError").
    entered = False
    with anyio.fail_after(5), pytest.raises(exc):
        async with open_kraken(url):
            entered = True
    assert not entered


@pytest.mark.parametrize(
    ("options", "exc"),
    [
        ({"reply_timeout": "10"}, TypeError),
        ({"reply_timeout": 0}, ValueError),
        ({"idle_timeout": float("nan")}, ValueError),
        ({"ping_timeout": True}, TypeError),
        ({"connect_timeout": float("inf")}, ValueError),
        ({"buffer_size": 0}, ValueError),
        ({"buffer_size": 2.5}, TypeError),
        ({"send_buffer": -1}, ValueError),
        ({"overflow": "sometimes"}, ValueError),
        ({"overflow": 3}, TypeError),
        ({"max_message_size": 0}, ValueError),
        ({"token": 123}, TypeError),
        ({"token": ""}, ValueError),
        ({"reconnect": "yes"}, TypeError),
        ({"reconnect_policy": {"budget": 1}}, TypeError),
        ({"ssl_context": "default"}, TypeError),
        ({"rng": 7}, TypeError),
        ({"no_such_option": 1}, TypeError),
    ],
)
async def test_bad_options_fail_on_entry(options: dict[str, Any], exc: type) -> None:
    with pytest.raises(exc):
        async with open_kraken("ws://127.0.0.1:1", **options):
            pytest.fail("entered the block")


async def test_send_buffer_is_an_open_kraken_option() -> None:
    # Regression (12.3): send_buffer existed on the connection only.
    async with open_kraken("ws://127.0.0.1:1", send_buffer=3) as conn:
        assert conn.options.send_buffer == 3


async def test_send_timeout_is_an_option_checked_on_entry() -> None:
    async with open_kraken("ws://127.0.0.1:1", send_timeout=2.5) as conn:
        assert conn.options.send_timeout == 2.5
    with pytest.raises(ValueError, match="send_timeout"):
        async with open_kraken("ws://127.0.0.1:1", send_timeout=0):
            pass


async def test_options_object_or_keywords_not_both() -> None:
    opts = ConnectionOptions(reply_timeout=3)
    async with open_kraken("ws://127.0.0.1:1", options=opts) as conn:
        assert conn.options is opts and conn.reply_timeout == 3
    with pytest.raises(TypeError, match="not both"):
        async with open_kraken("ws://127.0.0.1:1", options=opts, reply_timeout=1):
            pass


def test_options_are_frozen_and_hide_the_token() -> None:
    opts = ConnectionOptions(token="SECRET-abc")
    assert "SECRET-abc" not in repr(opts)
    with pytest.raises(AttributeError):
        opts.reply_timeout = 1  # type: ignore[misc]


def test_check_url_and_environments() -> None:
    assert check_url("wss://ws.kraken.com") == "wss://ws.kraken.com"
    assert check_url("ws://[::1]:8080/path") == "ws://[::1]:8080/path"
    assert resolve_url("beta") == "wss://beta-ws.kraken.com"
    with pytest.raises(ValueError, match=r"(?i)port"):
        check_url("ws://h:70000")
