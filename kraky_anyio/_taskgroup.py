"""Old private path of :mod:`kraky_anyio.taskgroup` (still imported by the CLI,
the live book and the fake exchange until they switch to the public one)."""

from .taskgroup import task_group

__all__ = ["task_group"]
