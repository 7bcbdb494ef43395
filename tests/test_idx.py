"""The IDX reader (train/idx.py): MNIST-format files gzipped or not, validated and bounded;
a hostile or missing file is one clear error naming the file; `--data idx:DIR` and
`fashion-mnist` for `train` and `search`."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inception_kit.errors import SpecError
from inception_kit.train import idx
from inception_kit.train.data import inspect_source

ROOT = Path(__file__).resolve().parent.parent


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file by the format's definition (magic 00 00 08 D, big-endian sizes, the bytes)."""
    return (
        bytes([0, 0, 8, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(np.uint8).tobytes()
    )


def write_set(
    folder: Path, n: int = 12, h: int = 28, w: int = 28, zipped: bool = True, split: str = "train"
) -> tuple:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in ((f"{split}-images-idx3-ubyte", images), (f"{split}-labels-idx1-ubyte", labels)):
        data = idx_bytes(arr)
        (folder / (name + ".gz" if zipped else name)).write_bytes(gzip.compress(data) if zipped else data)
    return images, labels


@pytest.mark.parametrize("zipped", [True, False])
def test_reads_what_it_was_given(tmp_path: Path, zipped: bool) -> None:
    images, labels = write_set(tmp_path / "d", zipped=zipped)
    got = idx.load_split(f"idx:{tmp_path / 'd'}", "train")
    assert np.array_equal(got.images, images) and np.array_equal(got.labels, labels)
    assert got.class_names == [str(i) for i in range(10)]
    x, y = got.arrays(1)
    assert x.shape == (12, 28, 28, 1) and x.dtype == np.float32 and float(x.max()) <= 1.0
    assert np.allclose(x[..., 0] * 255.0, images) and y.dtype == np.int32


def test_mnist_s_own_file_names_are_read(tmp_path: Path) -> None:
    _, labels = write_set(tmp_path / "d", zipped=False)
    for old in ("images-idx3", "labels-idx1"):
        kind, dims = old.split("-")
        os.rename(tmp_path / "d" / f"train-{old}-ubyte", tmp_path / "d" / f"train-{kind}.{dims}-ubyte")
    assert np.array_equal(idx.load_split(f"idx:{tmp_path / 'd'}").labels, labels)


def hostile(tmp_path: Path, name: str, data: bytes) -> Path:
    write_set(tmp_path / "d")
    path = tmp_path / "d" / name
    for other in (tmp_path / "d").glob(name.split("-idx")[0] + "*"):
        other.unlink()
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "data, words",
    [
        (
            b"PK\x03\x04 not idx at all",
            "expected an IDX file (magic number 00 00 08 0D); received bytes 50 4b 03 04",
        ),
        (
            bytes([0, 0, 0x0D, 3]) + struct.pack(">3I", 1, 2, 2) + b"\0" * 16,
            "expected unsigned bytes in 3 dimensions",
        ),
        (bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + b"\0" * 5, "expected unsigned bytes in 3 dimensions"),
        (
            bytes([0, 0, 8, 3]) + struct.pack(">3I", 10, 28, 28) + b"\0" * 100,
            "expected 7,840 data bytes for sizes [10, 28, 28]; received 100",
        ),
        (bytes([0, 0, 8, 3]) + struct.pack(">3I", 4_000_000_000, 4_000_000_000, 28), "data bytes for sizes"),
        (bytes([0, 0, 8, 3]) + struct.pack(">3I", 0, 28, 28), "expected sizes of at least 1"),
        (bytes([0, 0, 8, 3, 0, 0]), "expected 3 sizes after the magic number"),
        (b"\x1f\x8b\x08\x00broken", "expected a readable gzip file"),
        (b"", "received bytes none"),
    ],
)
def test_a_hostile_file_is_one_clear_error_naming_it(tmp_path: Path, data: bytes, words: str) -> None:
    path = hostile(tmp_path, "train-images-idx3-ubyte", data)
    with pytest.raises(SpecError) as err:
        idx.load_split(f"idx:{tmp_path / 'd'}")
    assert str(err.value).startswith(f"{path}: ") and words in str(err.value)


def test_a_gzip_bomb_stops_at_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(
        gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 1000, 100, 100) + b"\0" * 10_000_000)
    )
    assert path.stat().st_size < 100_000
    with pytest.raises(SpecError, match="expected at most 1,000,000 bytes decompressed"):
        idx.read(path, 3, limit=1_000_000)


def test_images_and_labels_must_agree(tmp_path: Path) -> None:
    write_set(tmp_path / "d", n=12)
    (tmp_path / "d" / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(11, np.uint8)))
    )
    with pytest.raises(SpecError, match="expected one label per image \\(12 images\\); received 11 labels"):
        idx.load_split(f"idx:{tmp_path / 'd'}")


def test_a_missing_folder_or_file_says_how_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(idx, "FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(SpecError) as err:
        idx.load_split("fashion-mnist")
    assert "which does not exist" in str(err.value) and "apt-get install dataset-fashion-mnist" in str(
        err.value
    )
    write_set(tmp_path / "d")
    with pytest.raises(SpecError, match=r"t10k-images-idx3-ubyte \(or .gz\) in .*; received no such file"):
        idx.load_split(f"idx:{tmp_path / 'd'}", "t10k")
    with pytest.raises(SpecError, match="idx:DIR"):
        idx.load_split("idx:")


def test_the_source_is_checked_against_the_spec_s_input(tmp_path: Path) -> None:
    write_set(tmp_path / "d", n=20)
    src = inspect_source(f"idx:{tmp_path / 'd'}", (28, 28, 1))
    assert src.kind == "arrays" and src.count == 20 and src.arrays[0].shape == (20, 28, 28, 1)
    assert inspect_source(f"idx:{tmp_path / 'd'}", (28, 28, 3)).arrays[0].shape == (20, 28, 28, 3)
    with pytest.raises(SpecError, match=r"input: expected \[28, 28, 1\] or \[28, 28, 3\]"):
        inspect_source(f"idx:{tmp_path / 'd'}", (32, 32, 1))


@pytest.mark.skipif(not idx.FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_as_the_package_installs_it() -> None:
    train, test = idx.load_split("fashion-mnist", "train"), idx.load_split("fashion-mnist", "t10k")
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert (
        np.bincount(train.labels).tolist() == [6000] * 10 and np.bincount(test.labels).tolist() == [1000] * 10
    )
    assert train.class_names[0] == "T-shirt/top" and train.class_names[9] == "Ankle boot"


def test_train_refuses_a_missing_idx_folder_before_tensorflow_loads(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "inception_kit.cli",
            "train",
            "specs/fashion_inception.yaml",
            "--data",
            f"idx:{tmp_path / 'none'}",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert p.returncode == 2 and "which does not exist" in p.stderr and "Traceback" not in p.stderr
    assert "tensorflow" not in p.stderr.lower() and not (tmp_path / "run").exists()
