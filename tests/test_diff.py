"""`inception-kit diff A B` and `ik.diff(a, b)`: two designs' costs side by side."""

import csv
import io
import json
import struct
import subprocess

import inception_kit as ik
from conftest import CLI, ROOT, SPECS
from inception_kit.design.diff import METRICS, MODEL_METRICS

NAIVE_5X5 = 28 * 28 * 32 * (5 * 5 * 192)  # the lesson: 120,422,400
BOTTLENECK_5X5 = 28 * 28 * 16 * 192 + 28 * 28 * 32 * (5 * 5 * 16)  # 2,408,448 + 10,035,200


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_lesson_numbers_naive_against_bottleneck():
    d = ik.diff(SPECS / "five_by_five_naive.yaml", SPECS / "five_by_five_bottleneck.yaml")
    m = d.model
    assert (m.a["macs"], m.b["macs"]) == (NAIVE_5X5, BOTTLENECK_5X5) == (120_422_400, 12_443_648)
    assert m.delta("macs") == BOTTLENECK_5X5 - NAIVE_5X5
    assert (m.a["params"], m.b["params"]) == (5 * 5 * 192 * 32 + 32, 192 * 16 + 16 + 5 * 5 * 16 * 32 + 32)
    assert m.a["flops"] == 2 * NAIVE_5X5 + 28 * 28 * 32  # 2 per MAC and the bias add
    # both have the same naive network: the bottleneck's saving is against the naive spec
    assert m.a["naive_macs"] == m.b["naive_macs"] == NAIVE_5X5
    assert m.a["macs_saving_ratio"] == 1.0 and m.b["macs_saving_ratio"] == round(
        NAIVE_5X5 / BOTTLENECK_5X5, 4
    )
    # peak activation: input + output of the largest layer, float32
    assert m.a["peak_activation_bytes"] == 4 * (28 * 28 * 192 + 28 * 28 * 32)
    assert m.status == "changed" and len(d.entries) == 1  # no blocks


def test_a_spec_against_itself_is_all_zeros():
    d = ik.diff(SPECS / "googlenet.yaml", SPECS / "googlenet.yaml")
    assert len(d.entries) == 1 + 9 + 9 * 4  # model, 9 blocks, 4 branches each
    for e in d.entries:
        assert e.status == "same"
        for m in MODEL_METRICS if e.level == "model" else METRICS:
            assert e.delta(m) == 0, (e.name, m)
    rows = d.data()["rows"]
    assert all(set(r["delta"].values()) == {0} for r in rows)


def test_changed_block_and_branch_have_exact_deltas():
    a = ik.load(SPECS / "inception_3a.yaml").model
    b = ik.load(SPECS / "inception_3a.yaml").model
    b3 = b.layers[-1].branches["b3"]
    assert b3[0].args["filters"] == 16
    b3[0].args["filters"] = 8  # a narrower 5x5 reduction
    d = ik.diff(a, b)
    by = {e.name: e for e in d.entries}
    expected = 28 * 28 * 192 * (8 - 16) + 28 * 28 * 32 * 25 * (8 - 16)
    assert by["inc3a/b3"].status == by["inc3a"].status == by["model"].status == "changed"
    assert by["inc3a/b3"].delta("macs") == by["inc3a"].delta("macs") == by["model"].delta("macs") == expected
    assert by["inc3a/b3"].delta("params") == (192 + 1) * (8 - 16) + 25 * 32 * (8 - 16)
    for other in ("b1", "b2", "b4"):
        assert by[f"inc3a/{other}"].status == "same"


def test_added_and_removed_blocks():
    d = ik.diff(SPECS / "inception_3a.yaml", SPECS / "googlenet.yaml")
    status = {e.name: e.status for e in d.entries}
    assert status["inc3a"] == "same" and status["inc3b"] == "added" and status["inc5b/b4"] == "added"
    gn = ik.analyse(ik.load(SPECS / "googlenet.yaml"))
    inc3b = next(b for b in gn.blocks if b.name == "inc3b")
    assert next(e for e in d.entries if e.name == "inc3b").delta("macs") == inc3b.cost.macs
    back = ik.diff(SPECS / "googlenet.yaml", SPECS / "inception_3a.yaml")
    assert {e.name: e.status for e in back.entries}["inc4e"] == "removed"
    assert [e.name for e in back.entries] == [e.name for e in d.entries]


def test_formats_carry_the_same_numbers():
    d = ik.diff(SPECS / "five_by_five_naive.yaml", SPECS / "five_by_five_bottleneck.yaml")
    assert json.loads(d.render("json")) == json.loads(json.dumps(d.data()))
    rows = list(csv.DictReader(io.StringIO(d.render("csv"))))
    assert rows[0]["a_macs"] == str(NAIVE_5X5) and rows[0]["b_macs"] == str(BOTTLENECK_5X5)
    assert rows[0]["delta_macs"] == str(BOTTLENECK_5X5 - NAIVE_5X5)
    md = d.render("markdown")
    saved = NAIVE_5X5 - BOTTLENECK_5X5
    assert f"| MACs (multiply-adds) | {NAIVE_5X5:,} | {BOTTLENECK_5X5:,} | -{saved:,} | -89.7% |" in md
    table = d.render("table")
    assert "120.42M" in table and "12.44M" in table and "-107.98M" in table


def test_cli_diff_json_exit_0_and_bad_spec_exit_2(tmp_path):
    r = run(
        "diff", SPECS / "five_by_five_naive.yaml", SPECS / "five_by_five_bottleneck.yaml", "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)["rows"][0]
    assert (model["a"]["macs"], model["b"]["macs"]) == (NAIVE_5X5, BOTTLENECK_5X5)
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [28, 28, 192]\nlayers:\n  - conv: {filters: 0, kernel: 1}\n")
    r = run("diff", SPECS / "one_by_one.yaml", bad)
    assert r.returncode == 2 and f"{bad}:3:21: layers[0].filters" in r.stderr and "Traceback" not in r.stderr
    r = run("diff", SPECS / "one_by_one.yaml")
    assert r.returncode == 2 and "usage:" in r.stderr


def test_cli_diff_out_and_plot_refuse_to_overwrite(tmp_path):
    out, png = tmp_path / "d.md", tmp_path / "d.png"
    r = run(
        "diff",
        SPECS / "inception_3a.yaml",
        SPECS / "googlenet.yaml",
        "--format",
        "markdown",
        "-o",
        out,
        "--plot",
        png,
    )
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("# diff: inception_3a → googlenet")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1200 and height > 300
    out.write_text("precious")
    r = run("diff", SPECS / "inception_3a.yaml", SPECS / "googlenet.yaml", "-o", out)
    assert r.returncode == 2 and "already exists" in r.stderr and out.read_text() == "precious"
