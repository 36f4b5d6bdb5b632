"""Stats lives in kraky_anyio.stats, every counter documented where it is defined."""

from __future__ import annotations

import dataclasses
import inspect

import kraky_anyio
from kraky_anyio import protocol, stats


def test_stats_moved_and_still_importable_from_the_old_places() -> None:
    assert stats.Stats.__module__ == "kraky_anyio.stats"
    assert protocol.Stats is stats.Stats
    assert kraky_anyio.Stats is stats.Stats


def test_every_counter_is_an_int_documented_on_the_line_above() -> None:
    lines = inspect.getsource(stats.Stats).splitlines()
    fields = dataclasses.fields(stats.Stats)
    assert len(fields) > 20
    for f in fields:
        assert f.type == "int" and f.default == 0, f.name
        (at,) = [i for i, line in enumerate(lines) if line.strip().startswith(f"{f.name}:")]
        assert lines[at - 1].strip().startswith("#:"), f"{f.name} has no #: comment"
