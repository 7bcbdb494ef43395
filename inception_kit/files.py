"""Writing files so that nothing a user has is lost or half-written.

Everything is written to a temporary sibling of the destination (same folder, so the final
rename stays on one file system) and moved into place only when complete. An existing
destination is replaced only with `overwrite=True`; a folder destination is then swapped
in two renames, so a reader sees either the old artifact or the new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


class DestinationExists(FileExistsError):
    """The destination exists and overwrite was not asked for."""

    def __init__(self, path: Path):
        super().__init__(f"{path} already exists; pass --overwrite (or overwrite=True) to replace it")
        self.path = path


def _check(dest: Path, overwrite: bool) -> None:
    if dest.exists() and not overwrite:
        raise DestinationExists(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def staged_file(dest: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yields a temporary path beside `dest`; moves it onto `dest` if the block succeeds."""
    dest = Path(dest)
    _check(dest, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if dest.exists() and not overwrite:  # another writer won meanwhile
            raise DestinationExists(dest)
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def staged_dir(dest: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yields an empty temporary folder beside `dest`; renames it to `dest` on success.

    Without overwrite the final step is a plain rename, which fails if `dest` appeared
    meanwhile: of two concurrent writers one wins whole and the other fails cleanly.
    """
    dest = Path(dest)
    _check(dest, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    old: Path | None = None
    try:
        yield tmp
        if dest.exists():
            if not overwrite:
                raise DestinationExists(dest)
            old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
            os.replace(dest, old)
        try:
            os.rename(tmp, dest)
        except OSError:
            if old is not None:
                os.replace(old, dest)  # put the user's artifact back
            if dest.exists():
                raise DestinationExists(dest) from None
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


def write_text(dest: str | os.PathLike[str], text: str, overwrite: bool = False) -> None:
    """Writes a text file atomically."""
    with staged_file(dest, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
