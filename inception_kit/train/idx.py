"""MNIST-format IDX files: a bounded, validated reader, and the data sets made of them.

The format (LeCun's MNIST page): a 4-byte magic number `00 00 TT DD` (TT the element
type, 0x08 unsigned bytes; DD the number of dimensions), DD big-endian uint32 sizes, then
the elements in row-major order. Files may be gzipped (`*.gz`, recognised by content, not
by name). A folder of them holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
`t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (MNIST's own `train-images.idx3-ubyte`
spelling too), gzipped or not.

`fashion-mnist` is the folder Debian's `dataset-fashion-mnist` package installs
(Zalando's Fashion-MNIST: 60,000 training and 10,000 test images, 28x28 grayscale, 10
classes). Nothing is ever downloaded: a missing package or folder is an error naming the
install command.

Every read is bounded (MAX_BYTES, decompressed) and checked: the magic number, the type,
the sizes against the bytes present, and images against labels.
A hostile file is a `SpecError` naming the file and what is wrong. numpy only; no TensorFlow.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..files import read_bounded

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_INSTALL = "apt-get install dataset-fashion-mnist"
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
MAX_BYTES = 512 * 2**20  # one file, decompressed: MNIST's largest is 47 MB
UBYTE = 0x08
SPLITS = ("train", "t10k")
IDX_PREFIX = "idx:"


@dataclass
class IdxData:
    """One split of an IDX data set: images (n, h, w) uint8 and labels (n,) uint8."""

    name: str  # 'fashion-mnist' or 'idx:/abs/folder'
    split: str  # 'train' or 't10k'
    images: Any
    labels: Any
    class_names: list[str]

    def arrays(self, channels: int = 1) -> tuple[Any, Any]:
        """(images float32 in [0, 1] shaped (n, h, w, channels), labels int32)."""
        import numpy as np

        x = (self.images.astype("float32") / 255.0)[..., None]
        if channels != 1:
            x = np.repeat(x, channels, axis=-1)
        return np.ascontiguousarray(x), self.labels.astype("int32")


def is_idx_name(data: object) -> bool:
    """Whether a `--data` value names an IDX data set ('fashion-mnist' or 'idx:DIR')."""
    return isinstance(data, str) and (data == "fashion-mnist" or data.startswith(IDX_PREFIX))


def folder_of(data: str) -> tuple[Path, str]:
    """The folder a `--data` value names, and the command that provides it (for errors)."""
    if data == "fashion-mnist":
        return (
            FASHION_MNIST,
            f"install it with `{FASHION_INSTALL}` (Debian/Ubuntu; never downloaded at run time)",
        )
    folder = data[len(IDX_PREFIX) :]
    if not folder:
        raise SpecError.one("data", "idx:DIR, a folder of MNIST-format IDX files", repr(data))
    return Path(
        folder
    ), "point idx: at a folder of train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], ..."


def find(folder: Path, split: str, what: str, data: str, how: str) -> Path:
    """The file of `split` ('train', 't10k') holding `what` ('images', 'labels') in `folder`."""
    if not folder.is_dir():
        state = "does not exist" if not folder.exists() else "is not a folder"
        raise SpecError.one(
            "data", f"the IDX files of {data!r} in {folder}", f"{folder}, which {state}", hint=how
        )
    dims = 3 if what == "images" else 1
    names = [f"{split}-{what}-idx{dims}-ubyte", f"{split}-{what}.idx{dims}-ubyte"]
    for name in names:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    raise SpecError.one("data", f"{names[0]} (or .gz) in {folder}", "no such file", hint=how)


def read(path: str | os.PathLike[str], dims: int, limit: int = MAX_BYTES) -> Any:
    """One IDX file of unsigned bytes with `dims` dimensions, as a numpy array.

    Raises:
        SpecError: unreadable, too large, not IDX, or sizes that disagree with its bytes.
    """
    import numpy as np

    path = Path(path)

    def bad(expected: str, received: str) -> SpecError:
        return SpecError.one(str(path), expected, received)

    try:
        raw = read_bounded(path, limit)
    except OSError as err:
        raise bad("a readable IDX file", err.strerror or str(err)) from None
    if raw[:2] == b"\x1f\x8b":
        try:  # decompressed in a bounded read: a gzip bomb stops at `limit`
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as handle:
                raw = handle.read(limit + 1)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise bad("a readable gzip file", f"a corrupt one ({err})") from None
        if len(raw) > limit:
            raise bad(f"at most {limit:,} bytes decompressed", "more") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise bad("an IDX file (magic number 00 00 08 0D)", f"bytes {raw[:4].hex(' ') or 'none'}")
    if raw[2] != UBYTE or raw[3] != dims:
        raise bad(
            f"unsigned bytes in {dims} dimension{'s' if dims > 1 else ''} (magic 00 00 08 {dims:02x})",
            f"magic {raw[:4].hex(' ')}",
        )
    head = 4 + 4 * dims
    if len(raw) < head:
        raise bad(f"{dims} sizes after the magic number", f"{len(raw)} bytes in all")
    shape = struct.unpack(f">{dims}I", raw[4:head])
    if any(d == 0 for d in shape):
        raise bad("sizes of at least 1", str(list(shape)))
    count = 1
    for d in shape:
        count *= d
    if count != len(raw) - head:
        raise bad(f"{count:,} data bytes for sizes {list(shape)}", f"{len(raw) - head:,}")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(shape)


def load_split(data: str, split: str = "train") -> IdxData:
    """The images and labels of one split ('train' or 't10k') of an IDX data set.

    Args:
        data: 'fashion-mnist' or 'idx:DIR'.
        split: 'train' (60,000 in MNIST's layout) or 't10k' (the test set).

    Raises:
        SpecError: a missing folder or file (naming how to get it), or a bad file.
    """
    if split not in SPLITS:
        raise SpecError.one("split", "one of " + ", ".join(SPLITS), repr(split))
    folder, how = folder_of(data)
    images = read(find(folder, split, "images", data, how), 3)
    labels = read(find(folder, split, "labels", data, how), 1)
    if len(images) != len(labels):
        raise SpecError.one(
            str(folder), f"one label per image ({len(images):,} images)", f"{len(labels):,} labels"
        )
    k = int(labels.max()) + 1
    if data == "fashion-mnist" and k <= len(FASHION_CLASSES):
        names = list(FASHION_CLASSES)
    else:
        names = [str(i) for i in range(k)]
    name = data if data == "fashion-mnist" else IDX_PREFIX + str(folder.resolve())
    return IdxData(name, split, images, labels, names)


def inspect(data: str, input_shape: Any) -> Any:
    """The training split of an IDX data set as a `train.data.Source` of arrays, checked
    against a spec's input ([h, w, 1] or [h, w, 3] of the files' h and w)."""
    from .data import Source

    split = load_split(data, "train")
    h, w = split.images.shape[1:]
    if len(input_shape) != 3 or tuple(input_shape[:2]) != (h, w) or input_shape[-1] not in (1, 3):
        raise SpecError.one(
            "input",
            f"[{h}, {w}, 1] or [{h}, {w}, 3] for {data} ({h}x{w} grayscale images)",
            "[" + ", ".join(str(d) for d in input_shape) + "]",
        )
    x, y = split.arrays(input_shape[-1])
    return Source("arrays", split.name, list(split.class_names), len(y), arrays=(x, y))
