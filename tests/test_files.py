"""Writes never lose or half-write anything: staged beside the destination, then moved."""

import multiprocessing as mp
import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT
from inception_kit.files import DestinationExists, UnsafeDestination, staged_dir, staged_file, write_text


def test_exception_leaves_destination_and_no_temporary(tmp_path):
    dest = tmp_path / "report.txt"
    dest.write_text("precious")
    with pytest.raises(RuntimeError), staged_file(dest, overwrite=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full, say")
    assert dest.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]


def test_refuses_to_overwrite_without_permission(tmp_path):
    dest = tmp_path / "r.txt"
    write_text(dest, "one")
    with pytest.raises(DestinationExists):
        write_text(dest, "two")
    write_text(dest, "two", overwrite=True)
    assert dest.read_text() == "two"


KILLED_WRITER = """
import sys, time
from inception_kit.files import staged_file
with staged_file(sys.argv[1], overwrite=True) as tmp:
    with open(tmp, "w") as f:
        f.write("half written")
        f.flush()
        print("WRITING", flush=True)
        time.sleep(60)
"""


def test_sigkill_mid_write_leaves_destination_as_it_was(tmp_path):
    dest = tmp_path / "report.json"
    dest.write_text("precious")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(dest)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "WRITING"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert dest.read_text() == "precious"
    # What a kill cannot clean is a hidden temporary beside it, never the destination.
    assert all(p.name.startswith(".report.json.") for p in tmp_path.iterdir() if p != dest)


def _race(dest, barrier, label, results):
    try:
        with staged_dir(dest) as tmp:
            for i in range(50):
                (tmp / f"part{i}").write_text(label)
            barrier.wait(timeout=30)  # both are complete before either moves into place
        results.put((label, "won"))
    except DestinationExists:
        results.put((label, "refused"))


def test_two_writers_one_wins_whole_the_other_fails_cleanly(tmp_path):
    dest = tmp_path / "artifact"
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(dest, barrier, label, results)) for label in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    outcome = dict(results.get(timeout=5) for _ in procs)
    assert sorted(outcome.values()) == ["refused", "won"]
    winner = next(label for label, result in outcome.items() if result == "won")
    assert {p.read_text() for p in dest.iterdir()} == {winner}  # nothing mixed
    assert len(list(dest.iterdir())) == 50
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_overwriting_a_folder_swaps_it_whole(tmp_path):
    dest = tmp_path / "saved"
    with staged_dir(dest) as tmp:
        (tmp / "old.pb").write_text("old")
    # a folder without its writer's marker stays
    with pytest.raises(UnsafeDestination), staged_dir(dest, overwrite=True, marker="new.pb") as tmp:
        (tmp / "new.pb").write_text("new")
    assert [p.name for p in dest.iterdir()] == ["old.pb"]
    with staged_dir(dest, overwrite=True, marker="old.pb") as tmp:
        (tmp / "new.pb").write_text("new")
    assert [p.name for p in dest.iterdir()] == ["new.pb"]
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]


def test_results_get_usual_modes_and_dead_writers_temporaries_are_swept(tmp_path):
    import os

    dest = tmp_path / "r.txt"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".r.txt.{int(dead.stdout)}.abc.tmp"
    stale.write_text("left by a killed writer")
    write_text(dest, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~mask
    assert not stale.exists()


# --------------------------------------------------------------------------- issue 22 probes


@pytest.mark.parametrize("kind", ["file", "folder"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_destination_that_is_a_link_is_refused_and_nothing_touched(tmp_path, kind, overwrite):
    """A planted `out -> somewhere` is never written through, overwrite or not."""
    target = tmp_path / "theirs"
    if kind == "file":
        target.write_text("their file")
    else:
        target.mkdir()
        (target / "marker").write_text("their folder, with the marker a writer looks for")
    link = tmp_path / "out"
    link.symlink_to(target)
    with pytest.raises(UnsafeDestination, match="symbolic link"):
        if kind == "file":
            with staged_file(link, overwrite=overwrite) as tmp:
                tmp.write_text("mine")
        else:
            with staged_dir(link, overwrite=overwrite, marker="marker") as tmp:
                (tmp / "marker").write_text("mine")
    assert link.is_symlink() and os.readlink(link) == str(target)
    if kind == "file":
        assert target.read_text() == "their file"
    else:
        assert [p.read_text() for p in target.iterdir()] == [
            "their folder, with the marker a writer looks for"
        ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "theirs"]  # no temporary left


def test_a_dangling_link_is_refused_too(tmp_path):
    link = tmp_path / "out.txt"
    link.symlink_to(tmp_path / "nowhere" / "x.txt")
    with pytest.raises(UnsafeDestination, match="symbolic link"):
        write_text(link, "mine")
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


def test_a_non_empty_folder_someone_else_wrote_is_refused_overwrite_or_not(tmp_path):
    """Not `DestinationExists` ("pass --overwrite"): overwrite would not be allowed either."""
    dest = tmp_path / "photos"
    dest.mkdir()
    (dest / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    for overwrite in (False, True):
        with (
            pytest.raises(UnsafeDestination, match="did not write it"),
            staged_dir(dest, overwrite, "manifest.json") as tmp,
        ):
            (tmp / "manifest.json").write_text("{}")
    assert [p.name for p in dest.iterdir()] == ["cat.jpg"] and (
        dest / "cat.jpg"
    ).read_bytes() == b"\xff\xd8 a cat"
    assert [p.name for p in tmp_path.iterdir()] == ["photos"]
    # Ours (its marker inside) but overwrite not asked for: DestinationExists, as before.
    ours = tmp_path / "ours"
    with staged_dir(ours) as tmp:
        (tmp / "manifest.json").write_text("{}")
    with pytest.raises(DestinationExists), staged_dir(ours, False, "manifest.json"):
        pass


TERMINATED_WRITER = """
import sys, time
from inception_kit.cli.export import interruptible
from inception_kit.files import staged_dir
with interruptible(), staged_dir(sys.argv[1], overwrite=True, marker="manifest.json") as tmp:
    (tmp / "manifest.json").write_text("new, half written")
    print("WRITING", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, -signal.SIGINT)])
def test_sigterm_or_sigint_mid_write_leaves_the_old_folder_and_no_temporary(tmp_path, sig, code):
    """Unlike SIGKILL, these unwind: the temporary is removed, the old folder stays whole."""
    dest = tmp_path / "artifact"
    with staged_dir(dest) as tmp:
        (tmp / "manifest.json").write_text("old")
    proc = subprocess.Popen(
        [sys.executable, "-c", TERMINATED_WRITER, str(dest)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "WRITING"
    assert len(list(tmp_path.iterdir())) == 2  # the temporary is there while it writes
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    # SIGINT: KeyboardInterrupt unwinds the block; uncaught at top level, Python then ends by SIGINT.
    assert proc.returncode == code, err
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]
    assert (dest / "manifest.json").read_text() == "old"
