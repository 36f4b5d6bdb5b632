"""A task group for the fake exchange whose body's exception comes out as itself.

anyio (like trio) wraps whatever the body of ``async with
create_task_group()`` raises in an ``ExceptionGroup``. A test that raises in
the ``open_fake_kraken`` block wants its own exception back, so a group
holding one exception (cancellations beside it dropped: anyio and trio
re-deliver a cancellation at the next checkpoint) is unwrapped; a group with
several real errors propagates as the group.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["unwrapping_task_group"]


def _lone_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    if len(group.exceptions) == 1:
        return group.exceptions[0]
    cancelled = anyio.get_cancelled_exc_class()
    errors = [e for e in group.exceptions if not isinstance(e, cancelled)]
    return errors[0] if len(errors) == 1 else None


@asynccontextmanager
async def unwrapping_task_group() -> AsyncIterator[anyio.abc.TaskGroup]:
    """``anyio.create_task_group()`` whose scope is cancelled when the body
    ends (background tasks stop with it), re-raising a lone exception as itself."""
    try:
        async with anyio.create_task_group() as tg:
            try:
                yield tg
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        exc = _lone_error(group)
        if exc is None:
            raise
        context = exc.__context__
        try:
            raise exc
        finally:
            exc.__context__ = context
            del exc, context
