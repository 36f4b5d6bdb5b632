"""A task group whose body's exception comes out as itself.

anyio (like trio) wraps whatever the body of ``async with create_task_group()``
raises in an ``ExceptionGroup``. Our internal tasks never raise (they turn
failures into a documented error of their own), so a group can only hold the
body's exception: give it back unwrapped, so users can ``except`` it.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


def _sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception worth raising from ``group``, or None if there are
    several. Cancellations beside a real error are dropped: anyio and trio
    re-deliver a cancellation at the next checkpoint, so none is lost."""
    if len(group.exceptions) == 1:
        return group.exceptions[0]
    cancelled = anyio.get_cancelled_exc_class()
    errors = [e for e in group.exceptions if not isinstance(e, cancelled)]
    return errors[0] if len(errors) == 1 else None


def _copy_of(exc: BaseException, body_exc: BaseException | None) -> bool:
    return (
        isinstance(body_exc, BaseExceptionGroup)
        and exc is not body_exc
        and type(exc) is type(body_exc)
        and isinstance(exc, BaseExceptionGroup)
        and exc.message == body_exc.message
    )


@asynccontextmanager
async def task_group() -> AsyncIterator[anyio.abc.TaskGroup]:
    """``anyio.create_task_group()`` that re-raises a lone exception as itself.

    The group's cancel scope is cancelled when the body ends, so background
    tasks stop with it.
    """
    body_exc: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            try:
                yield tg
            except BaseException as raised:
                body_exc = raised
                raise
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        exc = _sole_error(group)
        if exc is None:
            raise
        if _copy_of(exc, body_exc):
            # trio splits the body's own ExceptionGroup (to take Cancelled out
            # of it) and so hands back a copy: give the user their object.
            assert body_exc is not None
            exc = body_exc
        context = exc.__context__
        try:
            raise exc
        finally:
            exc.__context__ = context
            del exc, context
