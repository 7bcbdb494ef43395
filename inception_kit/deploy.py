"""`inception-kit deploy SPEC --out DIR`: every runtime this machine has, measured side by side,
and the fastest one within tolerance written to DIR as a verified artifact.

    inception-kit deploy specs/googlenet.yaml --out build/gn --batch 1,8
    inception-kit deploy specs/inception_3a_tiny.yaml --weights runs/tiny/best.weights.h5 \\
        --data digits --tolerance accuracy:0.01 --out build/tiny

The paths (each reloaded from the file it wrote, run with its own runtime):

=============  =========================================================================
savedmodel     `export` format savedmodel, float32, run by `tf.saved_model.load`
frozen         the same serving function with its weights frozen into constants
               (`convert_variables_to_constants_v2`), saved as a SavedModel
bfloat16       `export` with precision bfloat16 (Keras mixed_bfloat16); only where the CPU
               has bfloat16 instructions (avx512_bf16 or amx_bf16 in /proc/cpuinfo)
onnxruntime    `export` format onnx, run by ONNX Runtime (extra `onnx`)
openvino       OpenVINO IR converted from that ONNX file, weights kept float32 (extra
               `openvino`; `convert_model` on the Keras SavedModel fails, from ONNX it works)
litert         `export` format tflite, float32, run by ai-edge-litert if installed, else
               `tf.lite.Interpreter`, with one thread per core
litert-int8    int8 LiteRT: full-integer (weights and activations, calibrated on up to 128
               training samples; input and output stay float32) with `--data`, verified
               by export's int8 rule on held-out samples (export's own batch, uniform in
               [-1, 1), lies outside the calibrated range); dynamic-range (int8 weights) without
=============  =========================================================================

A path whose package is missing is listed as skipped with the extra that installs it; one
that fails to convert is listed as failed with the first line of the error.

Measured, in one process: at each batch size, every path's input is made once; then
`warmup` rounds and `repeats` timed rounds, one call of each path per round, so a change
in the machine's load hits every path alike. Reported: median latency with min–max,
throughput (samples / median), artifact bytes, and deviation from the Keras float32 model
on one batch of `DEVIATION_SAMPLES` (the first held-out samples with `--data`, else
numpy `default_rng(0)` uniform in [-1, 1)): the centred relative L2 (per sample,
``||c(out) - c(ref)|| / ||c(ref)||`` with c removing the sample's mean; the largest over the
batch) and the largest absolute difference. With `--data` and `--weights`, top-1 accuracy on
the held-out split (the validation split of `train`, same fraction and seed; read from
run.json beside the weights when there is one) for the Keras model and every path.

The choice (`choose`): among the paths that were measured and verified, those within
tolerance; of them the one with the lowest median latency at the largest batch size. The
tolerance is ``deviation:T`` (centred relative L2 <= T; the default ``1e-4``, float32-equal)
or ``accuracy:D`` (top-1 accuracy at most D below the Keras model's; needs `--data` and
`--weights`). A bare number means ``deviation:``.

DIR (written whole or not at all, `files.staged_dir`; an existing DIR is replaced only with
overwrite, and only if it holds a deploy.json, never if it holds the spec, weights or data):
the winner as `export` writes it (SavedModel folder, or a file with its `.inception-kit`
sidecar; spec, cost report and manifest embedded, so `inception-kit inspect` reads it),
`deploy.json` (machine, settings, every path's figures, the choice and why) and `deploy.md`
(the same as a table).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .analysis import DEFAULT_BUDGET, Budget
from .errors import Problem, SpecError
from .files import check_folder_destination, staged_dir

# name, what it is, the modules it needs, the extra that installs them
PATHS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "savedmodel": ("TF SavedModel, float32", (), "keras"),
    "frozen": ("TF SavedModel, weights frozen into constants", (), "keras"),
    "bfloat16": ("TF SavedModel, mixed bfloat16", (), "keras"),
    "onnxruntime": ("ONNX Runtime, float32", ("tf2onnx", "onnx", "onnxruntime"), "onnx"),
    "openvino": ("OpenVINO from the ONNX file, float32", ("tf2onnx", "onnx", "openvino"), "onnx,openvino"),
    "litert": ("LiteRT, float32", (), "keras"),
    "litert-int8": ("LiteRT, int8", (), "keras"),
}
ARTIFACTS = {  # the name each path's artifact has in DIR
    "savedmodel": "savedmodel",
    "frozen": "savedmodel_frozen",
    "bfloat16": "savedmodel_bfloat16",
    "onnxruntime": "model.onnx",
    "openvino": "openvino",
    "litert": "model.tflite",
    "litert-int8": "model_int8.tflite",
}
BASELINE = "savedmodel"
DEFAULT_BATCHES = (1, 8)
DEFAULT_TOLERANCE = "deviation:1e-4"
DEVIATION_SAMPLES = 8
CALIBRATION_SAMPLES = 128
DEPLOY_JSON, DEPLOY_MD = "deploy.json", "deploy.md"
_WORK = ".candidates"  # inside the staged DIR; removed before DIR is moved into place


# --------------------------------------------------------------------------- tolerance and choice


@dataclass(frozen=True)
class Tolerance:
    """How far a path may be from the Keras float32 model and still be chosen."""

    kind: str  # "deviation" (centred relative L2) or "accuracy" (top-1 points lost, as a fraction)
    limit: float

    def __str__(self) -> str:
        if self.kind == "accuracy":
            return f"top-1 accuracy at most {self.limit:g} below the Keras model's"
        return f"centred relative L2 deviation <= {self.limit:g}"


def parse_tolerance(text: str) -> Tolerance:
    """``1e-4``, ``deviation:1e-4`` or ``accuracy:0.01``; raises SpecError otherwise."""
    kind, _, value = text.rpartition(":")
    kind = kind or "deviation"
    try:
        limit = float(value)
    except ValueError:
        limit = math.nan
    if kind not in ("deviation", "accuracy") or not (limit >= 0 and math.isfinite(limit)):
        raise SpecError.one(
            "--tolerance",
            "deviation:T or accuracy:D with a number >= 0 (e.g. 1e-4, accuracy:0.01)",
            repr(text),
        )
    return Tolerance(kind, limit)


def parse_batches(text: str) -> tuple[int, ...]:
    """``1,8`` -> (1, 8): positive integers, each once."""
    parts = [p.strip() for p in text.split(",")]
    if (
        not parts
        or any(not p.isdigit() or int(p) < 1 for p in parts)
        or len(set(map(int, parts))) != len(parts)
    ):
        raise SpecError.one(
            "--batch",
            "batch sizes as positive integers separated by commas, each once (e.g. 1,8)",
            repr(text),
        )
    return tuple(int(p) for p in parts)


@dataclass
class Candidate:
    """One deployment path and what was measured of it."""

    name: str
    label: str
    status: str = "measured"  # "measured", "skipped" or "failed"
    reason: str = ""  # why skipped or failed; how int8 was made
    runtime: str = ""
    artifact: str | None = None
    bytes: int | None = None
    verified: bool = False
    verification: str = ""
    deviation: float | None = None  # centred relative L2, the largest over the batch
    max_abs: float | None = None
    accuracy: float | None = None
    times: dict[int, list[float]] = field(default_factory=dict)  # batch -> seconds per call

    def median(self, batch: int) -> float | None:
        t = self.times.get(batch)
        return statistics.median(t) if t else None

    def within(self, tolerance: Tolerance, reference_accuracy: float | None) -> bool:
        if tolerance.kind == "accuracy":
            if self.accuracy is None or reference_accuracy is None:
                return False
            return reference_accuracy - self.accuracy <= tolerance.limit + 1e-12
        return self.deviation is not None and self.deviation <= tolerance.limit


def choose(
    candidates: Sequence[Candidate], tolerance: Tolerance, batch: int, reference_accuracy: float | None = None
) -> tuple[Candidate | None, str]:
    """The fastest measured, verified path within tolerance at `batch`, and why (in words)."""
    timed = [c for c in candidates if c.status == "measured" and c.median(batch) is not None]
    ok = sorted(
        (c for c in timed if c.verified and c.within(tolerance, reference_accuracy)),
        key=lambda c: c.median(batch),
    )  # type: ignore[arg-type, return-value]
    if not ok:
        return None, f"no measured path is within tolerance ({tolerance})"
    win = ok[0]
    base = next((c for c in timed if c.name == BASELINE), None)
    why = f"{win.name} is the fastest at batch {batch} ({_ms(win.median(batch))} ms median"
    if base is not None and win is not base:
        b, w = base.median(batch), win.median(batch)
        why += f", {b / w:.2f}x the SavedModel's {_ms(b)} ms"  # type: ignore[operator]
    why += f") of the {len(ok)} path{'s' if len(ok) != 1 else ''} within tolerance ({tolerance})"
    faster = [c for c in timed if c.median(batch) < win.median(batch)]  # type: ignore[operator]
    if faster:
        why += "; faster but not chosen: " + "; ".join(
            f"{c.name} ({_excluded(c, tolerance, reference_accuracy)})" for c in faster
        )
    return win, why


def _excluded(c: Candidate, tolerance: Tolerance, reference_accuracy: float | None) -> str:
    if not c.verified:
        return "not verified: " + c.verification
    if tolerance.kind == "accuracy":
        if c.accuracy is None or reference_accuracy is None:
            return "no accuracy measured"
        return f"accuracy {c.accuracy:.4f} vs {reference_accuracy:.4f}"
    return f"deviation {c.deviation:.2g}"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


# --------------------------------------------------------------------------- result


@dataclass
class DeployResult:
    """What `deploy` measured and wrote."""

    out: Path
    model: str
    winner: Candidate
    why: str
    candidates: list[Candidate]
    batches: tuple[int, ...]
    tolerance: Tolerance
    reference_accuracy: float | None
    data: dict[str, Any]

    @property
    def artifact(self) -> Path:
        return self.out / ARTIFACTS[self.winner.name]

    def table(self) -> str:
        return render_table(self.candidates, self.batches, self.reference_accuracy)

    def summary(self) -> str:
        wrote = f"{self.artifact}, {self.out / DEPLOY_JSON}, {self.out / DEPLOY_MD}"
        return f"Chose {self.winner.name}: {self.why}. Wrote {wrote}."


def render_table(
    candidates: Sequence[Candidate], batches: Sequence[int], reference_accuracy: float | None
) -> str:
    """Every path's figures as a markdown table."""
    base = next((c for c in candidates if c.name == BASELINE and c.status == "measured"), None)
    head = ["path", "runtime", "bytes", "deviation (centred rel. L2)", "max abs diff"]
    if reference_accuracy is not None:
        head.append(f"top-1 (Keras {reference_accuracy:.4f})")
    for b in batches:
        head += [f"b{b} median ms (min–max)", f"b{b} samples/s", f"b{b} × SavedModel"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in candidates:
        if c.status != "measured":
            cells = [c.name, f"{c.status}: {c.reason}"] + [""] * (len(head) - 2)
            rows.append("| " + " | ".join(cells) + " |")
            continue
        runtime = c.runtime + ("" if c.verified else f"; NOT verified: {c.verification}")
        cells = [
            c.name,
            runtime + (f" ({c.reason})" if c.reason else ""),
            f"{c.bytes:,}" if c.bytes else "-",
            f"{c.deviation:.2g}",
            f"{c.max_abs:.2g}",
        ]
        if reference_accuracy is not None:
            cells.append("-" if c.accuracy is None else f"{c.accuracy:.4f}")
        for b in batches:
            t = c.times.get(b) or []
            med = c.median(b)
            cells.append(f"{_ms(med)} ({_ms(min(t))}–{_ms(max(t))})" if t else "-")
            cells.append((f"{b / med:,.0f}" if b / med >= 100 else f"{b / med:.1f}") if med else "-")
            bm = base.median(b) if base else None
            cells.append(f"{bm / med:.2f}" if med and bm else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


# --------------------------------------------------------------------------- deploy


def available(name: str) -> str | None:
    """None when path `name` can run here; else why not (and what installs it)."""
    if name == "bfloat16" and not _cpu_has_bf16():
        return "this CPU has no bfloat16 instructions (neither avx512_bf16 nor amx_bf16 in /proc/cpuinfo)"
    _, modules, extra = PATHS[name]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            return f"needs {module}: pip install 'inception-kit[{extra}]'"
    return None


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


Progress = Callable[[int, int, str], None]  # (done, total, what is being done)


def deploy(
    spec: Any,
    out: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    batches: Sequence[int] = DEFAULT_BATCHES,
    data: Any = None,
    tolerance: Tolerance | str = DEFAULT_TOLERANCE,
    overwrite: bool = False,
    repeats: int = 10,
    warmup: int = 2,
    paths: Sequence[str] | None = None,
    validation_split: float | None = None,
    seed: int | None = None,
    budget: Budget = DEFAULT_BUDGET,
    progress: Progress | None = None,
) -> DeployResult:
    """Exports `spec` through every path, measures them, writes the fastest within tolerance.

    Args:
        spec: a spec object or YAML path.
        out: the folder to write (see the module doc).
        weights: a Keras .weights.h5 file (as `train` writes).
        batches: batch sizes to time; the largest decides.
        data: 'digits', an image folder or (images, labels): held-out accuracy (with weights),
            int8 calibration and the deviation batch.
        tolerance: a `Tolerance` or its text (`parse_tolerance`).
        paths: a subset of PATHS to try (default all).
        validation_split, seed: the held-out split (default: run.json beside the weights, else 0.2 and 0).

    Raises:
        SpecError: a bad spec, setting, data or weights file.
        DestinationExists: `out` exists and overwrite is False.
        UnsafeDestination: `out` is not a deploy folder (no deploy.json inside) or holds the spec,
            the weights or the data.
    """
    from .analysis import analyse
    from .train.data import inspect_source

    tol = parse_tolerance(tolerance) if isinstance(tolerance, str) else tolerance
    batches = tuple(batches)
    if not batches or any(not isinstance(b, int) or b < 1 for b in batches):
        raise SpecError.one("batches", "positive integers", repr(batches))
    if repeats < 1 or warmup < 0:
        raise SpecError.one("repeats", "repeats >= 1 and warmup >= 0", f"repeats {repeats}, warmup {warmup}")
    names = list(PATHS) if paths is None else list(paths)
    unknown = [n for n in names if n not in PATHS]
    if unknown or BASELINE not in names:
        raise SpecError.one(
            "paths", f"names from {', '.join(PATHS)}, including {BASELINE}", repr(list(names))
        )
    if tol.kind == "accuracy" and (data is None or weights is None):
        raise SpecError.one(
            "--tolerance",
            "accuracy:D only with --data and --weights (accuracy on held-out data)",
            f"accuracy:{tol.limit:g} without {'--data' if data is None else '--weights'}",
        )
    if weights is not None and not Path(weights).is_file():
        raise SpecError.one("--weights", "a Keras .weights.h5 file", f"{weights} (no such file)")
    analysis = analyse(spec, budget)
    in_shape = tuple(int(d) for d in analysis.plan.model.input_shape)
    source = inspect_source(data, in_shape) if data is not None else None
    if source is not None and weights is not None:  # accuracy needs one output per class, as `train` does
        from .train.training import _Target

        problems = _Target.of(analysis.plan.model, budget).class_problems(source)
        if problems:
            raise SpecError(problems)
    split, seed = _split_settings(weights, validation_split, seed)
    out = Path(out)
    # What DIR may never replace: the spec, the weights, the data (nor /, home, the working folder).
    from .keras.export import spec_files

    keep = [*spec_files(spec), *(p for p in (weights, data) if isinstance(p, (str, os.PathLike)) and os.path.exists(p))]
    check_folder_destination(out, overwrite, DEPLOY_JSON, keep)  # before any work; staging checks again
    report = progress or (lambda done, total, what: None)

    with staged_dir(out, overwrite, DEPLOY_JSON, keep) as stage:
        work = stage / _WORK
        work.mkdir()
        ctx = _Context(analysis, in_shape, weights, work)
        with _quiet():
            ctx.prepare_data(source, split, seed)
        candidates = [Candidate(n, PATHS[n][0]) for n in names]
        steps = len(candidates) + len(batches) * (warmup + repeats) + 1
        done = 0
        for c in candidates:
            report(done, steps, f"exporting {c.name}")
            ctx.prepare(c)
            done += 1
        live = [c for c in candidates if c.status == "measured"]
        for b in batches:
            calls = {c.name: ctx.timer(c, b) for c in live}
            for r in range(warmup + repeats):
                report(
                    done,
                    steps,
                    f"batch {b}: {'warm-up' if r < warmup else 'round'} "
                    f"{r + 1 if r < warmup else r - warmup + 1}/{warmup if r < warmup else repeats}",
                )
                for c in live:
                    start = time.perf_counter()
                    calls[c.name]()
                    if r >= warmup:
                        c.times.setdefault(b, []).append(time.perf_counter() - start)
                done += 1
            del calls
        report(done, steps, "held-out accuracy" if ctx.val is not None else "choosing")
        reference_accuracy = ctx.accuracies(live, max(batches))
        winner, why = choose(candidates, tol, max(batches), reference_accuracy)
        if winner is None:
            raise SpecError.one("--tolerance", "a tolerance that some measured path meets", f"{tol}: {why}")
        for suffix in ("", ".inception-kit"):  # the winner's artifact and (one-file formats) its sidecar
            src = work / (ARTIFACTS[winner.name] + suffix)
            if src.exists():
                os.rename(src, stage / src.name)
        ctx.release()
        shutil.rmtree(work)
        result = DeployResult(
            out,
            analysis.plan.model.name,
            winner,
            why,
            candidates,
            batches,
            tol,
            reference_accuracy,
            ctx.data_info,
        )
        (stage / DEPLOY_JSON).write_text(json.dumps(_json(result), indent=2) + "\n", encoding="utf-8")
        (stage / DEPLOY_MD).write_text(_markdown(result), encoding="utf-8")
        report(steps, steps, "done")
    return result


def _split_settings(weights: Any, split: float | None, seed: int | None) -> tuple[float, int]:
    """The held-out split: as given, else as the training run beside the weights, else 0.2, 0."""
    run: dict[str, Any] = {}
    if weights is not None:
        try:
            run = json.loads((Path(weights).parent / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            run = {}
    split = split if split is not None else float(run.get("validation_split", 0.2))
    seed = seed if seed is not None else int(run.get("seed", 0))
    return split, seed


def _quiet() -> Any:
    """TensorFlow's and the converters' console output, captured as `export` does."""
    from .keras.export import _captured

    return _captured()


def _centred_rel_l2(ref: Any, other: Any) -> Any:
    import numpy as np

    a = np.asarray(ref, np.float64).reshape(len(ref), -1)
    b = np.asarray(other, np.float64).reshape(len(other), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return np.linalg.norm(b - a, axis=1) / np.maximum(np.linalg.norm(a, axis=1), 1e-30)


class _Context:
    """The Keras model, the data, and each path's artifact and runtime."""

    def __init__(self, analysis: Any, in_shape: tuple[int, ...], weights: Any, work: Path) -> None:
        self.analysis, self.in_shape, self.weights, self.work = analysis, in_shape, weights, work
        self.val: tuple[Any, Any] | None = None
        self.calibration: Any = None
        self.data_info: dict[str, Any] = {}
        self.runners: dict[str, Any] = {}
        self.model: Any = None
        self.x_dev: Any = None
        self.ref: Any = None

    # ---- data and the reference model

    def prepare_data(self, source: Any, split: float, seed: int) -> None:
        import numpy as np

        from .keras.export import _model

        _seed()
        self.model, _ = _model(self.analysis.plan, self.weights)
        rng = np.random.default_rng(0)
        self.x_dev = rng.uniform(-1.0, 1.0, (DEVIATION_SAMPLES, *self.in_shape)).astype(np.float32)
        dev_from = "numpy default_rng(0).uniform(-1, 1)"
        if source is not None:
            from .train.data import load, split_problems

            problems = split_problems(source, split)
            if split == 0:
                problems.append(Problem("validation_split", "a held-out split > 0 for deploy", "0"))
            if problems:
                raise SpecError(problems)
            loaded = load(source, self.in_shape, batch_size=1, validation_split=split, seed=seed)
            xs, ys = zip(*((x, y) for x, y in loaded.val.as_numpy_iterator()))
            self.val = (np.concatenate(xs).astype(np.float32), np.concatenate(ys))
            cal = loaded.train(0).take(min(CALIBRATION_SAMPLES, loaded.train_count)).as_numpy_iterator()
            self.calibration = np.concatenate([x for x, _ in cal]).astype(np.float32)
            self.x_dev = self.val[0][:DEVIATION_SAMPLES]
            dev_from = f"the first {len(self.x_dev)} held-out samples"
            self.data_info = {
                "data": source.name,
                "held_out": len(self.val[0]),
                "validation_split": split,
                "seed": seed,
                "calibration_samples": len(self.calibration),
            }
            if self.weights is None:
                self.val = None  # untrained: accuracy would mean nothing
        self.data_info["deviation_batch"] = dev_from
        self.ref = np.asarray(self.model(self.x_dev, training=False))

    # ---- each path

    def prepare(self, c: Candidate) -> None:
        """Writes, verifies and loads path `c`; marks it skipped or failed when it cannot."""
        why = available(c.name)
        if why is not None:
            c.status, c.reason = "skipped", why
            return
        try:
            with _quiet():
                c.artifact = ARTIFACTS[c.name]
                getattr(self, "_" + c.name.replace("-", "_"))(c, self.work / c.artifact)
                dev_out = self.runners[c.name](self.x_dev)
            import numpy as np

            c.deviation = float(_centred_rel_l2(self.ref, dev_out).max())
            c.max_abs = float(np.abs(np.asarray(dev_out, np.float64) - self.ref).max())
        except Exception as err:  # a converter's failure is a result: the path is listed as failed
            c.status = "failed"
            c.reason = (
                f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}"
            )

    def _export(self, c: Candidate, dest: Path, **kw: Any) -> None:
        """Via `export` (verified); on a failed verification, written unverified to be measured anyway."""
        from .keras.export import VerificationError, export

        _seed()
        try:
            result = export(self.analysis.plan.model, dest, weights=self.weights, **kw)
            c.verified = True
            c.verification = f"max abs diff {result.max_abs_diff:.3g} <= {result.tolerance:.3g}"
        except VerificationError as err:
            c.verification = str(err).split(";")[0]
            _seed()
            result = export(self.analysis.plan.model, dest, weights=self.weights, verify=False, **kw)
        c.bytes = result.size_bytes

    def _savedmodel(self, c: Candidate, dest: Path, precision: str = "float32") -> None:
        self._export(c, dest, format="savedmodel", precision=precision)
        self.runners[c.name] = _TFRunner(dest)
        c.runtime = "tf.saved_model.load, serving_default"

    def _bfloat16(self, c: Candidate, dest: Path) -> None:
        self._savedmodel(c, dest, precision="bfloat16")

    def _onnxruntime(self, c: Candidate, dest: Path) -> None:
        import onnxruntime

        self._export(c, dest, format="onnx")
        self.runners[c.name] = _ORTRunner(dest)
        c.runtime = f"onnxruntime {onnxruntime.__version__}, CPUExecutionProvider"

    def _litert(self, c: Candidate, dest: Path) -> None:
        self._export(c, dest, format="tflite")
        self.runners[c.name] = _LiteRunner(dest)
        c.runtime = self.runners[c.name].name

    def _litert_int8(self, c: Candidate, dest: Path) -> None:
        if self.calibration is None:
            self._export(c, dest, format="tflite", quantize=True)
            c.reason = "dynamic-range: int8 weights, float activations"
        else:
            self._own(c, dest, "tflite", "int8", self._write_full_int8, quantized=True)
            c.reason = f"full-integer, calibrated on {len(self.calibration)} training samples"
        self.runners[c.name] = _LiteRunner(dest)
        c.runtime = self.runners[c.name].name

    def _frozen(self, c: Candidate, dest: Path) -> None:
        self._own(c, dest, "savedmodel", "float32", self._write_frozen)
        self.runners[c.name] = _TFRunner(dest)
        c.runtime = "tf.saved_model.load, serving_default (constants)"

    def _openvino(self, c: Candidate, dest: Path) -> None:
        import openvino

        onnx_file = self.work / ARTIFACTS["onnxruntime"]
        if not onnx_file.exists():  # the onnxruntime path was not asked for: write the ONNX file here
            self._export(Candidate("onnx", ""), onnx_file, format="onnx")
        self._onnx_file = onnx_file
        self._own(c, dest, "openvino", "float32", self._write_openvino)
        self.runners[c.name] = _OVRunner(dest / "model.xml")
        c.runtime = f"openvino {openvino.__version__.split('-')[0]}, CPU, f32"

    # ---- artifacts that `export` does not write: written and verified by its rules here

    def _own(
        self,
        c: Candidate,
        dest: Path,
        fmt: str,
        kind: str,
        write: Callable[[Path], Callable[[Any], Any]],
        quantized: bool = False,
    ) -> None:
        import numpy as np

        from .keras import export as exporters
        from .keras.builder import INPUT_NAME
        from .report import render

        folder = fmt != "tflite"
        meta = dest / exporters.META_DIR if folder else exporters.metadata_dir(dest, fmt)
        run = write(dest)
        x, _, tolerance = exporters._checker(self.model, self.in_shape, kind, f"the {c.name} artifact", dest)
        checked_on = None
        if kind == "int8" and self.calibration is not None:
            # Calibrated int8 is checked on held-out data, by export's rule: the export batch
            # (uniform in [-1, 1)) lies outside the calibrated ranges of data in [0, 1].
            x, checked_on = self.x_dev, self.data_info["deviation_batch"] + " of " + self.data_info["data"]
            tolerance = exporters.TOLERANCE[kind] * max(1.0, float(np.abs(self.ref).max()))
        try:
            diff: float | None = float(
                np.abs(np.asarray(run(x), np.float32) - np.asarray(self.model(x, training=False))).max()
            )
            if not diff <= tolerance:  # NaN fails too
                raise exporters.VerificationError(
                    f"the {c.name} artifact's outputs differ from the Keras model's "
                    f"by up to {diff:.3g} (tolerance {tolerance:.3g})"
                )
            c.verified, c.verification = True, f"max abs diff {diff:.3g} <= {tolerance:.3g}"
        except exporters.VerificationError as err:
            diff, c.verification = None, str(err)
        manifest: dict[str, Any] = {
            "format": fmt,
            "path": c.name,
            "quantized": quantized,
            "precision": "float32",
            "model": self.analysis.plan.model.name,
            "input": {"name": INPUT_NAME, "dtype": "float32", "shape": [None, *self.in_shape]},
            "output": {
                "name": exporters.OUTPUT_NAME,
                "dtype": "float32",
                "shape": [None, *(int(d) for d in self.analysis.plan.output_shape)],
            },
            "weights": "untrained (Keras initializers)"
            if self.weights is None
            else {"file": os.fspath(self.weights), "sha256": exporters._sha256(Path(self.weights))},
        }
        if not folder:
            manifest["artifact"] = {
                "file": dest.name,
                "bytes": dest.stat().st_size,
                "sha256": exporters._sha256(dest),
            }
        texts = {
            exporters.SPEC_FILE: self.analysis.plan.model.to_yaml(),
            exporters.REPORT_FILE: render(self.analysis, "json"),
        }
        exporters._write_meta(meta, texts, manifest, diff, kind, tolerance if diff is not None else None)
        if checked_on and diff is not None:
            written = json.loads((meta / exporters.MANIFEST_FILE).read_text(encoding="utf-8"))
            written["verification"].update(batch=len(x), input=checked_on)
            (meta / exporters.MANIFEST_FILE).write_text(
                json.dumps(written, indent=2) + "\n", encoding="utf-8"
            )
        c.bytes = exporters._tree_bytes(dest) if folder else dest.stat().st_size

    def _write_frozen(self, dest: Path) -> Callable[[Any], Any]:
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        from .keras.builder import INPUT_NAME
        from .keras.export import OUTPUT_NAME, SIGNATURE, _serving_module

        _, concrete = _serving_module(self.model, self.in_shape)
        frozen = convert_variables_to_constants_v2(concrete)
        root = tf.Module()
        root.frozen = frozen
        root.serve = tf.function(
            lambda image: {OUTPUT_NAME: frozen(image)[0]},
            autograph=False,
            input_signature=[tf.TensorSpec((None, *self.in_shape), tf.float32, name=INPUT_NAME)],
        )
        tf.saved_model.save(root, str(dest), signatures={SIGNATURE: root.serve.get_concrete_function()})
        return _TFRunner(dest)

    def _write_full_int8(self, dest: Path) -> Callable[[Any], Any]:
        import tensorflow as tf

        from .keras.export import _serving_module

        root, concrete = _serving_module(self.model, self.in_shape)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], root)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        samples = self.calibration
        converter.representative_dataset = lambda: ([s[None]] for s in samples)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]  # input and output stay float32
        dest.write_bytes(converter.convert())
        return _LiteRunner(dest)

    def _write_openvino(self, dest: Path) -> Callable[[Any], Any]:
        import openvino as ov

        dest.mkdir()
        # compress_to_fp16=False: keep the float32 weights (the default halves them)
        ov.save_model(ov.convert_model(str(self._onnx_file)), str(dest / "model.xml"), compress_to_fp16=False)
        return _OVRunner(dest / "model.xml")

    # ---- timing and accuracy

    def timer(self, c: Candidate, batch: int) -> Callable[[], Any]:
        import numpy as np

        x = np.random.default_rng(1).uniform(-1.0, 1.0, (batch, *self.in_shape)).astype(np.float32)
        return self.runners[c.name].timer(x)

    def accuracies(self, live: list[Candidate], batch: int) -> float | None:
        """Sets each path's held-out top-1 accuracy; returns the Keras model's."""
        if self.val is None:
            return None
        import numpy as np

        x, y = self.val
        keras_pred = np.asarray(self.model.predict(x, batch_size=batch, verbose=0))
        for c in live:
            run = self.runners[c.name]
            outs = []
            for i in range(0, len(x), batch):  # whole batches: the last one padded with zeros
                chunk = x[i : i + batch]
                padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), np.float32)])
                outs.append(np.asarray(run(padded))[: len(chunk)])
            c.accuracy = _top1(np.concatenate(outs), y)
        return _top1(keras_pred, y)

    def release(self) -> None:
        self.runners.clear()  # closes files in `work` before it is removed


def _seed() -> None:
    """Before each build: without --weights, every path's model gets the same initial weights."""
    import keras

    keras.utils.set_random_seed(0)


def _top1(pred: Any, y: Any) -> float:
    import numpy as np

    return float(np.mean(np.asarray(pred).reshape(len(y), -1).argmax(axis=1) == y))


# --------------------------------------------------------------------------- runtimes


class _TFRunner:
    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        from .keras.export import SIGNATURE

        self.tf = tf
        self.loaded = tf.saved_model.load(str(path))
        self.fn = self.loaded.signatures[SIGNATURE]

    def __call__(self, x: Any) -> Any:
        return self.fn(image=self.tf.constant(x))["output"].numpy()

    def timer(self, x: Any) -> Callable[[], Any]:
        t = self.tf.constant(x)
        return lambda: self.fn(image=t)  # on CPU the call returns when the output is computed


class _ORTRunner:
    def __init__(self, path: Path) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, x: Any) -> Any:
        return self.session.run(["output"], {"image": x})[0]

    def timer(self, x: Any) -> Callable[[], Any]:
        return lambda: self.session.run(["output"], {"image": x})


class _OVRunner:
    """A compiled model per input shape (static shapes are OpenVINO's fast case)."""

    def __init__(self, xml: Path) -> None:
        import openvino as ov

        self.core, self.xml = ov.Core(), str(xml)
        self.compiled: dict[tuple[int, ...], Any] = {}

    def _for(self, shape: tuple[int, ...]) -> Any:
        if shape not in self.compiled:
            model = self.core.read_model(self.xml)
            model.reshape(list(shape))
            # float32 inference: on CPUs with bfloat16 instructions OpenVINO's default is bf16
            self.compiled[shape] = self.core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return self.compiled[shape]

    def __call__(self, x: Any) -> Any:
        return self._for(x.shape)(x)[0]

    def timer(self, x: Any) -> Callable[[], Any]:
        request = self._for(x.shape).create_infer_request()
        return lambda: request.infer({0: x})


class _LiteRunner:
    """An interpreter per input shape, one thread per core: ai-edge-litert's if installed, else TF's."""

    def __init__(self, path: Path) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter

            self.name = "ai-edge-litert"
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
            self.name = "tf.lite.Interpreter"
        self.make = lambda: Interpreter(model_path=str(path), num_threads=_cores())
        self.runners: dict[tuple[int, ...], Any] = {}
        self.name += f", {_cores()} threads"

    def _for(self, shape: tuple[int, ...]) -> Any:
        if shape not in self.runners:
            with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated" (it still works)
                warnings.simplefilter("ignore")
                self.runners[shape] = self.make().get_signature_runner("serving_default")
        return self.runners[shape]

    def __call__(self, x: Any) -> Any:
        return self._for(x.shape)(image=x)["output"]

    def timer(self, x: Any) -> Callable[[], Any]:
        run = self._for(x.shape)
        return lambda: run(image=x)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --------------------------------------------------------------------------- files


def _json(r: DeployResult) -> dict[str, Any]:
    from .keras.profile import machine_info

    paths = []
    for c in r.candidates:
        d = asdict(c)
        d["times_s"] = {str(b): t for b, t in d.pop("times").items()}
        d["median_ms"] = {str(b): c.median(b) * 1e3 for b in c.times}  # type: ignore[operator]
        paths.append(d)
    return {
        "model": r.model,
        "chosen": r.winner.name,
        "artifact": ARTIFACTS[r.winner.name],
        "why": r.why,
        "tolerance": {"kind": r.tolerance.kind, "limit": r.tolerance.limit},
        "batches": list(r.batches),
        "deciding_batch": max(r.batches),
        "keras_accuracy": r.reference_accuracy,
        "data": r.data,
        "machine": machine_info(),
        "paths": paths,
    }


def _markdown(r: DeployResult) -> str:
    from .keras.profile import machine_info, machine_line

    return (
        f"# Deploy\n\n{machine_line(machine_info())}\n\n{r.table()}\n"
        f"Chosen: **{r.winner.name}** ({ARTIFACTS[r.winner.name]}): {r.why}.\n"
    )


# --------------------------------------------------------------------------- command line


def _batches_arg(text: str) -> tuple[int, ...]:
    try:
        return parse_batches(text)
    except SpecError as err:
        raise argparse.ArgumentTypeError(str(err.problems[0])) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the spec (YAML) to deploy")
    parser.add_argument(
        "--out", "-o", required=True, metavar="DIR", help="the folder to write (whole or not at all)"
    )
    parser.add_argument("--weights", help="a Keras .weights.h5 file to load first (as `train` writes)")
    parser.add_argument(
        "--batch",
        type=_batches_arg,
        default=DEFAULT_BATCHES,
        metavar="B[,B...]",
        help="batch sizes to time; the largest decides (default 1,8)",
    )
    parser.add_argument(
        "--data",
        metavar="digits|FOLDER",
        help="held-out accuracy (with --weights), int8 calibration and the deviation batch",
    )
    parser.add_argument(
        "--tolerance",
        default=DEFAULT_TOLERANCE,
        metavar="T",
        help="deviation:T (centred relative L2, default 1e-4) or accuracy:D (top-1 lost, e.g. 0.01)",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per batch size (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument(
        "--paths", metavar="P[,P...]", help=f"only these paths (default all: {','.join(PATHS)})"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")


PIPE_EVERY = 10.0  # seconds


class _Bar:
    """A progress bar on a terminal; a line per stage otherwise (logs stay readable)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last, self.when = "", 0.0

    def __call__(self, done: int, total: int, what: str) -> None:
        if self.tty:
            filled = int(30 * done / max(total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {what:<40}")
            if done >= total:
                self.stream.write("\n")
        else:  # a line per stage, and one at least every PIPE_EVERY seconds within a long one
            stage = what.split(":")[0]
            now = time.monotonic()
            if stage == self.last and now - self.when < PIPE_EVERY:
                return
            self.last, self.when = stage, now
            self.stream.write(f"deploy [{done}/{total}] {what}\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    paths = None if not args.paths else [p.strip() for p in args.paths.split(",")]
    result = deploy(
        args.spec,
        args.out,
        weights=args.weights,
        batches=args.batch,
        data=args.data,
        tolerance=args.tolerance,
        overwrite=args.overwrite,
        repeats=args.repeats,
        warmup=args.warmup,
        paths=paths,
        budget=Budget(args.max_params, args.max_activation_bytes),
        progress=_Bar(),
    )
    print(result.table())
    print(result.summary())
    return 0
