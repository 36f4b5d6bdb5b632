"""What the v1 and v2 fake sessions share, without I/O: options, the
heartbeat rule, stalling, rate limiting, tokens and the frame-handling skeleton.

:class:`FakeSessionBase` decodes a client frame, records it, counts it, and
then either drops it (stalled), refuses it (rate-limited) or hands it to the
version's ``_dispatch``; every method returns the messages to send and
assumes they are sent at the ``now`` it was given. The version subclasses
(:class:`~kraky_anyio.testing.session.FakeKrakenSession`,
:class:`~kraky_anyio.testing.v2_session.FakeKrakenV2Session`) say what their
messages look like.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, ClassVar

from .options import FakeKrakenOptions, check_status, make_options
from .v1_messages import ERR_INVALID_SESSION, ERR_INVALID_TOKEN

__all__ = ["UNDECODABLE", "FakeSessionBase"]

#: What ``_dispatch`` gets for a frame that is not JSON.
UNDECODABLE: Any = object()


class FakeSessionBase:
    """The shared part of a fake session (see the module docstring).

    Attributes: ``options``, ``connection_id``, ``status`` (changed by
    :meth:`set_status`), ``revoked_tokens``, ``stalled`` (a hung app: frames
    are recorded but nothing is answered, published or heart-beaten),
    ``received`` (every client frame that decoded as JSON),
    ``counters`` (per request kind, and ``"malformed"``, ``"rate_limited"``,
    ``"stalled"``, ``"heartbeat"``, ``"published"``).
    """

    #: Which protocol the session speaks: ``"v1"`` or ``"v2"``.
    api: ClassVar[str]
    #: The request field that names its kind (``event`` in v1, ``method`` in v2).
    request_key: ClassVar[str]
    #: How JSON numbers with a fraction are decoded (v2: ``Decimal``, keeping their digits).
    float_type: ClassVar[type[Any]] = float

    def __init__(
        self,
        options: FakeKrakenOptions | None,
        changes: dict[str, Any],
        *,
        connection_id: int,
        revoked_tokens: set[str] | None,
    ) -> None:
        self.options = make_options(options, changes)
        self.connection_id = connection_id
        self.status = self.options.status
        # The very set is kept, so a server can share one set with all its sessions.
        self.revoked_tokens: set[str] = set() if revoked_tokens is None else revoked_tokens
        self.stalled = False
        self.received: list[Any] = []
        self.counters: Counter[str] = Counter()
        self._rate_limited = 0
        self._last_sent: float | None = None

    # -- what a version provides ---------------------------------------------

    @property
    def subscriptions(self) -> frozenset[tuple[str, str | None]]:
        """The live subscriptions as ``(channel, pair or symbol)``."""
        raise NotImplementedError

    def _status_message(self) -> Any:
        raise NotImplementedError

    def _heartbeat_message(self) -> Any:
        raise NotImplementedError

    def _rate_limited_reply(self, request: Any, now: float) -> Any:
        raise NotImplementedError

    def _dispatch(self, request: Any, now: float) -> list[Any]:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------

    def rate_limit(self, n: int) -> None:
        """Answer the next ``n`` client frames (whatever they are) with a
        rate-limit error instead of processing them; ``rate_limit(0)``
        cancels what is left. Raises ``ValueError`` for ``n < 0``."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._rate_limited = n

    def note_sent(self, now: float) -> None:
        """Record that the caller sent something else (raw frames) at ``now``:
        heartbeats only fill silence."""
        self._last_sent = now

    def _sent(self, messages: list[Any], now: float | None) -> list[Any]:
        if messages and now is not None:
            self._last_sent = now
        return messages

    def on_open(self, now: float) -> list[Any]:
        """The greeting: one status message (nothing while stalled)."""
        return [] if self.stalled else self._sent([self._status_message()], now)

    def set_status(self, status: str, now: float) -> list[Any]:
        """Change the system status; returns the status message to send
        (nothing while stalled, though the status still changes). Raises
        ``ValueError`` for a status Kraken does not use."""
        self.status = check_status(status)
        return [] if self.stalled else self._sent([self._status_message()], now)

    def heartbeat_due(self) -> float | None:
        """When :meth:`tick` will next produce a heartbeat if nothing else is
        sent first, or ``None`` while there is no subscription (or stalled)."""
        if self.stalled or self._last_sent is None or not self.subscriptions:
            return None
        return self._last_sent + self.options.heartbeat_interval

    def tick(self, now: float) -> list[Any]:
        """One heartbeat once ``heartbeat_interval`` seconds have passed with
        nothing sent, while at least one subscription is live."""
        due = self.heartbeat_due()
        if due is None or now < due:
            return []
        self.counters["heartbeat"] += 1
        return self._sent([self._heartbeat_message()], now)

    def token_error(self, token: object) -> str | None:
        """``None`` if ``token`` is acceptable, else Kraken's error text:
        ``"EGeneral:Invalid arguments:token"`` when missing or empty,
        ``"ESession:Invalid session"`` when not among ``valid_tokens`` or
        among ``revoked_tokens``. For order handlers too."""
        if not isinstance(token, str) or not token:
            return ERR_INVALID_TOKEN
        valid = self.options.valid_tokens
        if (valid is not None and token not in valid) or token in self.revoked_tokens:
            return ERR_INVALID_SESSION
        return None

    def on_text(self, text: str | bytes, now: float) -> list[Any]:
        """Decode and answer one client frame (a binary frame is decoded the
        same way, as UTF-8 JSON)."""
        try:
            request = json.loads(text, parse_float=self.float_type)
        except (ValueError, RecursionError):
            request = UNDECODABLE
        else:
            self.received.append(request)
            if isinstance(request, dict) and isinstance(request.get(self.request_key), str):
                self.counters[request[self.request_key]] += 1
        if self.stalled:
            self.counters["stalled"] += 1
            return []
        if self._rate_limited:
            self._rate_limited -= 1
            self.counters["rate_limited"] += 1
            return self._sent([self._rate_limited_reply(request, now)], now)
        return self._sent(self._dispatch(request, now), now)
