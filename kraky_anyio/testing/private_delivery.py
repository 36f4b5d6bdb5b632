"""Routing the fake engine's private data to the connections of an account.

:func:`deliver_private` takes the ``openOrders`` / ``ownTrades`` updates one
request or timer of :class:`~kraky_anyio.testing.engine.FakeMatchingEngine`
caused and gives each to every v1 connection subscribed to its channel with a
token of the update's account: the requesting connection's share is returned
(to be sent after its replies), the others' are queued on their connections.
Nothing here blocks: queuing returns at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .connection import FakeKrakenConnection
from .ledger import Update
from .session import FakeKrakenSession, OutgoingMessage

__all__ = ["deliver_private"]


def _targets(
    caller: FakeKrakenSession | None, connections: Iterable[FakeKrakenConnection] | None
) -> Iterable[tuple[FakeKrakenSession, FakeKrakenConnection | None]]:
    seen_caller = False
    if connections is not None:
        for connection in connections:
            session = connection.session
            if isinstance(session, FakeKrakenSession):  # v2 trading: not yet
                seen_caller = seen_caller or session is caller
                yield session, connection
    if caller is not None and not seen_caller:
        yield caller, None


def deliver_private(
    updates: list[Update],
    now: float,
    caller: FakeKrakenSession | None,
    connections: Iterable[FakeKrakenConnection] | None,
    account_of: Callable[[str], str],
) -> list[OutgoingMessage]:
    """Queue ``updates`` to the subscribers of their account among
    ``connections`` (the bound server's live ones; None: no server, only
    ``caller`` gets data); return ``caller``'s share (to send after its
    replies). ``account_of`` maps a subscription's token to its account."""
    out: list[OutgoingMessage] = []
    if not updates:
        return out
    for session, connection in _targets(caller, connections):
        for update in updates:
            token = session.private_tokens.get(update.channel)
            if token is None or account_of(token) != update.account:
                continue
            if session is caller:
                out.extend(session.publish(update.channel, None, update.payload, now=now))
            elif connection is not None:
                connection.publish_nowait(update.channel, None, update.payload)
    return out
