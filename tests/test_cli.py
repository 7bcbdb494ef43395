"""The command line contract: exit 0 / 2 / 1, one clear message, traceback only on --debug."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT, SHIPPED, SPECS, run


def test_validate_ok_exits_0():
    r = run("validate", SPECS / "inception_3a.yaml")
    assert r.returncode == 0, r.stderr
    params = (
        (192 * 64 + 64)
        + (192 * 96 + 96)
        + (9 * 96 * 128 + 128)
        + (192 * 16 + 16)
        + (25 * 16 * 32 + 32)
        + (192 * 32 + 32)
    )
    assert f"{params:,} params" in r.stdout


def test_bad_spec_exits_2_with_path_and_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [28, 28, 192]\nlayers:\n  - conv: {filters: 16, kernel: 0}\n")
    r = run("validate", bad)
    assert r.returncode == 2
    assert (
        f"{bad}:3:33: layers[0].kernel: expected a positive integer or [height, width] of positive integers; received 0"
        in r.stderr
    )
    assert "Traceback" not in r.stderr
    r = run("--debug", "validate", bad)
    assert r.returncode == 2 and "Traceback" in r.stderr


@pytest.mark.parametrize("target", ["missing.yaml", "."])
def test_missing_file_and_directory_exit_2(target, tmp_path):
    r = run("report", tmp_path / target if target != "." else tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert ("does not exist" if target != "." else "a directory") in r.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([], "error: the following arguments are required: spec"),
        (
            [SPECS / "one_by_one.yaml", "--format", "pdf"],
            "error: argument --format: invalid choice: 'pdf' (choose from ",
        ),
        ([SPECS / "one_by_one.yaml", "--bogus"], "error: unrecognized arguments: --bogus"),
    ],
    ids=["missing", "bad choice", "unknown"],
)
def test_usage_error_exits_2_with_the_subcommands_usage(args, error):
    r = run("report", *args)
    assert r.returncode == 2
    assert r.stderr.startswith("usage: inception-kit report [-h]") and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1].startswith(error)


def test_report_json_to_file_is_atomic_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "r.json"
    r = run("report", SPECS / "five_by_five_bottleneck.yaml", "--format", "json", "--out", out)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["model"]["macs"] == 28 * 28 * 16 * 192 + 28 * 28 * 32 * 25 * 16
    assert data["model"]["naive_macs"] == 28 * 28 * 32 * 25 * 192
    out.write_text("precious")
    r = run("report", SPECS / "one_by_one.yaml", "--format", "json", "--out", out)
    assert r.returncode == 2 and r.stderr == f"error: {out} already exists; pass --overwrite to replace it\n"
    assert out.read_text() == "precious"
    r = run("report", SPECS / "one_by_one.yaml", "--format", "json", "--out", out, "--overwrite")
    assert r.returncode == 0 and json.loads(out.read_text())["model"]["name"] == "one_by_one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary left behind


def test_internal_error_exits_1(tmp_path):
    # A destination whose parent is a file: not the spec's fault, so exit 1, one line.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("report", SPECS / "one_by_one.yaml", "--out", blocker / "r.txt")
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_report_table_fits_100_columns_and_labels_units(path):
    import inception_kit as ik

    text = ik.report(path)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "MACs (multiply-adds)" in text and "FLOPs (TF profiler)" in text


def test_report_shows_resolved_values():
    r = run("report", SPECS / "inception_v3.yaml")
    assert r.returncode == 0
    # The first conv as built: defaults (bias off, batch norm without scale, ReLU) applied.
    assert "conv 3x3/2 valid bn relu" in r.stdout
    assert "mixed0:" in r.stdout and "naive MACs" in r.stdout


def test_five_by_five_report_shows_the_lecture_numbers():
    r = run("report", SPECS / "five_by_five_bottleneck.yaml", "--format", "markdown")
    assert r.returncode == 0
    assert f"{120_422_400:,}" in r.stdout and f"{12_443_648:,}" in r.stdout


@pytest.mark.slow
def test_build_summary_keeps_its_width_in_a_pipe():
    r = run("build", SPECS / "inception_3a_tiny.yaml")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(line for line in lines if "Layer (type)" in line)
    assert header.split() == [
        "┃",
        "Layer",
        "(type)",
        "┃",
        "Output",
        "Shape",
        "┃",
        "Param",
        "#",
        "┃",
        "Connected",
        "to",
        "┃",
    ]
    assert len(header) == 100 and max(len(line) for line in lines) == 100


def test_a_missing_optional_package_names_its_extra(tmp_path):
    # Simulate an install without the keras extra: `import keras` fails in the subprocess.
    code = (
        "import sys; sys.modules['keras'] = None; sys.modules['tensorflow'] = None\n"
        "from inception_kit.cli import main; sys.exit(main(['build', 'specs/one_by_one.yaml']))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "pip install 'inception-kit[tensorflow]'" in r.stderr and "Traceback" not in r.stderr
