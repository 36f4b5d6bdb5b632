"""The request lifecycle table (kraky_anyio.requests), without an event loop."""

from __future__ import annotations

import pytest

from kraky_anyio.requests import (
    INTERNAL_REQID_BASE,
    MAX_ORPHANS,
    TRANSITIONS,
    Request,
    RequestState,
    RequestStateError,
    RequestTable,
    Step,
)
from kraky_anyio.stats import Stats

S = RequestState


def make(table: RequestTable, reqid: int | None = None) -> Request:
    rid = table.reqid(reqid)
    return table.add(Request(rid, "ping", "pong", {"event": "ping", "reqid": rid}, 1))


def test_every_state_has_a_row_and_terminal_states_only_absorb_caller_gone() -> None:
    assert set(TRANSITIONS) == set(RequestState)
    for terminal in (S.DONE, S.ABANDONED):
        assert dict(TRANSITIONS[terminal]) == {Step.CALLER_GONE: terminal}


@pytest.mark.parametrize(
    ("path", "end"),
    [
        ([Step.SEND, Step.COMPLETE], S.DONE),
        ([Step.CALLER_GONE], S.ABANDONED),
        ([Step.SEND, Step.CALLER_GONE], S.ORPHANED),
        ([Step.SEND, Step.CALLER_GONE, Step.COMPLETE], S.DONE),
        ([Step.SEND, Step.CALLER_GONE, Step.EXPIRE], S.DONE),
        ([Step.SEND, Step.LOST], S.DONE),
        ([Step.SEND, Step.FAIL_UNSENT], S.DONE),
        ([Step.SETTLE_LOCALLY], S.DONE),
        ([Step.FAIL_UNSENT], S.DONE),
    ],
)
def test_paths_through_the_table(path: list[Step], end: RequestState) -> None:
    table = RequestTable(Stats())
    req = make(table)
    for step in path:
        table.advance(req, step)
    assert req.state is end
    in_table = end is S.ORPHANED
    assert (table.get(req.reqid) is req) is in_table


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], Step.COMPLETE),  # a reply to a request never sent
        ([], Step.LOST),
        ([], Step.EXPIRE),
        ([Step.SEND], Step.SEND),  # written twice
        ([Step.SEND], Step.SETTLE_LOCALLY),
        ([Step.SEND, Step.COMPLETE], Step.COMPLETE),
        ([Step.CALLER_GONE], Step.SEND),  # an abandoned request is never sent
    ],
)
def test_impossible_steps_raise(path: list[Step], bad: Step) -> None:
    table = RequestTable(Stats())
    req = make(table)
    for step in path:
        table.advance(req, step)
    before = req.state
    with pytest.raises(RequestStateError):
        table.advance(req, bad)
    assert req.state is before


def test_error_is_kept_when_settled() -> None:
    table = RequestTable(Stats())
    req = make(table)
    table.advance(req, Step.SEND)
    err = RuntimeError("x")
    table.advance(req, Step.LOST, err)
    with pytest.raises(RuntimeError):
        req.result()


def test_orphans_are_bounded_and_expired_replies_are_recognised() -> None:
    # Regression (11.9): timed-out requests piled up in the pending table forever.
    stats = Stats()
    table = RequestTable(stats)
    reqs = [make(table) for _ in range(MAX_ORPHANS + 5)]
    for req in reqs:
        table.advance(req, Step.SEND)
        table.advance(req, Step.CALLER_GONE)
    assert len(table) == MAX_ORPHANS
    assert stats.requests_expired == 5
    assert [r.state for r in reqs[:5]] == [S.DONE] * 5
    assert all(table.was_expired(r.reqid) for r in reqs[:5])
    assert table.take_expired() == reqs[:5]
    assert table.take_expired() == []


def test_a_user_reqid_held_by_an_orphan_is_freed() -> None:
    table = RequestTable(Stats())
    old = make(table, 7)
    table.advance(old, Step.SEND)
    with pytest.raises(ValueError, match="already pending"):
        table.reqid(7)  # somebody still waits for it
    table.advance(old, Step.CALLER_GONE)
    assert table.reqid(7) == 7
    assert old.state is S.DONE and table.get(7) is None


def test_internal_reqids_have_their_own_space() -> None:
    table = RequestTable(Stats())
    rid = table.reqid(None, internal=True)
    assert rid == INTERNAL_REQID_BASE
    assert table.reqid(None) == 1
    with pytest.raises(ValueError):
        table.reqid(INTERNAL_REQID_BASE)
