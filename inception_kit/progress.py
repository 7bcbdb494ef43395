"""The one progress type every long operation reports through (deploy, profile, train,
calibrate, search). The library only calls it; the CLI draws it (cli/common.py's
`ProgressBar`). Plain Python."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Called as work advances: `done` of `total` steps, `what` the step under way
    ("export: onnx", "epoch 3/10"). Must not raise."""

    def __call__(self, done: int, total: int, what: str) -> None: ...


def no_progress(done: int, total: int, what: str) -> None:
    """The default: report nothing."""
