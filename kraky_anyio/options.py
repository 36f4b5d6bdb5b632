"""Connection options, in one place: a frozen, validated dataclass.

``open_kraken(url, **options)`` builds :class:`ConnectionOptions` on entry, so
a bad option raises ``TypeError``/``ValueError`` there, before any task starts
(never later as a retried "internal error"). The CLI and the fake exchange use
:func:`check_url` / :func:`resolve_url` for the same rules.
"""

from __future__ import annotations

import math
import os
import random
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from .backoff import ReconnectPolicy
from .fanout import Overflow
from .recording.options import RecordOptions
from .transport import DEFAULT_MAX_MESSAGE_SIZE
from .v1.codec import ENVIRONMENTS

__all__ = ["ConnectionOptions", "TokenProvider", "check_url", "resolve_url"]

TokenProvider: TypeAlias = Callable[[], Awaitable[str]]


def check_url(url: object) -> str:
    """``url`` if it is a usable ``ws://``/``wss://`` URL, else ``TypeError``/
    ``ValueError`` saying what is wrong (no host, a port that is not a number
    in 1..65535, another scheme)."""
    if not isinstance(url, str):
        raise TypeError(f"the URL must be a str, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid WebSocket URL {url!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL (ws:// or wss://): {url!r}")
    if not parts.hostname:
        raise ValueError(f"the WebSocket URL has no host: {url!r}")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port out of range 1..65535 in {url!r}")
    if any(c.isspace() for c in url):
        raise ValueError(f"whitespace in the WebSocket URL {url!r}")
    return url


def resolve_url(connection_env: object, environments: Mapping[str, str] = ENVIRONMENTS) -> str:
    """Map an environment name to its URL (v1's by default; a v2 entry point
    passes its own ``environments``); any other string must be a valid
    ``ws://``/``wss://`` URL (see :func:`check_url`)."""
    if not isinstance(connection_env, str) or not connection_env:
        raise TypeError("connection_env must be an environment name or a ws:// / wss:// URL")
    if connection_env in environments:
        return environments[connection_env]
    if not connection_env.startswith(("ws://", "wss://")):
        raise ValueError(
            f"unknown environment {connection_env!r}: use one of "
            f"{', '.join(environments)} or a ws:// / wss:// URL"
        )
    return check_url(connection_env)


def _seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be > 0 and finite, got {value!r}")


def _count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class ConnectionOptions:
    """Everything ``open_kraken`` accepts besides the URL (see its docstring).

    Times are seconds. ``token`` is a str or an async callable returning one
    (never shown in ``repr``). ``send_timeout`` bounds each write to a socket
    (the send lock's wait included; past it the socket is dropped).
    ``send_buffer`` bounds the requests queued for the writer;
    ``buffer_size``/``overflow`` are each consumer's defaults. ``record``:
    record the whole connection, from the first socket, to this path (or
    :class:`~kraky_anyio.recording.RecordOptions`); see ``conn.record()``.
    """

    token: str | TokenProvider | None = field(default=None, repr=False)
    ssl_context: ssl.SSLContext | None = None
    reconnect: bool = True
    reconnect_policy: ReconnectPolicy | None = None
    reply_timeout: float = 10.0
    idle_timeout: float = 5.0
    ping_timeout: float = 5.0
    connect_timeout: float = 10.0
    close_timeout: float = 2.0
    send_timeout: float = 10.0
    buffer_size: int = 1000
    overflow: Overflow | str = "block"
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    send_buffer: int = 100
    rng: random.Random | None = None
    record: str | os.PathLike[str] | RecordOptions | None = None

    def __post_init__(self) -> None:
        token = self.token
        if token is not None and not isinstance(token, str) and not callable(token):
            raise TypeError("token must be a str or an async callable returning one")
        if isinstance(token, str) and not token:
            raise ValueError("token must not be empty (pass None for no token)")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise TypeError("ssl_context must be an ssl.SSLContext")
        if not isinstance(self.reconnect, bool):
            raise TypeError("reconnect must be True or False")
        policy = self.reconnect_policy
        if policy is not None and not isinstance(policy, ReconnectPolicy):
            raise TypeError("reconnect_policy must be a ReconnectPolicy")
        for name in ("reply_timeout", "idle_timeout", "ping_timeout", "connect_timeout"):
            _seconds(name, getattr(self, name))
        _seconds("close_timeout", self.close_timeout)
        _seconds("send_timeout", self.send_timeout)
        _count("buffer_size", self.buffer_size, 1)
        _count("send_buffer", self.send_buffer, 0)
        if self.max_message_size is not None:
            _count("max_message_size", self.max_message_size, 1)
        if not isinstance(self.overflow, str):
            raise TypeError("overflow must be 'block' or 'fail'")
        object.__setattr__(self, "overflow", Overflow(self.overflow))  # ValueError if unknown
        if self.rng is not None and not isinstance(self.rng, random.Random):
            raise TypeError("rng must be a random.Random")
        if self.record is not None:
            object.__setattr__(self, "record", RecordOptions.make(self.record, {}))

    @classmethod
    def names(cls) -> frozenset[str]:
        """Every option name (for tools that pass options through)."""
        return frozenset(f.name for f in fields(cls))

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> ConnectionOptions:
        """Build from keyword arguments; an unknown name is a ``TypeError``."""
        unknown = sorted(set(options) - cls.names())
        if unknown:
            raise TypeError(f"unknown option(s) for open_kraken: {', '.join(unknown)}")
        return cls(**options)
