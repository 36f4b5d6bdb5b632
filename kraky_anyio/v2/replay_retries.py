"""Replayed subscribes that Kraken answered ``rate_limited``: sent again later, no I/O.

A reconnect replays every live subscription (paced, see
:data:`~kraky_anyio.v2.protocol.REPLAY_BURST`); Kraken may still answer some
of them ``{"error": "rate_limited", ...}``. That error is transient, so the
entries it names stay in the replay set and :class:`ReplayRetries` builds a
new subscribe for them (the library's own req id; a private channel's token
is the one it was given, else the socket's, filled in by the writer) that the
shell writes after a delay (:attr:`~kraky_anyio.seam.Verdict.to_send_after`):

* retry ``r`` (1, 2, ...) waits ``window * 2**(r - 1)`` seconds (1, 2, 4, 8 s
  with the default window), plus one ``window`` per ``burst`` retries already
  planned in the same batch of frames, so a whole rate-limited replay is
  not sent again in one burst. No jitter: one client's retries need none.
* at most ``attempts`` subscribes in all (the replay is the first): the last
  one rate-limited too, the entries are lost as for any rejected replay
  (``SubscriptionLost`` with ``"rate_limited N times"``).
* a retry goes out on the socket it was planned for only: the socket's loss
  cancels the shell's timer, and :meth:`ReplayRetries.reset` settles what was
  not written (the next socket's replay covers the entries, still in the
  replay set). Entries the user unsubscribed meanwhile are left out when it
  is written (:meth:`ReplayRetries.still_wanted`).

Each retry: ``stats.replay_retries`` grows by its entries, one warning logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from ..requests import DEFERRED_TOKEN, Request, RequestState, RequestTable, Step
from ..seam import Verdict
from ..stats import Stats
from ..subscriptions import Entry, SubscriptionRegistry
from .params import subscription_params
from .request_frames import subscription_request
from .subscriptions import SubKey, needs_token

__all__ = ["RATE_LIMITED", "REPLAY_ATTEMPTS", "ReplayRetries", "replay_wire"]

log = logging.getLogger("kraky_anyio")

#: Kraken's error text for a burst of subscribes/unsubscribes.
RATE_LIMITED: Final = "rate_limited"
#: Subscribes sent for a replayed entry Kraken rate-limits, the replay included.
REPLAY_ATTEMPTS: Final = 5


def replay_wire(sub: dict[str, Any], symbols: list[Any], token: str | None) -> dict[str, Any]:
    """The checked wire params restoring ``symbols`` of the stored ``sub``
    (its replay params), with ``token`` if the channel needs one."""
    params = {k: v for k, v in sub.items() if k != "channel"}
    if token is not None:
        params["token"] = token
    real = None if symbols == [None] else [s for s in symbols if s is not None]
    return subscription_params(sub["channel"], real, **params)


@dataclass(slots=True)
class _Retry:
    attempt: int  # 2 for the first retry
    request: Request
    entries: dict[Any, Entry]  # by symbol: the entries it restores, as they were


class ReplayRetries:
    """The retries of one logical v2 connection; it shares the protocol's
    request table, registry and given tokens (read only)."""

    def __init__(
        self,
        stats: Stats,
        requests: RequestTable,
        subscriptions: SubscriptionRegistry,
        tokens: dict[SubKey, str],
    ) -> None:
        self._stats = stats
        self._requests = requests
        self._subscriptions = subscriptions
        self._tokens = tokens
        self._pending: dict[int, _Retry] = {}  # by req id

    def attempt(self, req: Request) -> int:
        """Which subscribe of its entries ``req`` is: 1 for a replay."""
        retry = self._pending.get(req.reqid)
        return retry.attempt if retry is not None and retry.request is req else 1

    def schedule(
        self,
        req: Request,
        key: SubKey,
        symbols: list[Any],
        verdict: Verdict,
        pacing: tuple[int, float],
    ) -> None:
        """Add to ``verdict.to_send_after`` a subscribe of ``symbols`` (their
        entries live under ``key``), answered ``rate_limited`` in ``req``;
        ``pacing`` is the protocol's ``(burst, window)``."""
        entries = {s: e for s in symbols if (e := self._subscriptions.entry(key, s)) is not None}
        if not entries:
            return
        sub = next(iter(entries.values())).subscription
        token = (self._tokens.get(key) or DEFERRED_TOKEN) if needs_token(sub["channel"]) else None
        rid = self._requests.reqid(None, internal=True)
        retry = self._requests.add(
            subscription_request("subscribe", replay_wire(sub, list(entries), token), rid, True)
        )
        attempt = self.attempt(req) + 1
        self._pending[rid] = _Retry(attempt, retry, entries)
        burst, window = pacing
        queued = len(verdict.to_send_after)
        delay = window * 2 ** (attempt - 2) + (queued // burst * window if burst else 0.0)
        verdict.to_send_after.append((delay, retry))
        self._stats.replay_retries += len(entries)
        log.warning(
            "replay of %s %s rate-limited by Kraken: retry %d in %.2f s",
            sub["channel"],
            [s for s in entries if s is not None] or "",
            attempt - 1,
            delay,
        )

    def answered(self, req: Request) -> None:
        """``req`` got an answer; forget it once every entry has one."""
        retry = self._pending.get(req.reqid)
        if req.complete and retry is not None and retry.request is req:
            del self._pending[req.reqid]

    def still_wanted(self, req: Request) -> bool:
        """Called as the writer takes ``req``: a queued retry keeps only the
        entries still in the replay set as they were (not unsubscribed, nor
        subscribed again by the user); with none left it is settled locally
        and False is returned. True for any other request."""
        retry = self._pending.get(req.reqid)
        if retry is None or retry.request is not req or req.state is not RequestState.QUEUED:
            return True
        key = str(req.key)
        keep = [s for s, e in retry.entries.items() if self._subscriptions.entry(key, s) is e]
        if not keep:
            del self._pending[req.reqid]
            self._requests.advance(req, Step.SETTLE_LOCALLY)
            return False
        if len(keep) < len(req.parts):
            req.parts[:] = keep
            req.expected = len(keep)
            req.message["params"]["symbol"] = keep
        return True

    def reset(self) -> None:
        """The socket is gone: retries not written are settled locally (the
        next socket's replay restores their entries)."""
        for retry in self._pending.values():
            if retry.request.state is RequestState.QUEUED:
                self._requests.advance(retry.request, Step.SETTLE_LOCALLY)
        self._pending.clear()
