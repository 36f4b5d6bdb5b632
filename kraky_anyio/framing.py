"""From received bytes to messages and a close verdict, with no I/O.

:class:`Framing` sits in front of websockets' sans-I/O :class:`Protocol`.
The common server frame (final, text, unmasked, no reserved bit, within
``max_message_size``, no extension negotiated, not inside a fragmented
message) is cut out of the byte stream and UTF-8 decoded right here; every
other frame (fragments, binary, ping, pong, close, anything malformed) is fed
to the protocol whole and at its own place in the stream, so the protocol
always sees frame boundaries and its rules apply exactly as without the fast
path. Once the protocol leaves the OPEN state (a close frame, a protocol
error, 1007, 1009) every later byte goes to it.

Nothing here blocks. Memory is bounded by one partial frame of at most
``max_message_size`` bytes plus one socket read. The shell (``websocket.py``)
writes :meth:`Framing.data_to_send` (pongs, the echo of a close) and reads
:attr:`Framing.closed` to end the socket.
"""

from __future__ import annotations

from typing import Any

from websockets.exceptions import PayloadTooBig
from websockets.frames import Frame, Opcode
from websockets.protocol import SERVER, Protocol, State

from .errors import ConnectionClosedError, MessageTooBigError

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Framing", "Message"]

#: Largest message accepted by default: a full depth-1000 book snapshot is
#: about 150 KB, so 4 MiB leaves room without letting a peer exhaust memory.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024

Message = str | bytes

# FIN + opcode TEXT with no reserved bit: the only first byte the fast path takes.
_FIN_TEXT = 0x81


class Framing:
    """Split received bytes into messages for one WebSocket.

    ``fast=False`` sends every byte through websockets' protocol (the
    reference behaviour the differential test compares against); the server
    side always does, since client frames are masked.
    """

    def __init__(self, protocol: Protocol, *, fast: bool = True) -> None:
        self.protocol = protocol
        #: Set once the socket is over: the error to raise from now on.
        self.closed: ConnectionClosedError | None = None
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._bad_utf8 = False
        # Fast-path state: bytes held back (a partial frame not yet given to
        # the protocol), how many of them the protocol already has (a slow
        # frame's partial header), and bytes owed to the protocol to finish
        # the slow frame it is inside.
        self._fast = fast and protocol.side is not SERVER
        self._held: list[bytes] = []
        self._held_len = 0
        self._need = 0
        self._fed = 0
        self._owed = 0

    @property
    def at_frame_boundary(self) -> bool:
        """True when no partial frame is held here or inside the protocol."""
        return not self._held and not self._owed and not self.protocol.reader.buffer

    # -- input -------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Message]:
        """Messages completed by ``data`` (text as ``str``), in stream order.

        After it, check :attr:`closed` and write :meth:`data_to_send`.
        """
        out: list[Message] = []
        if self.closed is not None:
            return out
        if self._fast and self._usable():
            self._split(data, out)
        else:
            self._fast = False
            self._release_held()
            self._owed = 0
            self.protocol.receive_data(data)
            self._absorb(self.protocol.events_received(), out)
        self._finish(out, eof=False)
        return out

    def receive_eof(self) -> list[Message]:
        """The peer closed TCP: settle :attr:`closed`; return messages held."""
        out: list[Message] = []
        if self.closed is not None:
            return out
        if self._release_held():
            self._absorb(self.protocol.events_received(), out)
        self.protocol.receive_eof()
        self._absorb(self.protocol.events_received(), out)
        self._finish(out, eof=True)
        return out

    def data_to_send(self) -> list[bytes]:
        """Bytes the protocol wants written (pongs, close frames, EOF as b"")."""
        return self.protocol.data_to_send()

    def absorb(self, events: list[Any], out: list[Message]) -> None:
        """Take the frames among ``events`` already parsed by the protocol
        (during the handshake) into ``out``; settles 1007 at once."""
        self._absorb(events, out)
        self._finish(out, eof=False)

    # -- the fast path -----------------------------------------------------

    def _usable(self) -> bool:
        p = self.protocol
        return p.state is State.OPEN and not p.extensions and p.parser_exc is None

    def _split(self, data: bytes, out: list[Message]) -> None:
        if self._held:
            self._held.append(data)
            self._held_len += len(data)
            if self._held_len < self._need:
                return  # still not enough for the frame (or header) held back
            buf = b"".join(self._held)
            self._held, self._held_len, self._need = [], 0, 0
        else:
            buf = data
        protocol = self.protocol
        feed = protocol.receive_data
        limit = protocol.max_message_size
        n = len(buf)
        pos = 0
        if self._owed:  # the end of a slow frame begun in an earlier read
            pos = min(self._owed, n)
            feed(buf[:pos])
            self._owed -= pos
            if self._owed:
                return
            if self._slow_frame_done(out):
                self._hand_over(buf[pos:], out)
                return
        plain = protocol.current_size is None  # no fragmented message open
        append = out.append
        while pos < n:
            if n - pos < 2:
                self._hold(buf[pos:], 2)
                return
            head1 = buf[pos]
            head2 = buf[pos + 1]
            if head1 == _FIN_TEXT and head2 < 126 and plain:
                # The common frame, short and whole: nothing else to check.
                end = pos + 2 + head2
                if end <= n and (limit is None or head2 <= limit):
                    try:
                        append(buf[pos + 2 : end].decode())
                        pos = end
                        continue
                    except UnicodeDecodeError:
                        pass  # settled below, on the general path
            avail = n - pos
            length = head2 & 0x7F
            header = 2 if length < 126 else 4 if length == 126 else 10
            if head2 & 0x80:
                header += 4
            fast = head1 == _FIN_TEXT and head2 < 0x80 and plain
            if avail < header:
                if not fast:
                    # The protocol may already judge a slow frame on its
                    # first bytes (bad opcode, masking): give them now.
                    feed(buf[pos + self._fed :])
                    self._fed = avail
                self._hold(buf[pos:], header)
                return
            if length >= 126:
                length = int.from_bytes(buf[pos + 2 : pos + header], "big")
            end = pos + header + length
            if fast and (limit is None or length <= limit):
                if end > n:
                    self._hold(buf[pos:], end - pos)
                    return
                try:
                    append(buf[pos + header : end].decode())
                except UnicodeDecodeError:
                    # As websockets alone would: the rest of this read is
                    # parsed first (its pings answered), then 1007.
                    self._bad_utf8 = True
                    self._hand_over(buf[end:], out)
                    return
                pos = end
                continue
            # A slow frame: fed whole, at its own place in the stream.
            feed(buf[pos + self._fed : min(end, n)])
            self._fed = 0
            if end > n:
                self._owed = end - n
                return
            pos = end
            if self._slow_frame_done(out):
                self._hand_over(buf[pos:], out)
                return
            plain = protocol.current_size is None

    def _release_held(self) -> bool:
        """Give the protocol the bytes held back (the fast path is ending)."""
        if not self._held:
            return False
        held = b"".join(self._held)
        self._held, self._held_len, self._need = [], 0, 0
        self.protocol.receive_data(held[self._fed :])
        self._fed = 0
        return True

    def _hold(self, rest: bytes, need: int) -> None:
        self._held = [rest]
        self._held_len = len(rest)
        self._need = need

    def _slow_frame_done(self, out: list[Message]) -> bool:
        """Absorb the protocol's events; True if the fast path must stop."""
        self._absorb(self.protocol.events_received(), out)
        return self._bad_utf8 or not self._usable()

    def _hand_over(self, rest: bytes, out: list[Message]) -> None:
        """From here on the protocol gets every byte. Frames after a bad
        UTF-8 message are parsed (pings answered) but not delivered."""
        self._fast = False
        if rest:
            self.protocol.receive_data(rest)
        events = self.protocol.events_received()
        if not self._bad_utf8:
            self._absorb(events, out)

    # -- frames from the protocol -----------------------------------------

    def _absorb(self, events: list[Any], out: list[Message]) -> None:
        if self._bad_utf8:
            return
        for event in events:
            if not isinstance(event, Frame):
                continue
            try:
                self._on_frame(event, out)
            except UnicodeDecodeError:
                self._bad_utf8 = True
                return

    def _on_frame(self, frame: Frame, out: list[Message]) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                data = bytes(frame.data)
                out.append(data.decode() if opcode is Opcode.TEXT else data)
            else:
                self._fragment_opcode = opcode
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(self._fragments)
                text = self._fragment_opcode is Opcode.TEXT
                self._fragments = []
                out.append(data.decode() if text else data)
        # PING is answered by the protocol itself; PONG and CLOSE need nothing here.

    # -- the verdict -------------------------------------------------------

    def _finish(self, out: list[Message], *, eof: bool) -> None:
        """Settle :attr:`closed` after a read, exactly as websockets reports it."""
        protocol = self.protocol
        exc = protocol.parser_exc
        if self._bad_utf8:
            if protocol.state is State.OPEN:
                protocol.fail(1007, "invalid UTF-8 in a text message")
            self._fast = False
            self.closed = ConnectionClosedError(
                "the peer sent invalid UTF-8 in a text message (closed with 1007)",
                code=1007,
                reason="invalid UTF-8",
            )
        elif isinstance(exc, PayloadTooBig):
            self.closed = MessageTooBigError(
                f"message over the size limit (closed with 1009): {exc}",
                code=1009,
                reason="message too big",
            )
        elif (
            protocol.close_rcvd is not None
            or protocol.state is State.CLOSED
            or eof
            or exc is not None
        ):
            rcvd = protocol.close_rcvd
            code = None if rcvd is None else int(rcvd.code)
            reason = "" if rcvd is None else rcvd.reason
            detail = f"code {code}" if code is not None else "no close frame"
            if exc is not None and not isinstance(exc, EOFError):
                detail += f", protocol error: {exc}"
            self.closed = ConnectionClosedError(
                f"the WebSocket was closed ({detail})", code=code, reason=reason
            )
