"""Writing files so that nothing a user has is lost or half-written.

Everything is written to a hidden temporary sibling of the destination (same folder, so
the final move stays on one file system) and moved into place only when complete:

- a new destination is claimed atomically: `os.link` for a file and `os.rename` for a
  folder both fail if the destination appeared meanwhile, so of two concurrent writers
  one wins whole and the other gets `DestinationExists`;
- an existing destination is replaced only with `overwrite=True`: a file by
  `os.replace`, a folder by an atomic exchange (`renameat2(RENAME_EXCHANGE)` on Linux;
  elsewhere two renames, with the old one put back if the second fails).

Temporaries are named `.NAME.PID.*.tmp` (plus a suffix a writer needs); a kill can leave one behind, never a half
destination, and the next write to the same destination removes those whose process is
gone. Results get the modes the umask allows (temporaries start private).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


class DestinationExists(FileExistsError):
    """The destination exists and overwrite was not asked for."""

    def __init__(self, path: Path):
        super().__init__(f"{path} already exists; pass --overwrite (or overwrite=True) to replace it")
        self.path = path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_modes(path: Path) -> None:
    mask = _umask()
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(dest: Path) -> None:
    """Removes temporaries of `dest` left by killed writers (their process is gone)."""
    for stale in dest.parent.glob(f".{dest.name}.*.tmp*"):
        parts = stale.name[len(dest.name) + 2 :].split(".")
        if parts and parts[0].isdigit() and not _alive(int(parts[0])):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def _prepare(dest: Path, overwrite: bool) -> str:
    if dest.exists() and not overwrite:
        raise DestinationExists(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _sweep(dest)
    return f".{dest.name}.{os.getpid()}."


@contextlib.contextmanager
def staged_file(dest: str | os.PathLike[str], overwrite: bool = False, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path beside `dest`; moves it onto `dest` if the block succeeds.

    `suffix` ends the temporary's name, for writers that insist on one (Keras: `.keras`,
    `.weights.h5`)."""
    dest = Path(dest)
    fd, name = tempfile.mkstemp(prefix=_prepare(dest, overwrite), suffix=".tmp" + suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _publish_modes(tmp)
        if overwrite:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)  # fails if dest appeared meanwhile
            except FileExistsError:
                raise DestinationExists(dest) from None
            except OSError:  # a file system without hard links: check, then move
                if dest.exists():
                    raise DestinationExists(dest) from None
                os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths in one step (Linux renameat2); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def staged_dir(dest: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yields an empty temporary folder beside `dest`; moves it onto `dest` on success."""
    dest = Path(dest)
    tmp = Path(tempfile.mkdtemp(prefix=_prepare(dest, overwrite), suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        _publish_modes(tmp)
        if not dest.exists():
            try:
                os.rename(tmp, dest)  # fails if a non-empty dest appeared meanwhile
                return
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise
        if not overwrite:
            raise DestinationExists(dest)
        if not _exchange(tmp, dest):  # tmp now holds the old artifact, removed below
            old = tmp.with_name(tmp.name + ".old")
            os.rename(dest, old)
            try:
                os.rename(tmp, dest)
            except OSError:
                os.rename(old, dest)  # put the user's artifact back
                raise
            os.rename(old, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def write_text(dest: str | os.PathLike[str], text: str, overwrite: bool = False) -> None:
    """Writes a text file atomically."""
    with staged_file(dest, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
