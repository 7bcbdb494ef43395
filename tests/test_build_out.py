"""`inception-kit build --out x.keras` writes what `inspect` reads: the spec and report beside it."""

import subprocess

import keras

import inception_kit as ik
from conftest import CLI, ROOT


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_build_out_is_inspectable_and_holds_the_knobbed_spec(tmp_path):
    out = tmp_path / "tiny.keras"
    r = run("build", "inception_3a_tiny", "--input", "16x16x3", "--classes", "4", "--out", out)
    assert r.returncode == 0, r.stderr
    spec = ik.load_spec("inception_3a_tiny", input_shape=(16, 16, 3), classes=4)
    shown = run("inspect", out, "--format", "yaml")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == spec.to_yaml()
    table = run("inspect", out)
    assert table.returncode == 0, table.stderr
    assert f"{ik.analyse(spec).total.params:,}" in table.stdout
    model = keras.models.load_model(out)
    assert model.output.shape[1:] == (4,)
    assert model.count_params() == ik.analyse(spec).total.params
    again = run("build", "inception_3a_tiny", "--out", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_build_out_must_end_in_keras(tmp_path):
    r = run("build", "inception_3a_tiny", "--out", tmp_path / "tiny.h5")
    assert r.returncode == 2
    assert "a path ending in .keras" in r.stderr
    assert not (tmp_path / "tiny.h5").exists()
