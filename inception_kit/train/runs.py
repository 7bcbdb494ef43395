"""The run folder: what it holds, whether a run may start, resume or overwrite in it, the lock.

The run folder (`--out`, default `runs/<model name>`):

    run.json          settings, status (running / finished), final and best metrics
    report.json       the spec's cost report (`inception-kit report --format json`)
    spec.yaml         the expanded spec (templates and table rows written out)
    log.csv           one row per epoch: epoch, accuracy, loss, val_accuracy, val_loss
    best.weights.h5   the weights of the epoch with the best val_accuracy (ModelCheckpoint)
    final.weights.h5  the weights after the last epoch
    backup/           keras.callbacks.BackupAndRestore's state, while the run is unfinished

Every file but backup/'s is replaced atomically (`inception_kit.files`): a kill never leaves
half of one. backup/ is Keras' own; it keeps the previous backup too (`double_checkpoint`),
so a kill during a backup falls back to the one before.
log.csv has CSVLogger's columns but is rewritten whole each epoch rather than appended to:
an append can be cut mid-row by a kill, and after a resume it would repeat the epoch that
was cut short. best.weights.h5 is ModelCheckpoint's file, staged and renamed into place
(`inception_kit.train.callbacks`).

What happens to an existing `--out`:

* missing or empty: a new run;
* an unfinished run (run.json says running: killed, crashed or interrupted) of the same
  spec, data, batch size, learning rate, validation split and seed: it RESUMES. Re-running
  the same command restores the weights and optimizer state of the last backup (made at the
  end of every epoch) and continues the epoch count; log.csv keeps the epochs before it,
  and in-memory data sees the very batches an uninterrupted run would. With
  `--backup-every N` the weights are those of the last backup inside the epoch, and that
  epoch runs again from its first batch (Keras records the epoch, not the batch).
  `--epochs` and `--strategy` may differ when resuming; the other settings may not (the
  error names them);
* anything else (a finished run, other files): refused, exit 2, unless `--overwrite`, which
  deletes the run's own files (the names above) and starts again; other files stay.

A lock (`OUT/.lock`) keeps two trainings out of one folder at a time.

Multi-worker: the chief writes OUT; each other worker writes the same set of files to
`OUT/<type>-<index>/` (each worker restores from its own backup). On a shared file system
that keeps writers apart; on separate disks each machine has its own copy.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, show
from ..files import (
    DestinationExists,
    UnsafeDestination,
    check_folder_destination,
    read_bounded,
    staged_file,
    write_text,
)

RUN_FILES = (
    "run.json",
    "report.json",
    "spec.yaml",
    "log.csv",
    "best.weights.h5",
    "final.weights.h5",
    "backup",
)
# Settings a resumed run must share with the run it continues.
IDENTITY = ("model", "spec_sha256", "data", "batch_size", "learning_rate", "validation_split", "seed")
_WORKER_DIR = re.compile(r"^(chief|worker)-\d+$")
BEST_STAGING = ".best.staging.weights.h5"  # where ModelCheckpoint saves before the rename
MAX_RUN_JSON_BYTES = 1_000_000


class RunFolder:
    """An open run folder: new, resumed or overwritten; locked while training."""

    def __init__(self, path: Path, decision: str, rows: list[dict[str, float]], lock: Any) -> None:
        self.path, self.decision, self.rows, self._lock = path, decision, rows, lock

    @property
    def resume(self) -> bool:
        return self.decision == "resume"

    def prepare(self) -> None:
        """Deletes an overwritten run's files; called once training is about to start."""
        if self.decision == "overwrite":
            _clear(self.path)
            self.decision = "new"

    @classmethod
    def open(cls, path: Path, settings: dict[str, Any], overwrite: bool) -> RunFolder:
        _decide(path, settings, overwrite)  # refuse before touching anything
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        lock = _lock(path)
        try:
            decision = _decide(path, settings, overwrite)  # again, now that no one else can start
            rows = _read_log(path / "log.csv") if decision == "resume" else []
            folder = cls(path, decision, rows, lock)
            folder.created = created
            return folder
        except BaseException:
            _unlock(lock)
            raise

    def backup_epoch(self) -> int:
        """The epoch BackupAndRestore will resume at (it records it in its folder), else 0."""
        try:
            meta = json.loads(
                read_bounded(self.path / "backup" / "training_metadata.json", MAX_RUN_JSON_BYTES)
            )
            return max(0, int(meta["epoch"]))
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return 0

    created = False  # this run made the folder

    def release(self) -> None:
        """Unlocks; a folder this run made and never wrote to is removed again."""
        _unlock(self._lock)
        self._lock = None
        if self.created and [e.name for e in self.path.iterdir()] in ([], [".lock"]):
            (self.path / ".lock").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.path.rmdir()


def _decide(path: Path, settings: dict[str, Any], overwrite: bool) -> str:
    """'new', 'resume' or 'overwrite'; raises when the folder must not be used."""
    if not path.exists():
        return "new"
    if not path.is_dir():
        raise ArgumentError(
            "out", "a folder for the run (new, or an unfinished run to resume)", f"'{path}', a file", raw=True
        )
    entries = [e for e in path.iterdir() if not e.name.startswith(".") and not _WORKER_DIR.match(e.name)]
    if not entries:
        return "new"
    if overwrite:
        # The run folder's rule (inception_kit.files): only a folder a run wrote is cleared.
        check_folder_destination(path, True, "run.json")
    previous, wrong = read_run_json(path / "run.json")
    if wrong is not None and os.path.lexists(path / "run.json"):
        if overwrite:
            raise UnsafeDestination(path, f"its run.json was not written by inception-kit train: {wrong}")
        raise ArgumentError(
            "out",
            "a folder for the run (new, or a run inception-kit train wrote)",
            f"'{path / 'run.json'}', {wrong}",
            raw=True,
        )
    if overwrite:
        return "overwrite"
    if previous is None or previous["status"] == "finished":
        raise DestinationExists(path)
    different = [k for k in IDENTITY if previous.get(k) != settings[k]]
    if different:
        raise ArgumentError(
            "out",
            f"the settings of the unfinished run in '{path}' to resume it, or overwrite=True (on the command line, --overwrite) "
            "to start again",
            "; ".join(
                f"{k} {show(settings[k])} where the run has {show(previous.get(k))}" for k in different
            ),
            raw=True,
        )
    return "resume"


RUN_STATUSES = ("running", "finished", "failed")


def read_run_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A run.json's settings, read bounded (`MAX_RUN_JSON_BYTES`), or None and why it is not
    one this module wrote (too large, not JSON, a field missing or of the wrong type)."""
    try:
        data = json.loads(read_bounded(path, MAX_RUN_JSON_BYTES).decode("utf-8"))
    except OSError as err:
        return None, "which cannot be read (" + (err.strerror or str(err)) + ")"
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None, f"which is not JSON ({type(err).__name__})"
    if not isinstance(data, dict):
        return None, f"which holds {show(data)}, not an object"
    if not isinstance(data.get("model"), str):
        return None, f"whose field 'model' is {show(data.get('model'))}, not a model name"
    if data.get("status") not in RUN_STATUSES:
        return (
            None,
            f"whose field 'status' is {show(data.get('status'))}, not one of {', '.join(RUN_STATUSES)}",
        )
    return data, None


def _clear(path: Path) -> None:
    """Deletes the run's own files (and their staging leftovers), nothing else."""
    names = set(RUN_FILES)
    for entry in path.iterdir():
        ours = (
            entry.name in names
            or entry.name == BEST_STAGING
            or any(entry.name.startswith(f".{n}.") and entry.name.endswith(".tmp") for n in names)
        )
        if ours:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _lock(path: Path) -> Any:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    try:  # never through a link: the lock file is the run folder's own
        fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as err:
        raise ArgumentError(
            "out",
            "a run folder whose .lock file it can create",
            f"'{path / '.lock'}', "
            + ("a symbolic link" if err.errno == errno.ELOOP else err.strerror or str(err)),
            raw=True,
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ArgumentError(
            "out",
            "a run folder no other training is using",
            f"'{path}', in use by another training",
            raw=True,
        ) from None
    return fd


def _unlock(fd: Any) -> None:
    if fd is not None:
        os.close(fd)  # closing releases the flock


MAX_LOG_BYTES = 64_000_000  # log.csv: about 100 bytes a row, one row per epoch


def _read_log(path: Path) -> list[dict[str, float]]:
    """log.csv's rows, read bounded; a row that is not numbers is left out."""
    if not path.exists():
        return []
    try:
        text = read_bounded(path, MAX_LOG_BYTES).decode("utf-8")
    except OSError as err:
        raise ArgumentError(
            "out",
            "a run folder whose log.csv inception-kit train wrote",
            f"'{path}', which cannot be read ({err.strerror or err})",
            raw=True,
        ) from None
    except UnicodeDecodeError:
        raise ArgumentError(
            "out",
            "a run folder whose log.csv inception-kit train wrote",
            f"'{path}', which is not UTF-8 text",
            raw=True,
        ) from None
    rows = []
    for row in csv.DictReader(io.StringIO(text, newline="")):
        try:
            rows.append(
                {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v not in (None, "")}
            )
        except (ValueError, TypeError):  # TypeError: a row longer than the header (a list under None)
            continue
    return rows


def fail_run(
    folder: RunFolder, run_info: dict[str, Any], rows: list[dict[str, float]], monitor: str, reason: str
) -> None:
    """Marks the run failed in run.json; the weights of the last good epoch stay where they are."""
    best = max(
        (r for r in rows if monitor in r and math.isfinite(r.get("loss", math.nan))),
        key=lambda r: r[monitor],
        default=None,
    )
    kept = "best.weights.h5 (the best finite epoch) and backup/ keep the last good weights"
    write_json(
        folder.path / "run.json",
        {
            **run_info,
            "status": "failed",
            "error": reason,
            "best": best,
            "weights": kept if (folder.path / "best.weights.h5").exists() else None,
        },
    )


def save_weights(model: Any, dest: str | os.PathLike[str]) -> None:
    """`model.save_weights` to `dest`, atomically (Keras wants a name ending .weights.h5)."""
    with staged_file(dest, overwrite=True, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))


def write_json(path: Path, data: dict[str, Any]) -> None:
    """`data` as indented JSON, replacing `path` atomically (run.json)."""
    write_text(path, json.dumps(data, indent=2) + "\n", overwrite=True)
