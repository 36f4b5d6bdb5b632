"""The connection's token: a fixed string, or one fetched per socket.

Kraken wants a WebSockets token used within 15 minutes of its creation, so a
provider (an async callable) is asked once per new socket that needs one, and
that token is reused for everything sent on the socket.

Errors, one rule: a :class:`~kraky_anyio.errors.KrakyError` raised by the
provider (e.g. :class:`~kraky_anyio.auth.KrakenTokenProvider`'s ``AuthError``)
comes out as itself; any other exception, a hang past ``timeout``, or a result
that is not a non-empty ``str`` becomes :class:`~kraky_anyio.errors.AuthError`
naming only the exception type (a provider's message may hold secrets; for
the same reason the original is not chained).
"""

from __future__ import annotations

import anyio

from .errors import AuthError, KrakyError
from .options import TokenProvider
from .requests import DEFERRED_TOKEN

__all__ = ["SocketTokens"]


class SocketTokens:
    """The token source of one connection, cached per socket generation."""

    def __init__(self, token: str | TokenProvider | None, timeout: float) -> None:
        self._token = token
        self._timeout = timeout
        self._cached: tuple[int, str] | None = None

    def __repr__(self) -> str:
        kind = (
            "none"
            if self._token is None
            else "fixed"
            if isinstance(self._token, str)
            else "provider"
        )
        return f"<SocketTokens {kind}>"

    @property
    def configured(self) -> bool:
        return self._token is not None

    def default(self) -> str | None:
        """What a request built now carries: the fixed token, a placeholder the
        writer fills in per socket (provider), or None (no token)."""
        if self._token is None or isinstance(self._token, str):
            return self._token
        return DEFERRED_TOKEN

    async def for_socket(self, generation: int) -> str:
        """The token for socket ``generation`` (fetched at most once per socket).
        Raises ``ValueError`` without a token, ``AuthError`` as described above."""
        if self._token is None:
            raise ValueError("this call needs a token: pass token= to open_kraken")
        if isinstance(self._token, str):
            return self._token
        if self._cached is not None and self._cached[0] == generation:
            return self._cached[1]
        try:
            with anyio.fail_after(self._timeout):
                token = await self._token()
        except KrakyError:
            raise
        except Exception as exc:
            # Not chained: a traceback would show the provider's message.
            raise AuthError(f"the token provider failed ({type(exc).__name__})") from None
        if not isinstance(token, str) or not token:
            raise AuthError(
                f"the token provider returned {type(token).__name__}, not a non-empty str"
            )
        self._cached = (generation, token)
        return token
