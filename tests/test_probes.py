"""Issue 22's probes of the spec and the command line, as a hostile user would type them: each
is refused with one line naming the file and field (or the flag), exit 2, no traceback, and
before TensorFlow loads."""

import subprocess
import sys

import pytest

import inception_kit as ik
from conftest import ROOT, SPECS, run

TINY = SPECS / "five_by_five_bottleneck.yaml"
NAME_RULE = "name: expected a name of 1 to 64 letters, digits, '_', '-' or '.', not starting with '-' or '.'"


def spec_named(name: str) -> str:
    return f"name: {name}\ninput: [8, 8, 3]\nlayers:\n  - conv: {{filters: 4, kernel: 1}}\n"


@pytest.mark.parametrize(
    ("name", "received"),
    [
        ('"a/b"', "'a/b'"),
        ('".."', "'..'"),
        ('"../../etc/passwd"', "'../../etc/passwd'"),
        ('"a\\0b"', "'a\\x00b'"),
        ("x" * 300, "'" + "x" * 56 + "..."),  # shown cut, never 300 characters of it
    ],
    ids=["slash", "dot-dot", "traversal", "NUL", "300 characters"],
)
def test_a_spec_name_that_could_become_a_path_is_refused(tmp_path, name, received):
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_named(name))
    r = run("validate", spec)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{spec}:1:7: {NAME_RULE}; received {received}" in r.stderr


def test_a_control_character_in_a_name_is_refused_where_it_stands(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_named('"a\x01b"'))
    r = run("validate", spec)
    assert r.returncode == 2
    assert f"{spec}:1:9: <file>: expected printable text; received the control character U+0001" in r.stderr


def test_nan_and_huge_numbers_in_yaml_are_refused_with_their_field(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "input: [8, 8, 3]\nlayers:\n  - conv: {filters: .nan, kernel: 1}\n  - dropout: {rate: .inf}\n"
    )
    r = run("validate", spec)
    assert r.returncode == 2
    assert f"{spec}:3:21: layers[0].filters: expected a positive integer; received nan" in r.stderr
    assert (
        f"{spec}:4:21: layers[1].rate: expected a number from 0 up to (not including) 1; received inf"
        in r.stderr
    )
    spec.write_text("input: [8, 8, 3]\nlayers:\n  - conv: {filters: 1000000000000, kernel: 1}\n")
    r = run("validate", spec)
    params = 3 * 10**12 + 10**12  # 1x1 over 3 channels, and a bias per filter
    assert r.returncode == 2 and f"received {params:,}, of which {params:,} in conv1x1" in r.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["profile", TINY, "--batch", "0"], "argument --batch: expected a positive integer; received 0"),
        (
            ["profile", TINY, "--repeats", "nan"],
            "argument --repeats: expected a positive integer; received 'nan'",
        ),
        (["fit", "googlenet", "--macs", "nan"], "argument --macs: expected a count such as 1.2G"),
        (["fit", "googlenet", "--macs", "-5"], "argument --macs: expected a count such as 1.2G"),
        (
            ["fit", "googlenet", "--sweep", "--steps", str(10**9)],
            f"--steps: expected a whole number from 1 to 1000; received {10**9}",
        ),
        (["report", "googlenet", "--classes", "0"], "classes: expected a positive whole number; received 0"),
        (["report", TINY, "--input", "0x0x3"], "argument --input: expected HEIGHTxWIDTHxCHANNELS"),
        (
            ["validate", TINY, "--max-params", "0"],
            "argument --max-params: expected a positive whole number; received 0",
        ),
        (
            ["validate", TINY, "--max-params", "1e3"],
            "argument --max-params: expected a positive whole number",
        ),
    ],
    ids=lambda v: " ".join(map(str, v)) if isinstance(v, list) else "",
)
def test_absurd_numbers_on_the_command_line_exit_2(argv, message):
    r = run(*argv)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_a_batch_too_big_for_memory_is_refused_before_tensorflow_loads():
    per_sample = ik.analyse(ik.load(TINY)).memory.peak_activation_bytes
    most = ik.DEFAULT_BUDGET.max_activation_bytes // per_sample
    code = (
        "import sys; from inception_kit.cli import main; rc = main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules); sys.exit(rc)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "profile", str(TINY), "--batch", str(10**12)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stdout.strip() == "False"
    assert r.stderr == (
        f"error: --batch: expected a whole number of samples from 1 to {most:,} (each needs about "
        f"{per_sample:,} bytes of activations; the budget allows "
        f"{ik.DEFAULT_BUDGET.max_activation_bytes:,}); received {10**12}\n"
    )


def test_check_batch_takes_only_whole_positive_numbers():
    from inception_kit.analysis import check_batch

    a = ik.analyse(ik.load(TINY))
    check_batch(a, 8)
    for bad in (0, -1, 2.0, True, 10**12):
        with pytest.raises(ik.ArgumentError, match=r"^batch: expected a whole number of samples"):
            check_batch(a, bad)
