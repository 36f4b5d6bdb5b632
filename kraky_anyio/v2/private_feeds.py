"""Sequence checks of the private v2 channels (``executions``, ``balances``), no I/O.

Kraken numbers each message of a private channel (``"sequence"``, from 1 on
the snapshot, per socket and channel). :class:`PrivateFeeds` checks every one
against the last of its channel (:class:`kraky_anyio.sequence.SequenceTracker`):

* in order, or the first of a channel's subscription on this socket (a
  subscription the user made again counts afresh, whether Kraken goes on
  counting or starts at 1 again): nothing to do;
* the same number again: logged, delivered, nothing else;
* a gap (messages lost) or a restart (a smaller number: the count began
  again): the local view may be wrong. The verdict gets a
  :class:`~kraky_anyio.notices.SequenceGap` notice, ahead of the message that
  showed it, ``stats.sequence_gaps`` grows, and an ``unsubscribe`` then a
  ``subscribe`` of that channel (the library's own requests, with its replay
  parameters, so ``snap_orders``/``snapshot`` bring a fresh snapshot) are
  handed to the writer. Kraken answers a second ``subscribe`` of a live
  channel with "Already subscribed", hence the unsubscribe first.

Until that subscribe is settled the channel is *resyncing*: the old feed's
tail is delivered but not judged, so it cannot start a second resync; once
settled the channel counts afresh from its next message (the new snapshot,
whatever number Kraken gives it). A rejected resubscribe is a
:class:`~kraky_anyio.notices.SubscriptionLost` (the protocol's replay rule).

A lost socket (:meth:`PrivateFeeds.reset`) forgets every count: the next socket
starts at 1 and the replay brings fresh snapshots; a resync not yet written is
dropped (the replay does its work).

Tokens: the resubscribe carries the token the subscription was given, else the
connection's token for this socket (filled in by the writer, never logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..notices import SequenceGap
from ..requests import DEFERRED_TOKEN, Request, RequestState, RequestTable, Step
from ..seam import Verdict
from ..sequence import SequenceStatus, SequenceTracker
from ..stats import Stats
from ..subscriptions import Entry, SubscriptionRegistry
from .params import subscription_params
from .private_messages import BalancesMessage, ExecutionsMessage
from .request_frames import subscription_request
from .subscriptions import SubKey, subscription_key

__all__ = ["PrivateFeeds"]

log = logging.getLogger("kraky_anyio")

_RESYNC = (SequenceStatus.GAP, SequenceStatus.RESTART)


class PrivateFeeds:
    """Sequence state of the private channels of one logical v2 connection.

    It shares the protocol's request table, subscription registry and given
    tokens (read only); its requests are built as the protocol's
    (:func:`~kraky_anyio.v2.request_frames.subscription_request`).
    """

    def __init__(
        self,
        stats: Stats,
        requests: RequestTable,
        subscriptions: SubscriptionRegistry,
        tokens: Mapping[SubKey, str],
    ) -> None:
        self._stats = stats
        self._requests = requests
        self._subscriptions = subscriptions
        self._tokens = tokens
        self.tracker = SequenceTracker()
        # channel -> the resubscribe that ends its resync
        self._resyncing: dict[str, Request] = {}
        # channel -> its live registry entries when last judged: other ones
        # mean the user subscribed again, a new count.
        self._feeds: dict[str, list[Entry]] = {}
        self._unsent: list[Request] = []

    def __repr__(self) -> str:
        return f"<PrivateFeeds {self.tracker!r} resyncing={sorted(self._resyncing)}>"

    @property
    def resyncing(self) -> frozenset[str]:
        """The channels waiting for their resubscribe to settle."""
        return frozenset(self._resyncing)

    def check(self, msg: ExecutionsMessage | BalancesMessage, verdict: Verdict) -> None:
        """Judge ``msg``'s ``sequence``; on a gap or restart add the notice to
        ``verdict.messages`` and the resubscribe to ``verdict.to_send``."""
        channel = msg.channel
        pending = self._resyncing.get(channel)
        if pending is not None:
            if not pending.done:
                return  # the old feed's tail
            del self._resyncing[channel]
            self.tracker.reset(channel)
        live = [e for e in self._subscriptions.live() if e.subscription["channel"] == channel]
        known = self._feeds.get(channel)
        if (
            known is None
            or len(known) != len(live)
            or any(a is not b for a, b in zip(known, live, strict=True))
        ):
            self._feeds[channel] = live
            self.tracker.reset(channel)
        check = self.tracker.observe(channel, msg.sequence)
        if check.status is SequenceStatus.DUPLICATE:
            log.warning("%s: sequence %d received twice", channel, msg.sequence)
            return
        if check.status not in _RESYNC:
            return
        self._stats.sequence_gaps += 1
        log.warning(
            "%s: sequence %d where %s was due: resubscribing", channel, msg.sequence, check.expected
        )
        verdict.messages.append(SequenceGap(channel, check.expected, msg.sequence, check.missing))
        requests = self._resubscribe(channel)
        if requests:
            self._resyncing[channel] = requests[-1]
            self._unsent = [r for r in self._unsent if r.state is RequestState.QUEUED]
            self._unsent.extend(requests)
            verdict.to_send.extend(requests)

    def reset(self) -> None:
        """The socket is gone: every count starts again, and a resubscribe not
        yet written is settled unsent (the next socket's replay restores it)."""
        self.tracker.reset()
        self._resyncing.clear()
        self._feeds.clear()
        for req in self._unsent:
            if req.state is RequestState.QUEUED:
                self._requests.advance(req, Step.SETTLE_LOCALLY)
        self._unsent.clear()

    def _resubscribe(self, channel: str) -> list[Request]:
        """Unsubscribe + subscribe for each live subscription of ``channel``."""
        out: list[Request] = []
        for sub, _symbols in self._subscriptions.replay_plan():
            if sub["channel"] != channel:
                continue
            token = self._tokens.get(subscription_key(sub)) or DEFERRED_TOKEN
            params = {k: v for k, v in sub.items() if k != "channel"}
            for method, wire in (
                ("unsubscribe", subscription_params(channel, token=token)),
                ("subscribe", subscription_params(channel, **params, token=token)),
            ):
                rid = self._requests.reqid(None, internal=True)
                out.append(self._requests.add(subscription_request(method, wire, rid, True)))
        return out
