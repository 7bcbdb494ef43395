"""Presets: the shipped specs by name, in a source checkout and in an installed wheel."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import inception_kit as ik
from conftest import CLI, ROOT, SHIPPED
from inception_kit.errors import SpecError


def run(*args, cwd=ROOT):
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_every_shipped_spec_is_a_preset():
    assert ik.list_presets() == sorted(p.stem for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_preset_name_loads_the_same_spec_as_its_path(path):
    assert ik.load(path.stem).model == ik.load(path).model


def test_an_unknown_preset_name_gets_a_did_you_mean():
    with pytest.raises(SpecError) as err:
        ik.load("googlent")
    assert (
        str(err.value)
        == "<spec>: expected a spec file or a preset name; received 'googlent' (did you mean 'googlenet'?)"
    )


def test_a_path_is_never_taken_for_a_preset(tmp_path):
    # A name with .yaml, or with a folder in it, is a path: a missing one says so.
    for arg in ("googlenet.yaml", "nowhere/googlenet"):
        with pytest.raises(SpecError, match="an existing spec file; received a path that does not exist"):
            ik.load(arg)
    # A file in the working folder named like a preset wins over the preset.
    (tmp_path / "googlenet").write_text(
        "name: mine\ninput: [8, 8, 3]\nlayers: [{conv: {filters: 4, kernel: 1}}]\n"
    )
    r = run("validate", "googlenet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "mine: 16 params" in r.stdout  # 4 filters of 1x1x3, plus 4 biases


def test_cli_takes_a_preset_name_and_reports_like_the_path():
    by_name = run("report", "googlenet", "--format", "json")
    by_path = run("report", ROOT / "specs" / "googlenet.yaml", "--format", "json")
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout == by_path.stdout


def test_cli_unknown_preset_exits_2_with_did_you_mean():
    r = run("report", "inception_v4")
    assert r.returncode == 2
    assert "did you mean 'inception_v3'?" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_ships_the_presets(tmp_path):
    """Builds a wheel from a copy of the sources, installs it (no deps) into a fresh venv
    outside the repository, then runs the installed command and a Python build there.

    The fresh venv gets its dependencies (pyyaml, keras) by a .pth line naming this
    interpreter's site-packages, read-only: a plain path entry processes no .pth files of
    its own, so an editable inception-kit installed there stays invisible, and the fresh
    venv's own site-packages (holding the wheel) comes first on sys.path. The test proves
    which copy ran by its file location.
    """
    src = tmp_path / "src"
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name if src.exists() else _mkdir(src) / name)
    for name in ("inception_kit", "specs"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, src],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("inception_kit-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the wheel's copy, from here on
    subprocess.run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
        check=True,
        capture_output=True,
        timeout=300,
        env=env,
    )
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    (site / "main_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    work = _mkdir(tmp_path / "elsewhere")  # no specs/ folder here, no repository above
    report = subprocess.run(
        [venv / "bin" / "inception-kit", "report", "googlenet", "--format", "csv"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    assert report.stdout == run("report", "googlenet", "--format", "csv").stdout

    code = (
        "import inception_kit as ik; m = ik.build_model('inception_3a_tiny'); "
        "print(ik.__file__); print(ik.list_presets()); print(m.count_params())"
    )
    built = subprocess.run(
        [python, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr
    where, presets, params = built.stdout.strip().splitlines()[-3:]
    assert Path(where).is_relative_to(site)
    assert presets == str(ik.list_presets())
    assert int(params) == ik.analyse(ik.load("inception_3a_tiny")).total.params


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
