"""Matching Kraken v1 replies sent without a ``reqid`` to their requests.

A subscribe or unsubscribe written without a ``reqid`` gets a
``subscriptionStatus`` without one, a ping a ``pong`` without one; Kraken
answers such requests in the order they were written.
:class:`UnnumberedRequests` remembers them in that order and finds the request
a reply answers: a pong, the first ping; a status, by its status, channel and
pair. Pure
bookkeeping for :class:`~kraky_anyio.v1.protocol.KrakenProtocol`: nothing here
blocks, sends or raises.
"""

from __future__ import annotations

from typing import Any

from ..requests import Request, RequestState
from .subscriptions import channel_name

__all__ = ["UnnumberedRequests"]

#: Which request events a ``subscriptionStatus`` status can answer.
_STATUS_EVENTS: dict[str, frozenset[str]] = {
    "subscribed": frozenset({"subscribe"}),
    "unsubscribed": frozenset({"unsubscribe"}),
    "error": frozenset({"subscribe", "unsubscribe"}),
}


def _reply_channel(msg: dict[str, Any]) -> str | None:
    """The channel a ``subscriptionStatus`` is about: its ``channelName``, or
    (error replies carry none) the one its ``subscription`` echo names."""
    name = msg.get("channelName")
    if isinstance(name, str):
        return name
    sub = msg.get("subscription")
    if isinstance(sub, dict) and isinstance(sub.get("name"), str) and sub["name"]:
        return channel_name(sub)
    return None


class UnnumberedRequests:
    """Requests written without a reqid, in the order they were written."""

    def __init__(self) -> None:
        self._requests: dict[int, Request] = {}

    def written(self, request: Request) -> None:
        """``request`` was written without a reqid (settled ones are dropped)."""
        self.in_flight()
        self._requests[request.reqid] = request

    def in_flight(self) -> list[Request]:
        """The requests written without a reqid still waiting for replies
        (settled and expired ones are dropped here)."""
        live = (RequestState.SENT, RequestState.ORPHANED)
        for key, req in list(self._requests.items()):
            if req.state not in live:
                del self._requests[key]
        return list(self._requests.values())

    def match(self, msg: dict[str, Any]) -> Request | None:
        """The request a reply without reqid answers. A ``pong``: the first
        ping written without a reqid. A ``subscriptionStatus``: the first
        request written without a reqid, on the reply's channel, with the
        reply's pair still open, whose event fits the status (``subscribed``:
        a subscribe; ``unsubscribed``: an unsubscribe; ``error``: either)."""
        if msg.get("event") == "pong":
            return next((r for r in self.in_flight() if r.event == "ping"), None)
        status = msg.get("status")
        events = _STATUS_EVENTS.get(status) if isinstance(status, str) else None
        channel = _reply_channel(msg)
        if not events or channel is None:
            return None
        pair = msg.get("pair")
        for req in self.in_flight():
            if req.event not in events or req.key is None:
                continue
            sub = req.message.get("subscription")
            if not isinstance(sub, dict) or channel_name(sub) != channel:
                continue
            open_parts = [p for p in req.parts if p not in req.answered]
            if (pair in open_parts) if isinstance(pair, str) else open_parts:
                return req
        return None
