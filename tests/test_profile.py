"""`inception-kit profile` and benchmarks/compare.py: they run, print every branch and the
naive counterpart, and their predicted savings and built sub-models match the analysis.

No assertion here is about time: timings on a shared CI machine are noise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import inception_kit as ik
from conftest import ROOT, SPECS, run

SPEC = SPECS / "inception_3a.yaml"
TINY = ["--repeats", "2", "--warmup", "1", "--batch", "1"]


@pytest.fixture(scope="module")
def analysis():
    return ik.analyse(ik.load(SPEC))


@pytest.fixture(scope="module")
def profiled_json():
    r = run("profile", SPEC, *TINY, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # stdout is JSON only; the progress bar goes to stderr


@pytest.mark.slow
def test_table_shows_every_branch_and_the_naive_block(analysis):
    r = run("profile", SPEC, *TINY)
    assert r.returncode == 0, r.stderr
    assert "/call" not in r.stderr  # no progress into a pipe, not even Progbar's closing line
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    (block,) = analysis.blocks
    names = [line.split()[0] for line in lines if line.startswith(" ")]
    for branch in block.branches:
        assert branch.name in names
    assert any(line.strip().startswith("naive block") for line in lines)
    assert any(line.strip().startswith("b3 naive") for line in lines)  # 5x5 reduce removed
    row = next(line for line in lines if line.startswith(block.name + " "))
    assert f"{block.naive.macs / block.cost.macs:.2f}x" in row.split()
    assert_machine_line(r.stdout)


def assert_machine_line(stdout):
    """The machine line names this machine's core count and the TF and Keras that ran."""
    import keras
    import tensorflow as tf

    lines = stdout.splitlines()
    (i,) = [i for i, line in enumerate(lines) if line.startswith("machine: ")]
    wrapped = [lines[i]]  # the table wraps it at 100 columns, indenting what follows by two spaces
    while i + len(wrapped) < len(lines) and lines[i + len(wrapped)].startswith("  "):
        wrapped.append(lines[i + len(wrapped)])
    line = " ".join(part.strip() for part in wrapped)
    assert f", {len(os.sched_getaffinity(0))} cores" in line
    assert f"; TensorFlow {tf.__version__}, Keras {keras.__version__}" in line


@pytest.mark.slow
def test_json_savings_and_naive_submodels_match_the_analysis(analysis, profiled_json):
    data = profiled_json
    assert data["batch"] == 1 and data["repeats"] == 2 and data["warmup"] == 1
    (block,) = analysis.blocks
    (got,) = data["blocks"]
    assert got["name"] == block.name
    assert got["predicted_saving"] == block.naive.macs / block.cost.macs  # exactly
    assert got["naive"]["built_params"] == block.naive.params == got["naive_params"]
    assert got["naive"]["built_macs"] == block.naive.macs == got["naive_macs"]
    assert got["real"]["built_params"] == block.cost.params
    assert got["real"]["built_macs"] == block.cost.macs
    assert got["real"]["time"]["runs"] == got["naive"]["time"]["runs"] == 2
    real, naive = got["real"]["time"], got["naive"]["time"]
    for t in (real, naive):
        assert 0 < t["min_ms"] <= t["q1_ms"] <= t["median_ms"] <= t["q3_ms"] <= t["max_ms"]
    # naive median / real median, from the medians the JSON reports (each rounded to 0.1 µs)
    assert got["measured_saving"] == pytest.approx(naive["median_ms"] / real["median_ms"], rel=2e-3)
    by_name = {b["name"]: b for b in got["branches"]}
    assert list(by_name) == [b.name for b in block.branches]
    for br in block.branches:
        b = by_name[br.name]
        assert b["predicted_saving"] == br.naive.macs / br.cost.macs
        assert b["real"]["built_macs"] == br.cost.macs and b["real"]["built_params"] == br.cost.params
        if br.naive.macs != br.cost.macs:
            assert b["naive"]["built_params"] == br.naive.params
            assert b["naive"]["built_macs"] == br.naive.macs
        else:
            assert b["naive"] is None and b["measured_saving"] is None
    assert data["model"]["predicted_saving"] == analysis.naive.macs / analysis.total.macs
    assert data["machine"]["tensorflow"]


@pytest.mark.slow
def test_the_naive_network_builds_with_the_analysis_naive_params(analysis):
    """Independently of the profile command's own check: naive(plan) is a network Keras builds."""
    from inception_kit.keras.profile import built_macs

    (block,) = analysis.blocks
    removed = {r.name for r in analysis.rows if r.removed_in_naive}
    assert removed == {"inc3a_b2_conv1x1", "inc3a_b3_conv1x1"}  # the 3x3 and 5x5 reduces
    naive = ik.build_model(ik.naive(analysis.plan))
    assert naive.count_params() == block.naive.params == analysis.naive.params
    assert built_macs(naive) == block.naive.macs
    assert naive.output.shape[1:] == block.output_shape
    assert not removed & {layer.name for layer in naive.layers}
    assert block.naive.macs >= 28 * 28 * 32 * 25 * 192  # the naive 5x5 reads all 192 channels


def test_unknown_block_exits_2_naming_the_blocks():
    r = run("profile", SPEC, "--block", "inc9z")
    assert r.returncode == 2
    assert "--block: expected one of the blocks: inc3a; received 'inc9z'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "bad", [["--repeats", "0"], ["--batch", "x"], ["--warmup", "-1"], ["--format", "csv"]]
)
def test_bad_options_exit_2(bad):
    r = run("profile", SPEC, *bad)
    assert r.returncode == 2 and "usage:" in r.stderr


@pytest.mark.slow
def test_compare_report_section_counts_the_same_flops_as_the_profiler():
    # benchmarks/compare.py's report section runs `report --format json` and TF's profiler on
    # InceptionV3 in two processes; both counts must be the analysis' own, to the FLOP.
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--quick", "--only", "report"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    flops = ik.analyse(ik.load(SPECS / "inception_v3.yaml")).total.flops
    assert f"  FLOPs: report {flops:,}, profiler {flops:,}: the same\n" in r.stdout
    assert_machine_line(r.stdout)
