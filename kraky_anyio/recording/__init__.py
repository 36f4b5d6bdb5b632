"""Recording a live session: every frame received, byte for byte, with its
time, and what was sent (secrets redacted), as compressed JSON lines.

::

    async with conn.record("session.jsonl.gz") as recorder:
        ...                                   # recorded from now on
    print(recorder.stats.frames_recorded)

    async with open_kraken(record="whole.jsonl.zst") as conn:
        ...                                   # from the first socket on

The modules: :mod:`~kraky_anyio.recording.format` (the line format, the
contract with the replay side), :mod:`~kraky_anyio.recording.writer` (files,
compression, rotation), :mod:`~kraky_anyio.recording.options`
(:class:`RecordOptions`), :mod:`~kraky_anyio.recording.tap` (what the shell
calls), :mod:`~kraky_anyio.recording.recorder` (the queue and the writer task).
"""

from .format import FORMAT, VERSION
from .options import RecordOptions, RecordTarget
from .recorder import Recorder, RecordStats
from .writer import RecordingError

__all__ = [
    "FORMAT",
    "VERSION",
    "RecordOptions",
    "RecordStats",
    "RecordTarget",
    "Recorder",
    "RecordingError",
]
