"""inception-kit search: the budget rule (over budget is never trained), the trial count, the
outputs (front.json's schema, the front's specs written like fit writes), bad budgets, bad
storage URLs and a full disk (exit 2, nothing half written). A fake trainer stands in for
training, so these run without TensorFlow; one slow test trains for real on digits."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from inception_kit.analysis import analyse
from inception_kit.cli import main
from inception_kit.design import search as S
from inception_kit.errors import ArgumentError
from inception_kit.loading import load, loads

pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parent.parent

# Wide reductions (3x3_reduce 24 of 32 and 40 input channels, 5x5_reduce 16): 3*2*3*2 = 36 designs.
TINY = """\
name: search_tiny
input: [8, 8, 1]
layers:
  - conv: {filters: 32, kernel: 3}
  - inception: {name: inc_a, 1x1: 8, 3x3_reduce: 24, 3x3: 16, 5x5_reduce: 16, 5x5: 8, pool_proj: 8}   # 8x8x40
  - inception: {name: inc_b, 1x1: 8, 3x3_reduce: 24, 3x3: 16, 5x5_reduce: 16, 5x5: 8, pool_proj: 8}   # 8x8x40
head:
  - gap
  - dense: {units: 10, activation: softmax}
"""


def conv_macs(h: int, w: int, k: int, cin: int, cout: int) -> int:
    return h * w * k * k * cin * cout


def tiny_macs(r3a: int, r5a: int, r3b: int, r5b: int) -> int:
    """MACs of TINY with these reduction widths, by hand: convs (same padding, 8x8) and the dense."""
    total = conv_macs(8, 8, 3, 1, 32)
    for cin, r3, r5 in ((32, r3a, r5a), (40, r3b, r5b)):
        total += conv_macs(8, 8, 1, cin, 8)  # 1x1 branch
        total += conv_macs(8, 8, 1, cin, r3) + conv_macs(8, 8, 3, r3, 16)
        total += conv_macs(8, 8, 1, cin, r5) + conv_macs(8, 8, 5, r5, 8)
        total += conv_macs(8, 8, 1, cin, 8)  # pool proj
    return total + 40 * 10


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


class Fake:
    """A trainer that fails the test if it is ever called with a design over budget."""

    def __init__(self, macs: int) -> None:
        self.macs, self.calls = macs, []  # type: ignore[var-annotated]

    def __call__(self, plan, *, epochs, seed, subset, final):  # type: ignore[no-untyped-def]
        m = analyse(plan).total.macs
        if m > self.macs:
            raise AssertionError(f"trained a design over budget: {m} > {self.macs}")
        self.calls.append((m, final, seed))
        return 0.5 + 0.4 * (m / 1_128_848) ** 0.5 + 0.001 * seed


def test_the_hand_count_matches_the_analysis(tiny: Path) -> None:
    assert analyse(load(tiny)).total.macs == tiny_macs(24, 16, 24, 16) == 1_128_848


def test_over_budget_is_never_trained_and_trials_count_the_within_budget(tiny: Path, tmp_path: Path) -> None:
    budget = 700_000
    fake = Fake(budget)
    r = S.search(tiny, trainer=fake, trials=6, epochs=1, macs=budget, out=tmp_path / "o", seeds=2)
    over = [t for t in r.trials if t.over_budget]
    within = [t for t in r.trials if t.state == "COMPLETE" and not t.over_budget]
    assert over, "a budget this tight must make the sampler propose some designs over it"
    assert all(t.macs > budget and not t.trained and t.accuracy is None for t in over)
    assert len(within) == 6  # --trials counts the designs evaluated within budget
    assert r.over_budget_trained == 0
    searched = [c for c in fake.calls if not c[1]]
    assert len(searched) == sum(t.trained for t in r.trials)
    for t in r.trials:  # every record's cost is the hand count of its widths
        w = t.widths
        assert t.macs == tiny_macs(
            w["inc_a_b2_conv1x1"], w["inc_a_b3_conv1x1"], w["inc_b_b2_conv1x1"], w["inc_b_b3_conv1x1"]
        )
    front = json.loads((tmp_path / "o" / "front.json").read_text())
    assert set(front) == {"budget", "trials", "front", "over_budget_trained"}
    assert front["budget"] == {"macs": budget}
    assert front["over_budget_trained"] == 0
    assert all(
        set(t) == {"number", "state", "macs", "params", "accuracy", "trained"} for t in front["trials"]
    )
    assert [t["number"] for t in front["trials"]] == list(range(len(r.trials)))
    assert front["front"] and all(set(p) == {"trial", "macs", "accuracy", "spec"} for p in front["front"])
    for p in front["front"]:
        # the front's spec is the user's file with the widths replaced: it reloads to the recorded cost
        text = (tmp_path / "o" / p["spec"]).read_text()
        assert text.startswith("# Found by inception-kit search")
        assert "name: search_tiny" in text  # the user's file, a changed width commented where written:
        assert re.search(r"fit: (3x3|5x5)_reduce (24|16) -> (8|16)", text)
        assert analyse(loads(text, "front.yaml")).total.macs == p["macs"] <= budget
        mean = sum(0.5 + 0.4 * (p["macs"] / 1_128_848) ** 0.5 + 0.001 * s for s in (0, 1)) / 2
        assert p["accuracy"] == pytest.approx(mean)  # the mean of the 2 seeds' final accuracies
    assert (tmp_path / "o" / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(c[2] for c in fake.calls if c[1]) == sorted([0, 1] * len(front["front"]))


def test_the_front_is_pareto_over_the_trials(tiny: Path, tmp_path: Path) -> None:
    r = S.search(tiny, trainer=Fake(800_000), trials=8, epochs=1, macs=800_000, out=tmp_path / "o", seeds=1)
    done = [t for t in r.trials if t.accuracy is not None and not t.over_budget]
    for p in r.front:
        assert not any(t.accuracy > p.search_accuracy and t.macs <= p.macs for t in done)


def test_a_resume_continues_and_other_settings_are_refused(tiny: Path, tmp_path: Path) -> None:
    fake = Fake(800_000)
    S.search(tiny, trainer=fake, trials=4, epochs=1, macs=800_000, out=tmp_path / "o", seeds=1)
    first = len([c for c in fake.calls if not c[1]])
    r = S.search(tiny, trainer=fake, trials=7, epochs=1, macs=800_000, out=tmp_path / "o", seeds=1)
    assert len([t for t in r.trials if t.state == "COMPLETE" and not t.over_budget]) == 7
    assert len([c for c in fake.calls if not c[1]]) == sum(t.trained for t in r.trials) >= first
    with pytest.raises(ArgumentError, match="same budget"):
        S.search(tiny, trainer=fake, trials=7, epochs=1, macs=700_000, out=tmp_path / "o")


@pytest.mark.parametrize(
    "kwargs, parameter, words",
    [
        ({"macs": 100_000}, "macs", f"at least {tiny_macs(8, 8, 8, 8):,} MACs"),  # below the narrowest design
        ({"macs": "lots"}, "macs", "a positive count"),
        ({}, "macs", "a MACs budget"),
        ({"macs": 800_000, "trials": 0}, "trials", "at least 1"),
        ({"macs": 800_000, "widths": "some"}, "widths", "reductions, all"),
        ({"macs": 800_000, "blocks": "nothing*"}, "blocks", "blocks holding 1x1 reductions"),
    ],
)
def test_bad_settings_name_their_parameter(
    tiny: Path, tmp_path: Path, kwargs: dict, parameter: str, words: str
) -> None:
    args = {"trials": 3, **kwargs}
    with pytest.raises(ArgumentError) as err:
        S.search(tiny, trainer=Fake(10**9), epochs=1, out=tmp_path / "o", **args)
    assert err.value.parameter == parameter and words in str(err.value)
    assert not (tmp_path / "o").exists()  # refused before anything is written


def run_cli(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "inception_kit.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.parametrize(
    "storage, words",
    [
        ("ftp://example.org/x", "--storage: expected sqlite:///PATH, journal:PATH or an SQLAlchemy URL"),
        ("nonsense", "--storage: expected sqlite:///PATH, journal:PATH or an SQLAlchemy URL"),
        ("sqlite:////no/such/folder/s.db", "--storage: expected an SQLite file in an existing folder"),
        ("journal:/no/such/folder/j.log", "--storage: expected journal:PATH with PATH in an existing folder"),
        (
            "postgresql+psycopg2://u:secret@127.0.0.1:9/db",
            "--storage: expected a database the search can open",
        ),
    ],
)
def test_bad_storage_urls_exit_2_before_anything_is_written(
    tiny: Path, tmp_path: Path, storage: str, words: str
) -> None:
    out = tmp_path / "o"
    p = run_cli(
        [
            "search",
            str(tiny),
            "--data",
            "digits",
            "--macs",
            "800K",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--storage",
            storage,
        ]
    )
    assert p.returncode == 2, p.stderr
    assert words in p.stderr and "Traceback" not in p.stderr
    assert "secret" not in p.stderr  # a password in the URL is never shown
    assert not out.exists()


def test_bad_budgets_on_the_command_line_exit_2(tiny: Path, tmp_path: Path) -> None:
    common = [
        "search",
        str(tiny),
        "--data",
        "digits",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "o"),
    ]
    p = run_cli([*common, "--macs", "100K"])
    assert (
        p.returncode == 2
        and f"--macs: expected at least {tiny_macs(8, 8, 8, 8):,} MACs: the smallest reachable" in p.stderr
    )
    p = run_cli([*common, "--macs", "-3"])
    assert p.returncode == 2 and "--macs" in p.stderr
    p = run_cli(common)
    assert p.returncode == 2 and "--macs: expected a MACs budget, a params budget or both" in p.stderr
    p = run_cli([*common, "--macs", "800K", "--data", "idx:/no/such"])
    assert p.returncode == 2 and "/no/such, which does not exist" in p.stderr
    assert not (tmp_path / "o").exists()


def test_a_folder_that_is_not_a_search_s_is_refused(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    p = run_cli(
        [
            "search",
            str(tiny),
            "--data",
            "digits",
            "--macs",
            "800K",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--out",
            str(out),
        ]
    )
    assert p.returncode == 2 and "not a search's output folder" in p.stderr
    assert sorted(os.listdir(out)) == ["notes.txt"]


def test_a_full_disk_exits_2_and_leaves_nothing_half_written(
    tiny: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    budget = 800_000
    monkeypatch.setattr("inception_kit.cli.search.KerasTrainer", lambda *a, **k: Fake(budget))
    out = tmp_path / "o"
    real = Path.write_text

    def full(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.name.startswith(".front.json."):  # the last file staged: the others are staged already
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    code = main(
        [
            "search",
            str(tiny),
            "--data",
            "digits",
            "--macs",
            "800K",
            "--trials",
            "3",
            "--epochs",
            "1",
            "--seeds",
            "1",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"--out: expected a folder with room for the results, writable; received {out} (full)" in err
    assert sorted(os.listdir(out)) == ["search.db", "search.json"]  # no front, no temporaries
    monkeypatch.setattr(Path, "write_text", real)
    assert (
        main(
            [
                "search",
                str(tiny),
                "--data",
                "digits",
                "--macs",
                "800K",
                "--trials",
                "3",
                "--epochs",
                "1",
                "--seeds",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )  # room again: the same command finishes (a resume)
    assert {"front.json", "front.png", "front"} <= set(os.listdir(out))


@pytest.mark.slow
def test_a_real_search_on_digits(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    p = run_cli(
        [
            "search",
            str(tiny),
            "--data",
            "digits",
            "--macs",
            "800K",
            "--trials",
            "2",
            "--epochs",
            "2",
            "--seeds",
            "1",
            "--front-size",
            "1",
            "--out",
            str(out),
        ],
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    front = json.loads((out / "front.json").read_text())
    assert front["over_budget_trained"] == 0 and len(front["front"]) == 1
    trained = [t for t in front["trials"] if t["trained"]]
    assert 1 <= len(trained) <= 2 and all(
        0.0 <= t["accuracy"] <= 1.0 and t["macs"] <= 800_000 for t in trained
    )
    assert "search_tiny: " in p.stdout and "final acc (mean ± sd)" in p.stdout
