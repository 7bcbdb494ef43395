"""What every artifact shares, whichever its format: names, the metadata (spec.yaml, report.json,
manifest.json) and where it goes, the verification rule, the Keras model it is written from,
and placing a one-file artifact with its sidecar.

Verification: the artifact's outputs on a fixed batch (`VERIFY_BATCH` samples, numpy
``default_rng(VERIFY_SEED)``, uniform in [-1, 1)) may differ from its Keras model's (of the
same precision, ``training=False``) by at most ``TOLERANCE[kind] * max(1, max |keras|)``
(`checker`). The manifest records that diff and bound, and also the centred relative L2
(`centred_rel_l2`, deploy's deviation measure) from that model and, for a precision other
than float32, from the float32 Keras model of the same weights: the error the precision costs.

Imports no TensorFlow at the top: `inspect_artifact` uses this module without it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import Failure
from ...files import read_bounded, staged_dir, staged_file
from ...planner import INPUT_NAME, OUTPUT_NAME

SIGNATURE = "serving_default"
META_DIR = Path("assets.extra") / "inception_kit"
SIDECAR_SUFFIX = ".inception-kit"
SPEC_FILE, REPORT_FILE, MANIFEST_FILE = "spec.yaml", "report.json", "manifest.json"
PREVIOUS_DIR = "previous"  # the old pair's metadata, inside a sidecar while its file is replaced
MAX_META_BYTES = 16_000_000  # spec.yaml, report.json or manifest.json (InceptionResNetV2's report: ~0.5 MB)
VERIFY_BATCH, VERIFY_SEED = 2, 0
# Artifact vs its own Keras model, times max(1, max |keras|): per precision (quantized: int8).
# bfloat16: the SavedModel's graph rounds in other places than Keras' eager bfloat16 model; the
# worst measured over the shipped presets with spread and trained weights is 4.9e-3 (one
# bfloat16 ulp near 1), so 1.6e-2 (2**-6, four ulps at 1) leaves 3.3x (docs/measurements.md,
# benchmarks/bfloat16_error.py).
TOLERANCE = {"float32": 1e-5, "bfloat16": 1.6e-2, "int8": 5e-2}


class VerificationError(Failure):
    """The reloaded artifact's outputs differ from the Keras model's beyond the tolerance."""


def centred_rel_l2(ref: Any, other: Any) -> Any:
    """Per sample: ||c(other) - c(ref)|| / ||c(ref)||, c removing the sample's mean (a zero
    norm counts as 1e-30, so a constant reference gives a large figure, never a NaN)."""
    import numpy as np

    a = np.asarray(ref, np.float64).reshape(len(ref), -1)
    b = np.asarray(other, np.float64).reshape(len(other), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return np.linalg.norm(b - a, axis=1) / np.maximum(np.linalg.norm(a, axis=1), 1e-30)


class MissingDependency(ImportError):
    """An optional dependency of one export format is not installed."""


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote."""

    path: Path
    format: str
    size_bytes: int
    metadata: Path
    input_name: str
    input_shape: tuple[int | None, ...]
    output_name: str
    output_shape: tuple[int | None, ...]
    quantized: bool
    weights: str | None
    max_abs_diff: float | None
    tolerance: float | None
    dtype: str = "float32"
    centred_rel_l2: float | None = None  # from the Keras model of the same precision
    float32_centred_rel_l2: float | None = None  # another precision: from the float32 Keras model

    def summary(self) -> str:
        kind = "quantized (dynamic-range int8) " if self.quantized else ""
        kind += f"{self.dtype} " if self.dtype != "float32" else ""
        where = "in the folder" if self.metadata.name != self.path.name + SIDECAR_SUFFIX else "in the sidecar"
        check = (
            f"verified by reloading it: max abs diff {self.max_abs_diff:.3g} from the Keras model "
            f"on a seeded batch of {VERIFY_BATCH} (tolerance {self.tolerance:.3g})"
            if self.max_abs_diff is not None
            else "not verified (verify=False; on the command line, --no-verify)"
        )
        if self.float32_centred_rel_l2 is not None:
            check += f", centred relative L2 {self.float32_centred_rel_l2:.2g} from the float32 model"
        return (
            f"Wrote {self.path}: {kind}{self.format}, {self.size_bytes:,} bytes, "
            f"input '{self.input_name}' float32{shape_text(self.input_shape)} -> "
            f"output '{self.output_name}' float32{shape_text(self.output_shape)}, "
            f"{'weights from ' + self.weights if self.weights else 'untrained weights'}; "
            f"spec and cost report {where} {self.metadata}; {check}."
        )


def shape_text(shape: tuple[int | None, ...] | list[int | None]) -> str:
    """``[batch, 28, 28, 192]``: a shape as the summary and inspect show it."""
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"


def metadata_dir(path: str | os.PathLike[str], format: str | None = None) -> Path:
    """Where an artifact's spec.yaml, report.json and manifest.json are (or will be)."""
    path = Path(path)
    if format is not None:
        from . import WRITERS  # the format table (this module is below it)

        folder = format in WRITERS and WRITERS[format].folder
    else:
        folder = path.is_dir() and (path / META_DIR).is_dir()
    if folder:
        return path / META_DIR
    return path.with_name(path.name + SIDECAR_SUFFIX)


def spec_files(spec: Any) -> list[str | os.PathLike[str]]:
    """The file a spec was read from (a path, or a loaded spec's `source`), which no
    overwrite may replace a folder holding."""
    spec = getattr(spec, "model", spec)  # a plan: its spec
    path = spec if isinstance(spec, (str, os.PathLike)) else getattr(spec, "source", None)
    return [path] if path and os.path.exists(path) else []


# --------------------------------------------------------------------------- bytes


def file_sha256(path: Path) -> str:
    """The sha256 of a regular file, read without following a link or blocking on a FIFO."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_bytes(folder: Path) -> int:
    """Bytes of the regular files under `folder`, links not followed."""
    total = 0
    for top, _, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(top, name))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


# --------------------------------------------------------------------------- the model and its check


def model_with_weights(
    plan: Any, weights: str | os.PathLike[str] | None, precision: str = "float32"
) -> tuple[Any, Any]:
    """The Keras model of `plan` (weights loaded when given), and how the manifest describes its weights."""
    from ..builder import build_model
    from .weights_file import load_weights

    model = build_model(plan, precision)
    if weights is None:
        return model, "untrained (Keras initializers)"
    load_weights(model, Path(weights))
    return model, {"file": os.fspath(weights), "sha256": file_sha256(Path(weights))}


def model_input_shape(model: Any) -> tuple[int, ...]:
    """A Keras model's input shape without the batch."""
    return tuple(int(d) for d in model.input_shape[1:])


class Check:
    """Checks an artifact's outputs on the reference batch `x` against its Keras model's:
    called with them, returns the max abs diff and raises `VerificationError` beyond
    `tolerance`; keeps the outputs it checked so `figures` can describe them."""

    def __init__(self, expected: Any, tolerance: float, what: str, out: Path, float32: Any = None) -> None:
        self.expected, self.tolerance, self.what, self.out = expected, tolerance, what, out
        self.float32 = float32  # the float32 model's outputs, for another precision
        self.actual: Any = None

    def __call__(self, actual: Any) -> float:
        import numpy as np

        self.actual = np.asarray(actual, dtype=np.float32)
        diff = float(np.abs(self.actual - self.expected).max())
        if not diff <= self.tolerance:  # NaN fails too
            raise VerificationError(
                f"{self.what}'s outputs differ from the Keras model's by up to {diff:.3g} "
                f"(tolerance {self.tolerance:.3g}); nothing was written to {self.out}"
            )
        return diff

    def figures(self) -> dict[str, float]:
        """The centred relative L2 (largest over the batch) of the outputs last checked, from
        the Keras model's and (another precision) from the float32 model's."""
        if self.actual is None:
            return {}
        found = {"centred_rel_l2": float(centred_rel_l2(self.expected, self.actual).max())}
        if self.float32 is not None:
            found["float32_centred_rel_l2"] = float(centred_rel_l2(self.float32, self.actual).max())
        return found


def checker(
    model: Any, in_shape: tuple[int, ...], kind: str, what: str, out: Path, float32: Any = None
) -> tuple[Any, Check, float]:
    """The reference batch, a `Check` of outputs on it, and the tolerance used. `float32`: the
    float32 Keras model of the same weights, when `model` computes in another precision."""
    import keras
    import numpy as np

    x = np.random.default_rng(VERIFY_SEED).uniform(-1.0, 1.0, (VERIFY_BATCH, *in_shape)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x, training=False)).astype(np.float32)
    tolerance = TOLERANCE[kind] * max(1.0, float(np.abs(expected).max()))
    reference = None if float32 is None else keras.ops.convert_to_numpy(float32(x, training=False))
    return x, Check(expected, tolerance, what, out, reference), tolerance


def serving_module(model: Any, shape: tuple[int, ...]) -> tuple[Any, Any]:
    """A tf.Module holding the captured tf.Variables once and a serving tf.function
    (``serve(image) -> {"output": ...}``), and that function's concrete function.

    Not `model.export()`: Keras 3's ExportArchive stores every weight twice (the Keras
    Variable wrappers and the tf.Variables they wrap are two objects to the saver,
    keras-team/keras#23553). This module tracks only the tf.Variables, keyed by the Keras
    weight path; the model is reached only through the function's closure, so it is not tracked.
    """
    import tensorflow as tf

    root = tf.Module()
    signature = [tf.TensorSpec((None, *shape), tf.float32, name=INPUT_NAME)]

    def serve(image: Any) -> dict[str, Any]:
        return {OUTPUT_NAME: model(image, training=False)}

    root.serve = tf.function(serve, input_signature=signature, autograph=False)
    concrete = root.serve.get_concrete_function()
    captured = {id(v): v for v in concrete.variables}
    named = {}
    for w in model.weights:  # the Keras wrappers are NOT tracked, only what they wrap
        if id(w.value) in captured:
            named[w.path] = captured.pop(id(w.value))
    root.weights = named
    root.other_variables = list(captured.values())
    return root, concrete


# --------------------------------------------------------------------------- metadata


def meta_texts(analysis: Any) -> dict[str, str]:
    """spec.yaml and report.json of an analysed spec, as every artifact carries them."""
    from ...report import render

    return {SPEC_FILE: analysis.plan.model.to_yaml(), REPORT_FILE: render(analysis, "json")}


def manifest_of(plan: Any, format: str, quantized: bool, precision: str, weights: Any) -> dict[str, Any]:
    """The manifest's account of an artifact of `plan`: format, options, model, input, output and
    weights (as `model_with_weights` describes them)."""
    in_shape = [int(d) for d in plan.model.input_shape]
    out_shape = [int(d) for d in plan.output_shape]
    return {
        "format": format,
        "quantized": quantized,
        "precision": precision,
        "model": plan.model.name,
        "input": {"name": INPUT_NAME, "dtype": "float32", "shape": [None, *in_shape]},
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [None, *out_shape]},
        "weights": weights,
    }


def file_stamp(name: str, path: Path) -> dict[str, Any]:
    """What a sidecar says of its one-file artifact (now at `path`, finally named `name`)."""
    return {"file": name, "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def write_meta(
    folder: Path,
    texts: dict[str, str],
    manifest: dict[str, Any],
    diff: float | None,
    kind: str,
    tolerance: float | None,
    figures: dict[str, Any] | None = None,
) -> None:
    """Writes spec.yaml, report.json and manifest.json (diff None: not verified); `figures`
    (`Check.figures`, the batch checked) join the verification record."""
    from ...version import __version__
    from ..backends import versions

    manifest = {
        **manifest,
        "verification": {
            "batch": VERIFY_BATCH,
            "input": f"numpy default_rng({VERIFY_SEED}).uniform(-1, 1), float32",
            "compared_with": f"the Keras model ({manifest.get('precision', 'float32')}), training=False",
            "max_abs_diff": diff,
            "tolerance": tolerance,
            "rule": f"max abs diff <= {TOLERANCE[kind]:g} * max(1, max |keras output|)",
            "bound": {"kind": kind, "factor": TOLERANCE[kind]},  # TOLERANCE's entry for this precision
            **(figures or {}),
        }
        if diff is not None
        else None,
        "versions": {"inception_kit": __version__, **versions()},
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def place_pair(
    out: Path,
    meta: Path,
    write_file: Callable[[Path], None],
    new_meta: Callable[[], Path],
    overwrite: bool,
    keep: list[Any],
    suffix: str = "",
) -> None:
    """Writes a one-file artifact and its sidecar so that at every instant, a kill included,
    the pair `inspect_artifact` reads is whole: the old pair or the new one, never a mix.

    1. `write_file(tmp)` writes (and verifies) the file at a temporary beside `out`, then
       `new_meta()` is the folder holding its spec.yaml, report.json and manifest.json;
    2. a new sidecar, holding those plus the old pair's metadata under `previous/`, takes
       the old sidecar's place in one exchange (on a new destination: a rename that fails
       if the sidecar appeared meanwhile, the atomic claim on it);
    3. the file is moved onto `out` in one rename;
    4. the sidecar is exchanged once more for one without `previous/`.
    Between 2 and 3 the new manifest's sha256 does not match the old file, and `previous/`,
    which does, is what inspect reads.
    """
    claimed = False
    try:
        with staged_file(out, overwrite, suffix=suffix) as tmp:  # moves the file when the block ends
            write_file(tmp)
            source = new_meta()
            old = meta if out.is_file() and (meta / MANIFEST_FILE).is_file() else None
            with staged_dir(meta, overwrite, MANIFEST_FILE, keep) as tmp_meta:
                _copy_meta(source, tmp_meta)
                if old is not None:
                    _copy_meta(old, tmp_meta / PREVIOUS_DIR)
            claimed = old is None
    except BaseException:
        if claimed:  # a new sidecar whose file could not follow it
            shutil.rmtree(meta, ignore_errors=True)
        raise
    if old is not None:
        with staged_dir(meta, True, MANIFEST_FILE, keep) as tmp_meta:
            _copy_meta(source, tmp_meta)


def _copy_meta(source: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in (SPEC_FILE, REPORT_FILE, MANIFEST_FILE):
        (folder / name).write_bytes(read_bounded(source / name, MAX_META_BYTES, inside=source))
