"""Writing files so that nothing a user has is lost or half-written.

Everything is written to a hidden temporary sibling of the destination (same folder, so
the final move stays on one file system) and moved into place only when complete:

- a new destination is claimed atomically: `os.link` for a file and `os.rename` for a
  folder both fail if the destination appeared meanwhile, so of two concurrent writers
  one wins whole and the other gets `DestinationExists`;
- an existing destination is replaced only with `overwrite=True`: a file by
  `os.replace`, a folder by an atomic exchange (`renameat2(RENAME_EXCHANGE)` on Linux;
  elsewhere two renames, with the old one put back if the second fails).

What may be replaced (the overwrite rule, the same for every command): a regular file that
the caller names; a folder only when it holds the marker file its writer always writes
(an exported SavedModel's manifest, a run folder's run.json), and never `/`, the home
folder, the working folder or a folder above it or above a path the caller protects (the
spec being built, say). A destination that is a symbolic link is refused, overwrite or not
(`UnsafeDestination`): a link could point anywhere (a planted `out -> ~/.ssh`), so nothing
is written through it and the link and its target stay as they are. A stream (a FIFO, a
character device such as /dev/stdout) is written to, never replaced.

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
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


class DestinationExists(FileExistsError):
    """The destination exists and overwrite was not asked for."""

    def __init__(self, path: Path):
        super().__init__(f"{path} already exists and replacing it was not asked for")
        self.path = path


class UnsafeDestination(PermissionError):
    """A destination that no write may replace, overwrite or not (see the module doc)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"refusing to replace {path}: {reason}; nothing was changed")
        self.path, self.reason = path, reason


def protected_reason(dest: str | os.PathLike[str], keep: Iterable[str | os.PathLike[str]] = ()) -> str | None:
    """Why `dest` must never be replaced as a folder, or None.

    `/`, the home folder, and any folder that is (or holds) the working folder or a path
    in `keep` are protected."""
    target = Path(os.path.realpath(dest))
    if target == Path(target.anchor):
        return "it is the root of the file system"
    if target == Path(os.path.realpath(Path.home())):
        return "it is the home folder"
    for what, path in (
        ("the working folder", Path.cwd()),
        *(("the input " + os.fspath(k), Path(k)) for k in keep),
    ):
        inside = Path(os.path.realpath(path))
        if inside == target or target in inside.parents:
            return f"it is or holds {what}"
    return None


def child_path(base: str | os.PathLike[str], name: str) -> Path:
    """`base/name` for a name that comes from a spec: one plain path component, checked.

    Raises:
        UnsafeDestination: the name is empty, `.`, `..`, or holds a separator or a NUL.
    """
    bad = not name or name in (".", "..") or any(c in name for c in ("/", "\\", "\0")) or name != name.strip()
    if bad:
        raise UnsafeDestination(Path(base) / "?", f"the name {name!r} is not a plain file name")
    return Path(base) / name


def _not_a_link(dest: Path) -> Path:
    """`dest`, refused if it is a symbolic link (see the module doc)."""
    if dest.is_symlink():
        try:
            target = os.readlink(dest)
        except OSError:
            target = "?"
        raise UnsafeDestination(
            dest, f"it is a symbolic link (to {target}), and nothing is written through a link"
        )
    return dest


def is_stream(path: str | os.PathLike[str]) -> bool:
    """A FIFO, socket or character device (`/dev/stdout`): written to, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def check_file_destination(dest: str | os.PathLike[str], overwrite: bool) -> Path:
    """The path a file write to `dest` replaces; refuses what a file must not replace (a
    folder, a link, an existing file without overwrite)."""
    path = _not_a_link(Path(dest))
    if path.is_dir():
        raise UnsafeDestination(path, "it is a folder, and a file never replaces a folder")
    if path.exists() and not overwrite:
        raise DestinationExists(Path(dest))
    return path


def check_folder_destination(
    dest: str | os.PathLike[str],
    overwrite: bool,
    marker: str | os.PathLike[str] | None,
    keep: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """The path a folder write to `dest` replaces; refuses what it must not replace.

    An existing `dest` is replaced only with `overwrite`, only if it is a folder holding
    the regular file `marker` (relative to it: the proof that this writer wrote it) and
    only if `protected_reason` has nothing against it. What no overwrite could replace (a
    link, a file, a folder someone else wrote) is refused as `UnsafeDestination` whether or
    not overwrite was asked for; an empty folder or one this writer wrote, without
    overwrite, as `DestinationExists`."""
    path = _not_a_link(Path(dest))
    if not path.exists():
        return path
    if not overwrite and (marker is None or (path.is_dir() and not any(path.iterdir()))):
        # empty, or a writer with no proof to look for: only "replacing it was not asked for"
        raise DestinationExists(Path(dest))
    if not path.is_dir():
        raise UnsafeDestination(path, "it is not a folder, and a folder replaces only a folder it wrote")
    reason = protected_reason(path, keep)
    if reason:
        raise UnsafeDestination(path, reason)
    proof = path / marker if marker is not None else None
    if proof is None or proof.is_symlink() or not proof.is_file():
        raise UnsafeDestination(
            path, f"inception-kit did not write it (no {marker} inside)" if marker else "it is a folder"
        )
    if not overwrite:  # ours, but replacing it was not asked for
        raise DestinationExists(Path(dest))
    return path


def read_bounded(
    path: str | os.PathLike[str], limit: int, inside: str | os.PathLike[str] | None = None
) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, read without following a link
    out of `inside` (when given) and without blocking on FIFOs or devices.

    Raises:
        OSError: with a message saying what the path is instead.
    """
    path = Path(path)
    if inside is not None:
        root = Path(os.path.realpath(inside))
        real = Path(os.path.realpath(path))
        if real != root and root not in real.parents:
            raise OSError(errno.EACCES, f"a link that leads out of {inside}", os.fspath(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OSError(err.errno, "a symbolic link", os.fspath(path)) from None
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes", os.fspath(path))
    return data


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


def _remove(path: Path) -> None:
    """Removes a temporary: a link as a link (never what it points to), a folder whole."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _sweep(dest: Path) -> None:
    """Removes temporaries of `dest` left by killed writers (their process is gone)."""
    for stale in dest.parent.glob(f".{dest.name}.*.tmp*"):
        parts = stale.name[len(dest.name) + 2 :].split(".")
        if parts and parts[0].isdigit() and not _alive(int(parts[0])):
            _remove(stale)


def _prepare(dest: Path) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True)
    _sweep(dest)
    return f".{dest.name}.{os.getpid()}."


@contextlib.contextmanager
def staged_file(dest: str | os.PathLike[str], overwrite: bool = False, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path beside `dest`; moves it onto `dest` if the block succeeds.

    `suffix` ends the temporary's name, for writers that insist on one (Keras: `.keras`,
    `.weights.h5`).

    Raises:
        DestinationExists: `dest` exists and overwrite is False.
        UnsafeDestination: `dest` is a folder.
    """
    dest = check_file_destination(dest, overwrite)
    fd, name = tempfile.mkstemp(prefix=_prepare(dest), suffix=".tmp" + suffix, dir=dest.parent)
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
def staged_dir(
    dest: str | os.PathLike[str],
    overwrite: bool = False,
    marker: str | os.PathLike[str] | None = None,
    keep: Iterable[str | os.PathLike[str]] = (),
) -> Iterator[Path]:
    """Yields an empty temporary folder beside `dest`; moves it onto `dest` on success.

    An existing `dest` is replaced only as `check_folder_destination(dest, overwrite,
    marker, keep)` allows; it is checked again just before the exchange."""
    dest = check_folder_destination(dest, overwrite, marker, keep)
    tmp = Path(tempfile.mkdtemp(prefix=_prepare(dest), suffix=".tmp", dir=dest.parent))
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
        check_folder_destination(dest, overwrite, marker, keep)  # what appeared meanwhile
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
        _remove(tmp)


def write_text(dest: str | os.PathLike[str], text: str, overwrite: bool = False) -> None:
    """Writes a text file atomically; a stream (`/dev/stdout`, a FIFO) is written to as it is."""
    if is_stream(dest):
        with open(dest, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    with staged_file(dest, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
