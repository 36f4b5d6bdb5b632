"""The WebSocket transport on both backends: framing edge cases, limits,
close deadlines, broken writes and TLS verification."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from kraky_anyio import ConnectionClosedError, HandshakeError, MessageTooBigError, open_kraken
from kraky_anyio.transport import WebSocket, connect_websocket, serve_websockets

pytestmark = pytest.mark.anyio

RawHandler = Callable[[anyio.abc.SocketStream, ServerProtocol], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: RawHandler) -> AsyncIterator[str]:
    """A server that completes the handshake by hand, then lets ``handler``
    write whatever bytes it likes."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        protocol = ServerProtocol()
        request = None
        while request is None:
            protocol.receive_data(await stream.receive())
            request = next((e for e in protocol.events_received() if isinstance(e, Request)), None)
        protocol.send_response(protocol.accept(request))
        await handler(stream, protocol)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"ws://127.0.0.1:{port}"
        tg.cancel_scope.cancel()


@asynccontextmanager
async def echo_server(**kwargs: Any) -> AsyncIterator[str]:
    async def handler(ws: WebSocket) -> None:
        while True:
            for msg in await ws.receive_batch():
                if isinstance(msg, str):
                    await ws.send_text(msg)

    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve_websockets(handler, task_status=task_status, **kwargs)
        )
        yield f"ws://127.0.0.1:{port}"
        tg.cancel_scope.cancel()


async def test_frame_sent_with_the_101_response_is_not_lost() -> None:
    async def handler(stream: anyio.abc.SocketStream, protocol: ServerProtocol) -> None:
        protocol.send_text(b'{"event":"systemStatus"}')
        await stream.send(b"".join(protocol.data_to_send()))  # 101 + frame in one write
        await anyio.sleep_forever()

    async with raw_server(handler) as url:
        ws = await connect_websocket(url)
        with anyio.fail_after(5):
            assert await ws.receive_batch() == ['{"event":"systemStatus"}']
        await ws.abort()


async def test_fragmented_message_is_reassembled_and_pings_answered() -> None:
    got_pong = anyio.Event()

    async def handler(stream: anyio.abc.SocketStream, protocol: ServerProtocol) -> None:
        protocol.send_ping(b"hi")
        protocol.send_text(b'{"a":', fin=False)
        protocol.send_continuation(b'"b"', fin=False)
        protocol.send_continuation(b"}", fin=True)
        await stream.send(b"".join(protocol.data_to_send()))
        while not got_pong.is_set():
            protocol.receive_data(await stream.receive())
            for ev in protocol.events_received():
                if isinstance(ev, Frame) and ev.opcode is Opcode.PONG and ev.data == b"hi":
                    got_pong.set()
        await anyio.sleep_forever()

    async with raw_server(handler) as url:
        ws = await connect_websocket(url)
        with anyio.fail_after(5):
            assert await ws.receive_batch() == ['{"a":"b"}']
            await got_pong.wait()
        await ws.abort()


async def test_invalid_utf8_closes_with_1007() -> None:
    async def handler(stream: anyio.abc.SocketStream, protocol: ServerProtocol) -> None:
        protocol.send_frame(Frame(Opcode.TEXT, b"\xff\xfe"))
        await stream.send(b"".join(protocol.data_to_send()))
        await anyio.sleep_forever()

    async with raw_server(handler) as url:
        ws = await connect_websocket(url)
        with anyio.fail_after(5), pytest.raises(ConnectionClosedError) as info:
            await ws.receive_batch()
        assert info.value.code == 1007
        assert ws.closed


async def test_oversized_message_closes_with_1009() -> None:
    async with echo_server() as url:
        ws = await connect_websocket(url, max_message_size=1000)
        await ws.send_text("x" * 5000)
        with anyio.fail_after(5), pytest.raises(MessageTooBigError) as info:
            await ws.receive_batch()
        assert info.value.code == 1009
        with pytest.raises(ConnectionClosedError):
            await ws.send_text("after")


async def test_close_against_a_dead_peer_is_bounded() -> None:
    async def handler(stream: anyio.abc.SocketStream, protocol: ServerProtocol) -> None:
        await stream.send(b"".join(protocol.data_to_send()))
        await anyio.sleep_forever()  # never answers the close frame

    async with raw_server(handler) as url:
        ws = await connect_websocket(url, close_timeout=2.0)
        start = anyio.current_time()
        await ws.aclose()
        assert 2.0 <= anyio.current_time() - start < 3.0
        assert ws.closed


async def test_cancelled_close_still_releases_the_socket() -> None:
    async with echo_server() as url:
        ws = await connect_websocket(url)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ws.aclose()  # shielded inside
        assert ws.closed


async def test_cancelled_write_marks_the_socket_broken() -> None:
    async def handler(stream: anyio.abc.SocketStream, protocol: ServerProtocol) -> None:
        await stream.send(b"".join(protocol.data_to_send()))
        await anyio.sleep_forever()  # never reads: the client's send buffer fills

    async with raw_server(handler) as url:
        ws = await connect_websocket(url)
        with anyio.move_on_after(5) as scope:
            while True:
                await ws.send_text("x" * 65536)
        assert scope.cancelled_caught
        assert ws.closed
        with pytest.raises(ConnectionClosedError):
            await ws.send_text("more")


async def test_bad_urls_fail_clearly() -> None:
    with pytest.raises(HandshakeError):
        await connect_websocket("http://127.0.0.1:1/")


async def test_refused_upgrade_is_a_handshake_error() -> None:
    async def handler(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        with pytest.raises(HandshakeError):
            await connect_websocket(f"ws://127.0.0.1:{port}")
        tg.cancel_scope.cancel()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@asynccontextmanager
async def tls_echo_server(ca: trustme.CA) -> AsyncIterator[int]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)

    async def handler(ws: WebSocket) -> None:
        await ws.send_text('{"event":"systemStatus","status":"online"}')
        await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve_websockets(
                handler, ssl_context=server_ctx, task_status=task_status
            )
        )
        yield port
        tg.cancel_scope.cancel()


async def test_tls_certificate_is_verified_by_default(ca: trustme.CA) -> None:
    async with tls_echo_server(ca) as port:
        with pytest.raises(HandshakeError) as info:
            await connect_websocket(f"wss://127.0.0.1:{port}")
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        # With the user's own context that trusts the CA, it connects.
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        ws = await connect_websocket(f"wss://127.0.0.1:{port}", ssl_context=client_ctx)
        with anyio.fail_after(5):
            assert await ws.receive_batch() == ['{"event":"systemStatus","status":"online"}']
        await ws.aclose()


async def test_open_kraken_over_tls_needs_a_trusting_context(ca: trustme.CA) -> None:
    async with tls_echo_server(ca) as port:
        url = f"wss://127.0.0.1:{port}"
        async with open_kraken(url) as conn:
            with pytest.raises(TimeoutError):
                with anyio.fail_after(30):
                    await conn.wait_connected()
            assert conn.stats.connect_failures >= 1
            assert conn.stats.connections == 0
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        async with open_kraken(url, ssl_context=client_ctx) as conn:
            with anyio.fail_after(30):
                await conn.wait_connected()
