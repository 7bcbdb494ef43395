"""Training data for `inception-kit train`, as tf.data pipelines shaped like a spec's input.

Three sources, one result:

* an image folder with one sub-folder per class (`cats/`, `dogs/`, ...), read with Keras'
  own `keras.utils.image_dataset_from_directory`: resized to the spec's height and width,
  read as grayscale, RGB or RGBA for 1, 3 or 4 input channels;
* a packaged data set by name: `digits` is scikit-learn's `load_digits` (1,797 8x8
  grayscale digits, 10 classes; no download), resized to the spec's input with bilinear
  interpolation and its channel repeated when the spec wants 3;
* from Python, a pair of arrays `(images, labels)` already shaped like the spec's input.

Pixels are scaled to [0, 1] for folders and `digits` (arrays are used as they are), labels
are integers 0..K-1 (sub-folders in alphabetical order, as Keras numbers them).
The validation split is the last `int(split * n)` samples after a shuffle seeded by
`seed` (Keras' rule, the same for every source), so a run is reproducible.

Batches are GLOBAL batches: `tf.distribute` splits each one over the replicas
(per-replica = global / replicas). Training batches are whole (the last, partial one of an
epoch is left out; a fresh shuffle every epoch, so every sample is still seen), which keeps
every replica's share equal on any number of devices; validation keeps its smaller last
batch. In-memory data (`digits`, arrays) is shuffled by (seed, epoch) alone: epoch e has the
same batches on one device, on many, and after a resume. Both pipelines carry the
auto-shard policy DATA: each worker reads the same (in-memory, or path-list) data set and
keeps its part of every batch; there are no files to shard by.

Everything that can be wrong with a source is found by `inspect_source` without
TensorFlow, so the CLI answers a typo in a fraction of a second; `load` builds the pipelines.

Under the JAX and torch backends, in-memory data (`digits`, arrays) is served as numpy
batches by a `keras.utils.PyDataset` instead (`numpy_batches`): the same split, whole
training batches shuffled by (seed, epoch) alone (numpy's generator, so the order differs
from TensorFlow's), and no TensorFlow in the process. Image folders are read by Keras'
`image_dataset_from_directory`, a tf.data pipeline, on every backend (Keras converts its
batches), so they need TensorFlow installed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, Problem, SpecError

PACKAGED = {"digits": "scikit-learn's load_digits: 1,797 8x8 grayscale digits, 10 classes"}
DIGITS_CLASSES = [str(i) for i in range(10)]
DIGITS_COUNT = 1797
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # keras' ALLOWLIST_FORMATS
# What tf.io.decode_image reads (it goes by the bytes, not the name), as Pillow names them.
DECODED_FORMATS = ("PNG", "JPEG", "GIF", "BMP")
COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}
DATA_WANTED = (
    "an image folder with one sub-folder per class, idx:DIR (MNIST-format IDX files), or one of: "
    + ", ".join([*PACKAGED, "fashion-mnist"])
)


@dataclass
class Source:
    """What a data argument is, found without TensorFlow."""

    kind: str  # "folder", "packaged" or "arrays"
    name: str  # the folder (absolute), the packaged name, or "arrays"
    class_names: list[str]
    count: int  # samples in all
    arrays: Any = None  # (images, labels) for kind "arrays"
    per_class: dict[str, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        if self.kind == "folder":
            return f"the folder {self.name}"
        if self.kind == "packaged":
            return f"'{self.name}' ({PACKAGED[self.name]})"
        return "the arrays given"


@dataclass
class Data:
    """Training and validation pipelines, batched by the global batch size."""

    source: Source
    train_from: Callable[[int], Any]  # first epoch -> endless tf.data.Dataset of training batches
    val: Any  # tf.data.Dataset, or None without a validation split
    train_count: int
    val_count: int
    batch_size: int

    @property
    def class_names(self) -> list[str]:
        return self.source.class_names

    @property
    def steps_per_epoch(self) -> int:
        return self.train_count // self.batch_size

    def train(self, first_epoch: int = 0) -> Any:
        """Training batches for epochs first_epoch, first_epoch + 1, ... without end; pass
        `steps_per_epoch` to `fit`. In-memory data is shuffled by (seed, epoch) alone, so
        epoch e has the same batches however many times the pipeline was iterated before
        (Keras peeks at one batch under a tf.distribute strategy) and after a resume."""
        return self.train_from(first_epoch)


def split_sizes(count: int, validation_split: float) -> tuple[int, int]:
    """(training, validation) sample counts: validation is `int(split * count)`, as in Keras."""
    val = int(validation_split * count)
    return count - val, val


def inspect_source(data: Any, input_shape: Sequence[int]) -> Source:
    """Checks a data argument against a spec's input, without TensorFlow.

    Raises:
        ArgumentError: `data` is unusable (names the folder or the file, and what is wrong).
        SpecError: the spec's input cannot take this data.
    """
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], (str, os.PathLike)):
        return _inspect_arrays(data, input_shape)
    if isinstance(data, str) and data in PACKAGED:
        return _inspect_packaged(data, input_shape)
    from . import idx

    if idx.is_idx_name(data):  # fashion-mnist, idx:DIR: IDX files read into arrays (train/idx.py)
        found: Source = idx.inspect(data, input_shape)
        return found
    if isinstance(data, (str, os.PathLike)):
        return _inspect_folder(Path(data), input_shape)
    raise ArgumentError(
        "data", DATA_WANTED + ", or a pair (images, labels) of arrays", type(data).__name__, raw=True
    )


def check_split(source: Source, validation_split: float, batch_size: int | None = None) -> None:
    """Raises ArgumentError (naming `validation_split` or `batch_size`) when `source` cannot be
    split by `validation_split` into whole global batches of `batch_size`."""
    issue = _split_issue(source, validation_split, batch_size)
    if issue is not None:
        raise ArgumentError(*issue, raw=True)


def split_problems(source: Source, validation_split: float, batch_size: int | None = None) -> list[Problem]:
    """`check_split`'s finding as a list of spec problems worded with the command's flags
    (`--validation-split`): deploy's form, kept until it raises `check_split`'s error."""
    issue = _split_issue(source, validation_split, batch_size)
    return [] if issue is None else [Problem("--" + issue[0].replace("_", "-"), issue[1], issue[2])]


def _split_issue(
    source: Source, validation_split: float, batch_size: int | None
) -> tuple[str, str, str] | None:
    """(parameter, expected, received) of what is wrong with the split, or None."""
    fraction = isinstance(validation_split, (int, float)) and not isinstance(validation_split, bool)
    if not (fraction and 0 <= validation_split < 1):  # NaN fails both comparisons
        return (
            "validation_split",
            "a fraction from 0 (none) up to, not including, 1",
            repr(validation_split),
        )
    train, val = split_sizes(source.count, validation_split)
    if validation_split > 0 and val == 0:
        return (
            "validation_split",
            f"a split that leaves at least one validation sample of the {source.count} in {source.describe()}",
            repr(validation_split),
        )
    if train == 0:
        return ("validation_split", "a split that leaves training samples", repr(validation_split))
    if batch_size is not None and train < batch_size:
        return _batch_issue(source, train, batch_size)
    return None


def _batch_issue(source: Source, train: int, batch_size: int) -> tuple[str, str, str]:
    return (
        "batch_size",
        f"at most the {train} training samples of {source.describe()} (the global batch; whole batches only)",
        str(batch_size),
    )


def _inspect_packaged(name: str, input_shape: Sequence[int]) -> Source:
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise SpecError.one(
            "input",
            f"an image input [height, width, 1 or 3] for '{name}' (grayscale images)",
            _shape(input_shape),
        )
    return Source("packaged", name, list(DIGITS_CLASSES), DIGITS_COUNT)


def _inspect_folder(path: Path, input_shape: Sequence[int]) -> Source:
    where = f"'{path}'"
    if not path.exists():
        raise ArgumentError("data", DATA_WANTED, f"{where}, which does not exist", raw=True)
    if not path.is_dir():
        raise ArgumentError("data", DATA_WANTED, f"{where}, a file", raw=True)
    entries = [e for e in sorted(os.listdir(path)) if not e.startswith(".")]
    classes = [e for e in entries if (path / e).is_dir()]  # a link looping to itself is no folder
    if not entries:
        raise ArgumentError(
            "data", "a folder with one sub-folder per class", f"an empty folder {where}", raw=True
        )
    if not classes:
        raise ArgumentError(
            "data",
            "a folder with one sub-folder per class",
            f"{where}, which has files but no sub-folders",
            hint="put each class's images in a sub-folder named after the class",
            raw=True,
        )
    if len(classes) < 2:
        raise ArgumentError(
            "data", "a folder with at least 2 class sub-folders", f"{where} with 1 ('{classes[0]}')", raw=True
        )
    images = {c: _images(path / c) for c in classes}
    empty = [c for c, found in images.items() if not found]
    if empty:
        raise ArgumentError(
            "data",
            "images (" + ", ".join(IMAGE_SUFFIXES) + ") in every class sub-folder",
            f"{where}, where {', '.join(repr(c) for c in empty)} {'has' if len(empty) == 1 else 'have'} none",
            raw=True,
        )
    if len(input_shape) != 3 or input_shape[-1] not in COLOR_MODES:
        raise SpecError.one(
            "input",
            "an image input [height, width, channels] with 1, 3 or 4 channels (grayscale, RGB, RGBA)",
            _shape(input_shape),
        )
    _check_images([f for found in images.values() for f in found])
    per_class = {c: len(found) for c, found in images.items()}
    return Source("folder", str(path.resolve()), classes, sum(per_class.values()), per_class=per_class)


def _images(folder: Path) -> list[Path]:
    """The files Keras' `image_dataset_from_directory` reads under a class folder: those with an
    image suffix, found without following links to folders (its `follow_links=False`, so a link
    looping back up is listed, never walked), in a stable order."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [Path(root) / f for f in sorted(files) if f.lower().endswith(IMAGE_SUFFIXES)]
    return found


def _check_images(paths: Sequence[Path]) -> None:
    """Refuses, before TensorFlow reads them, images it would fail on or that would exhaust
    memory: files that are not regular (a FIFO would block the reader), empty, not a format
    TensorFlow decodes whatever their name says, or declaring more pixels than Pillow's
    decompression-bomb limit. Pillow reads only each header (a bounded prefix of the file)."""
    import warnings

    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS or 0
    bad: list[tuple[Path, str]] = []
    for path in paths:
        reason = None
        try:
            info = path.stat()
        except OSError as err:  # a dangling or looping link
            reason = f"which cannot be read ({err.strerror or err})"
        else:
            if not stat.S_ISREG(info.st_mode):
                reason = "which is not a regular file"
            elif info.st_size == 0:
                reason = "an empty (0-byte) file"
        if reason is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    with Image.open(path) as img:  # the header only; no pixels decoded
                        kind, (width, height) = img.format, img.size
                if kind not in DECODED_FORMATS:
                    reason = f"a {kind} image, which TensorFlow does not decode (only {', '.join(DECODED_FORMATS)})"
                elif limit and width * height > limit:
                    reason = f"declaring {width}x{height} pixels, over the {limit:,} of Pillow's decompression-bomb limit"
            except Image.DecompressionBombError as err:
                reason = f"over Pillow's decompression-bomb limit ({err})"
            except (OSError, SyntaxError, ValueError) as err:  # UnidentifiedImageError is an OSError
                reason = "which is not an image (" + (", ".join(DECODED_FORMATS)) + f"): {type(err).__name__}"
        if reason is not None:
            bad.append((path, reason))
    if bad:
        (first, reason), more = bad[0], len(bad) - 1
        raise ArgumentError(
            "data",
            f"decodable images ({', '.join(DECODED_FORMATS)}) in every class sub-folder",
            f"'{first}', {reason}"
            + (f"; and {more} more such file{'s' if more != 1 else ''}" if more else ""),
            raw=True,
        )


def _inspect_arrays(data: Any, input_shape: Sequence[int]) -> Source:
    import numpy as np

    x, y = (np.asarray(a) for a in data)
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise ArgumentError(
            "data",
            f"images shaped (n, {', '.join(map(str, input_shape))}), like the spec's input",
            str(x.shape),
            raw=True,
        )
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ArgumentError(
            "data",
            f"one integer label from 0 up per image ({x.shape[0]})",
            f"labels of shape {y.shape}, {y.dtype}",
            raw=True,
        )
    k = int(y.max()) + 1 if y.size else 0
    return Source("arrays", "arrays", [str(i) for i in range(k)], int(x.shape[0]), arrays=(x, y))


def _shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


# ---------------------------------------------------------------------------------------
# Pipelines (TensorFlow from here on)


def load(
    source: Source,
    input_shape: Sequence[int],
    *,
    batch_size: int,
    validation_split: float,
    seed: int,
    backend: str = "tensorflow",
    replicas: int = 1,
    outputs: Sequence[str] = (),
) -> Data:
    """The training and validation pipelines of an inspected source (tf.data under the
    TensorFlow backend, or for folders; numpy batches for in-memory data under the others).

    Args:
        outputs: for a model with a dict of outputs (auxiliary heads), their names: each batch's
            labels come as `{name: labels}`, the same labels for every output. Empty: plain labels.
    """
    n_train, n_val = split_sizes(source.count, validation_split)
    if n_train < batch_size:
        raise ArgumentError(*_batch_issue(source, n_train, batch_size), raw=True)
    if source.kind == "folder":
        train_from, val = _per_output(
            *_folder_pipelines(source, input_shape, validation_split, seed, batch_size), outputs
        )
    else:
        x, y = source.arrays if source.kind == "arrays" else _digits(input_shape)
        if backend == "tensorflow":
            train_from, val = _per_output(
                *_array_pipelines(x, y, validation_split, seed, batch_size), outputs
            )
        else:  # numpy batches have no `map`: they label per output themselves
            train_from, val = numpy_batches(x, y, validation_split, seed, batch_size, replicas, outputs)
            n_val -= n_val % replicas
    return Data(source, train_from, val, n_train, n_val, batch_size)


def _per_output(
    train_from: Callable[[int], Any], val: Any, outputs: Sequence[str]
) -> tuple[Callable[[int], Any], Any]:
    """tf.data pipelines whose labels are `{name: labels}` for each of `outputs` (none: as they are)."""
    if not outputs:
        return train_from, val
    names = tuple(outputs)

    def relabel(ds: Any) -> Any:
        return ds.map(lambda x, y: (x, {k: y for k in names}))

    return (lambda first_epoch: relabel(train_from(first_epoch))), None if val is None else relabel(val)


def digits_arrays(input_shape: Sequence[int]) -> tuple[Any, Any]:
    """scikit-learn's digits as (images float32 in [0, 1] shaped like `input_shape`, labels int32)."""
    return _digits(input_shape)


def _digits(input_shape: Sequence[int]) -> tuple[Any, Any]:
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]  # (n, 8, 8, 1), 0..16 -> [0, 1]
    h, w, c = input_shape
    if (h, w) != x.shape[1:3]:
        import keras  # the backend's own bilinear resize (half-pixel centres on all three)

        x = keras.ops.image.resize(x, (h, w), interpolation="bilinear")
        x = keras.ops.convert_to_numpy(x).clip(0.0, 1.0)
    if c == 3:
        x = np.repeat(x, 3, axis=-1)
    return np.ascontiguousarray(x, dtype="float32"), d.target.astype("int32")


def _array_pipelines(
    x: Any, y: Any, validation_split: float, seed: int, batch_size: int
) -> tuple[Callable[[int], Any], Any]:
    """Training batches drawn by index: epoch e's order is a stateless shuffle seeded by
    (seed, e). The arrays live in the pipeline's graph, so they must stay under 2 GB (as for
    `from_tensor_slices`)."""
    import numpy as np
    import tensorflow as tf

    order = np.random.RandomState(seed).permutation(len(x))
    n_train, n_val = split_sizes(len(x), validation_split)
    tr, va = order[:n_train], order[n_train:]
    xt, yt = tf.constant(x[tr]), tf.constant(y[tr])
    steps = n_train // batch_size

    def epoch(e: Any) -> Any:
        perm = tf.random.experimental.stateless_shuffle(
            tf.range(n_train, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), e])
        )
        return tf.data.Dataset.from_tensor_slices(tf.reshape(perm[: steps * batch_size], (steps, batch_size)))

    def train_from(first_epoch: int) -> Any:
        ds = tf.data.Dataset.counter(first_epoch).flat_map(epoch)
        ds = ds.map(lambda i: (tf.gather(xt, i), tf.gather(yt, i)), num_parallel_calls=tf.data.AUTOTUNE)
        return _finish(ds)

    val = tf.data.Dataset.from_tensor_slices((x[va], y[va])).batch(batch_size) if n_val else None
    return train_from, None if val is None else _finish(val)


def numpy_batches(
    x: Any,
    y: Any,
    validation_split: float,
    seed: int,
    batch_size: int,
    replicas: int = 1,
    outputs: Sequence[str] = (),
) -> tuple[Callable[[int], Any], Any]:
    """`_array_pipelines` in numpy, for the JAX and torch backends: `keras.utils.PyDataset`s
    of whole training batches, epoch e's order a permutation seeded by (seed, e), and
    validation batches in order (the last one smaller). Same split as `_array_pipelines`.
    keras.distribution splits every batch evenly over the replicas, so with R > 1 the
    validation set's last `n_val % R` samples are left out (at most R - 1). With `outputs`,
    labels come as `{name: labels}` (see `load`)."""
    names = tuple(outputs)
    import keras
    import numpy as np

    order = np.random.RandomState(seed).permutation(len(x))
    n_train, _n_val = split_sizes(len(x), validation_split)
    tr, va = order[:n_train], order[n_train:]
    xt, yt = np.ascontiguousarray(x[tr]), np.ascontiguousarray(y[tr])

    class Batches(keras.utils.PyDataset):
        """Batches of (x, y); `epoch` advances when Keras ends an epoch, so each epoch draws its own
        order, the same one after a resume (the first epoch is given)."""

        def __init__(self, xs: Any, ys: Any, first_epoch: int | None) -> None:
            super().__init__()  # one worker, no multiprocessing: batches are slices of memory
            self.xs, self.ys, self.epoch = xs, ys, first_epoch
            self.steps = len(xs) // batch_size if first_epoch is not None else -(-len(xs) // batch_size)
            self._order: Any = None

        def __len__(self) -> int:
            return self.steps

        def __getitem__(self, i: int) -> tuple[Any, Any]:
            if self.epoch is None:  # validation: in order
                idx = slice(i * batch_size, (i + 1) * batch_size)
            else:
                if self._order is None:
                    self._order = np.random.default_rng([seed, self.epoch]).permutation(len(self.xs))
                idx = self._order[i * batch_size : (i + 1) * batch_size]
            labels = self.ys[idx]
            return self.xs[idx], ({k: labels for k in names} if names else labels)

        def on_epoch_end(self) -> None:
            if self.epoch is not None:
                self.epoch, self._order = self.epoch + 1, None

    def train_from(first_epoch: int) -> Any:
        return Batches(xt, yt, first_epoch)

    va = va[: len(va) - len(va) % replicas]
    val = Batches(np.ascontiguousarray(x[va]), np.ascontiguousarray(y[va]), None) if len(va) else None
    return train_from, val


def _folder_pipelines(
    source: Source, input_shape: Sequence[int], validation_split: float, seed: int, batch_size: int
) -> tuple[Callable[[int], Any], Any]:
    """Keras reads the folder and shuffles its list of paths anew every epoch (seeded)."""
    import keras

    h, w, c = input_shape
    common = dict(
        labels="inferred",
        label_mode="int",
        class_names=source.class_names,
        color_mode=COLOR_MODES[c],
        batch_size=None,  # single images; batched below by the global batch
        image_size=(h, w),
        shuffle=True,  # the file list, seeded: a random, reproducible validation split
        seed=seed,
        verbose=False,
    )
    if validation_split > 0:
        train, val = keras.utils.image_dataset_from_directory(
            source.name, validation_split=validation_split, subset="both", **common
        )
    else:
        train, val = keras.utils.image_dataset_from_directory(source.name, **common), None
    scale = lambda img, label: (img / 255.0, label)
    batches = train.map(scale).batch(batch_size, drop_remainder=True)

    def train_from(first_epoch: int) -> Any:
        return _finish(batches.repeat())

    return train_from, None if val is None else _finish(val.map(scale).batch(batch_size))


def _finish(ds: Any) -> Any:
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def first_unreadable_image(folder: Path) -> Path | None:
    """The first image under `folder` (sorted) that TensorFlow cannot decode, or None.

    Run only after a training pipeline failed: Keras' own error names no file."""
    import tensorflow as tf

    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_SUFFIXES):
                path = Path(root) / name
                try:
                    tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False)
                except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, tf.errors.DataLossError):
                    return path
    return None
