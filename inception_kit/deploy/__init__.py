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

The package: `choosing` (tolerance, figures, the rule, the table; plain Python), `measuring`
(writing, verifying and measuring each path), `runtimes` (each path's runner); `deploy` here
puts them together. The command line is `inception_kit.cli.deploy`.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..analysis import DEFAULT_BUDGET, Budget
from ..errors import SpecError
from ..files import check_folder_destination, staged_dir
from .choosing import BASELINE, Candidate, Tolerance, choose, parse_batches, parse_tolerance, render_table
from .measuring import ARTIFACTS, CALIBRATION_SAMPLES, DEVIATION_SAMPLES, Context, quiet

__all__ = [
    "ARTIFACTS",
    "BASELINE",
    "CALIBRATION_SAMPLES",
    "DEFAULT_BATCHES",
    "DEFAULT_TOLERANCE",
    "DEPLOY_JSON",
    "DEPLOY_MD",
    "DEVIATION_SAMPLES",
    "PATHS",
    "Candidate",
    "DeployResult",
    "Progress",
    "ProgressBar",
    "Tolerance",
    "available",
    "choose",
    "deploy",
    "parse_batches",
    "parse_tolerance",
    "render_table",
]

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
DEFAULT_BATCHES = (1, 8)
DEFAULT_TOLERANCE = "deviation:1e-4"
DEPLOY_JSON, DEPLOY_MD = "deploy.json", "deploy.md"
_WORK = ".candidates"  # inside the staged DIR; removed before DIR is moved into place


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
    from ..keras.profile import cpu_fields

    flags = cpu_fields().get("flags", "").split()
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
    from ..analysis import analyse
    from ..train.data import inspect_source

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
        from ..train import Target

        problems = Target.of(analysis.plan, budget).class_problems(source)
        if problems:
            raise SpecError(problems)
    split, seed = _split_settings(weights, validation_split, seed)
    out = Path(out)
    # What DIR may never replace: the spec, the weights, the data (nor /, home, the working folder).
    from ..keras.export.artifact import SIDECAR_SUFFIX, spec_files

    keep = [*spec_files(spec), *(p for p in (weights, data) if isinstance(p, (str, os.PathLike)) and os.path.exists(p))]
    check_folder_destination(out, overwrite, DEPLOY_JSON, keep)  # before any work; staging checks again
    report = progress or (lambda done, total, what: None)

    with staged_dir(out, overwrite, DEPLOY_JSON, keep) as stage:
        work = stage / _WORK
        work.mkdir()
        ctx = Context(analysis, in_shape, weights, work)
        with quiet():
            ctx.prepare_data(source, split, seed)
        candidates = [Candidate(n, PATHS[n][0]) for n in names]
        steps = len(candidates) + len(batches) * (warmup + repeats) + 1
        done = 0
        for c in candidates:
            report(done, steps, f"exporting {c.name}")
            why = available(c.name)
            if why is not None:
                c.status, c.reason = "skipped", why
            else:
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
        for suffix in ("", SIDECAR_SUFFIX):  # the winner's artifact and (one-file formats) its sidecar
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
    from ..files import read_bounded
    from ..train.runs import MAX_RUN_JSON_BYTES

    run: dict[str, Any] = {}
    if weights is not None:
        try:  # bounded, without blocking on a FIFO, as `train` reads it
            run = json.loads(read_bounded(Path(weights).parent / "run.json", MAX_RUN_JSON_BYTES).decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            run = {}
    split = split if split is not None else float(run.get("validation_split", 0.2))
    seed = seed if seed is not None else int(run.get("seed", 0))
    return split, seed


# --------------------------------------------------------------------------- files


def _json(r: DeployResult) -> dict[str, Any]:
    from ..keras.profile import machine_info

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
    from ..keras.profile import machine_info, machine_line

    return (
        f"# Deploy\n\n{machine_line(machine_info())}\n\n{r.table()}\n"
        f"Chosen: **{r.winner.name}** ({ARTIFACTS[r.winner.name]}): {r.why}.\n"
    )


# --------------------------------------------------------------------------- progress


PIPE_EVERY = 10.0  # seconds


class ProgressBar:
    """A `Progress` that writes to `stream` (default sys.stderr): a bar on a terminal, a line
    per stage otherwise (logs stay readable)."""

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

