"""WebSockets tokens: Kraken REST request signing and ``GetWebSocketsToken``.

:func:`sign` is pure. :func:`fetch_websockets_token` and
:class:`KrakenTokenProvider` need the optional ``httpx`` dependency
(``pip install kraky-anyio[auth]``), imported only when a token is fetched; they
run on asyncio and trio alike. No exception message or ``repr`` ever contains
the API key, the API secret or a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import AuthError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "TOKEN_PATH",
    "KrakenTokenProvider",
    "fetch_websockets_token",
    "make_nonce",
    "sign",
]

DEFAULT_BASE_URL = "https://api.kraken.com"
TOKEN_PATH = "/0/private/GetWebSocketsToken"
_REDACTED = "<redacted>"


def sign(path: str, data: Mapping[str, str] | str, nonce: int | str, secret: str) -> str:
    """Return Kraken's ``API-Sign`` header for a private REST request.

    ``base64(HMAC-SHA512(base64decode(secret), path + SHA256(nonce + postdata)))``
    where ``postdata`` is ``data`` form-urlencoded (or ``data`` itself if it is
    a ``str``: it must be the exact body sent). Raises :class:`ValueError` if
    ``secret`` is not valid base64 (the message does not show it).
    """
    postdata = data if isinstance(data, str) else urllib.parse.urlencode(data)
    try:
        key = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("the API secret is not valid base64") from None
    digest = hashlib.sha256((str(nonce) + postdata).encode()).digest()
    mac = hmac.new(key, path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


class _NonceClock:
    """Milliseconds since the epoch, strictly increasing across calls (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def __call__(self) -> int:
        with self._lock:
            self._last = max(time.time_ns() // 1_000_000, self._last + 1)
            return self._last


make_nonce: Callable[[], int] = _NonceClock()
"""The default nonce source: time in ms, bumped so that it never repeats or goes back."""


def _scrub(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _kraken_errors(payload: object) -> list[str]:
    if isinstance(payload, dict):
        errors = payload.get("error")
        if isinstance(errors, list):
            return [str(error) for error in errors]
    return []


async def fetch_websockets_token(
    api_key: str,
    api_secret: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    client: httpx.AsyncClient | None = None,
    timeout: float = 10.0,
    nonce: Callable[[], int] | None = None,
) -> str:
    """Fetch a WebSockets token with ``POST /0/private/GetWebSocketsToken``.

    Sends the form body ``nonce=N`` with the ``API-Key`` and ``API-Sign``
    headers, through ``client`` if given (it is not closed) or a new
    ``httpx.AsyncClient``. ``nonce`` defaults to :data:`make_nonce`.

    Raises :class:`AuthError` on a malformed secret, a network error or timeout,
    an HTTP error status, a reply that is not JSON or has no token, or a
    non-empty Kraken ``error`` list (whose strings, e.g. ``EAPI:Invalid key``,
    are in the message). Raises :class:`ImportError` if ``httpx`` is missing.
    """
    try:
        import httpx
    except ImportError as exc:
        raise ImportError(
            "fetching a Kraken WebSockets token needs httpx: pip install kraky-anyio[auth]"
        ) from exc

    secrets = (api_key, api_secret)
    nonce_value = (nonce or make_nonce)()
    body = urllib.parse.urlencode({"nonce": str(nonce_value)})
    try:
        signature = sign(TOKEN_PATH, body, nonce_value, api_secret)
    except ValueError as exc:
        raise AuthError(str(exc)) from None
    headers = {
        "API-Key": api_key,
        "API-Sign": signature,
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Accept": "application/json",
    }
    url = base_url.rstrip("/") + TOKEN_PATH

    async def post(http: httpx.AsyncClient) -> httpx.Response:
        return await http.post(
            url,
            content=body.encode(),
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
        )

    try:
        if client is None:
            async with httpx.AsyncClient() as own_client:
                response = await post(own_client)
        else:
            response = await post(client)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        detail = _scrub(str(exc), *secrets) or "no detail"
        raise AuthError(
            f"GetWebSocketsToken request failed: {type(exc).__name__}: {detail}"
        ) from None

    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    errors = [_scrub(error, *secrets) for error in _kraken_errors(payload)]
    if response.status_code >= 300:
        detail = f": {', '.join(errors)}" if errors else ""
        raise AuthError(f"GetWebSocketsToken failed with HTTP {response.status_code}{detail}")
    if not isinstance(payload, dict):
        raise AuthError("GetWebSocketsToken reply is not a JSON object")
    if errors:
        raise AuthError(f"GetWebSocketsToken failed: {', '.join(errors)}")
    result = payload.get("result")
    token = result.get("token") if isinstance(result, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthError("GetWebSocketsToken reply has no token")
    return token


class KrakenTokenProvider:
    """An async callable that fetches a fresh WebSockets token on every call.

    Pass it as ``open_kraken(token=provider)``: it is awaited once per new
    socket. Arguments are those of :func:`fetch_websockets_token`; the key and
    secret are checked at once (:class:`TypeError`/:class:`ValueError`) and
    never shown by ``repr``.
    """

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        nonce: Callable[[], int] | None = None,
    ) -> None:
        for name, value in (("api_key", api_key), ("api_secret", api_secret)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
            if not value:
                raise ValueError(f"{name} must not be empty")
        sign(TOKEN_PATH, "", 0, api_secret)  # ValueError now if not base64
        self._api_key = api_key
        self._api_secret = api_secret
        self.base_url = base_url
        self.client = client
        self.timeout = timeout
        self.nonce = nonce

    async def __call__(self) -> str:
        """Fetch and return a new token. Raises :class:`AuthError` on failure."""
        return await fetch_websockets_token(
            self._api_key,
            self._api_secret,
            base_url=self.base_url,
            client=self.client,
            timeout=self.timeout,
            nonce=self.nonce,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"
