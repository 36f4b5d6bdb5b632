"""Model-based test of the subscription registry and replay, without I/O.

The client's sans-I/O protocol (KrakenProtocol) talks to the fake exchange's
sans-I/O session (FakeKrakenSession) through plain function calls, so
hypothesis can explore thousands of interleavings of subscribe, unsubscribe,
rejection, drops with replies in flight, refusals and reconnects. After every
step: what the server has live equals exactly what the user asked for and the
server accepted, no request is answered twice, and nothing is left pending.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kraky_anyio.errors import KrakenError, ReplyLostError
from kraky_anyio.notices import Notice, SubscriptionLost
from kraky_anyio.protocol import KrakenProtocol, PendingRequest, RequestState
from kraky_anyio.seam import SendAction
from kraky_anyio.subscriptions import channel_name
from kraky_anyio.testing.session import FakeKrakenSession

PAIRS = ["XBT/USD", "ETH/USD", "XBT/EUR"]
SUBS: list[dict[str, Any]] = [
    {"name": "ticker"},
    {"name": "trade"},
    {"name": "book", "depth": 10},
    {"name": "book", "depth": 25},
    {"name": "spread"},
]

Key = tuple[str, str]


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.protocol = KrakenProtocol()
        self.generation = 1
        self.session: FakeKrakenSession | None = self._new_session(set(PAIRS))
        self.expected: set[Key] = set()
        self.answers: dict[int, int] = {}
        self.queued: list[PendingRequest] = []
        self.now = 0.0

    # -- plumbing ---------------------------------------------------------------

    def _new_session(self, pairs: set[str]) -> FakeKrakenSession:
        return FakeKrakenSession(pairs=pairs, first_channel_id=1000 * self.generation)

    def _deliver(self, messages: list[Any]) -> list[Any]:
        """Feed the protocol; returns the notices its verdict produced."""
        for msg in messages:
            if isinstance(msg, dict) and "reqid" in msg:
                self.answers[msg["reqid"]] = self.answers.get(msg["reqid"], 0) + 1
        verdict = self.protocol.receive_frames([json.dumps(m) for m in messages])
        return [m for m in verdict.messages if isinstance(m, Notice)]

    def _send(self, req: PendingRequest) -> list[Any]:
        """What the shell's writer does: ask the protocol, then write."""
        assert self.session is not None
        action = self.protocol.next_to_send(req, self.generation)
        if action is not SendAction.SEND:
            assert action is SendAction.SETTLED
            return []
        self.protocol.sending(req, self.generation)
        return self.session.on_text(self.protocol.frame(req), self.now)

    def _accepted(self, req: PendingRequest) -> set[Key]:
        return {
            (r["channelName"], r["pair"])
            for r in req.replies
            if r.get("status") in ("subscribed", "unsubscribed") and "pair" in r
        }

    # -- rules ----------------------------------------------------------------------

    @precondition(lambda self: self.session is not None)
    @rule(
        sub=st.sampled_from(SUBS), pairs=st.lists(st.sampled_from(PAIRS), min_size=1, unique=True)
    )
    def subscribe(self, sub: dict[str, Any], pairs: list[str]) -> None:
        req = self.protocol.subscribe(sub, pairs)
        self._deliver(self._send(req))
        assert req.done
        try:
            req.result()
        except KrakenError as exc:
            assert exc.replies
        accepted = self._accepted(req)
        self.expected |= accepted
        # Each pair answered exactly once.
        assert sorted(r.get("pair") for r in req.replies) == sorted(pairs)

    @precondition(lambda self: self.session is not None)
    @rule(
        sub=st.sampled_from(SUBS), pairs=st.lists(st.sampled_from(PAIRS), min_size=1, unique=True)
    )
    def unsubscribe(self, sub: dict[str, Any], pairs: list[str]) -> None:
        req = self.protocol.unsubscribe(sub, pairs, bound_generation=self.generation)
        assert not req.done
        self._deliver(self._send(req))
        assert req.done
        name = channel_name(sub)
        self.expected -= {(name, p) for p in pairs}

    @precondition(lambda self: self.session is None)
    @rule(
        sub=st.sampled_from(SUBS), pairs=st.lists(st.sampled_from(PAIRS), min_size=1, unique=True)
    )
    def unsubscribe_while_disconnected(self, sub: dict[str, Any], pairs: list[str]) -> None:
        req = self.protocol.unsubscribe(sub, pairs, connected=False)
        if not req.done:
            # A subscribe of these entries is queued: the unsubscribe follows it.
            self.queued.append(req)
        name = channel_name(sub)
        self.expected -= {(name, p) for p in pairs}

    @precondition(lambda self: self.session is not None)
    @rule(
        sub=st.sampled_from(SUBS),
        pairs=st.lists(st.sampled_from(PAIRS), min_size=1, unique=True),
        server_saw_it=st.booleans(),
        replies_delivered=st.integers(0, 3),
    )
    def subscribe_then_drop(
        self, sub: dict[str, Any], pairs: list[str], server_saw_it: bool, replies_delivered: int
    ) -> None:
        """The socket drops with the subscribe in flight: some or no replies arrive."""
        req = self.protocol.subscribe(sub, pairs)
        if server_saw_it:
            out = self._send(req)
            self._deliver(out[:replies_delivered])
        else:
            self.protocol.sending(req, self.generation)
        complete = req.done
        self.drop()
        # Pairs whose acceptance arrived before the drop are live (replayed on
        # the next socket); the others lost their reply and are not.
        self.expected |= self._accepted(req)
        if not complete:
            assert isinstance(req.error, ReplyLostError)
            assert req.error.replies == req.replies

    @precondition(lambda self: self.session is None)
    @rule(
        sub=st.sampled_from(SUBS), pairs=st.lists(st.sampled_from(PAIRS), min_size=1, unique=True)
    )
    def subscribe_while_disconnected(self, sub: dict[str, Any], pairs: list[str]) -> None:
        """Queued for the writer: it goes out on the next socket, after the replay."""
        self.queued.append(self.protocol.subscribe(sub, pairs))

    @precondition(lambda self: self.session is not None)
    @rule()
    def drop(self) -> None:
        self.protocol.connection_lost(self.generation)
        self.session = None
        self.generation += 1

    @precondition(lambda self: self.session is None)
    @rule(rejected=st.sets(st.sampled_from(PAIRS), max_size=1))
    def reconnect(self, rejected: set[str]) -> None:
        """A new socket; the server may now reject some pairs (replay fails)."""
        self.session = self._new_session(set(PAIRS) - rejected)
        self.session.on_open(self.now)
        plan = self.protocol.replay(token=None)
        lost = list(plan.notices)
        for req in plan.requests:
            assert req.event == "subscribe" and req.replay
            lost += self._deliver(self._send(req))
            assert req.done
        self.expected = {k for k in self.expected if k[1] not in rejected}
        assert all(isinstance(n, SubscriptionLost) for n in lost)
        assert {n.pair for n in lost} <= rejected
        queued, self.queued = self.queued, []
        for req in queued:
            self._deliver(self._send(req))
            assert req.done
            if req.event == "subscribe":
                self.expected |= self._accepted(req)
            else:
                self.expected -= self._accepted(req)

    # -- invariants -------------------------------------------------------------

    @invariant()
    def server_has_exactly_what_was_asked_and_accepted(self) -> None:
        live = {(channel_name(e.subscription), e.pair) for e in self.protocol.subscriptions.live()}
        assert live == self.expected
        if self.session is not None:
            assert set(self.session.subscriptions) == self.expected

    @invariant()
    def nothing_pending_and_nothing_answered_twice(self) -> None:
        assert [r for r in self.protocol.pending() if r.state is RequestState.SENT] == []
        for reqid, count in self.answers.items():
            # One reply per pair at most: three pairs is the most a request names.
            assert count <= len(PAIRS), (reqid, count)


# MODEL_EXAMPLES=2000 for a longer hunt than CI's.
RegistryMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("MODEL_EXAMPLES", "150")),
    stateful_step_count=40,
    deadline=None,
)
test_registry_and_replay_model = RegistryMachine.TestCase
