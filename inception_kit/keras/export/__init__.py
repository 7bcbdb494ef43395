"""Export a spec as a verified, self-describing artifact: SavedModel, .keras, TFLite or ONNX.

    export("specs/googlenet.yaml", "build/googlenet")            # SavedModel (the default)
    export(spec, "build/g.tflite", format="tflite", quantize=True)
    inspect_artifact("build/googlenet", fmt="table")             # the stored report, as text; no TensorFlow

Formats, names and shapes (H, W, C = the spec's input; OUT = the plan's output shape):

- ``savedmodel`` (a folder). Signature ``serving_default``: one input ``image``, float32
  ``[batch, H, W, C]`` (NHWC, batch free), one output ``output``, float32 ``[batch, *OUT]``.
  It loads with plain TensorFlow, no inception_kit and no Keras code needed:
  ``tf.saved_model.load(path).signatures["serving_default"](image=x)["output"]``. The same
  function is the object's ``serve(image)`` method.
- ``keras`` (a ``.keras`` file; the name must end in ``.keras``). Loads with
  ``keras.models.load_model(path)`` and no custom objects; its input layer is ``image``.
- ``tflite`` (one file). Signature ``serving_default``, input ``image`` with shape signature
  ``[-1, H, W, C]``, output ``output``; batch free (the interpreter resizes). float32, or
  with ``quantize=True`` dynamic-range int8 weights (``tf.lite.Optimize.DEFAULT``; the
  activations stay float32, so input and output are float32 either way).
- ``onnx`` (one file, opset 17, needs ``pip install inception-kit[onnx]``). Input ``image``
  float32 ``["batch", H, W, C]`` (NHWC, as in Keras), output ``output`` ``["batch", *OUT]``.

The SavedModel is not Keras' ``model.export()``, which stores every weight twice: see `savedmodel`.

Every artifact carries its spec. Three files, ``spec.yaml`` (the expanded spec),
``report.json`` (the cost report, as ``inception-kit report --format json``) and
``manifest.json`` (format, input and output names and shapes, weights, tolerance, max
diff measured, versions; for the one-file formats the artifact's size and sha256), are in

- ``PATH/assets.extra/inception_kit/`` for a SavedModel (TensorFlow ignores
  ``assets.extra``), and
- a sidecar folder ``PATH.inception-kit/`` beside a ``.keras``, ``.tflite`` or ``.onnx``
  file (``model.tflite`` + ``model.tflite.inception-kit/``). Keep the two together.

`inspect_artifact` reads them back without importing TensorFlow.

Verification (on by default). After the artifact is written to its temporary location, it
is reloaded in this process with its own runtime (``tf.saved_model.load``,
``keras.models.load_model``, ``tf.lite.Interpreter``, onnxruntime) and run on a fixed batch
(2 samples, numpy ``default_rng(0)``, uniform in [-1, 1)), and its outputs are compared
with the Keras model's (``training=False``). The check passes when

    max |artifact - keras| <= TOLERANCE[kind] * max(1, max |keras|)

with ``TOLERANCE = {"float32": 1e-5, "bfloat16": 1.6e-2, "int8": 5e-2}`` (per precision; int8
for quantized): for float32 an absolute 1e-5 for outputs within [-1, 1] (softmax heads),
relative to the largest output for feature maps. A bfloat16 artifact is compared with its
own bfloat16 Keras model (its graph rounds in other places: up to one bfloat16 ulp, 4.9e-3
measured); the manifest also records its centred relative L2 from the float32 Keras model of
the same weights (``float32_centred_rel_l2``), the error the precision costs. The diffs each
format shows on the shipped specs, and how far the tolerances are above them:
docs/measurements.md. A failure raises `VerificationError` and leaves nothing behind.

Safety. Everything is written to temporary siblings of the destination and moved into place
only after verification (`inception_kit.files`). An existing destination (or sidecar) is
kept unless ``overwrite=True`` (`DestinationExists`), and even then a SavedModel folder is
replaced only if an earlier export wrote it (its manifest proves it) and it holds neither
the working folder nor the spec (`UnsafeDestination`). An error or a kill while writing or
verifying leaves the destination as it was; a kill may leave a hidden ``.NAME.*.tmp``
sibling, never a half artifact at the destination. A one-file artifact and its sidecar are
replaced as a pair (`place_pair`): at every instant `inspect_artifact` reads either the old
pair or the new one. The sidecar goes first, by a rename that fails if it exists, so of two
concurrent exporters to the same path one wins whole and the other fails with
`DestinationExists`.

TensorFlow's and the converters' console output is captured (file-descriptor level) while
exporting, so a user sees only the summary line; when something fails, the captured tail is
attached to the exception as a note (shown with ``--debug``): `capture`.

The modules: `artifact` (names, metadata, verification rule, model, placing a pair),
`weights_file` (loading a .weights.h5), one per format (`savedmodel`, `keras_file`,
`tflite`, `onnx`), `capture`, `inspect`, and `tensorflow_child` with `__main__` (the TensorFlow
child process that writes TensorFlow formats under the jax or torch backend).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ...errors import ArgumentError
from ...files import check_file_destination, check_folder_destination, staged_dir
from ...loading import Source, load
from ...planner import DEFAULT_BUDGET, INPUT_NAME, OUTPUT_NAME, Budget
from ..builder import PRECISIONS
from . import keras_file, onnx, savedmodel, tflite
from .artifact import (
    MANIFEST_FILE,
    MAX_META_BYTES,
    META_DIR,
    PREVIOUS_DIR,
    REPORT_FILE,
    SIDECAR_SUFFIX,
    SIGNATURE,
    SPEC_FILE,
    TOLERANCE,
    VERIFY_BATCH,
    VERIFY_SEED,
    Check,
    ExportResult,
    MissingDependency,
    VerificationError,
    centred_rel_l2,
    checker,
    file_sha256,
    file_stamp,
    manifest_of,
    meta_texts,
    metadata_dir,
    model_with_weights,
    place_pair,
    serving_module,
    spec_files,
    tree_bytes,
    write_meta,
)
from .capture import captured
from .inspect import INSPECT_FORMATS, inspect_artifact
from .onnx import ONNX_OPSET
from .tensorflow_child import export_in_tensorflow

Writer = Callable[[Any, Path, Any, "Check | None", bool], dict[str, Any]]


@dataclass(frozen=True)
class Format:
    """One export format: everything export does differently for it."""

    name: str
    write: Writer  # under the TensorFlow backend: writes at tmp, checks on x, returns manifest extras
    folder: bool = False  # a folder with its metadata inside, else one file with a sidecar
    suffix: str | None = None  # the name the destination must end in (Keras loads only .keras)
    quantize: bool = False  # takes quantize=True (dynamic-range int8)
    dtypes: tuple[str, ...] = ("float32",)  # the precisions it writes
    # backends under which a TensorFlow child process writes it (`tensorflow_child`)
    in_tensorflow: tuple[str, ...] = ()
    # under another backend that writes it itself: its writer, and what it needs (raises MissingDependency)
    native: Writer | None = None
    require: Callable[[str], None] | None = None


_TABLE = (
    Format(
        "savedmodel",
        savedmodel.write,
        folder=True,
        dtypes=("float32", "bfloat16"),
        in_tensorflow=("jax", "torch"),
    ),
    Format("keras", keras_file.write, suffix=".keras", dtypes=("float32", "bfloat16")),
    Format("tflite", tflite.write, quantize=True, in_tensorflow=("jax", "torch")),
    Format("onnx", onnx.write, in_tensorflow=("jax",), native=onnx.write_with_keras, require=onnx.require),
)
WRITERS: Mapping[str, Format] = MappingProxyType({f.name: f for f in _TABLE})  # read-only
FORMATS = tuple(WRITERS)

__all__ = [
    "FORMATS",
    "INSPECT_FORMATS",
    "MANIFEST_FILE",
    "MAX_META_BYTES",
    "META_DIR",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "PREVIOUS_DIR",
    "REPORT_FILE",
    "SIDECAR_SUFFIX",
    "SIGNATURE",
    "SPEC_FILE",
    "TOLERANCE",
    "VERIFY_BATCH",
    "VERIFY_SEED",
    "WRITERS",
    "Check",
    "ExportResult",
    "Format",
    "MissingDependency",
    "VerificationError",
    "captured",
    "centred_rel_l2",
    "checker",
    "export",
    "file_sha256",
    "inspect_artifact",
    "metadata_dir",
    "model_with_weights",
    "place_pair",
    "serving_module",
    "spec_files",
    "tree_bytes",
    "write_meta",
]


def export(
    spec: Source,
    out: str | os.PathLike[str],
    format: str = "savedmodel",
    weights: str | os.PathLike[str] | None = None,
    quantize: bool = False,
    overwrite: bool = False,
    verify: bool = True,
    budget: Budget = DEFAULT_BUDGET,
    dtype: str = "float32",
    *,
    precision: str | None = None,
) -> ExportResult:
    """Validates, builds, writes, verifies and moves an artifact into place (see the module doc).

    Args:
        spec: the plan (or a spec, a YAML path) to export.
        out: the destination: a folder (savedmodel) or a file.
        format: one of `FORMATS`.
        weights: a Keras .weights.h5 file to load first (default: Keras' initializers).
        quantize: tflite only: dynamic-range int8 weights.
        overwrite: replace what an earlier export wrote at `out`.
        verify: reload the artifact and compare its outputs with the Keras model's.
        budget: the resource budget the spec is checked against.
        dtype: "float32" or "bfloat16" (Keras' mixed_bfloat16 policy; savedmodel and keras).
        precision: the former name of `dtype` (deprecated; warns).

    Returns:
        What was written (`ExportResult`), with the diff measured and its bound.

    Raises:
        SpecError: a bad spec or weights file.
        ArgumentError: a bad format, dtype or option combination.
        DestinationExists: `out` (or its sidecar) exists and overwrite is False.
        UnsafeDestination: `out` is a link, or not something an earlier export wrote.
        VerificationError: the reloaded artifact does not reproduce the Keras model.
        MissingDependency: format "onnx" without tf2onnx/onnxruntime installed.
    """
    from ...analysis import analyse

    if precision is not None:
        warnings.warn("export(precision=...) is deprecated: use dtype=", DeprecationWarning, stacklevel=2)
        dtype = precision
    out = Path(out)
    fmt = _check_options(format, quantize, dtype, out)
    analysis = analyse(load(spec, budget=budget))  # within its budget before TensorFlow allocates
    meta = metadata_dir(out, format)
    keep = spec_files(spec)
    # Fail before any work (staging checks again): a file replaces only a file, a folder
    # only an artifact that export wrote, never a folder holding the spec or the work.
    if fmt.folder:
        check_folder_destination(out, overwrite, META_DIR / MANIFEST_FILE, keep)
    else:
        check_file_destination(out, overwrite)
        check_folder_destination(meta, overwrite, MANIFEST_FILE, keep)
    from ..backends import current

    backend = current()
    if backend in fmt.in_tensorflow:
        return export_in_tensorflow(
            analysis.plan.model, out, format, weights, quantize, overwrite, verify, budget, dtype, backend
        )
    if fmt.require is not None:
        fmt.require(backend)

    texts = meta_texts(analysis)
    write = fmt.native if backend != "tensorflow" and fmt.native is not None else fmt.write
    kind = "int8" if quantize else dtype
    in_shape = tuple(int(d) for d in analysis.plan.model.input_shape)
    out_shape = tuple(int(d) for d in analysis.plan.output_shape)

    with captured():
        model, weights_entry = model_with_weights(analysis.plan, weights, dtype)
        manifest = manifest_of(analysis.plan, format, quantize, dtype, weights_entry)
        x, check, tolerance = (None, None, None)
        if verify:
            float32 = None
            if dtype != "float32":  # the error the precision costs: the same weights in float32
                float32, _ = model_with_weights(analysis.plan, None, "float32")
                float32.set_weights(model.get_weights())  # mixed precision keeps float32 variables
            x, check, tolerance = checker(model, in_shape, kind, f"the {format} artifact", out, float32)

        def write_at(tmp: Path, folder: Callable[[], Path], stamp: bool) -> float | None:
            """The artifact at `tmp` (verified), then its metadata in `folder()`; the max abs diff."""
            extra = write(model, tmp, x, check, quantize)
            diff: float | None = extra.pop("max_abs_diff", None)
            if stamp:  # a one-file artifact: its sidecar names the file it describes
                extra["artifact"] = file_stamp(out.name, tmp)
            figures = check.figures() if check is not None else None
            write_meta(folder(), texts, {**manifest, **extra}, diff, kind, tolerance, figures)
            return diff

        if fmt.folder:
            with staged_dir(out, overwrite, META_DIR / MANIFEST_FILE, keep) as tmp:
                diff = write_at(tmp, lambda: tmp / META_DIR, False)
                size = tree_bytes(tmp)
        else:
            diff, size = _write_pair(out, meta, write_at, overwrite, keep)
    figures = check.figures() if check is not None and diff is not None else {}
    return ExportResult(
        path=out,
        format=format,
        size_bytes=size,
        metadata=meta,
        input_name=INPUT_NAME,
        input_shape=(None, *in_shape),
        output_name=OUTPUT_NAME,
        output_shape=(None, *out_shape),
        quantized=quantize,
        weights=os.fspath(weights) if weights else None,
        max_abs_diff=diff,
        tolerance=tolerance,
        dtype=dtype,
        centred_rel_l2=figures.get("centred_rel_l2"),
        float32_centred_rel_l2=figures.get("float32_centred_rel_l2"),
    )


def _write_pair(
    out: Path,
    meta: Path,
    write_at: Callable[[Path, Callable[[], Path], bool], float | None],
    overwrite: bool,
    keep: list[Any],
) -> tuple[float | None, int]:
    """A one-file artifact and its sidecar, placed as a pair (`place_pair`); the max abs diff and the file's bytes."""
    diff, size = None, 0
    written: list[Path] = []  # the metadata folders made beside the temporary file

    def new_folder(tmp: Path) -> Path:
        written.append(Path(tempfile.mkdtemp(prefix=".meta.", dir=tmp.parent)))
        return written[-1]

    def write_file(tmp: Path) -> None:
        nonlocal diff, size
        diff = write_at(tmp, lambda: new_folder(tmp), True)
        size = tmp.stat().st_size

    try:
        place_pair(out, meta, write_file, lambda: written[-1], overwrite, keep, suffix=out.suffix)
    finally:
        for folder in written:
            shutil.rmtree(folder, ignore_errors=True)
    return diff, size


def _check_options(format: str, quantize: bool, dtype: str, out: Path) -> Format:
    """The format's entry; raises ArgumentError for an unknown format or dtype, or options
    the format cannot take."""
    fmt = WRITERS.get(format)
    if fmt is None:
        raise ArgumentError("format", f"one of {', '.join(FORMATS)}", format)
    if quantize and not fmt.quantize:
        takes = ", ".join(f.name for f in _TABLE if f.quantize)
        raise ArgumentError("quantize", f"a format that quantizes ({takes})", f"format {format}")
    if dtype not in PRECISIONS:
        raise ArgumentError("dtype", f"one of {', '.join(PRECISIONS)}", dtype)
    if dtype not in fmt.dtypes:
        takes = ", ".join(f.name for f in _TABLE if dtype in f.dtypes)
        raise ArgumentError("dtype", f"float32 for {format} ({dtype} exports as {takes})", dtype)
    if fmt.suffix is not None and out.suffix != fmt.suffix:
        raise ArgumentError("out", f"a path ending in {fmt.suffix} (the format {format} needs it)", str(out))
    return fmt
