"""One way in (`ik.load`), every spec argument read the same way on the command line (stdin
included), the global flags in either place, and the budget checked before anything builds."""

import json
import subprocess
import sys
import warnings

import pytest

import inception_kit as ik
from conftest import CLI, ROOT, SPECS, TEST_SPECS, run
from inception_kit.errors import ArgumentError

TINY = SPECS / "five_by_five_bottleneck.yaml"
OVER_BUDGET = TEST_SPECS / "invalid" / "budget_too_many_params.yaml"


def stdin_run(*args, spec):
    argv = [str(a) for a in args]
    return subprocess.run(
        [*CLI, *argv], cwd=ROOT, input=spec.read_text(), capture_output=True, text=True, timeout=120
    )


# -- the library: ik.load ------------------------------------------------------------------


def test_load_takes_every_form_of_a_spec_and_plans_it_once():
    from_file = ik.load(TINY)
    model = from_file.model
    assert ik.load("five_by_five_bottleneck").model == model  # a preset name
    assert ik.load(model).model == model  # a ModelSpec
    assert ik.load(model.to_data()).model == model  # plain data
    assert ik.loads(TINY.read_text(), str(TINY)).model == model  # YAML text
    assert ik.load(from_file) is from_file  # a plan, with nothing to change, is the plan
    assert from_file.output_shape == (28, 28, 32)
    assert ik.load(from_file, input_shape=(14, 14, 192)).output_shape == (14, 14, 32)


def test_load_checks_the_budget_and_the_plan_keeps_the_one_it_met():
    with pytest.raises(ik.SpecError, match="expected a model of at most 1,000,000,000 parameters"):
        ik.load(OVER_BUDGET)
    assert ik.load(OVER_BUDGET, budget=None).model.name == "budget_too_many_params"  # costed, never built
    small = ik.Budget(max_params=20_000)
    params = (192 * 16 + 16) + (25 * 16 * 32 + 32)  # the 1x1 reduction, then the 5x5
    with pytest.raises(ik.SpecError, match=f"at most 15,000 parameters; received {params:,}, of which"):
        ik.load(TINY, budget=ik.Budget(max_params=15_000))
    assert ik.load(TINY, budget=small).budget == small
    assert ik.load(TINY).budget == ik.DEFAULT_BUDGET


def test_analyse_and_report_take_the_plan():
    p = ik.load(TINY)
    a = ik.analyse(p)
    assert a.plan is p and a.naive_plan is not None
    assert a.total.macs == 28 * 28 * 16 * 192 + 28 * 28 * 32 * 25 * 16
    assert a.naive.macs == 28 * 28 * 32 * 25 * 192
    assert json.loads(ik.report(p, "json"))["model"]["macs"] == a.total.macs


@pytest.mark.parametrize("name", sorted(ik._DEPRECATED))
def test_every_name_0_3_exported_still_works_for_a_release_and_warns(name):
    with pytest.warns(DeprecationWarning, match="is deprecated and goes in 0.5"):
        value = getattr(ik, name)
        if callable(value) and name in ("load_plan", "load_spec", "validate"):
            value(TINY)  # the loading shims warn when called
        elif name in ("loads_plan", "loads_spec"):
            value(TINY.read_text())
        elif name == "from_data":
            value(ik.load(TINY).model.to_data())
    assert value is not None


def test_the_deprecated_loaders_behave_as_before():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert ik.load_spec(TINY) == ik.load(TINY).model
        assert ik.load_plan(OVER_BUDGET).model.name == "budget_too_many_params"  # load_plan never checked it
        assert ik.analyse(TINY).total == ik.analyse(ik.load(TINY)).total  # a spec for a plan still works
        with pytest.raises(ik.SpecError, match="parameters"):
            ik.analyse(OVER_BUDGET)  # and a spec was checked against the default budget


def test_the_root_exports_only_what_a_user_needs():
    assert not set(ik.__all__) & set(ik._DEPRECATED)
    for name in ik.__all__:
        if name not in ("build_model", "apply_block", "export", "inspect_artifact"):  # these load Keras
            assert getattr(ik, name) is not None


def test_a_library_error_names_the_parameter_and_the_cli_names_the_flag():
    err = ArgumentError("multiple", "a positive integer", 0)
    assert str(err) == "multiple: expected a positive integer; received 0"
    assert err.worded("--multiple") == "--multiple: expected a positive integer; received 0"
    with pytest.raises(ArgumentError, match=r"^steps: expected a whole number from 1 to 1000; received 0$"):
        from inception_kit.design.fit import sweep

        sweep(ik.load("googlenet"), steps=0)
    r = run("fit", "googlenet", "--sweep", "--steps", "0")
    assert (
        r.returncode == 2
        and r.stderr == "error: --steps: expected a whole number from 1 to 1000; received 0\n"
    )


# -- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_flags_work_before_and_after_the_command(where, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [8, 8, 3]\nlayers:\n  - conv: {filters: 0, kernel: 1}\n")
    flags = ["--debug", "--backend", "jax"]
    argv = [*flags, "validate", bad] if where == "before" else ["validate", bad, *flags]
    r = run(*argv)
    assert r.returncode == 2 and "layers[0].filters" in r.stderr
    assert "Traceback" in r.stderr  # --debug took effect, wherever it stood
    r = run("report", TINY, "--backend", "nope")
    assert r.returncode == 2 and "argument --backend: invalid choice: 'nope'" in r.stderr


def test_a_global_flag_before_the_command_is_not_undone_by_the_commands_default():
    r = run("--debug", "validate", OVER_BUDGET)
    assert r.returncode == 2 and "Traceback" in r.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "-"],
        ["report", "-", "--format", "json"],
        ["diff", "-", "inception_3a", "--format", "json"],
        ["diff", "inception_3a", "-", "--format", "json"],
        ["fit", "-", "--macs", "1G"],
        ["fit", "-", "--sweep", "--steps", "2"],
    ],
    ids=lambda a: " ".join(a),
)
def test_every_command_that_reads_a_spec_reads_stdin(argv):
    spec = SPECS / "googlenet.yaml"
    from_stdin = stdin_run(*argv, spec=spec)
    assert from_stdin.returncode == 0, from_stdin.stderr
    from_file = run(*[str(spec) if a == "-" else a for a in argv])
    assert from_file.returncode == 0, from_file.stderr
    assert from_stdin.stdout.replace("<stdin>", str(spec)) == from_file.stdout


def test_diagram_reads_stdin(tmp_path):
    out = tmp_path / "m.svg"
    r = stdin_run("diagram", "-", "-o", out, spec=SPECS / "inception_3a.yaml")
    assert r.returncode == 0, r.stderr
    assert out.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_stdin_is_read_once():
    r = stdin_run("diff", "-", "-", spec=TINY)
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1].strip() == (
        "<stdin>: expected at most one spec read from standard input ('-'); received a and b"
    )


@pytest.mark.parametrize("command", ["build", "export", "deploy", "train", "profile", "diagram", "report"])
def test_every_command_that_builds_checks_the_budget_before_tensorflow_loads(command, tmp_path):
    extra = {
        "export": ["--out", tmp_path / "e"],
        "deploy": ["--out", tmp_path / "d"],
        "train": ["--data", "digits", "--out", tmp_path / "t"],
        "diagram": ["-o", tmp_path / "x.svg"],
    }
    argv = [command, TINY, "--max-params", "1000", *extra.get(command, [])]
    code = (
        "import sys; from inception_kit.cli import main; rc = main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules); sys.exit(rc)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, *map(str, argv)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2, r.stderr
    params = (192 * 16 + 16) + (25 * 16 * 32 + 32)
    assert f"expected a model of at most 1,000 parameters; received {params:,}" in r.stderr
    assert r.stdout.strip() == "False False"  # refused before Keras or TensorFlow loaded
    assert not any(tmp_path.iterdir())  # nothing written
