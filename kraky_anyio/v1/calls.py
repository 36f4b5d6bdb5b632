"""Building v1 requests and registering them: the methods of
:class:`~kraky_anyio.v1.protocol.KrakenProtocol` that public calls start with.

Each returns a registered :class:`~kraky_anyio.requests.Request` (or one
already settled, for an unsubscribe with nothing to send); bad arguments raise
``TypeError``/``ValueError`` before anything is registered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..requests import Request, RequestTable, Step
from ..trading import ORDER_REPLY_EVENTS
from . import builders
from .subscriptions import SubKey, SubscriptionRegistry, is_private, normalise, subscription_key

__all__ = ["RequestBuilding"]


class RequestBuilding:
    """Mixed into ``KrakenProtocol`` (which owns these attributes)."""

    requests: RequestTable
    subscriptions: SubscriptionRegistry
    _sub_tokens: dict[SubKey, str]

    def _rollback(self, req: Request) -> None:
        raise NotImplementedError

    # -- building requests -------------------------------------------------

    def _reqid(self, reqid: int | None) -> int:
        rid = self.requests.reqid(reqid)
        for expired in self.requests.take_expired():
            self._rollback(expired)
        return rid

    def _key(self, reqid: int | None, send_reqid: bool) -> int:
        """The reqid, or for a frame sent without one its key in the table
        (taken from the library's own space: it never meets a user's reqid)."""
        if send_reqid:
            return self._reqid(reqid)
        if reqid is not None:
            raise ValueError(f"reqid={reqid!r} with send_reqid=False: pass one or the other")
        return self.requests.reqid(None, internal=True)

    def ping(self, reqid: int | None = None, *, send_reqid: bool = True) -> Request:
        """A user's ping; not ``send_reqid``: without a reqid (``reqid`` must be None)."""
        rid = self._key(reqid, send_reqid)
        return self.requests.add(builders.ping_request(rid, numbered=send_reqid))

    def liveness_ping(self) -> Request:
        rid = self.requests.reqid(None, internal=True)
        return self.requests.add(builders.ping_request(rid, internal=True))

    def subscribe(
        self,
        subscription: Mapping[str, Any],
        pair: str | Iterable[str] | None = None,
        reqid: int | None = None,
        *,
        token: str | None = None,
        default_token: str | None = None,
        send_reqid: bool = True,
    ) -> Request:
        """Build a subscribe; the entries become pending in the registry.
        A private channel's token: ``token``, else the subscription's own,
        else ``default_token`` (the connection's, maybe deferred). Not
        ``send_reqid``: the frame goes out without a reqid (``reqid`` must be
        None) and its replies are matched by channel and pair."""
        sub, pairs = builders.check_subscription_args(subscription, pair)
        tok = token if token is not None else sub.get("token") or default_token
        rid = self._key(reqid, send_reqid)
        req = builders.subscription_request("subscribe", sub, pairs, rid, tok, numbered=send_reqid)
        if is_private(sub) and isinstance(sub.get("token"), str):
            self._sub_tokens[subscription_key(sub)] = sub["token"]
        self.subscriptions.subscribe_sent(subscription_key(sub), normalise(sub), req.parts)
        return self.requests.add(req)

    def unsubscribe(
        self,
        subscription: Mapping[str, Any],
        pair: str | Iterable[str] | None = None,
        reqid: int | None = None,
        *,
        token: str | None = None,
        default_token: str | None = None,
        connected: bool = True,
        bound_generation: int | None = None,
        send_reqid: bool = True,
    ) -> Request:
        """Build an unsubscribe; the entries leave the replay set at once.

        Not ``connected``: the request comes back already settled (nothing to
        send) unless a subscribe of one of its entries is still queued for the
        next socket, in which case it follows that subscribe. A
        ``bound_generation`` is the only socket it may go out on (else it is
        settled locally: that socket's loss met its goal). ``send_reqid``:
        as for :meth:`subscribe`."""
        sub, pairs = builders.check_subscription_args(subscription, pair)
        key = subscription_key(sub)
        targets: list[str | None] = list(pairs) if pairs is not None else [None]
        local = not connected and not any(
            (e := self.subscriptions.entry(key, p)) is not None and e.in_flight > 0 for p in targets
        )
        tok = token if token is not None else sub.get("token") or default_token
        if local and is_private(sub) and not tok:
            tok = builders.DEFERRED_TOKEN  # never sent: settled below
        rid = self._key(reqid, send_reqid)
        req = builders.subscription_request(
            "unsubscribe", sub, pairs, rid, tok, numbered=send_reqid
        )
        req.bound_generation = bound_generation
        self.subscriptions.unsubscribe(key, targets)
        self._sub_tokens.pop(key, None)
        if local:
            req.replies.clear()
            self.requests.advance(req, Step.SETTLE_LOCALLY)
            return req
        return self.requests.add(req)

    def unsubscribe_locally(
        self, subscription: Mapping[str, Any], pair: str | Iterable[str] | None = None
    ) -> bool:
        """Unsubscribe while no socket is open. True if that settled it; False
        if a subscribe of one of these entries is still queued (then build the
        unsubscribe with :meth:`unsubscribe`, to go out after it)."""
        sub = builders.check_subscription(subscription)
        pairs = builders.normalise_pairs(pair)
        key = subscription_key(sub)
        targets: list[str | None] = list(pairs) if pairs is not None else [None]
        for p in targets:
            entry = self.subscriptions.entry(key, p)
            if entry is not None and entry.in_flight > 0:
                return False
        self.subscriptions.unsubscribe(key, targets)
        return True

    def order(self, message: Mapping[str, Any], expected: int, reqid: int | None = None) -> Request:
        """Register an order request built by :mod:`kraky_anyio.trading`."""
        event = message.get("event")
        if not isinstance(event, str) or event not in ORDER_REPLY_EVENTS:
            raise ValueError(f"not an order event: {event!r}")
        return self.requests.add(builders.order_request(message, expected, self._reqid(reqid)))

    def raw(self, message: Mapping[str, Any], reqid: int | None = None) -> Request:
        """Any v1 event with a reqid; settled by the first reply carrying it."""
        event = builders.check_raw(message)
        reply = ORDER_REPLY_EVENTS.get(event, "pong" if event == "ping" else "")
        rid = self._reqid(message.get("reqid", reqid))
        msg = {**message, "reqid": rid}
        req = Request(rid, event, reply, msg, 1, token_slot=builders.token_slot_of(msg))
        return self.requests.add(req)
