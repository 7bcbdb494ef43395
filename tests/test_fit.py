"""`inception-kit fit` and `inception_kit.design.fit.fit`: 1×1 reduction widths chosen for a budget.

The rule under test: one scale factor s on every selected reduction width, each rounded to
a multiple of 8 (at least 8, at most the original), the largest s (steps of 0.001) that
meets the budget. Golden figures come from GoogLeNet's table (3x3_reduce and 5x5_reduce
are its reductions) rebuilt with the expected widths and analysed afresh.
"""

import math
import subprocess

import pytest

import inception_kit as ik
from conftest import CLI, ROOT, SPECS
from inception_kit.design.fit import fit, parse_count, sweep
from inception_kit.planner import iter_ops

GOOGLENET = SPECS / "googlenet.yaml"
GOOGLENET_MACS = 1_582_671_872  # README's figure, also checked by test_canonical's rebuild


def run(*args, cwd=ROOT):
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def rule(w, s, step=8):
    return w if s >= 1 or w <= step else min(w, step * max(1, math.floor(w * s / step + 0.5)))


def inception_blocks(model, pattern=""):
    return [
        b
        for b in model.layers
        if isinstance(b, ik.BlockSpec) and b.name.startswith(pattern) and "b3" in b.branches
    ]


def googlenet_at(scale, pattern=""):
    """GoogLeNet with its 3x3 and 5x5 reductions set by the rule, analysed from scratch."""
    m = ik.load(GOOGLENET).model
    for b in inception_blocks(m, pattern):
        for br in ("b2", "b3"):
            layer = b.branches[br][0]
            layer.args["filters"] = rule(layer.args["filters"], scale)
    return ik.analyse(ik.load(m))


def test_parse_count_suffixes():
    assert parse_count("1.2G") == 1_200_000_000
    assert parse_count("5M") == 5_000_000 and parse_count("800k") == 800_000
    assert parse_count("12,000") == 12_000 and parse_count(42) == 42
    for bad in ("1.2X", "", "-5M", "0", "G"):
        with pytest.raises(ValueError):
            parse_count(bad)


def test_googlenet_macs_budget_largest_scale_that_fits():
    r = fit(GOOGLENET, macs="1.2G")
    assert r.before.total.macs == GOOGLENET_MACS
    expected = googlenet_at(r.scale)
    assert r.after.total.macs == expected.total.macs <= 1_200_000_000
    assert r.after.total.params == expected.total.params
    assert googlenet_at(r.scale + 0.001).total.macs > 1_200_000_000  # the largest that fits
    # 18 reductions, each changed by the rule, nothing else changed
    original = ik.load(GOOGLENET).model
    olds = [b.branches[br][0].args["filters"] for b in inception_blocks(original) for br in ("b2", "b3")]
    assert [(c.old, c.new) for c in r.changes] == [
        (w, rule(w, r.scale)) for w in olds if rule(w, r.scale) != w
    ]
    assert all(c.new % 8 == 0 and c.new < c.old for c in r.changes)
    assert r.before.plan.model == ik.load(GOOGLENET).model != r.model  # the original is kept
    assert ik.analyse(ik.load(r.before.plan.model)).total.macs == GOOGLENET_MACS
    # every block keeps its output width, every other layer its arguments
    assert [b.output_shape for b in r.after.blocks] == [b.output_shape for b in r.before.blocks]
    changed = {c.name for c in r.changes}
    for a, b in zip(iter_ops(r.before.plan.steps), iter_ops(r.after.plan.steps)):
        assert a.name == b.name and a.output_shape[:-1] == b.output_shape[:-1]
        if a.name not in changed:
            assert a.args == b.args and a.output_shape == b.output_shape


def test_blocks_glob_selects_and_params_budget():
    r = fit(GOOGLENET, params="5.5M", blocks="inc4*")
    assert {c.name.split("_")[0] for c in r.changes} == {"inc4a", "inc4b", "inc4c", "inc4d", "inc4e"}
    expected = googlenet_at(r.scale, "inc4")
    assert r.after.total.params == expected.total.params <= 5_500_000
    assert googlenet_at(r.scale + 0.001, "inc4").total.params > 5_500_000
    by = {e.name: e for e in r.diff.entries}
    assert by["inc3a"].status == by["inc5b"].status == "same" and by["inc4a/b2"].status == "changed"


def test_impossible_budget_names_the_smallest_reachable_figure():
    smallest = googlenet_at(0.001).total.macs  # every reduction at 8 channels
    with pytest.raises(ik.ArgumentError) as err:
        fit(GOOGLENET, macs="500M")
    assert err.value.parameter == "macs"
    assert f"macs: expected at least {smallest:,} MACs" in str(err.value)
    assert "received 500,000,000" in str(err.value)
    r = run("fit", GOOGLENET, "--macs", "0.5G")
    assert r.returncode == 2 and f"at least {smallest:,} MACs" in r.stderr and "Traceback" not in r.stderr
    assert fit(GOOGLENET, macs=smallest).after.total.macs == smallest  # exactly reachable


def test_budget_already_met_changes_nothing():
    r = fit(GOOGLENET, macs="2G")
    assert r.scale == 1.0 and r.changes == [] and r.after.total.macs == GOOGLENET_MACS


def test_written_spec_keeps_the_file_and_comments_each_change(tmp_path):
    out = tmp_path / "fitted.yaml"
    r = run("fit", GOOGLENET, "--macs", "1.2G", "-o", out)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    result = fit(GOOGLENET, macs="1.2G")
    assert result.rewritten
    assert ik.load(out).model == result.model  # reads back as the fitted model
    assert ik.analyse(ik.load(out)).total.macs == result.after.total.macs
    assert sum(line.count(" -> ") for line in text.splitlines() if "(fit:" in line) == len(result.changes)
    row = next(line for line in text.splitlines() if "name: inc3a" in line)
    old, new = next((c.old, c.new) for c in result.changes if c.name == "inc3a_b2_conv1x1")
    assert f"3x3_reduce: {new}," in row and f"3x3_reduce {old} -> {new}" in row
    assert "# GoogLeNet (Inception v1)" in text  # the file's own comments are kept
    out.write_text("precious")
    r = run("fit", GOOGLENET, "--macs", "1.2G", "-o", out)
    assert r.returncode == 2 and "already exists" in r.stderr and out.read_text() == "precious"
    assert run("fit", GOOGLENET, "--macs", "1.2G", "-o", out, "--overwrite").returncode == 0


def test_shared_template_argument_falls_back_to_the_expanded_spec(tmp_path):
    # InceptionV3's inception_b template uses its argument c for the 1x1 reduction and the
    # 1x7 conv after it: editing c would change both, so the expanded spec is written.
    r = fit(SPECS / "inception_v3.yaml", macs="5G")
    assert not r.rewritten and r.changes
    assert r.after.total.macs <= 5_000_000_000
    out = tmp_path / "v3.yaml"
    from inception_kit.design.fit import write

    write(r, out)
    assert ik.load(out).model == r.model
    assert ik.analyse(ik.load(out)).total.macs == r.after.total.macs
    lines = [line for line in out.read_text().splitlines() if line.startswith("# fit: ")]
    assert len(lines) == len(r.changes)


def test_sweep_matches_fresh_analyses_and_cli_prints_it():
    points = sweep(GOOGLENET, steps=4, macs=1_200_000_000)
    assert [p.scale for p in points] == [0.25, 0.5, 0.75, 1.0]
    for p in points:
        a = googlenet_at(p.scale)
        assert (p.macs, p.params) == (a.total.macs, a.total.params)
        assert p.fits == (a.total.macs <= 1_200_000_000)
    r = run("fit", GOOGLENET, "--sweep", "--steps", "4")
    assert r.returncode == 0, r.stderr
    assert f"{points[0].macs:,}" in r.stdout and f"{GOOGLENET_MACS:,}" in r.stdout


def test_multiple_one_on_the_tiny_spec_and_no_reductions_is_an_error():
    r = fit(SPECS / "inception_3a_tiny.yaml", macs=100_000, multiple=1)
    tiny = ik.load(SPECS / "inception_3a_tiny.yaml").model
    block = tiny.layers[1]
    for br in ("b2", "b3"):
        block.branches[br][0].args["filters"] = rule(block.branches[br][0].args["filters"], r.scale, 1)
    assert ik.analyse(ik.load(tiny)).total.macs == r.after.total.macs <= 100_000
    with pytest.raises(ik.ArgumentError, match=r"^blocks: expected blocks holding 1x1 reductions"):
        fit(GOOGLENET, macs="1G", blocks="nothing*")
    r = run("fit", SPECS / "one_by_one.yaml", "--macs", "1M")
    assert r.returncode == 2 and "--blocks" in r.stderr


def test_usage_errors_exit_2():
    assert run("fit", GOOGLENET).returncode == 2  # no budget
    r = run("fit", GOOGLENET, "--macs", "1G", "--multiple", "0")
    assert r.returncode == 2 and "--multiple: expected a positive integer; received 0" in r.stderr
    r = run("fit", GOOGLENET, "--sweep", "--steps", "0")
    assert r.returncode == 2 and "--steps: expected a whole number from 1 to 1000; received 0" in r.stderr
    r = run("fit", GOOGLENET, "--macs", "1.2X")
    assert r.returncode == 2 and "expected a count such as 1.2G" in r.stderr


def test_sweep_plot_and_help(tmp_path):
    png = tmp_path / "sweep.png"
    r = run("fit", GOOGLENET, "--sweep", "--steps", "4", "--macs", "1.2G", "--plot", png)
    assert r.returncode == 0, r.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    r = run("fit", GOOGLENET, "--sweep", "--plot", png)
    assert r.returncode == 2 and "already exists" in r.stderr
    for command in ("fit", "diff", "import"):
        r = run(command, "--help")
        assert r.returncode == 0 and "usage: inception-kit " + command in r.stdout
