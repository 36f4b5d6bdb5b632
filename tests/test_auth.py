"""Tests for kraky_anyio.auth: signing, and fetching a token from a real local HTTP server."""

from __future__ import annotations

import base64
import itertools
import json
import sys
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc
import httpx
import pytest

from kraky_anyio.auth import (
    TOKEN_PATH,
    KrakenTokenProvider,
    fetch_websockets_token,
    make_nonce,
    sign,
)
from kraky_anyio.errors import AuthError, KrakyError

API_KEY = "TEST-API-KEY-4c1d2e3f"
API_SECRET = base64.b64encode(b"test secret bytes, not a real one 0123456789").decode()
TOKEN = "WS-TOKEN-9f8e7d6c5b4a"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --------------------------------------------------------------------------- sign


def test_sign_published_vector() -> None:
    secret = (
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
    )
    expected = (
        "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
    )
    postdata = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    assert sign("/0/private/AddOrder", postdata, 1616492376594, secret) == expected
    assert sign("/0/private/AddOrder", postdata, "1616492376594", secret) == expected
    data = {
        "nonce": "1616492376594",
        "ordertype": "limit",
        "pair": "XBTUSD",
        "price": "37500",
        "type": "buy",
        "volume": "1.25",
    }
    assert sign("/0/private/AddOrder", data, 1616492376594, secret) == expected


@pytest.mark.parametrize("secret", ["not base64!", "abc", ""])
def test_sign_bad_secret(secret: str) -> None:
    if secret == "":
        # An empty secret decodes to an empty key: HMAC accepts it.
        assert sign(TOKEN_PATH, "nonce=1", 1, secret)
        return
    with pytest.raises(ValueError) as info:
        sign(TOKEN_PATH, "nonce=1", 1, secret)
    assert secret not in str(info.value)


def test_default_nonce_strictly_increasing() -> None:
    values = [make_nonce() for _ in range(2000)]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert values[0] > 1_600_000_000_000  # milliseconds since the epoch


# --------------------------------------------------------------------------- a real local server


@dataclass
class Recorded:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeKraken:
    """Replies to every request with ``reply(n)`` -> (status, content type, body)."""

    reply: Callable[[int], tuple[int, str, bytes]]
    hang: bool = False
    requests: list[Recorded] = field(default_factory=list)

    async def handle(self, stream: anyio.abc.ByteStream) -> None:
        async with stream:
            try:
                buffer = b""
                while b"\r\n\r\n" not in buffer:
                    buffer += await stream.receive()
                head, _, body = buffer.partition(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers: dict[str, str] = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(body) < length:
                    body += await stream.receive()
                self.requests.append(Recorded(method, target, headers, body))
                if self.hang:
                    await anyio.sleep_forever()
                status, content_type, payload = self.reply(len(self.requests))
                response = (
                    f"HTTP/1.1 {status} X\r\n"
                    f"Content-Type: {content_type}\r\n"
                    f"Content-Length: {len(payload)}\r\n"
                    "Connection: close\r\n\r\n"
                ).encode() + payload
                await stream.send(response)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass


def json_reply(payload: object, status: int = 200) -> Callable[[int], tuple[int, str, bytes]]:
    return lambda _n: (status, "application/json", json.dumps(payload).encode())


def token_reply(n: int) -> tuple[int, str, bytes]:
    body = {"error": [], "result": {"token": f"{TOKEN}-{n}", "expires": 900}}
    return 200, "application/json", json.dumps(body).encode()


@asynccontextmanager
async def serve(server: FakeKraken) -> AsyncIterator[str]:
    """Run ``server`` on 127.0.0.1 (a free port); yield its base URL."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            tg.cancel_scope.cancel()


def assert_clean(exc: BaseException, *extra: str) -> None:
    for secret in (API_KEY, API_SECRET, TOKEN, *extra):
        assert secret not in str(exc)
        assert secret not in repr(exc)


def check_request(recorded: Recorded) -> None:
    assert recorded.method == "POST"
    assert recorded.target == TOKEN_PATH
    assert recorded.headers["api-key"] == API_KEY
    assert recorded.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = urllib.parse.parse_qs(recorded.body.decode(), strict_parsing=True)
    assert list(form) == ["nonce"]
    nonce = form["nonce"][0]
    assert nonce.isdigit()
    assert recorded.body == f"nonce={nonce}".encode()
    expected = sign(TOKEN_PATH, recorded.body.decode(), nonce, API_SECRET)
    assert recorded.headers["api-sign"] == expected


@pytest.mark.anyio
async def test_fetch_ok() -> None:
    server = FakeKraken(json_reply({"error": [], "result": {"token": TOKEN, "expires": 900}}))
    async with serve(server) as url:
        token = await fetch_websockets_token(
            API_KEY, API_SECRET, base_url=url, nonce=lambda: 1616492376594
        )
    assert token == TOKEN
    assert len(server.requests) == 1
    check_request(server.requests[0])
    assert server.requests[0].body == b"nonce=1616492376594"


@pytest.mark.anyio
async def test_fetch_with_given_client_and_default_nonce() -> None:
    server = FakeKraken(token_reply)
    async with serve(server) as url, httpx.AsyncClient() as client:
        first = await fetch_websockets_token(API_KEY, API_SECRET, base_url=url + "/", client=client)
        second = await fetch_websockets_token(API_KEY, API_SECRET, base_url=url, client=client)
        assert not client.is_closed  # a given client is not closed
    assert (first, second) == (f"{TOKEN}-1", f"{TOKEN}-2")
    for recorded in server.requests:
        check_request(recorded)
    nonces = [int(r.body.decode().split("=")[1]) for r in server.requests]
    assert nonces[1] > nonces[0]


@pytest.mark.anyio
async def test_fetch_kraken_error_list() -> None:
    server = FakeKraken(json_reply({"error": ["EAPI:Invalid key", "EGeneral:Permission denied"]}))
    async with serve(server) as url:
        with pytest.raises(AuthError) as info:
            await fetch_websockets_token(API_KEY, API_SECRET, base_url=url)
    assert "EAPI:Invalid key" in str(info.value)
    assert "EGeneral:Permission denied" in str(info.value)
    assert isinstance(info.value, KrakyError)
    assert_clean(info.value)


@pytest.mark.anyio
async def test_fetch_kraken_error_echoing_the_key_is_scrubbed() -> None:
    server = FakeKraken(json_reply({"error": [f"EAPI:Invalid key {API_KEY}"]}))
    async with serve(server) as url:
        with pytest.raises(AuthError) as info:
            await fetch_websockets_token(API_KEY, API_SECRET, base_url=url)
    assert "EAPI:Invalid key" in str(info.value)
    assert_clean(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (lambda _n: (500, "text/html", b"<html>oops</html>"), "HTTP 500"),
        (lambda _n: (503, "application/json", b'{"error":["EService:Unavailable"]}'), "HTTP 503"),
        (lambda _n: (200, "text/html", b"<html>not json</html>"), "not a JSON object"),
        (lambda _n: (200, "application/json", b"[1, 2]"), "not a JSON object"),
        (lambda _n: (200, "application/json", b'{"error":[],"result":{}}'), "no token"),
        (lambda _n: (200, "application/json", b'{"error":[],"result":{"token":""}}'), "no token"),
        (lambda _n: (302, "text/plain", b""), "HTTP 302"),
    ],
)
async def test_fetch_bad_replies(
    reply: Callable[[int], tuple[int, str, bytes]], expected: str
) -> None:
    server = FakeKraken(reply)
    async with serve(server) as url:
        with pytest.raises(AuthError, match=expected) as info:
            await fetch_websockets_token(API_KEY, API_SECRET, base_url=url)
    assert_clean(info.value)
    if "503" in expected:
        assert "EService:Unavailable" in str(info.value)


@pytest.mark.anyio
async def test_fetch_connection_refused() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there any more
    with pytest.raises(AuthError, match="request failed") as info:
        await fetch_websockets_token(API_KEY, API_SECRET, base_url=f"http://127.0.0.1:{port}")
    assert_clean(info.value)
    assert info.value.__cause__ is None  # the httpx error (with its request) is not chained


@pytest.mark.anyio
async def test_fetch_timeout() -> None:
    server = FakeKraken(token_reply, hang=True)
    async with serve(server) as url:
        with anyio.fail_after(5):
            with pytest.raises(AuthError, match="Timeout") as info:
                await fetch_websockets_token(API_KEY, API_SECRET, base_url=url, timeout=0.2)
    assert_clean(info.value)


@pytest.mark.anyio
async def test_fetch_bad_secret_is_auth_error() -> None:
    with pytest.raises(AuthError, match="base64") as info:
        await fetch_websockets_token(API_KEY, "not base64!", base_url="http://127.0.0.1:1")
    assert_clean(info.value, "not base64!")


@pytest.mark.anyio
async def test_fetch_without_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError, match=r"pip install kraky-anyio\[auth\]"):
        await fetch_websockets_token(API_KEY, API_SECRET)


# --------------------------------------------------------------------------- KrakenTokenProvider


@pytest.mark.anyio
async def test_provider_fresh_token_each_call() -> None:
    server = FakeKraken(token_reply)
    async with serve(server) as url:
        provider = KrakenTokenProvider(API_KEY, API_SECRET, base_url=url)
        tokens = [await provider() for _ in range(3)]
    assert tokens == [f"{TOKEN}-1", f"{TOKEN}-2", f"{TOKEN}-3"]
    assert len(server.requests) == 3
    for recorded in server.requests:
        check_request(recorded)


@pytest.mark.anyio
async def test_provider_error() -> None:
    server = FakeKraken(json_reply({"error": ["EAPI:Invalid nonce"]}))
    async with serve(server) as url:
        provider = KrakenTokenProvider(API_KEY, API_SECRET, base_url=url)
        with pytest.raises(AuthError, match="EAPI:Invalid nonce") as info:
            await provider()
    assert_clean(info.value)


def test_provider_repr_hides_key_and_secret() -> None:
    provider = KrakenTokenProvider(API_KEY, API_SECRET)
    text = repr(provider) + str(provider)
    assert text == (
        "KrakenTokenProvider(base_url='https://api.kraken.com')"
        "KrakenTokenProvider(base_url='https://api.kraken.com')"
    )
    for part in (API_KEY, API_SECRET, API_KEY[:4], API_SECRET[:4], API_KEY[-4:], API_SECRET[-4:]):
        assert part not in text


@pytest.mark.parametrize(
    ("key", "secret", "error"),
    [
        ("", API_SECRET, ValueError),
        (API_KEY, "", ValueError),
        (None, API_SECRET, TypeError),
        (API_KEY, b"secret", TypeError),
        (API_KEY, "not base64!", ValueError),
    ],
)
def test_provider_checks_arguments(key: object, secret: object, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        KrakenTokenProvider(key, secret)  # type: ignore[arg-type]
    assert API_SECRET not in str(info.value)
    assert "not base64!" not in str(info.value)
