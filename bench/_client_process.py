"""What every benchmark client process does besides measuring, stdlib only
(the v2 client also runs under the peers' venv, which lacks kraky_anyio):
print its one result line, and exit hard on a deadline or when its parent
goes away."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

_emitted: list[dict[str, Any]] = []
_extra: dict[str, Any] = {}


def add_to_result(**fields: Any) -> None:
    """Fields every result line of this process carries (kind, backend, ...)."""
    _extra.update(fields)


def emit(result: dict[str, Any]) -> None:
    """Print the result line (once)."""
    if _emitted:
        return
    result.update(_extra)
    _emitted.append(result)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def start_watchdogs(timeout: float, watch_stdin: bool) -> None:
    """Exit hard on a deadline, or when the parent goes away (stdin closes)."""

    def deadline() -> None:
        print(f"client: timed out after {timeout:g} s", file=sys.stderr, flush=True)
        os._exit(4)

    timer = threading.Timer(timeout, deadline)
    timer.daemon = True
    timer.start()

    def parent_gone() -> None:
        # The raw fd, not sys.stdin: a daemon thread blocked in a buffered
        # read makes interpreter shutdown abort.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            return
        os._exit(3)

    if watch_stdin:
        threading.Thread(target=parent_gone, daemon=True).start()
