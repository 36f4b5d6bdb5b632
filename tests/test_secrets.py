"""No token, API key or API secret ever leaks: not in a log record (message or
arguments, at DEBUG, any logger), an exception raised to the user, a repr, a
notice or any message of the stream. One full trading session with
reconnects, on both backends and virtual time, then every text it produced is
searched for every secret it used."""

from __future__ import annotations

import base64
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

from kraky_anyio import (
    Connected,
    KrakenError,
    KrakyError,
    OrderOutcomeUnknownError,
    SubscriptionLost,
    open_kraken,
)
from kraky_anyio.auth import KrakenTokenProvider
from kraky_anyio.testing.engine import FakeMatchingEngine
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

pytestmark = pytest.mark.anyio

API_KEY = "kraky-API-KEY-d41d8cd98f00b204"
API_SECRET = base64.b64encode(b"kraky test api secret, never real: 0123456789").decode()
RESTING = {"pair": "XBT/USD", "type": "buy", "ordertype": "limit", "volume": "0.01"}


def token(n: int) -> str:
    return f"WSTOKEN{n}-s3cr3t-a8f5f167f44f4964e6c998dee827110c"


VALID = [token(n) for n in range(1, 10)]


class FlakyProvider:
    """The user's token provider: a :class:`KrakenTokenProvider` (over a mock
    HTTP transport handing out ``token(1)``, ``token(2)``, ...) that fails on
    its second and third calls with an exception carrying every secret."""

    def __init__(self) -> None:
        self.calls = 0
        self.issued: list[str] = []

        def grant(request: httpx.Request) -> httpx.Response:
            assert request.headers["API-Key"] == API_KEY
            self.issued.append(token(len(self.issued) + 1))
            return httpx.Response(
                200, json={"error": [], "result": {"token": self.issued[-1], "expires": 900}}
            )

        self.client = httpx.AsyncClient(transport=httpx.MockTransport(grant))
        self.kraken = KrakenTokenProvider(API_KEY, API_SECRET, client=self.client)

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls in (2, 3):
            raise RuntimeError(
                f"token service refused key={API_KEY} secret={API_SECRET}"
                f" (last token {self.issued[-1]})"
            )
        return await self.kraken()


@dataclass
class Evidence:
    """Everything the session showed the user."""

    secrets: list[str]
    raised: list[BaseException] = field(default_factory=list)
    stream: list[Any] = field(default_factory=list)
    reprs: list[str] = field(default_factory=list)


async def next_of(stream: Any, match: Callable[[Any], bool]) -> Any:
    with anyio.fail_after(600):
        async for msg in stream:
            if match(msg):
                return msg
    raise AssertionError("stream ended")


async def trading_session(server: FakeKrakenServer, engine: FakeMatchingEngine) -> Evidence:
    provider = FlakyProvider()
    evidence = Evidence(secrets=[])

    async def expect_error(call: Any, error: type[BaseException] = KrakyError) -> None:
        with anyio.fail_after(60), pytest.raises(error) as info:
            await call
        evidence.raised.append(info.value)

    async with provider.client, open_kraken(server.url, token=provider) as conn:
        evidence.reprs.append(repr(provider.kraken))
        async with anyio.create_task_group() as tg:

            async def record() -> None:
                async for msg in conn.messages():
                    evidence.stream.append(msg)

            tg.start_soon(record)
            with anyio.fail_after(10):
                await conn.wait_connected()
                # Private feeds (token 1), orders, fills, cancels, Kraken errors.
                await conn.subscribe({"name": "openOrders"})
                await conn.subscribe({"name": "ownTrades"})
                resting = (await conn.add_order(**RESTING, price="25000"))["txid"]
                await conn.add_order(pair="XBT/USD", type="buy", ordertype="market", volume=1)
                await conn.edit_order(orderid=resting, pair="XBT/USD", price="25001")
                await conn.cancel_all()
                txid = (await conn.add_order(**RESTING, price="25000"))["txid"]
            await expect_error(conn.add_order(**{**RESTING, "pair": "NOPE/USD"}, price="1"))
            await expect_error(conn.cancel_order(txid=[txid, "OAAAAA-AAAAA-AAAAAA"]))
            await expect_error(conn.cancel_all(token=token(1) + "-wrong"))
            await expect_error(
                conn.add_order(**{**RESTING, "volume": "lots"}, token=token(1)), ValueError
            )

            # Reconnect 1: the provider fails with secrets in its message,
            # once for the replay and once for the next private subscribe.
            async with conn.messages() as notices:
                await server.drop()
                for _ in range(2):
                    await next_of(notices, lambda m: isinstance(m, SubscriptionLost))
            assert conn.stats.token_failures == 1
            with anyio.fail_after(60):
                await conn.wait_connected()
            await expect_error(conn.subscribe({"name": "openOrders"}))
            assert conn.stats.token_failures == 2
            with anyio.fail_after(60):
                await conn.subscribe({"name": "openOrders"})  # token 2
                await conn.subscribe({"name": "ownTrades"})
            engine.expire_token(token(1))
            await expect_error(conn.cancel_all(token=token(1)), KrakenError)

            # Reconnect 2: the replay carries token 3.
            gen = conn.generation
            async with conn.messages() as notices:
                await server.drop()
                await next_of(notices, lambda m: isinstance(m, Connected) and m.generation > gen)
            with anyio.fail_after(60):
                await conn.wait_connected()
                await server.wait_for_subscription("ownTrades", None)

            # An order lost in flight, with the pending requests shown meanwhile.
            server.stall(True)

            async def drop_on_arrival() -> None:
                await server.wait_for_received(lambda f: f.get("reqid") == 777)
                evidence.reprs.append(repr(conn.protocol.pending()))
                evidence.reprs.extend(repr(p) for p in conn.protocol.pending())
                evidence.reprs.append(repr(conn))
                await server.drop()

            tg.start_soon(drop_on_arrival)
            await expect_error(
                conn.add_order(**RESTING, price="25000", reqid=777), OrderOutcomeUnknownError
            )
            server.stall(False)
            with anyio.fail_after(60):
                await conn.wait_connected()
                await server.wait_for_subscription("ownTrades", None)
                # The dead man's switch fires while subscribed.
                await conn.add_order(**RESTING, price="25000")
                await conn.cancel_all_orders_after(timeout=30)
            await anyio.sleep(31)
            assert engine.open_orders() == []
            evidence.reprs += [repr(conn), repr(conn.stats), repr(conn.live_subscriptions())]
            evidence.reprs.append(repr(conn.protocol.subscriptions.replay_plan()))
            tg.cancel_scope.cancel()
    evidence.reprs.append(repr(conn))
    evidence.secrets = [API_KEY, API_SECRET, *provider.issued]
    assert provider.issued == [token(1), token(2), token(3), token(4)]
    return evidence


def exception_texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


def record_texts(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), str(record.msg), repr(record.args)]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


def leaks(secrets: list[str], texts: list[str]) -> list[str]:
    return [text for text in texts if any(secret in text for secret in secrets)]


async def test_no_secret_in_logs_errors_reprs_or_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger at DEBUG
    engine = FakeMatchingEngine(reference_prices={"XBT/USD": "30000"})
    async with open_fake_kraken(order_handler=engine, valid_tokens=VALID) as server:
        evidence = await trading_session(server, engine)
    # The session did what it says, so the search below means something.
    assert any("failed (RuntimeError)" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.DEBUG and r.name == "kraky_anyio" for r in caplog.records)
    assert [type(e).__name__ for e in evidence.raised] == [
        "KrakenError",
        "KrakenError",
        "KrakenError",
        "ValueError",
        "AuthError",  # the provider failed when the writer asked for a token
        "KrakenError",
        "OrderOutcomeUnknownError",
    ]
    assert sum(isinstance(m, SubscriptionLost) for m in evidence.stream) == 2
    assert any(isinstance(m, list) and m[1] == "ownTrades" for m in evidence.stream)
    # The secrets really went over the wire.
    wire = json.dumps(server.all_received())
    assert all(secret in wire for secret in evidence.secrets[2:])

    # Every logger: kraky_anyio's, websockets' (client and fake server), httpx's.
    records = caplog.records
    assert leaks(evidence.secrets, [t for r in records for t in record_texts(r)]) == []
    assert leaks(evidence.secrets, [t for e in evidence.raised for t in exception_texts(e)]) == []
    assert leaks(evidence.secrets, evidence.reprs) == []
    assert leaks(evidence.secrets, [repr(m) for m in evidence.stream]) == []
