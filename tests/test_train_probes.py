"""Hostile and broken input to `inception-kit train` (issue 22): image folders, run folders and
absurd numbers. Each is refused with one message naming the file or the setting, exit 2 from
the command line, no traceback, before TensorFlow loads and before anything is written.

Nothing here trains (TensorFlow never starts) except the symbolic-link loop, which must train.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import ROOT, SPECS
from conftest import run as cli
from inception_kit.errors import ArgumentError
from inception_kit.files import UnsafeDestination
from inception_kit.train import data as data_mod
from inception_kit.train import runs

TINY = SPECS / "inception_3a_tiny.yaml"
RGB2 = """\
name: rgb2
input: [8, 8, 3]
layers:
  - conv: {filters: 4, kernel: 3}
head: [gap, {dense: {units: 2, activation: softmax}}]
"""


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for folders and links): what must not change."""
    return {
        str(p.relative_to(folder)): (
            None if p.is_dir() or p.is_symlink() or not p.is_file() else p.read_bytes()
        )
        for p in sorted(folder.rglob("*"))
    }


def png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A PNG file with an RGB header of `width` x `height`, written chunk by chunk here: `rows`
    (filter byte and pixels per row) compressed, or for a bomb a small stream of zeros."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    body = zlib.compress(rows if rows is not None else b"\0" * (1 << 16), 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def solid_png(value: int, side: int = 8) -> bytes:
    return png(side, side, b"".join(b"\0" + bytes([value]) * (3 * side) for _ in range(side)))


def image_folder(root: Path, per_class: int = 4) -> Path:
    """Two classes, `a` and `b`, of small valid PNGs."""
    for c, value in (("a", 40), ("b", 200)):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"{i}.png").write_bytes(solid_png(value + i))
    return root


def test_the_test_pngs_are_what_pillow_reads():
    # The helper is checked against an independent reader before the probes rely on it.
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(solid_png(7, side=5)))
    assert (img.format, img.size, img.mode) == ("PNG", (5, 5), "RGB")
    assert img.getpixel((4, 4)) == (7, 7, 7)


def hostile_webp(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8)).save(path, format="WEBP")


# (name, how the bad file is made, words of the reason)
BAD_IMAGES = [
    ("zero-bytes", lambda p: p.write_bytes(b""), "an empty (0-byte) file"),
    (
        "not-an-image",
        lambda p: p.write_text("hello, I am text\n"),
        "which is not an image (PNG, JPEG, GIF, BMP)",
    ),
    (
        "png-signature-then-garbage",
        lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10),
        "which is not an image",
    ),
    ("decompression-bomb", lambda p: p.write_bytes(png(100_000, 100_000)), "decompression-bomb limit"),
    ("webp-named-png", hostile_webp, "a WEBP image, which TensorFlow does not decode"),
    ("fifo", lambda p: os.mkfifo(p), "which is not a regular file"),
    ("link-to-a-device", lambda p: p.symlink_to("/dev/zero"), "which is not a regular file"),
    ("dangling-link", lambda p: p.symlink_to(p.parent / "gone.png"), "which cannot be read"),
]


@pytest.mark.parametrize("make, words", [b[1:] for b in BAD_IMAGES], ids=[b[0] for b in BAD_IMAGES])
def test_a_bad_image_is_named_before_tensorflow_reads_it(tmp_path, make, words):
    # Before: each of these reached TensorFlow's decoder (a FIFO blocked it, a bomb asked for
    # 30 GB, the rest failed mid-epoch with a run folder written and marked failed, exit 1).
    folder = image_folder(tmp_path / "data")
    bad = folder / "b" / "9.png"
    make(bad)
    with pytest.raises(ArgumentError) as err:
        data_mod.inspect_source(folder, (8, 8, 3))
    assert err.value.parameter == "data"
    assert str(err.value).startswith(
        f"data: expected decodable images (PNG, JPEG, GIF, BMP) in every class sub-folder; received '{bad}', "
    )
    assert words in str(err.value)


def test_every_bad_image_is_counted_and_the_first_named(tmp_path):
    folder = image_folder(tmp_path / "data")
    for name in ("x.png", "y.png", "z.png"):
        (folder / "a" / name).write_bytes(b"")
    with pytest.raises(ArgumentError) as err:
        data_mod.inspect_source(folder, (8, 8, 3))
    assert f"received '{folder / 'a' / 'x.png'}', an empty (0-byte) file; and 2 more such files" in str(
        err.value
    )


FIT_PROBES = r"""
import json, os, sys
from inception_kit import train
from inception_kit.errors import ArgumentError
out = {}
for name in sys.argv[2:]:
    try:
        train.fit(sys.argv[1], os.path.join(os.path.dirname(sys.argv[1]), name), out=os.path.join(os.path.dirname(sys.argv[1]), "run-" + name), verbose=0)
        out[name] = "trained"
    except ArgumentError as err:
        out[name] = [err.parameter, str(err)]
out["tensorflow loaded"] = "tensorflow" in sys.modules or "keras" in sys.modules
print(json.dumps(out))
"""


def test_bad_folders_are_refused_through_the_command_line_before_tensorflow_loads(tmp_path):
    spec = tmp_path / "rgb2.yaml"
    spec.write_text(RGB2)
    names = []
    for name, make, _words in BAD_IMAGES:
        image_folder(tmp_path / name)
        make(tmp_path / name / "b" / "9.png")
        names.append(name)
    (tmp_path / "one-class" / "only").mkdir(parents=True)
    (tmp_path / "one-class" / "only" / "0.png").write_bytes(solid_png(1))
    names.append("one-class")
    before = snapshot(tmp_path)
    r = subprocess.run(
        [sys.executable, "-c", FIT_PROBES, spec, *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    found = json.loads(r.stdout)
    assert found.pop("tensorflow loaded") is False
    assert {n: p for n, (p, _) in found.items()} == {n: "data" for n in names}
    assert "at least 2 class sub-folders" in found["one-class"][1]
    # The command line: exit 2, one line naming the flag and the file, nothing written.
    for name in ("zero-bytes", "decompression-bomb", "fifo", "one-class"):
        c = cli("train", spec, "--data", tmp_path / name, "--out", tmp_path / f"cli-{name}")
        assert c.returncode == 2, c.stderr
        lines = c.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --data: expected "), c.stderr
        assert "Traceback" not in c.stderr
    assert snapshot(tmp_path) == before


def test_a_link_looping_back_up_is_listed_never_walked(tmp_path):
    # Keras' image_dataset_from_directory(follow_links=False) lists the same files: a probe that held.
    folder = image_folder(tmp_path / "data")
    (folder / "b" / "up").symlink_to("..")  # b/up -> data
    (folder / "c").symlink_to("c")  # a link to itself: no folder, so no class
    source = data_mod.inspect_source(folder, (8, 8, 3))
    assert (source.class_names, source.per_class, source.count) == (["a", "b"], {"a": 4, "b": 4}, 8)


@pytest.mark.slow
def test_a_folder_with_a_link_loop_trains(tmp_path):
    folder = image_folder(tmp_path / "data")
    (folder / "b" / "up").symlink_to("..")
    (folder / "c").symlink_to("c")
    spec = tmp_path / "rgb2.yaml"
    spec.write_text(RGB2)
    out = tmp_path / "run"
    r = cli(
        "train",
        spec,
        "--data",
        folder,
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--out",
        out,
        "--verbose",
        "0",
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    # 8 images, int(0.2 * 8) = 1 held out: the same count Keras found.
    assert (run["status"], run["classes"], run["train_samples"], run["val_samples"]) == (
        "finished",
        ["a", "b"],
        7,
        1,
    )


# --------------------------------------------------------------------------- run folders

SETTINGS = {
    "model": "inception_3a_tiny",
    "spec_sha256": "0" * 64,
    "data": "digits",
    "batch_size": 64,
    "learning_rate": 0.001,
    "validation_split": 0.2,
    "seed": 0,
}

FORGED = [
    (
        "huge",
        lambda p: p.write_bytes(b" " * (runs.MAX_RUN_JSON_BYTES + 1)),
        f"which cannot be read (larger than {runs.MAX_RUN_JSON_BYTES:,} bytes)",
    ),
    ("not-json", lambda p: p.write_bytes(b'{"model": '), "which is not JSON (JSONDecodeError)"),
    ("not-utf8", lambda p: p.write_bytes(b"\xff\xfe{}"), "which is not JSON (UnicodeDecodeError)"),
    ("deep", lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "which is not JSON (RecursionError)"),
    ("a-list", lambda p: p.write_text("[1, 2]"), "which holds [1, 2], not an object"),
    (
        "no-model",
        lambda p: p.write_text('{"status": "running"}'),
        "whose field 'model' is null, not a model name",
    ),
    (
        "bad-status",
        lambda p: p.write_text('{"model": "m", "status": 42}'),
        "whose field 'status' is 42, not one of running, finished, failed",
    ),
    (
        "a-link",
        lambda p: p.symlink_to(p.parent.parent / "elsewhere.json"),
        "which cannot be read (a symbolic link)",
    ),
    ("fifo", lambda p: os.mkfifo(p), "which cannot be read (not a regular file)"),
]


@pytest.mark.parametrize("make, words", [f[1:] for f in FORGED], ids=[f[0] for f in FORGED])
def test_a_forged_or_huge_run_json_is_named_and_nothing_is_touched(tmp_path, make, words):
    # Before: any unreadable run.json read as "already exists; pass --overwrite", naming no file.
    (tmp_path / "elsewhere.json").write_text(json.dumps({**SETTINGS, "status": "running"}))
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.csv").write_text("epoch,loss\n0,1.0\n")
    make(out / "run.json")
    before = snapshot(tmp_path)
    with pytest.raises(ArgumentError) as err:
        runs.RunFolder.open(out, SETTINGS, overwrite=False)
    assert err.value.parameter == "out"
    assert f"received '{out / 'run.json'}', {words}" in str(err.value)
    with pytest.raises(UnsafeDestination) as unsafe:
        runs.RunFolder.open(out, SETTINGS, overwrite=True)
    # files.check_folder_destination refuses a link or a FIFO as the marker first, in its words.
    marker_refused = "inception-kit did not write it (no run.json inside)"
    not_a_file = (out / "run.json").is_symlink() or not (out / "run.json").is_file()
    assert f"its run.json was not written by inception-kit train: {words}" in str(unsafe.value) or (
        not_a_file and marker_refused in str(unsafe.value)
    )
    assert snapshot(tmp_path) == before


def test_a_forged_run_json_is_refused_on_the_command_line(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"model": "m", "status": ["running"]}')
    r = cli("train", TINY, "--data", "digits", "--out", out)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: --out: expected a folder for the run (new, or a run inception-kit train wrote); received "
        f"'{out / 'run.json'}', whose field 'status' is ['running'], not one of running, finished, failed"
    ]


def test_a_resumed_runs_values_are_shown_short(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({**SETTINGS, "status": "running", "seed": "x" * 100_000}))
    with pytest.raises(ArgumentError) as err:
        runs.RunFolder.open(out, SETTINGS, overwrite=False)
    assert "seed 0 where the run has 'xxxx" in str(err.value)
    assert len(str(err.value)) < 400  # a forged value is never echoed whole


def test_a_log_too_large_or_not_text_is_named(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({**SETTINGS, "status": "running"}))
    (out / "log.csv").write_bytes(b"epoch,loss\n" + b"0,1.0\n" * 50)
    monkeypatch.setattr(runs, "MAX_LOG_BYTES", 100)
    with pytest.raises(
        ArgumentError,
        match=r"^out: expected a run folder whose log.csv inception-kit train wrote; "
        r"received '.*log\.csv', which cannot be read \(larger than 100 bytes\)$",
    ):
        runs.RunFolder.open(out, SETTINGS, overwrite=False)
    (out / "log.csv").write_bytes(b"epoch,loss\n\xff,1\n")
    with pytest.raises(ArgumentError, match="which is not UTF-8 text"):
        runs.RunFolder.open(out, SETTINGS, overwrite=False)
    # A resumable log reads back (a ragged row, longer than the header, is left out).
    (out / "log.csv").write_text("epoch,loss\n0,1.5\n1,1.0,extra\n")
    folder = runs.RunFolder.open(out, SETTINGS, overwrite=False)
    try:
        assert (folder.decision, folder.rows) == ("resume", [{"epoch": 0, "loss": 1.5}])
    finally:
        folder.release()


def test_a_lock_file_that_is_a_link_is_never_followed(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").symlink_to(precious)
    with pytest.raises(ArgumentError, match=r"received '.*\.lock', a symbolic link$"):
        runs.RunFolder.open(out, SETTINGS, overwrite=False)
    assert precious.read_text() == "mine"


# --------------------------------------------------------------------------- absurd numbers

ABSURD = [
    (("--batch-size", "0"), "--batch-size: expected a positive whole number (the global batch); received 0"),
    (("--batch-size", str(10**12)), "--batch-size: expected at most the 1438 training samples of 'digits'"),
    (("--epochs", "0"), "--epochs: expected a positive whole number of epochs; received 0"),
    (("--epochs", "-3"), "--epochs: expected a positive whole number of epochs; received -3"),
    (("--learning-rate", "nan"), "--learning-rate: expected a positive finite number; received nan"),
    (("--learning-rate", "0"), "--learning-rate: expected a positive finite number; received 0.0"),
    (("--seed", str(10**12)), "--seed: expected a whole number from 0 to 4294967295; received 1000000000000"),
    (
        ("--validation-split", "nan"),
        "--validation-split: expected a fraction from 0 (none) up to, not including, 1",
    ),
    (
        ("--validation-split", "1"),
        "--validation-split: expected a fraction from 0 (none) up to, not including, 1",
    ),
    (("--aux", "--aux-weight", "nan"), None),  # the tiny spec has no aux: refused for that first
    (
        ("--aux-weight", "0.5"),
        "--aux-weight: expected aux=True (on the command line, --aux) with it; received 0.5",
    ),
    (
        ("--aux",),
        "--aux: expected a spec with auxiliary heads (an aux: section) to train them; received "
        "'inception_3a_tiny', which has none",
    ),
]


@pytest.mark.parametrize("flags, words", ABSURD, ids=[" ".join(f) for f, _ in ABSURD])
def test_absurd_numbers_are_refused_naming_the_flag(tmp_path, flags, words):
    out = tmp_path / "run"
    r = cli("train", TINY, "--data", "digits", "--out", out, *flags)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --"), r.stderr
    if words is not None:
        assert lines[0].startswith("error: " + words), lines[0]
    assert "Traceback" not in r.stderr and not out.exists()


def test_an_aux_weight_that_is_nan_is_refused(tmp_path):
    # Before: NaN passed the `weight < 0` test and made every loss NaN.
    spec = tmp_path / "aux.yaml"
    spec.write_text(TINY.read_text() + "aux:\n  side: {at: inc3a, layers: [gap, {dense: {units: 10}}]}\n")
    r = cli("train", spec, "--data", "digits", "--out", tmp_path / "run", "--aux", "--aux-weight", "nan")
    assert r.returncode == 2, r.stderr
    assert (
        r.stderr.strip()
        == "error: --aux-weight: expected a loss weight, a finite number from 0; received nan"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "setting, value, words",
    [
        ("batch_size", 0, "batch_size: expected a positive whole number (the global batch); received 0"),
        (
            "batch_size",
            True,
            "batch_size: expected a positive whole number (the global batch); received true",
        ),
        ("epochs", 2.5, "epochs: expected a positive whole number of epochs; received 2.5"),
        ("learning_rate", math.nan, "learning_rate: expected a positive finite number; received nan"),
        ("learning_rate", math.inf, "learning_rate: expected a positive finite number; received inf"),
        ("seed", -1, "seed: expected a whole number from 0 to 4294967295; received -1"),
        ("backup_every", 0, "backup_every: expected 'epoch' or a positive number of batches; received 0"),
        (
            "validation_split",
            math.nan,
            "validation_split: expected a fraction from 0 (none) up to, not including, 1",
        ),
    ],
)
def test_a_python_caller_is_told_the_parameter_not_a_flag(tmp_path, setting, value, words):
    from inception_kit import train

    with pytest.raises(ArgumentError) as err:
        train.fit(TINY, "digits", out=tmp_path / "run", verbose=0, **{setting: value})
    assert err.value.parameter == setting
    assert str(err.value).startswith(words) and "--" not in str(err.value)
    assert not (tmp_path / "run").exists()
