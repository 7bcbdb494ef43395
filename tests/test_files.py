"""Writes never lose or half-write anything: staged beside the destination, then moved."""

import multiprocessing as mp
import signal
import subprocess
import sys

import pytest

from conftest import ROOT
from inception_kit.files import DestinationExists, UnsafeDestination, staged_dir, staged_file, write_text


def test_exception_leaves_destination_and_no_temporary(tmp_path):
    dest = tmp_path / "report.txt"
    dest.write_text("precious")
    with pytest.raises(RuntimeError):
        with staged_file(dest, overwrite=True) as tmp:
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
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(dest)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
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
    with pytest.raises(UnsafeDestination):  # a folder without its writer's marker stays
        with staged_dir(dest, overwrite=True, marker="new.pb") as tmp:
            (tmp / "new.pb").write_text("new")
    assert [p.name for p in dest.iterdir()] == ["old.pb"]
    with staged_dir(dest, overwrite=True, marker="old.pb") as tmp:
        (tmp / "new.pb").write_text("new")
    assert [p.name for p in dest.iterdir()] == ["new.pb"]
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]


def test_results_get_usual_modes_and_dead_writers_temporaries_are_swept(tmp_path):
    import os

    dest = tmp_path / "r.txt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".r.txt.{int(dead.stdout)}.abc.tmp"
    stale.write_text("left by a killed writer")
    write_text(dest, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~mask
    assert not stale.exists()
