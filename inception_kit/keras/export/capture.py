"""Capturing TensorFlow's and the converters' console output at the file-descriptor level.

TensorFlow's C++ side and the converters write to fds 1 and 2 directly, past Python's
`sys.stdout`; while exporting everything goes to a log, so a user sees only the summary line.
When something fails, the log's tail is attached to the exception as a note (the CLI shows
it with ``--debug``).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


class CapturedOutput:
    """What was written while `captured` was active (filled in when it ends)."""

    def __init__(self) -> None:
        self.text = ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def captured() -> Iterator[CapturedOutput]:
    """Sends everything written to stdout and stderr, by Python or C++, to a log.

    On an exception the log's tail is attached to it as a note.
    """
    log = CapturedOutput()
    python = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1), os.dup(2)
        collected = False
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(python), contextlib.redirect_stderr(python):
                yield log
        except BaseException as err:
            _collect(log, sink, python, saved)
            collected = True
            if log.text.strip() and hasattr(err, "add_note"):
                err.add_note("output captured while exporting (last lines):\n" + log.tail())
            raise
        finally:
            if not collected:
                _collect(log, sink, python, saved)


def _collect(log: CapturedOutput, sink: Any, python: io.StringIO, saved: tuple[int, int]) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    os.close(saved[0])
    os.close(saved[1])
    sink.seek(0)
    log.text = sink.read().decode("utf-8", "replace") + python.getvalue()
