"""Issue 11, the file side: nothing a user owns is deleted, read or hung on.

Each test is one probe of the hostile review, run as the user ran it (mostly through the CLI),
asserting the exit code, the message and that every file the user had is still there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, SPECS, run
from inception_kit.files import UnsafeDestination, child_path, staged_dir
from inception_kit.keras import export as exporters

TINY = SPECS / "one_by_one.yaml"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for folders): what must not change."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if not p.is_symlink()
    }


def user_folder(tmp_path: Path) -> Path:
    """A working folder as a user has one: their spec, notes and a sub-folder."""
    work = tmp_path / "work"
    (work / "backup").mkdir(parents=True)
    (work / "backup" / "thesis.tex").write_text("years of work")
    (work / "notes.txt").write_text("notes")
    (work / "net.yaml").write_text(TINY.read_text())
    return work


# --------------------------------------------------------------------------- 1. overwrite rule


@pytest.mark.parametrize("out", [".", "..", "backup"])
def test_export_overwrite_never_replaces_the_working_folder_or_a_users_folder(tmp_path, out):
    work = user_folder(tmp_path)
    before = snapshot(tmp_path)
    r = run("export", "net.yaml", "--out", out, "--overwrite", cwd=work)
    assert r.returncode == 2, r.stderr
    assert "refusing to replace" in r.stderr and "nothing was changed" in r.stderr
    reason = "did not write it" if out == "backup" else "holds the working folder"
    assert reason in r.stderr or "is the working folder" in r.stderr
    assert "Traceback" not in r.stderr
    assert snapshot(tmp_path) == before


def test_export_overwrite_refuses_the_folder_that_holds_the_spec_even_with_a_manifest(tmp_path):
    work = user_folder(tmp_path)
    (work / "assets.extra" / "inception_kit").mkdir(parents=True)  # looks like an artifact
    (work / "assets.extra" / "inception_kit" / "manifest.json").write_text("{}")
    before = snapshot(tmp_path)
    r = run("export", work / "net.yaml", "--out", work, "--overwrite", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"holds the input {work / 'net.yaml'}" in r.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", [["report", TINY], ["schema"]])
def test_a_file_never_replaces_a_folder(tmp_path, command):
    folder = tmp_path / "out"
    (folder / "keep").mkdir(parents=True)
    r = run(*command, "--out", folder, "--overwrite")
    assert r.returncode == 2
    assert "it is a folder, and a file never replaces a folder" in r.stderr
    assert (folder / "keep").is_dir()


def test_staged_dir_replaces_only_what_carries_its_marker(tmp_path):
    dest = tmp_path / "artifact"
    dest.mkdir()
    (dest / "precious").write_text("x")
    with (
        pytest.raises(UnsafeDestination, match=r"no manifest\.json inside"),
        staged_dir(dest, overwrite=True, marker="manifest.json") as tmp,
    ):
        (tmp / "manifest.json").write_text("new")
    assert (dest / "precious").read_text() == "x"
    (dest / "manifest.json").write_text("old")
    with staged_dir(dest, overwrite=True, marker="manifest.json") as tmp:
        (tmp / "manifest.json").write_text("new")
    assert sorted(p.name for p in dest.iterdir()) == ["manifest.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "/tmp/x/escaped", "a\0b", " x"])
def test_a_name_from_a_spec_never_becomes_more_than_one_path_component(name):
    with pytest.raises(UnsafeDestination, match="is not a plain file name"):
        child_path("runs", name)
    assert child_path("runs", "googlenet.v2") == Path("runs/googlenet.v2")


@pytest.mark.slow
def test_train_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    work = user_folder(tmp_path)
    spec = ROOT / "specs" / "inception_3a_tiny.yaml"
    before = snapshot(tmp_path)
    for out in (".", work):
        r = run("train", spec, "--data", "digits", "--epochs", "1", "--out", out, "--overwrite", cwd=work)
        assert r.returncode == 2, r.stderr
        assert "refusing to replace" in r.stderr
        assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- 3, 12. inspect


def fake_artifact(folder: Path, manifest: object | None = None, report: str | None = None) -> Path:
    """A SavedModel-shaped folder with inception-kit's metadata (no TensorFlow needed)."""
    meta = folder / "assets.extra" / "inception_kit"
    meta.mkdir(parents=True)
    good = {
        "format": "savedmodel",
        "input": {"name": "image", "dtype": "float32", "shape": [None, 28, 28, 192]},
        "output": {"name": "output", "dtype": "float32", "shape": [None, 28, 28, 32]},
        "weights": "untrained (Keras initializers)",
        "verification": None,
    }
    (meta / "manifest.json").write_text(json.dumps(good if manifest is None else manifest))
    (meta / "spec.yaml").write_text(TINY.read_text())
    if report is None:
        report = run("report", TINY, "--format", "json").stdout
    (meta / "report.json").write_text(report)
    return meta


def test_inspect_reads_a_good_fake_artifact(tmp_path):
    fake_artifact(tmp_path / "a")
    r = run("inspect", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    assert "4,816,896" in r.stdout  # the lecture's 1x1 MACs, from the stored report


@pytest.mark.parametrize("target", ["/etc/passwd", "/dev/zero"])
def test_inspect_never_follows_a_link_out_of_the_artifact(tmp_path, target):
    meta = fake_artifact(tmp_path / "a")
    (meta / "spec.yaml").unlink()
    (meta / "spec.yaml").symlink_to(target)
    r = run("inspect", tmp_path / "a", "--format", "yaml", timeout=20)
    assert r.returncode == 2
    assert "spec.yaml" in r.stderr and "a link that leads out of" in r.stderr
    assert "root:" not in r.stdout


def test_inspect_does_not_hang_on_a_fifo(tmp_path):
    meta = fake_artifact(tmp_path / "a")
    (meta / "spec.yaml").unlink()
    os.mkfifo(meta / "spec.yaml")
    r = run("inspect", tmp_path / "a", "--format", "yaml", timeout=20)
    assert r.returncode == 2
    assert "not a regular file" in r.stderr


def test_inspect_refuses_an_oversized_metadata_file(tmp_path):
    meta = fake_artifact(tmp_path / "a")
    with open(meta / "spec.yaml", "wb") as f:
        f.truncate(exporters.MAX_META_BYTES + 1)
    r = run("inspect", tmp_path / "a", "--format", "yaml")
    assert r.returncode == 2
    assert f"larger than {exporters.MAX_META_BYTES:,} bytes" in r.stderr


@pytest.mark.parametrize(
    "manifest, words",
    [
        ([1, 2], "a JSON object written by inception-kit export; received a JSON list"),
        ({}, "received no 'format' text"),
        ({"format": "savedmodel", "input": "image"}, "no 'input' with a name, a dtype and a shape list"),
        ("[" * 100_000 + "]" * 100_000, "JSON nested too deep"),
    ],
)
def test_inspect_malformed_manifest_is_one_clear_error(tmp_path, manifest, words):
    meta = fake_artifact(tmp_path / "a")
    if isinstance(manifest, str):
        (meta / "manifest.json").write_text(manifest)
    else:
        (meta / "manifest.json").write_text(json.dumps(manifest))
    r = run("inspect", tmp_path / "a")
    assert r.returncode == 2, r.stderr
    assert words in r.stderr
    assert "Error:" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("report", ["{}", '{"model": 3}', "not json", "[]"])
def test_inspect_malformed_report_is_one_clear_error(tmp_path, report):
    fake_artifact(tmp_path / "a", report=report)
    r = run("inspect", tmp_path / "a")
    assert r.returncode == 2, r.stderr
    assert "report.json" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("where", [".", "/"])
def test_inspect_of_a_plain_folder_is_one_clear_error(tmp_path, where):
    r = run("inspect", where, cwd=tmp_path)
    assert r.returncode == 2
    assert "expected an artifact written by inception-kit export" in r.stderr
    assert "Error:" not in r.stderr


def test_control_characters_from_an_artifact_never_reach_the_terminal(tmp_path):
    meta = fake_artifact(tmp_path / "a")
    (meta / "spec.yaml").write_text("name: \x1b[2J\x1b]0;pwned\x07\n")
    r = run("inspect", tmp_path / "a", "--format", "yaml")
    assert r.returncode == 0
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "\\x1b[2J" in r.stdout


# --------------------------------------------------------------------------- 4. the pair


PAIR_WRITER = """
import os, sys, time, tempfile
from pathlib import Path
from inception_kit.keras import export as exporters

out, label, stop_at = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
stamp = {"file": out.name, "bytes": 0, "sha256": ""}

def write_file(tmp):
    tmp.write_bytes(label.encode() * 1000)
    stamp.update(bytes=tmp.stat().st_size, sha256=exporters.file_sha256(tmp))

def new_meta():
    folder = Path(tempfile.mkdtemp(dir=out.parent))
    m = {"format": "tflite", "model": label, "weights": label,
         "input": {"name": "image", "dtype": "float32", "shape": [None, 2]},
         "output": {"name": "output", "dtype": "float32", "shape": [None, 2]}, "artifact": stamp}
    (folder / "manifest.json").write_text(__import__("json").dumps(m))
    (folder / "spec.yaml").write_text("name: " + label + "\\n")
    (folder / "report.json").write_text("{}")
    return folder

real_replace, real_exchange = os.replace, exporters.staged_dir
calls = []
def replace(a, b):  # staged_file's final move of the file
    if stop_at == "before-file" and Path(b) == out:
        print("STOP", flush=True); time.sleep(60)
    return real_replace(a, b)
os.replace = replace
exporters.place_pair(out, exporters.metadata_dir(out, "tflite"), write_file, new_meta, True, [])
print("STOP", flush=True); time.sleep(60)
"""


def write_pair(out: Path, label: str, stop_at: str = "end") -> None:
    """Runs an export of a stand-in one-file artifact and SIGKILLs it at `stop_at`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PAIR_WRITER, str(out), label, stop_at],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stdout.readline().strip() == "STOP"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.parametrize("stop_at, seen", [("before-file", "old"), ("end", "new")])
def test_a_killed_overwrite_leaves_the_old_pair_or_the_new_never_a_mix(tmp_path, stop_at, seen):
    out = tmp_path / "model.tflite"
    write_pair(out, "old")
    assert exporters.inspect_artifact(out, "yaml") == "name: old\n"
    write_pair(out, "new", stop_at)
    assert exporters.inspect_artifact(out, "yaml") == f"name: {seen}\n"
    assert out.read_bytes() == seen.encode() * 1000
    # the next export replaces whatever the kill left
    write_pair(out, "next")
    assert exporters.inspect_artifact(out, "yaml") == "name: next\n"
    assert not (exporters.metadata_dir(out) / exporters.PREVIOUS_DIR).exists()


# --------------------------------------------------------------------------- 5. weights files


@pytest.mark.slow
def test_weights_file_with_an_external_link_or_bad_keys_is_refused(tmp_path):
    import h5py

    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["data"] = [1.0]
    linked = tmp_path / "linked.weights.h5"
    with h5py.File(linked, "w") as f:
        f["layers/conv2d/vars/0"] = h5py.ExternalLink(str(secret), "/data")
    bad_keys = tmp_path / "keys.weights.h5"
    with h5py.File(bad_keys, "w") as f:
        g = f.create_group("layers/conv/vars")
        g.attrs["name"] = "one_by_one_conv1x1"
        g["kernel"] = [1.0]
    for weights, words in ((linked, "without HDF5 links"), (bad_keys, "keys other than 0, 1, 2")):
        r = run("export", TINY, "--out", tmp_path / f"out_{weights.stem}", "--weights", weights)
        assert r.returncode == 2, r.stderr
        assert words in r.stderr
        assert not (tmp_path / f"out_{weights.stem}").exists()


# --------------------------------------------------------------------------- 13. train


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--seed", "-1", "--seed: expected a whole number from 0 to 4294967295"),
        ("--learning-rate", "inf", "--learning-rate: expected a positive finite number"),
        ("--learning-rate", "nan", "--learning-rate: expected a positive finite number"),
    ],
)
def test_bad_training_settings_refused_before_any_folder_is_made(tmp_path, flag, value, words):
    out = tmp_path / "run"
    r = run("train", SPECS / "inception_3a_tiny.yaml", "--data", "digits", "--out", out, flag, value)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr
    assert not out.exists()


@pytest.mark.slow
def test_a_diverging_run_stops_marks_the_run_failed_and_saves_no_nan_weights(tmp_path):
    out = tmp_path / "run"
    r = run(
        "train",
        SPECS / "inception_3a_tiny.yaml",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--out",
        out,
        "--learning-rate",
        "1e30",
        "--verbose",
        "0",
    )
    assert r.returncode == 1, r.stderr
    assert "the training loss became nan" in r.stderr or "the training loss became inf" in r.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "failed" and "training loss became" in info["error"]
    assert not (out / "final.weights.h5").exists()


@pytest.mark.slow
def test_a_corrupt_image_is_named_and_the_run_marked_failed(tmp_path):
    import numpy as np
    from PIL import Image

    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(data / c / f"{i}.png")
    # A sound header, the pixels cut short: what train's pre-check (headers only) lets through.
    whole = (data / "b" / "5.png").read_bytes()
    (data / "b" / "5.png").write_bytes(whole[: len(whole) // 2])
    spec = tmp_path / "s.yaml"
    spec.write_text(
        textwrap.dedent("""\
        name: tiny_rgb
        input: [32, 32, 3]
        layers:
          - conv: {filters: 4, kernel: 3}
          - gap: {}
          - dense: {units: 2, activation: softmax}
    """)
    )
    out = tmp_path / "run"
    r = run(
        "train",
        spec,
        "--data",
        data,
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--out",
        out,
        "--validation-split",
        "0",
        "--verbose",
        "0",
    )
    assert r.returncode == 1, r.stderr
    assert f"the image {data / 'b' / '5.png'} cannot be read" in r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("error")] == [
        f"error: the image {data / 'b' / '5.png'} cannot be read as an image (corrupt, or not the format its name "
        f"says); the run folder {out} is marked failed"
    ]
    assert "InvalidArgumentError" not in r.stderr and "Traceback" not in r.stderr
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


# --------------------------------------------------------------------------- 14, 16, 17


def test_a_non_utf8_out_path_is_written_and_printed_as_escapes(tmp_path):
    out = os.fsencode(tmp_path) + b"/r\xff.txt"
    r = run("report", TINY, "--out", os.fsdecode(out), env={**ENV, "PYTHONIOENCODING": "utf-8"})
    assert r.returncode == 0, r.stderr
    assert os.path.exists(out)
    assert "r\\xff.txt" in r.stderr


def test_report_plot_draws_names_as_text_not_tex(tmp_path):
    pytest.importorskip("matplotlib")
    from inception_kit import analyse, load
    from inception_kit.viz.plots import savings_chart

    analysis = analyse(load(SPECS / "inception_3a.yaml"))
    object.__setattr__(analysis.plan.model, "name", "$\\frac{$")  # what a TeX parser chokes on
    path = savings_chart(analysis, tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_out_dev_stdout_writes_to_the_stream():
    r = run("report", TINY, "--out", "/dev/stdout")
    assert r.returncode == 0, r.stderr
    assert "4,816,896" in r.stdout
    assert "already exists" not in r.stderr


def test_overwriting_through_a_symlink_is_refused_and_leaves_no_temporary(tmp_path):
    """Issue 22: a destination that is a link is never written through (it used to replace the target)."""
    real = tmp_path / "models" / "g"
    real.mkdir(parents=True)
    (real / "manifest.json").write_text("old")
    link = tmp_path / "g"
    link.symlink_to(real)
    with (
        pytest.raises(UnsafeDestination, match="symbolic link"),
        staged_dir(link, overwrite=True, marker="manifest.json") as tmp,
    ):
        (tmp / "manifest.json").write_text("new")
    assert link.is_symlink() and (link / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["g", "g", "manifest.json", "models"]
