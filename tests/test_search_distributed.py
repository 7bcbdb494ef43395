"""One search as 3 processes on localhost sharing one storage (SQLite, then a real PostgreSQL
server this test starts), one worker SIGKILLed mid-trial: the search finishes with every trial
accounted for, no training counted twice, its killed trial retried, and the front shaped like a
single-process run's. And a single search killed mid-trial resumes: it continues, it does not
restart. The trainer is a fake that sleeps (no TensorFlow), so each case takes seconds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from test_search import TINY

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TRIALS, BUDGET = 9, 800_000
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def worker(spec: str, storage: str, out: str, is_worker: bool, log: str, delay: float) -> None:
    """A search process (run by `python -c`): the fake trainer logs each start and finish."""
    from inception_kit.analysis import analyse
    from inception_kit.design.search import search

    def fake(plan, *, epochs, seed, subset, final):  # type: ignore[no-untyped-def]
        m = analyse(plan).total.macs
        assert m <= BUDGET, "trained over budget"
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "event": "start", "macs": m, "final": final}) + "\n")
        time.sleep(delay)
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "event": "done", "macs": m, "final": final}) + "\n")
        return 0.5 + 0.4 * (m / 1_128_848) ** 0.5

    search(
        spec,
        trainer=fake,
        trials=TRIALS,
        epochs=1,
        macs=BUDGET,
        out=out or None,
        storage=storage,
        worker=is_worker,
        seeds=1,
        heartbeat=1,
    )


def start(
    spec: Path, storage: str, out: Path | None, is_worker: bool, log: Path, delay: float
) -> subprocess.Popen:
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); from test_search_distributed import worker; "
        f"worker({str(spec)!r}, {storage!r}, {str(out) if out else ''!r}, {is_worker}, {str(log)!r}, {delay})"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def mid_trial(log: Path, pid: int) -> bool:
    """Whether process `pid` has started a training it has not finished."""
    mine = [e for e in events(log) if e["pid"] == pid]
    return bool(mine) and mine[-1]["event"] == "start"


def wait_for(cond, timeout: float = 150.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def study_trials(storage: str) -> list:
    import optuna

    return optuna.load_study(study_name="search_tiny", storage=storage).get_trials(deepcopy=False)


def check_accounting(storage: str, log: Path, killed: list[int]) -> None:
    trials = study_trials(storage)
    assert [t.number for t in trials] == list(range(len(trials)))
    within = [t for t in trials if t.state.name == "COMPLETE" and not t.user_attrs.get("over_budget")]
    assert len(within) == TRIALS  # exactly --trials evaluated, by all processes together
    assert all(t.state.name in ("COMPLETE", "PRUNED", "FAIL") for t in trials)  # nothing left running
    trained = [t for t in within if t.user_attrs.get("trained")]
    # (Two processes may propose the same widths at the same moment and both train them, as two
    # trials; a repeat proposed after one finished reuses its accuracy, untrained.)
    repeats = [t for t in within if "same_as" in t.user_attrs]
    assert all(t.params == trials[t.user_attrs["same_as"]].params for t in repeats)
    done = [e for e in events(log) if e["event"] == "done" and not e["final"]]
    assert len(done) == len(trained)  # every finished training is one trained trial
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == len(killed)  # the killed worker's trial, failed by its heartbeat ...
    for f in failed:  # ... and run again, same widths, as a new trial
        retry = [t for t in trials if t.system_attrs.get("failed_trial") == f.number]
        assert (
            len(retry) == 1 and retry[0].params == f.params and retry[0].state.name in ("COMPLETE", "PRUNED")
        )


def single_process_front(tmp_path: Path, spec: Path) -> dict:
    from inception_kit.analysis import analyse
    from inception_kit.design.search import search

    search(
        spec,
        trainer=lambda p, **k: 0.5 + 0.4 * (analyse(p).total.macs / 1_128_848) ** 0.5,
        trials=TRIALS,
        epochs=1,
        macs=BUDGET,
        out=tmp_path / "single",
        seeds=1,
    )
    return json.loads((tmp_path / "single" / "front.json").read_text())


def same_structure(a: dict, b: dict) -> None:
    assert (
        set(a) == set(b)
        and a["budget"] == b["budget"]
        and a["over_budget_trained"] == b["over_budget_trained"] == 0
    )
    assert {frozenset(t) for t in a["trials"]} == {frozenset(t) for t in b["trials"]}
    assert {frozenset(p) for p in a["front"]} == {frozenset(p) for p in b["front"]}
    assert a["front"] and b["front"]


def distributed(tmp_path: Path, storage: str) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    log, out = tmp_path / "events.log", tmp_path / "out"
    t0 = time.monotonic()
    main = start(spec, storage, out, False, log, 1.0)
    victim = start(spec, storage, None, True, log, 1.0)
    # SIGKILL the victim in the middle of a training of its own (its first: a later one may never
    # come, when the others take the rest), all three running
    other = start(spec, storage, None, True, log, 1.0)
    wait_for(lambda: mid_trial(log, victim.pid))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    for p in (main, other):
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    seconds = time.monotonic() - t0
    check_accounting(storage, log, [victim.pid])
    front = json.loads((out / "front.json").read_text())
    same_structure(front, single_process_front(tmp_path, spec))
    print(f"{storage.split(':')[0]}: 3 processes, {TRIALS} trials, one SIGKILLed: {seconds:.1f} s")


def test_three_processes_on_sqlite_one_killed(tmp_path: Path) -> None:
    distributed(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server of Debian's `postgresql` package on a free local port, in a
    temporary folder, run as `nobody` when the test runs as root (postgres refuses root)."""
    if not PG_BIN:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg2")
    bin_ = PG_BIN[-1]
    base = Path(tempfile.mkdtemp(prefix="ik-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = base / "data", free_port()
    subprocess.run(
        [*as_user, str(bin_ / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_user, str(bin_ / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_ / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


def test_three_processes_on_postgresql_one_killed(tmp_path: Path, postgres: str) -> None:
    distributed(tmp_path, postgres)


def test_a_killed_search_resumes_where_it_was(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    log, out = tmp_path / "events.log", tmp_path / "out"
    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    first = start(spec, storage, out, False, log, 0.4)
    wait_for(lambda: sum(e["event"] == "done" for e in events(log)) >= 3 and mid_trial(log, first.pid))
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = [t for t in study_trials(storage) if t.state.name == "COMPLETE" and t.user_attrs.get("trained")]
    assert len(before) >= 3
    again = start(spec, storage, out, False, log, 0.4)
    _, err = again.communicate(timeout=180)
    assert again.returncode == 0, err
    check_accounting(storage, log, [first.pid])
    after = {t.number: t for t in study_trials(storage)}
    for t in before:  # the first run's trials are kept, not run again
        assert after[t.number].state.name == "COMPLETE" and after[t.number].values == t.values
    second = [e for e in events(log) if e["pid"] == again.pid and e["event"] == "done" and not e["final"]]
    assert len(second) <= TRIALS - len(before)  # it continued: only what was left was trained
