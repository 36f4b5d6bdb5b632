"""How the transport fails, on both backends and virtual time: sends under a
deadline against a peer that never reads (issue 11.2), raw errors translated
into the TransportError family (12.2), handshake answers that cannot be
parsed (11.13), and one default TLS context per process (11.14)."""

from __future__ import annotations

import contextlib
import math
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri
from websockets.utils import accept_key

from kraky_anyio import Connected, Disconnected, handshake, open_kraken
from kraky_anyio.errors import ConnectionClosedError, HandshakeError, TransportError
from kraky_anyio.transport import WebSocket, connect_websocket, serve_websockets

pytestmark = pytest.mark.anyio


class Peer(anyio.abc.ByteStream):
    """A scripted peer: delivers what the test queues; takes ``capacity``
    bytes of writes and then never reads again (writes block), or fails
    each call with the errors given."""

    def __init__(
        self,
        capacity: float = math.inf,
        send_error: BaseException | None = None,
        receive_error: BaseException | None = None,
        close_error: BaseException | None = None,
    ) -> None:
        self.inbox, self._rx = anyio.create_memory_object_stream[bytes](math.inf)
        self.capacity = capacity
        self.written = 0
        self.send_error = send_error
        self.receive_error = receive_error
        self.close_error = close_error
        self.closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.receive_error is not None:
            raise self.receive_error
        return await self._rx.receive()

    async def send(self, item: bytes) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        if self.send_error is not None:
            raise self.send_error
        if self.written + len(item) > self.capacity:
            await anyio.sleep_forever()  # the peer's buffers are full
        self.written += len(item)

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True
        self.inbox.close()
        if self.close_error is not None:
            raise self.close_error


def open_ws(peer: Peer, **kwargs: Any) -> WebSocket:
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN)
    return WebSocket(peer, protocol, **kwargs)


def ping(payload: bytes = b"p" * 125) -> bytes:
    return bytes([0x89, len(payload)]) + payload


def text(payload: bytes) -> bytes:
    return bytes([0x81, len(payload)]) + payload


# -- 11.2: a ping flood from a peer that never reads ---------------------------


async def test_ping_flood_from_a_peer_that_never_reads_ends_the_socket() -> None:
    """The reader's pongs fill the peer's buffers; the socket must be judged
    dead within send_timeout, and a liveness send must not wait on the
    reader's stuck write (before: both hung forever)."""
    peer = Peer(capacity=4096)
    ws = open_ws(peer, send_timeout=3.0)
    for _ in range(200):
        peer.inbox.send_nowait(ping() * 10 + text(b'{"event":"heartbeat"}'))
    outcome: dict[str, Any] = {}

    async def reader() -> None:
        try:
            while True:
                await ws.receive_batch()
        except ConnectionClosedError as exc:
            outcome["reader"] = (exc, anyio.current_time())

    async def watchdog() -> None:
        await anyio.sleep(1.0)  # the reader is stuck writing pongs by now
        start = anyio.current_time()
        with pytest.raises(ConnectionClosedError) as info:
            await ws.send_text('{"event":"ping"}')
        outcome["watchdog"] = (info.value, anyio.current_time() - start)

    start = anyio.current_time()
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(watchdog)
    exc, at = outcome["reader"]
    assert "within 3 s" in str(exc)
    assert at - start <= 3.0 + 0.5
    assert outcome["watchdog"][1] <= 3.0
    assert ws.closed and peer.closed


async def test_a_send_to_a_peer_that_never_reads_has_a_deadline() -> None:
    peer = Peer(capacity=0)
    ws = open_ws(peer, send_timeout=2.0)
    start = anyio.current_time()
    with anyio.fail_after(30), pytest.raises(ConnectionClosedError, match="within 2 s"):
        await ws.send_text("x")
    assert anyio.current_time() - start == pytest.approx(2.0, abs=0.5)
    assert peer.closed
    with pytest.raises(ConnectionClosedError):
        await ws.receive_batch()


async def test_pongs_queued_behind_a_sender_go_out_with_its_write() -> None:
    """The reader leaves a busy lock alone; the holder writes the pong."""
    peer = Peer()
    ws = open_ws(peer)
    release = anyio.Event()
    real_send = peer.send

    async def slow_send(item: bytes) -> None:
        await release.wait()
        await real_send(item)

    peer.send = slow_send  # type: ignore[method-assign]
    peer.inbox.send_nowait(ping(b"hi") + text(b"ok"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(ws.send_text, "from the writer")
        await anyio.wait_all_tasks_blocked()
        with anyio.fail_after(5):
            assert await ws.receive_batch() == ["ok"]  # not blocked by the writer
        release.set()
    assert peer.written == (6 + 15) + (6 + 2)  # the text, then the pong


# -- 11.10: a send says whether any byte of it may have left -----------------


async def test_a_send_that_never_reached_the_socket_says_so() -> None:
    """Only a send whose bytes may have left is ``written``: the shell turns
    the others into a plain, retryable error instead of "outcome unknown"."""
    peer = Peer(capacity=0)
    ws = open_ws(peer, send_timeout=2.0)
    outcome: dict[str, ConnectionClosedError] = {}

    async def send(name: str, text: str) -> None:
        try:
            await ws.send_text(text)
        except ConnectionClosedError as exc:
            outcome[name] = exc

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(send, "holder", "x" * 100)  # takes the lock, never completes
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(send, "waiter", "y")  # waits for the lock: never written
    assert outcome["holder"].written is True
    assert outcome["waiter"].written is False
    with pytest.raises(ConnectionClosedError) as info:
        await ws.send_text("z")  # closed before it: never written
    assert info.value.written is False
    failed = open_ws(Peer(send_error=OSError(104, "reset")))
    with pytest.raises(ConnectionClosedError) as info:
        await failed.send_text("x")
    assert info.value.written is True  # the write itself failed: unknown


# -- 12.2: raw errors leave as TransportError, the original as __cause__ -------


@pytest.mark.parametrize(
    "error",
    [OSError(104, "reset"), anyio.BrokenResourceError(), ssl.SSLError(1, "bad record mac")],
)
async def test_a_failed_write_is_connection_closed_with_its_cause(error: Exception) -> None:
    ws = open_ws(Peer(send_error=error))
    with pytest.raises(ConnectionClosedError) as info:
        await ws.send_text("x")
    assert info.value.__cause__ is error
    assert ws.closed


@pytest.mark.parametrize("error", [OSError(104, "reset"), anyio.BrokenResourceError()])
async def test_a_failed_read_is_connection_closed(error: Exception) -> None:
    ws = open_ws(Peer(receive_error=error))
    with anyio.fail_after(5), pytest.raises(ConnectionClosedError):
        await ws.receive_batch()


async def test_close_never_raises_raw_errors() -> None:
    ws = open_ws(Peer(close_error=OSError("close failed")), close_timeout=1.0)
    await ws.aclose()
    assert ws.closed


async def test_connect_refused_is_a_handshake_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    with pytest.raises(HandshakeError) as info:
        await connect_websocket(f"ws://127.0.0.1:{port}")
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:notaport", "ws://127.0.0.1:99999", "ws://:80", "http://x/"]
)
async def test_bad_urls_are_handshake_errors_before_any_io(url: str) -> None:
    with pytest.raises(HandshakeError, match="not a WebSocket URL"):
        await connect_websocket(url)


# -- 11.13: an answer that cannot be parsed fails at once ----------------------


@asynccontextmanager
async def answering(answer: bytes) -> AsyncIterator[str]:
    """A TCP server that writes ``answer`` to the upgrade and stays open."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(answer)
        await anyio.sleep_forever()

    async with tcp_server(handle) as url:
        yield url


@asynccontextmanager
async def tcp_server(
    handle: Callable[[anyio.abc.SocketStream], Awaitable[None]],
) -> AsyncIterator[str]:
    """Serve ``handle`` on a local TCP port; yield its ``ws://`` URL, cancel it on exit."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"ws://127.0.0.1:{port}"
        tg.cancel_scope.cancel()


def switching_protocols(request: bytes) -> bytes:
    """The 101 that accepts the raw upgrade ``request``."""
    key = next(
        line.split(b": ")[1]
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
        + accept_key(key.decode()).encode()
        + b"\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"\x00\x01binary junk", "did not answer with HTTP/1.1"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "did not answer with HTTP/1.1"),
        (b"HTTP/1.1 abc Nope\r\n\r\n", "invalid status code"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n",
            "body too large",
        ),
        (
            b"HTTP/1.1 101 Switching\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
            "expected no more than 8192",
        ),
    ],
)
async def test_unparseable_answer_fails_the_attempt_at_once(answer: bytes, reason: str) -> None:
    async with answering(answer) as url:
        start = anyio.current_time()
        with anyio.fail_after(30), pytest.raises(HandshakeError, match=reason):
            await connect_websocket(url)
        # Virtual time: any wait (for more bytes, for a timeout) would show.
        assert anyio.current_time() - start < 1.0


async def test_frames_glued_to_the_101_take_the_fast_path_boundary() -> None:
    """A ping and texts arriving with the 101 are delivered and answered."""
    got: list[bytes] = []
    answered = anyio.Event()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        answer = switching_protocols(await stream.receive())
        await stream.send(answer + text(b'"a"') + ping(b"x") + text(b'"b"')[:2])
        await stream.send(text(b'"b"')[2:])
        got.append(await stream.receive())
        answered.set()
        await anyio.sleep_forever()

    async with tcp_server(handle) as url:
        with anyio.fail_after(10):
            ws = await connect_websocket(url)
            msgs = await ws.receive_batch()
            if msgs == ['"a"']:
                msgs += await ws.receive_batch()
            assert msgs == ['"a"', '"b"']
            await answered.wait()
        assert got[0][:2] == b"\x8a\x81"  # a masked pong of one byte
        await ws.abort()


# -- 11.14: the default TLS context is built once -------------------------------


async def test_default_tls_context_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        ctx = real(*args, **kwargs)
        built.append(ctx)
        return ctx

    monkeypatch.setattr(handshake, "_DefaultContext", type("Fresh", (), {"context": None}))
    monkeypatch.setattr(ssl, "create_default_context", counting)
    ca = trustme.CA()
    server_ctx = real(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    handler: Callable[[WebSocket], Awaitable[None]] = lambda ws: anyio.sleep_forever()  # noqa: E731
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve_websockets(
                handler, ssl_context=server_ctx, task_status=task_status
            )
        )
        for _ in range(3):  # the system store does not trust the test CA
            with pytest.raises(HandshakeError) as info:
                await connect_websocket(f"wss://127.0.0.1:{port}")
            assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        assert len(built) == 1
        assert await handshake.default_ssl_context() is built[0]
        user_ctx = real()
        ca.configure_trust(user_ctx)
        ws = await connect_websocket(f"wss://127.0.0.1:{port}", ssl_context=user_ctx)
        assert len(built) == 1  # the user's context is used as given
        await ws.aclose()
        tg.cancel_scope.cancel()


def test_transport_errors_are_one_family() -> None:
    assert issubclass(HandshakeError, TransportError)
    assert issubclass(ConnectionClosedError, TransportError)


# -- 11.2 end to end: open_kraken recovers from a flooding, deaf server ---------


async def test_open_kraken_drops_a_deaf_ping_flooding_server_and_reconnects() -> None:
    """Socket 1: after the 101 the server floods WebSocket pings and never
    reads, so the client's pongs fill every buffer. Before the fix the reader
    blocked in its pong flush holding the send lock and the watchdog's ping
    waited on that lock forever. Socket 2 is a normal server."""
    sockets = 0

    async def handle(stream: anyio.abc.SocketStream) -> None:
        nonlocal sockets
        sockets += 1
        await stream.send(
            switching_protocols(await stream.receive())
            + text(b'{"event":"systemStatus","status":"online"}')
        )
        if sockets == 1:
            sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            flood = ping() * 500
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                while True:
                    await stream.send(flood)
        await anyio.sleep_forever()

    async with tcp_server(handle) as url, open_kraken(url) as conn, conn.messages() as stream:
        with anyio.fail_after(300):
            async for msg in stream:
                if isinstance(msg, Disconnected):
                    assert msg.generation == 1
                    # Whichever liveness deadline fires first ends the socket
                    # (before the fix none did: it hung for good): the
                    # transport's send deadline, the watchdog's deadline on
                    # sending its ping, or the watchdog's silence rule when the
                    # ping got out but the reader, stuck, saw no reply.
                    assert any(
                        why in msg.reason
                        for why in (
                            "did not complete within",
                            "could not be sent within",
                            "no message from Kraken for",
                        )
                    ), msg.reason
                if isinstance(msg, Connected) and msg.generation == 2:
                    break
