"""Export a spec as a verified, self-describing artifact: SavedModel, .keras, TFLite or ONNX.

    export("specs/googlenet.yaml", "build/googlenet")            # SavedModel (the default)
    export(spec, "build/g.tflite", format="tflite", quantize=True)
    print(inspect_artifact("build/googlenet", fmt="table"))       # no TensorFlow needed

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

Why the SavedModel is not ``model.export()``: Keras 3's ``ExportArchive`` stores every
weight twice (keras-team/keras#23553). It tracks the model's *Keras* variables in its
``variables`` lists, and, separately, the *tf.Variable* objects that the traced endpoint
captured in ``_all_variables``. With the TensorFlow backend a Keras ``Variable`` is a
trackable wrapper around a ``tf.Variable`` and serializes that variable's value itself
(``_serialize_to_tensors``); the SavedModel saver deduplicates by object, and wrapper and
wrapped are two objects, so each value is written under ``variables/N`` and again under
``_all_variables/M``. For GoogLeNet that is 56.7 MB for 28.0 MB of float32 weights. Here
a bare ``tf.Module`` holds only the tf.Variables the serving function captures (once,
keyed by the Keras weight path) plus that ``tf.function``; the Keras model is reached only
through the function's closure, so it is not tracked: the folder is the raw weight bytes
plus about 2% (graph and metadata).

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

with ``TOLERANCE = {"float32": 1e-5, "bfloat16": 1e-5, "int8": 5e-2}``: an absolute 1e-5 for outputs
within [-1, 1] (softmax heads), relative to the largest output for feature maps.
Measured with untrained weights on every spec in specs/ (two builds each; "rel" is the diff
over max(1, max |keras|)): SavedModel and .keras 0; TFLite float32 at most 2.3e-10 rel;
ONNX at most 2.7e-6 rel (8.3e-6 absolute on five_by_five_naive, outputs up to 3.2);
quantized TFLite at most 8.9e-3 rel on single blocks (1.3e-2 to 1.9e-2 absolute) and under
1.2e-6 on the softmax heads (whose untrained outputs are all near 1/1000). Trained
weights were not available to measure; the int8 bound is 5.6x the worst seen. A failure raises
`VerificationError` and leaves nothing behind.

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
attached to the exception as a note (shown with ``--debug``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...analysis import DEFAULT_BUDGET, Budget
from ...errors import SpecError
from ...files import (
    DestinationExists,
    UnsafeDestination,
    check_file_destination,
    check_folder_destination,
    read_bounded,
    staged_dir,
    staged_file,
)
from ...report import render
from ...spec.types import Model
from ..builder import INPUT_NAME, PRECISIONS

FORMATS = ("savedmodel", "keras", "tflite", "onnx")
OUTPUT_NAME = "output"
SIGNATURE = "serving_default"
META_DIR = Path("assets.extra") / "inception_kit"
SIDECAR_SUFFIX = ".inception-kit"
SPEC_FILE, REPORT_FILE, MANIFEST_FILE = "spec.yaml", "report.json", "manifest.json"
PREVIOUS_DIR = "previous"  # the old pair's metadata, inside a sidecar while its file is replaced
MAX_META_BYTES = 16_000_000  # spec.yaml, report.json or manifest.json (InceptionResNetV2's report: ~0.5 MB)
VERIFY_BATCH, VERIFY_SEED = 2, 0
TOLERANCE = {"float32": 1e-5, "bfloat16": 1e-5, "int8": 5e-2}  # artifact vs its own Keras model
ONNX_OPSET = 17
INSPECT_FORMATS = ("table", "markdown", "csv", "json", "yaml")

__all__ = [
    "FORMATS",
    "ExportResult",
    "MissingDependency",
    "VerificationError",
    "export",
    "inspect_artifact",
    "metadata_dir",
]


class VerificationError(RuntimeError):
    """The reloaded artifact's outputs differ from the Keras model's beyond the tolerance."""


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

    def summary(self) -> str:
        kind = "quantized (dynamic-range int8) " if self.quantized else ""
        where = "in the folder" if self.format == "savedmodel" else "in the sidecar"
        check = (
            f"verified by reloading it: max abs diff {self.max_abs_diff:.3g} from the Keras model "
            f"on a seeded batch of {VERIFY_BATCH} (tolerance {self.tolerance:.3g})"
            if self.max_abs_diff is not None
            else "not verified (--no-verify)"
        )
        return (
            f"Wrote {self.path}: {kind}{self.format}, {self.size_bytes:,} bytes, "
            f"input '{self.input_name}' float32{_shape(self.input_shape)} -> "
            f"output '{self.output_name}' float32{_shape(self.output_shape)}, "
            f"{'weights from ' + self.weights if self.weights else 'untrained weights'}; "
            f"spec and cost report {where} {self.metadata}; {check}."
        )


def _shape(shape: tuple[int | None, ...] | list[int | None]) -> str:
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"


def metadata_dir(path: str | os.PathLike[str], format: str | None = None) -> Path:
    """Where an artifact's spec.yaml, report.json and manifest.json are (or will be)."""
    path = Path(path)
    if format == "savedmodel" or (format is None and path.is_dir() and (path / META_DIR).is_dir()):
        return path / META_DIR
    return path.with_name(path.name + SIDECAR_SUFFIX)


# --------------------------------------------------------------------------- export


def export(
    spec: Model | str | os.PathLike[str],
    out: str | os.PathLike[str],
    format: str = "savedmodel",
    weights: str | os.PathLike[str] | None = None,
    quantize: bool = False,
    overwrite: bool = False,
    verify: bool = True,
    budget: Budget = DEFAULT_BUDGET,
    precision: str = "float32",
) -> ExportResult:
    """Validates, builds, writes, verifies and moves an artifact into place (see the module doc).

    Raises:
        SpecError: a bad spec, format, option combination or weights file.
        DestinationExists: `out` (or its sidecar) exists and overwrite is False.
        VerificationError: the reloaded artifact does not reproduce the Keras model.
        MissingDependency: format "onnx" without tf2onnx/onnxruntime installed.
    """
    from ...analysis import analyse

    if format not in FORMATS:
        raise SpecError.one("format", f"one of {', '.join(FORMATS)}", repr(format))
    if quantize and format != "tflite":
        raise SpecError.one("quantize", "format tflite (dynamic-range int8 is a TFLite option)", f"format {format}")
    if precision not in PRECISIONS:
        raise SpecError.one("precision", f"one of {', '.join(PRECISIONS)}", repr(precision))
    if precision != "float32" and format not in ("savedmodel", "keras"):
        raise SpecError.one("precision", "float32 for tflite and onnx (bfloat16 exports as savedmodel or keras)", repr(precision))
    out = Path(out)
    if format == "keras" and out.suffix != ".keras":
        raise SpecError.one("out", "a path ending in .keras (Keras loads only such files)", str(out))
    analysis = analyse(spec, budget)
    meta = metadata_dir(out, format)
    keep = spec_files(spec)
    # Fail before any work (staging checks again): a file replaces only a file, a folder
    # only an artifact that export wrote, never a folder holding the spec or the work.
    if format == "savedmodel":
        check_folder_destination(out, overwrite, META_DIR / MANIFEST_FILE, keep)
    else:
        check_file_destination(out, overwrite)
        check_folder_destination(meta, overwrite, MANIFEST_FILE, keep)
    from ..backends import current

    backend = current()
    if backend != "tensorflow" and (format in ("savedmodel", "tflite") or (format, backend) == ("onnx", "jax")):
        return _export_in_tensorflow(analysis.plan.model, out, format, weights, quantize, overwrite, verify,
                                     budget, precision, backend)
    if format == "onnx":
        _require_onnx(backend)

    texts = {SPEC_FILE: analysis.plan.model.to_yaml(), REPORT_FILE: render(analysis, "json")}
    write = {"savedmodel": _savedmodel, "keras": _keras, "tflite": _tflite,
             "onnx": _onnx if backend == "tensorflow" else _onnx_keras}[format]
    kind = "int8" if quantize else precision
    in_shape = tuple(int(d) for d in analysis.plan.model.input_shape)
    out_shape = tuple(int(d) for d in analysis.plan.output_shape)
    manifest: dict[str, Any] = {
        "format": format,
        "quantized": quantize,
        "precision": precision,
        "model": analysis.plan.model.name,
        "input": {"name": INPUT_NAME, "dtype": "float32", "shape": [None, *in_shape]},
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [None, *out_shape]},
    }

    with _captured():
        model, manifest["weights"] = _model(analysis.plan, weights, precision)
        x, check, tolerance = _checker(model, in_shape, kind, f"the {format} artifact", out) if verify else (None, None, None)
        if format == "savedmodel":
            with staged_dir(out, overwrite, META_DIR / MANIFEST_FILE, keep) as tmp:
                extra = write(model, tmp, x, check, quantize)
                diff = extra.pop("max_abs_diff", None)
                _write_meta(tmp / META_DIR, texts, {**manifest, **extra}, diff, kind, tolerance)
                size = _tree_bytes(tmp)
        else:
            def write_file(tmp: Path) -> None:
                nonlocal diff, size
                extra = write(model, tmp, x, check, quantize)
                diff = extra.pop("max_abs_diff", None)
                size = tmp.stat().st_size
                extra["artifact"] = {"file": out.name, "bytes": size, "sha256": _sha256(tmp)}
                folder = Path(tempfile.mkdtemp(prefix=".meta.", dir=tmp.parent))
                written.append(folder)
                _write_meta(folder, texts, {**manifest, **extra}, diff, kind, tolerance)

            diff, size, written = None, 0, []
            try:
                place_pair(out, meta, write_file, lambda: written[-1], overwrite, keep, suffix=out.suffix)
            finally:
                for folder in written:
                    shutil.rmtree(folder, ignore_errors=True)
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
    )


def spec_files(spec: Any) -> list[str | os.PathLike[str]]:
    """The file a spec was read from (a path, or a loaded spec's `source`), which no
    overwrite may replace a folder holding."""
    spec = getattr(spec, "model", spec)  # a plan: its spec
    path = spec if isinstance(spec, (str, os.PathLike)) else getattr(spec, "source", None)
    return [path] if path and os.path.exists(path) else []


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


def _checker(model: Any, in_shape: tuple[int, ...], kind: str, what: str, out: Path) -> tuple[Any, Callable[[Any], float], float]:
    """The reference batch, a function that checks outputs on it, and the tolerance used."""
    import keras
    import numpy as np

    x = np.random.default_rng(VERIFY_SEED).uniform(-1.0, 1.0, (VERIFY_BATCH, *in_shape)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    tolerance = TOLERANCE[kind] * max(1.0, float(np.abs(expected).max()))

    def check(actual: Any) -> float:
        diff = float(np.abs(np.asarray(actual, dtype=np.float32) - expected).max())
        if not diff <= tolerance:  # NaN fails too
            raise VerificationError(
                f"{what}'s outputs differ from the Keras model's by up to {diff:.3g} "
                f"(tolerance {tolerance:.3g}); nothing was written to {out}"
            )
        return diff

    return x, check, tolerance


def _write_meta(
    folder: Path,
    texts: dict[str, str],
    manifest: dict[str, Any],
    diff: float | None,
    kind: str,
    tolerance: float | None,
) -> None:
    """Writes spec.yaml, report.json and manifest.json (diff None: not verified)."""
    from ...version import __version__
    from ..backends import versions

    manifest = {
        **manifest,
        "verification": {
            "batch": VERIFY_BATCH,
            "input": f"numpy default_rng({VERIFY_SEED}).uniform(-1, 1), float32",
            "compared_with": "the Keras model, training=False",
            "max_abs_diff": diff,
            "tolerance": tolerance,
            "rule": f"max abs diff <= {TOLERANCE[kind]:g} * max(1, max |keras output|)",
        }
        if diff is not None
        else None,
        "versions": {"inception_kit": __version__, **versions()},
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _model(plan: Any, weights: str | os.PathLike[str] | None, precision: str = "float32") -> tuple[Any, Any]:
    """The Keras model, and how the manifest describes its weights."""
    from ..builder import build_model

    model = build_model(plan, precision)
    if weights is None:
        return model, "untrained (Keras initializers)"
    _load_weights(model, Path(weights))
    return model, {"file": os.fspath(weights), "sha256": _sha256(Path(weights))}


def _load_weights(model: Any, path: Path) -> None:
    """Loads a Keras `.weights.h5` file layer by layer name, after checking every shape."""
    if not path.is_file():
        raise SpecError.one("weights", "a Keras .weights.h5 file", f"{path} (no such file)")
    import h5py
    import numpy as np

    try:
        f = h5py.File(path, "r")
    except OSError:
        raise SpecError.one("weights", "a Keras .weights.h5 file (HDF5)", f"{path}, which is not an HDF5 file") from None
    with f:
        link = _first_link(f)
        if link is not None:  # h5py and Keras would follow it into another file
            raise SpecError.one(
                "weights", "a Keras .weights.h5 file without HDF5 links", f"{path}, which links '{link}' elsewhere"
            )
        try:
            saved = _saved_layers(f)
        except ValueError as err:
            raise SpecError.one("weights", "a Keras .weights.h5 file", f"{path}, which is malformed ({err})") from None
        if saved is None:  # no layer names recorded: let Keras match by position
            try:
                model.load_weights(path)
            except ValueError as err:
                raise SpecError.one("weights", f"weights matching the architecture of '{model.name}'", f"{path}: {err}") from None
            return
        assign = []
        for layer in model.layers:  # check everything first, in model order
            want = [tuple(int(d) for d in w.shape) for w in layer.weights]
            got = saved.pop(layer.name, None)
            have = None if got is None else [tuple(d.shape) for d in got]
            if (have or []) != want:
                raise SpecError.one(
                    f"weights: layer '{layer.name}'",
                    f"weights of shapes {_shapes(want)} (the spec's architecture)",
                    f"{_shapes(have)} in {path}" if have is not None else f"no layer '{layer.name}' in {path}",
                )
            if want:
                assign.append((layer, got))
        extra = {name: ds for name, ds in saved.items() if ds}
        if extra:
            name, ds = next(iter(extra.items()))
            raise SpecError.one(
                f"weights: layer '{name}'",
                f"no such layer (the spec's model '{model.name}' has none)",
                f"weights of shapes {_shapes([tuple(d.shape) for d in ds])} in {path}",
            )
        for layer, datasets in assign:
            layer.set_weights([np.asarray(d) for d in datasets])


def _shapes(shapes: list[tuple[int, ...]] | None) -> str:
    if not shapes:
        return "none"
    return ", ".join(str(tuple(s)) for s in shapes)


def _first_link(group: Any, prefix: str = "") -> str | None:
    """The path of the first soft or external link under an HDF5 group, or None."""
    import h5py

    for key in group:
        link = group.get(key, getlink=True)
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            return f"{prefix}/{key}"
        item = group.get(key)
        if isinstance(item, h5py.Group):
            found = _first_link(item, f"{prefix}/{key}")
            if found:
                return found
    return None


def _saved_layers(f: Any) -> dict[str, list[Any]] | None:
    """{layer name: [its datasets in order]} from a Keras 3 weights file, or None."""
    import h5py

    group = f.get("layers")
    if not isinstance(group, h5py.Group):
        return None
    found: dict[str, list[Any]] = {}
    for key in group:
        sub = group[key]
        vars_ = sub.get("vars") if isinstance(sub, h5py.Group) else None
        if not isinstance(vars_, h5py.Group) or "name" not in vars_.attrs:
            return None
        name = vars_.attrs["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        if not all(k.isdigit() for k in vars_):
            raise ValueError(f"layers/{key}/vars holds keys other than 0, 1, 2, ...: {sorted(vars_)[:3]}")
        found[name] = [vars_[k] for k in sorted(vars_, key=int)]
    return found


# --------------------------------------------------------------------------- formats
# Each writer writes the artifact at `tmp`, checks it (when x is not None) and returns
# manifest entries, "max_abs_diff" among them.


def _serving_module(model: Any, shape: tuple[int, ...]) -> tuple[Any, Any]:
    """A tf.Module holding the captured tf.Variables once and a serving tf.function."""
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


def _input_shape(model: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in model.input_shape[1:])


def _savedmodel(model: Any, tmp: Path, x: Any, check: Callable[[Any], float] | None, quantize: bool) -> dict:
    import tensorflow as tf

    root, concrete = _serving_module(model, _input_shape(model))
    tf.saved_model.save(root, str(tmp), signatures={SIGNATURE: concrete})
    extra: dict[str, Any] = {"signature": SIGNATURE}
    if x is not None:
        loaded = tf.saved_model.load(str(tmp))
        fn = loaded.signatures[SIGNATURE]
        inputs = fn.structured_input_signature[1]
        if set(inputs) != {INPUT_NAME} or set(fn.structured_outputs) != {OUTPUT_NAME}:
            raise VerificationError(f"unexpected signature {inputs} -> {fn.structured_outputs}")
        extra["max_abs_diff"] = check(fn(**{INPUT_NAME: tf.constant(x)})[OUTPUT_NAME].numpy())
    return extra


def _keras(model: Any, tmp: Path, x: Any, check: Callable[[Any], float] | None, quantize: bool) -> dict:
    import keras

    model.save(str(tmp))  # tmp ends in .keras (export stages it with the artifact's suffix)
    extra: dict[str, Any] = {}
    if x is not None:
        loaded = keras.models.load_model(str(tmp))
        extra["max_abs_diff"] = check(keras.ops.convert_to_numpy(loaded(x, training=False)))
    return extra


def _tflite_interpreter(path: Path) -> Any:
    import tensorflow as tf

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated" (it still works)
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_path=str(path))


def _tflite(model: Any, tmp: Path, x: Any, check: Callable[[Any], float] | None, quantize: bool) -> dict:
    import tensorflow as tf

    root, concrete = _serving_module(model, _input_shape(model))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], root)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    tmp.write_bytes(converter.convert())
    extra: dict[str, Any] = {"signature": SIGNATURE}
    if x is not None:
        interpreter = _tflite_interpreter(tmp)
        signatures = interpreter.get_signature_list()
        if signatures.get(SIGNATURE) != {"inputs": [INPUT_NAME], "outputs": [OUTPUT_NAME]}:
            raise VerificationError(f"unexpected TFLite signatures {signatures}")
        runner = interpreter.get_signature_runner(SIGNATURE)
        extra["max_abs_diff"] = check(runner(**{INPUT_NAME: x})[OUTPUT_NAME])
    return extra


def _require_onnx(backend: str = "tensorflow") -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        if backend == "tensorflow":
            import tf2onnx  # noqa: F401
    except ImportError as err:
        raise MissingDependency(
            f"format onnx needs tf2onnx, onnx and onnxruntime ({err}); install them with: "
            "pip install inception-kit[onnx]"
        ) from err


def _onnx(model: Any, tmp: Path, x: Any, check: Callable[[Any], float] | None, quantize: bool) -> dict:
    import tensorflow as tf
    import tf2onnx

    shape = _input_shape(model)
    root, _ = _serving_module(model, shape)
    proto, _ = tf2onnx.convert.from_function(
        root.serve, input_signature=[tf.TensorSpec((None, *shape), tf.float32, name=INPUT_NAME)], opset=ONNX_OPSET
    )
    for value in (*proto.graph.input, *proto.graph.output):  # tf2onnx names it unk__N
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    tmp.write_bytes(proto.SerializeToString())
    extra: dict[str, Any] = {"opset": ONNX_OPSET}
    if x is not None:
        extra["max_abs_diff"] = _check_onnx(tmp, x, check)
    return extra


def _check_onnx(path: Path, x: Any, check: Callable[[Any], float]) -> float:
    """Runs the ONNX file with onnxruntime on `x`; its names must be `image` -> `output`."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    if names != ([INPUT_NAME], [OUTPUT_NAME]):
        raise VerificationError(f"unexpected ONNX inputs and outputs {names}")
    return check(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0])


def _onnx_keras(model: Any, tmp: Path, x: Any, check: Callable[[Any], float] | None, quantize: bool) -> dict:
    """Keras' own ONNX export (torch.onnx under the torch backend), checked with onnxruntime.
    Keras names the input after the model's input layer ("image"); the output is renamed."""
    import onnx

    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "model.onnx"
        model.export(str(raw), format="onnx", verbose=False)
        proto = onnx.load(str(raw))
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [OUTPUT_NAME if o == old else o for o in node.output]
    proto.graph.output[0].name = OUTPUT_NAME
    tmp.write_bytes(proto.SerializeToString())
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    extra: dict[str, Any] = {"opset": opset, "exporter": "keras model.export(format='onnx')"}
    if x is not None:
        extra["max_abs_diff"] = _check_onnx(tmp, x, check)
    return extra


# --------------------------------------------------------------------------- other backends

_TF_FORMATS_WHY = {"savedmodel": "a TensorFlow format", "tflite": "converted by TensorFlow's TFLiteConverter",
                   "onnx": "converted from TensorFlow by tf2onnx; Keras' JAX route needs jax2onnx"}


def _export_in_tensorflow(spec: Model, out: Path, format: str, weights: Any, quantize: bool, overwrite: bool,
                          verify: bool, budget: Budget, precision: str, backend: str) -> ExportResult:
    """`export` in a child process on the TensorFlow backend: Keras runs one backend per process.
    The child builds the same spec, loads the same weights file (weights move between backends:
    tests/test_backends.py) and verifies the artifact against its own Keras model."""
    import dataclasses
    import importlib.util
    import subprocess

    if importlib.util.find_spec("tensorflow") is None:
        raise MissingDependency(
            f"format {format} is {_TF_FORMATS_WHY[format]}: under the {backend} backend it is written by "
            "TensorFlow in a child process, and TensorFlow is not installed: pip install 'inception-kit[keras]'"
        )
    with tempfile.TemporaryDirectory() as d:
        spec_file = Path(d) / "spec.yaml"
        spec_file.write_text(spec.to_yaml(), encoding="utf-8")
        job = {"spec": str(spec_file), "out": os.fspath(out), "format": format,
               "weights": os.fspath(weights) if weights else None, "quantize": quantize,
               "overwrite": overwrite, "verify": verify, "precision": precision,
               "budget": [budget.max_params, budget.max_activation_bytes]}
        package_root = str(Path(__file__).resolve().parent.parent)  # the child imports this inception_kit
        env = {**os.environ, "KERAS_BACKEND": "tensorflow",
               "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        code = "import sys; from inception_kit.exporters import _child; sys.exit(_child(sys.argv[1]))"
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(job)],
                              env=env, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"the TensorFlow export process failed (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}") from None
    if "error" in answer:
        kind, message = answer["error"], answer["message"]
        if kind == "SpecError":
            from ...errors import Mark, Problem

            raise SpecError([Problem(**{**p, "mark": Mark(**p["mark"]) if p["mark"] else None})
                             for p in answer["problems"]])
        if kind == "DestinationExists":
            raise DestinationExists(Path(answer["path"]))
        if kind == "UnsafeDestination":
            raise UnsafeDestination(Path(answer["path"]), answer["reason"])
        same = {"VerificationError": VerificationError, "MissingDependency": MissingDependency}
        raise same.get(kind, RuntimeError)(message)
    fields = {f.name for f in dataclasses.fields(ExportResult)}
    result = {k: v for k, v in answer.items() if k in fields}
    for k in ("path", "metadata"):
        result[k] = Path(result[k])
    for k in ("input_shape", "output_shape"):
        result[k] = tuple(result[k])
    return ExportResult(**result)


def _child(job_json: str) -> int:
    """The child of `_export_in_tensorflow`: one export, its result (or error) as JSON on the last line."""
    import dataclasses

    job = json.loads(job_json)
    try:
        result = export(job["spec"], job["out"], format=job["format"], weights=job["weights"],
                        quantize=job["quantize"], overwrite=job["overwrite"], verify=job["verify"],
                        budget=Budget(*job["budget"]), precision=job["precision"])
    except SpecError as err:
        problems = [dataclasses.asdict(p) for p in err.problems]
        answer = {"error": "SpecError", "message": str(err), "problems": problems}
    except DestinationExists as err:
        answer = {"error": "DestinationExists", "message": str(err), "path": os.fspath(err.path)}
    except UnsafeDestination as err:
        answer = {"error": "UnsafeDestination", "message": str(err), "path": os.fspath(err.path), "reason": err.reason}
    except Exception as err:
        answer = {"error": type(err).__name__, "message": str(err)}
    else:
        fields = dataclasses.asdict(result)
        answer = {k: (os.fspath(v) if isinstance(v, Path) else v) for k, v in fields.items()}
    print(json.dumps(answer))
    return 0


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    """The sha256 of a regular file, read without following a link or blocking on a FIFO."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tree_bytes(folder: Path) -> int:
    """Bytes of the regular files under `folder`, links not followed."""
    total = 0
    for top, _, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(top, name))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


class _Log:
    def __init__(self) -> None:
        self.text = ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def _captured() -> Iterator[_Log]:
    """Sends everything written to stdout and stderr, by Python or C++, to a log.

    On an exception the log's tail is attached to it as a note.
    """
    log = _Log()
    python = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(python), contextlib.redirect_stderr(python):
                yield log
        except BaseException as err:
            _collect(log, sink, python, saved)
            saved = None
            if log.text.strip() and hasattr(err, "add_note"):
                err.add_note("output captured while exporting (last lines):\n" + log.tail())
            raise
        finally:
            if saved is not None:
                _collect(log, sink, python, saved)


def _collect(log: _Log, sink: Any, python: io.StringIO, saved: tuple[int, int]) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    os.close(saved[0])
    os.close(saved[1])
    sink.seek(0)
    log.text = sink.read().decode("utf-8", "replace") + python.getvalue()


# --------------------------------------------------------------------------- inspect


def inspect_artifact(path: str | os.PathLike[str], fmt: str = "table") -> str:
    """The spec (fmt "yaml") or cost report (table, markdown, csv, json) stored with an artifact.

    `path` is a SavedModel folder, a file written by `export` (its sidecar is beside it)
    or a metadata folder itself. Imports no TensorFlow. "json" and "yaml" return the stored
    files unchanged; the other formats render the stored report. Only regular files inside
    the artifact are read (never through a link that leads out of it), each of at most
    `MAX_META_BYTES`.

    Raises:
        SpecError: not an artifact, malformed metadata, or a sidecar that does not match its file.
    """
    if fmt not in INSPECT_FORMATS:
        raise SpecError.one("format", f"one of {', '.join(INSPECT_FORMATS)}", repr(fmt))
    path = Path(os.path.abspath(path))
    meta, artifact, root = _find_meta(path)
    manifest, spec_text, report_text, report = _read_meta(meta, root)
    stamp = manifest.get("artifact")
    if stamp and not _is_stamped(artifact, stamp):
        previous = meta / PREVIOUS_DIR  # an export replacing this pair was cut short
        older = _read_meta(previous, root) if (previous / MANIFEST_FILE).is_file() else None
        if older is None or not _is_stamped(artifact, older[0].get("artifact") or {}):
            raise SpecError.one(
                str(artifact),
                f"the file that {meta} describes (sha256 {stamp['sha256'][:12]}..., {stamp['bytes']:,} bytes)",
                "a different or missing file; the two were not written together",
            )
        manifest, spec_text, report_text, report = older
    if fmt == "yaml":
        return spec_text
    if fmt == "json":
        return report_text
    from ...report import render_data

    try:
        body = render_data(report, fmt)  # the stored report, as it was written
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise SpecError.one(
            str(meta / REPORT_FILE), "a cost report written by inception-kit", f"a report without {err}"
        ) from None
    if fmt == "csv":
        return body
    return _artifact_header(manifest, artifact or path, meta, fmt) + body


def _find_meta(path: Path) -> tuple[Path, Path | None, Path]:
    """The metadata folder, the artifact it describes, and the folder reads must stay in."""
    if (path / META_DIR / MANIFEST_FILE).is_file():
        return path / META_DIR, path, path
    if path.name:
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        if not sidecar.is_symlink() and (sidecar / MANIFEST_FILE).is_file():
            return sidecar, path, sidecar
    if (path / MANIFEST_FILE).is_file() and not path.is_symlink():  # the metadata folder itself
        if path.name.endswith(SIDECAR_SUFFIX):
            return path, path.with_name(path.name[: -len(SIDECAR_SUFFIX)]), path
        if path.parts[-2:] == META_DIR.parts:
            return path, path.parents[1], path.parents[1]
        return path, None, path
    if not path.exists():
        received = "no such file or folder"
    else:
        received = f"no {META_DIR}/ inside" + (f" and no {path.name}{SIDECAR_SUFFIX}/ beside it" if path.name else "")
    raise SpecError.one(str(path), "an artifact written by inception-kit export", received)


def _read_meta(meta: Path, root: Path) -> tuple[dict[str, Any], str, str, dict[str, Any]]:
    """manifest (checked), spec text, report text and report (parsed) of a metadata folder."""
    texts = {}
    for name in (MANIFEST_FILE, SPEC_FILE, REPORT_FILE):
        try:
            texts[name] = read_bounded(meta / name, MAX_META_BYTES, inside=root).decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            what = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
            raise SpecError.one(
                str(meta / name), f"a {name} written by inception-kit export (a UTF-8 file inside the artifact)", what
            ) from None
    manifest = _json(meta / MANIFEST_FILE, texts[MANIFEST_FILE])
    report = _json(meta / REPORT_FILE, texts[REPORT_FILE])
    problem = _manifest_problem(manifest)
    if problem:
        raise SpecError.one(str(meta / MANIFEST_FILE), "a manifest written by inception-kit export", problem)
    return manifest, texts[SPEC_FILE], texts[REPORT_FILE], report


def _json(path: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise SpecError.one(str(path), "JSON written by inception-kit export", "JSON nested too deep") from None
    except ValueError as err:
        raise SpecError.one(str(path), "JSON written by inception-kit export", f"invalid JSON ({err})") from None
    if not isinstance(data, dict):
        raise SpecError.one(str(path), "a JSON object written by inception-kit export", f"a JSON {type(data).__name__}")
    return data


def _manifest_problem(m: dict[str, Any]) -> str | None:
    """What is wrong with a manifest's shape (what inspect reads from it), or None."""

    def tensor(t: Any) -> bool:
        return (isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("dtype"), str)
                and isinstance(t.get("shape"), list)
                and all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in t["shape"]))

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not isinstance(m.get("format"), str):
        return "no 'format' text"
    for key in ("input", "output"):
        if not tensor(m.get(key)):
            return f"no '{key}' with a name, a dtype and a shape list"
    w = m.get("weights")
    if not (isinstance(w, str) or (isinstance(w, dict) and isinstance(w.get("file"), str))):
        return "no 'weights' text or {file: ...}"
    v = m.get("verification")
    if v is not None and not (isinstance(v, dict) and number(v.get("max_abs_diff")) and number(v.get("tolerance"))):
        return "a 'verification' without numbers max_abs_diff and tolerance"
    a = m.get("artifact")
    if a is not None and not (isinstance(a, dict) and isinstance(a.get("bytes"), int) and isinstance(a.get("sha256"), str)):
        return "an 'artifact' without bytes and sha256"
    if not isinstance(m.get("versions", {}), dict):
        return "'versions' that is not a mapping"
    return None


def _is_stamped(artifact: Path | None, stamp: dict[str, Any]) -> bool:
    """Whether `artifact` is the regular file of `stamp`'s size and sha256."""
    if artifact is None or not isinstance(stamp.get("bytes"), int) or not isinstance(stamp.get("sha256"), str):
        return False
    try:
        return artifact.lstat().st_size == stamp["bytes"] and _sha256(artifact) == stamp["sha256"]
    except OSError:
        return False


def _artifact_header(manifest: dict[str, Any], artifact: Path, meta: Path, fmt: str) -> str:
    i, o = manifest["input"], manifest["output"]
    check = manifest.get("verification")
    size = manifest.get("artifact", {}).get("bytes")
    if size is None and artifact.is_dir():
        size = _tree_bytes(artifact)
    lines = [
        f"artifact: {artifact} ({manifest['format']}{', dynamic-range int8' if manifest.get('quantized') else ''}"
        + (f", {size:,} bytes" if size is not None else "")
        + ")",
        f"input '{i['name']}' {i['dtype']}{_shape(i['shape'])} -> output '{o['name']}' {o['dtype']}{_shape(o['shape'])}",
        "weights: " + (manifest["weights"] if isinstance(manifest["weights"], str) else manifest["weights"]["file"]),
        (
            f"verified: max abs diff {check['max_abs_diff']:.3g} (tolerance {check['tolerance']:.3g})"
            if check
            else "not verified"
        ),
        f"written by inception-kit {manifest.get('versions', {}).get('inception_kit', '?')}; metadata in {meta}",
    ]
    if fmt == "markdown":
        return "# Artifact\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n"
    return "\n".join(lines) + "\n\n"
