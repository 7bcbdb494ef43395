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
in the machine's load hits every path alike. Reported: median latency with its spread
(deploy.md: min–max of the timed rounds; deploy.json: min, first quartile, third quartile
and max, the quartiles by `statistics.quantiles(n=4, method="inclusive")`), throughput
(samples / median), the speed-up over the SavedModel (its median over the path's), artifact bytes, and deviation from the Keras float32 model
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
`deploy.json` (machine, settings, every path's figures, the choice and why, and ``speedup``:
the chosen path's speed-up over the SavedModel baseline at the deciding batch) and `deploy.md`
(the same as a table).

The package: `paths` (the registry: one entry per path, with its availability check, writer
and runner), `choosing` (tolerance, figures, the rule, the table; plain Python), `measuring`
(writing, verifying and measuring each path), `runtimes` (each path's runner); `deploy` here
puts them together, `DeployOptions` holding its settings. The command line is
`inception_kit.cli.deploy`; progress goes to an `inception_kit.progress.Progress`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, SpecError
from ..files import check_folder_destination, read_bounded, staged_dir
from ..loading import load
from ..planner import DEFAULT_BUDGET, Budget
from ..progress import Progress, no_progress
from .choosing import (
    BASELINE,
    MAX_BATCH,
    Candidate,
    Tolerance,
    choose,
    parse_batches,
    parse_tolerance,
    render_table,
)
from .measuring import CALIBRATION_SAMPLES, DEVIATION_SAMPLES, Context, quiet
from .paths import ARTIFACTS, PATHS, DeployPath, available

__all__ = [
    "ARTIFACTS",
    "BASELINE",
    "CALIBRATION_SAMPLES",
    "DEFAULT_BATCHES",
    "DEFAULT_TOLERANCE",
    "DEPLOY_JSON",
    "DEPLOY_MD",
    "DEVIATION_SAMPLES",
    "MAX_DEPLOY_JSON_BYTES",
    "PATHS",
    "Candidate",
    "DeployOptions",
    "DeployPath",
    "DeployResult",
    "Tolerance",
    "available",
    "choose",
    "deploy",
    "parse_batches",
    "parse_tolerance",
    "read_deploy_json",
    "render_table",
]

DEFAULT_BATCHES = (1, 8)
DEFAULT_TOLERANCE = "deviation:1e-4"
DEPLOY_JSON, DEPLOY_MD = "deploy.json", "deploy.md"
MAX_DEPLOY_JSON_BYTES = 4_000_000  # seven paths' figures take about 20 kB
_WORK = ".candidates"  # inside the staged DIR; removed before DIR is moved into place


@dataclass(frozen=True)
class DeployOptions:
    """What `deploy` measures and how (every field has the command line's default)."""

    weights: str | os.PathLike[str] | None = None  # a Keras .weights.h5 file (as `train` writes)
    batches: tuple[int, ...] = DEFAULT_BATCHES  # batch sizes to time; the largest decides
    # 'digits', an image folder or (images, labels): held-out accuracy (with weights), int8
    # calibration and the deviation batch
    data: Any = None
    tolerance: Tolerance | str = DEFAULT_TOLERANCE  # a `Tolerance` or its text (`parse_tolerance`)
    repeats: int = 10  # timed rounds per batch size
    warmup: int = 2  # untimed rounds first
    paths: tuple[str, ...] | None = None  # a subset of PATHS to try (default all)
    validation_split: float | None = (
        None  # the held-out split (default: run.json beside the weights, else 0.2)
    )
    seed: int | None = None  # its seed (default: run.json's, else 0)
    budget: Budget = DEFAULT_BUDGET  # the resource budget the spec is checked against


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

    @property
    def deciding_batch(self) -> int:
        return max(self.batches)

    def speedup(self) -> float | None:
        """The chosen path's speed-up over the SavedModel at the deciding batch (None: no baseline)."""
        base = next((c for c in self.candidates if c.name == BASELINE and c.status == "measured"), None)
        return None if base is None else self.winner.speedup(base, self.deciding_batch)

    def table(self) -> str:
        return render_table(self.candidates, self.batches, self.reference_accuracy)

    def summary(self) -> str:
        wrote = f"{self.artifact}, {self.out / DEPLOY_JSON}, {self.out / DEPLOY_MD}"
        return f"Chose {self.winner.name}: {self.why}. Wrote {wrote}."


# --------------------------------------------------------------------------- deploy


def deploy(
    spec: Any,
    out: str | os.PathLike[str],
    options: DeployOptions | None = None,
    *,
    overwrite: bool = False,
    progress: Progress = no_progress,
    **settings: Any,
) -> DeployResult:
    """Exports `spec` through every path, measures them, writes the fastest within tolerance.

    Args:
        spec: the plan (or a spec, a YAML path) to deploy.
        out: the folder to write (see the module doc).
        options: what to measure and how (`DeployOptions`).
        overwrite: replace `out` if an earlier deploy wrote it.
        progress: called as the work advances (the CLI draws it).
        **settings: `DeployOptions` fields, in place of (or over) `options`.

    Returns:
        Every path's figures, the winner and why (`DeployResult`).

    Raises:
        ArgumentError: a setting out of range or a missing weights file.
        SpecError: a bad spec, data or weights file.
        DestinationExists: `out` exists and overwrite is False.
        UnsafeDestination: `out` is not a deploy folder (no deploy.json inside) or holds the spec,
            the weights or the data, or is a link.
    """
    opts = dataclasses.replace(options or DeployOptions(), **settings)
    tol, names = _check(opts)
    run = _Run(spec, Path(out), opts, tol, names, overwrite, progress)
    return run.go()


def _check(o: DeployOptions) -> tuple[Tolerance, list[str]]:
    """The tolerance and the path names; raises ArgumentError for a setting out of range."""
    tol = parse_tolerance(o.tolerance) if isinstance(o.tolerance, str) else o.tolerance
    batches = tuple(o.batches)
    if not batches or any(
        isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= MAX_BATCH for b in batches
    ):
        raise ArgumentError("batches", f"whole numbers from 1 to {MAX_BATCH}", list(batches))
    if isinstance(o.repeats, bool) or not isinstance(o.repeats, int) or o.repeats < 1:
        raise ArgumentError("repeats", "a whole number >= 1", o.repeats)
    if isinstance(o.warmup, bool) or not isinstance(o.warmup, int) or o.warmup < 0:
        raise ArgumentError("warmup", "a whole number >= 0", o.warmup)
    names = list(PATHS) if o.paths is None else list(o.paths)
    if any(n not in PATHS for n in names) or BASELINE not in names:
        raise ArgumentError("paths", f"names from {', '.join(PATHS)}, including {BASELINE}", ",".join(names))
    if tol.kind == "accuracy" and (o.data is None or o.weights is None):
        missing = "data" if o.data is None else "weights"
        raise ArgumentError(
            "tolerance",
            "accuracy:D only with data and weights (accuracy on held-out data)",
            f"accuracy:{tol.limit:g} without {missing}",
        )
    if o.weights is not None and not Path(o.weights).is_file():
        raise ArgumentError("weights", "a Keras .weights.h5 file", f"{os.fspath(o.weights)} (no such file)")
    return tol, names


class _Run:
    """One deploy: checked inputs, then export, timing, the choice and the files, in a staged DIR."""

    def __init__(
        self,
        spec: Any,
        out: Path,
        opts: DeployOptions,
        tol: Tolerance,
        names: list[str],
        overwrite: bool,
        progress: Progress,
    ) -> None:
        from ..analysis import analyse
        from ..keras.export.artifact import spec_files
        from ..train.data import inspect_source

        self.out, self.opts, self.tol, self.overwrite, self.report = out, opts, tol, overwrite, progress
        self.batches = tuple(opts.batches)
        self.analysis = analyse(load(spec, budget=opts.budget))  # within budget before anything builds
        self.in_shape = tuple(int(d) for d in self.analysis.plan.model.input_shape)
        self.source = inspect_source(opts.data, self.in_shape) if opts.data is not None else None
        if (
            self.source is not None and opts.weights is not None
        ):  # accuracy needs one output per class, as `train` does
            from ..train import Target

            problems = Target.of(self.analysis.plan, opts.budget).class_problems(self.source)
            if problems:
                raise SpecError(problems)
        self.split, self.seed = _split_settings(opts.weights, opts.validation_split, opts.seed)
        # What DIR may never replace: the spec, the weights, the data (nor /, home, the working folder).
        self.keep = [
            *spec_files(spec),
            *(
                p
                for p in (opts.weights, opts.data)
                if isinstance(p, (str, os.PathLike)) and os.path.exists(p)
            ),
        ]
        if overwrite and (out / DEPLOY_JSON).is_file() and not out.is_symlink():
            read_deploy_json(out / DEPLOY_JSON)  # the proof that deploy wrote DIR: one it can read back
        check_folder_destination(
            out, overwrite, DEPLOY_JSON, self.keep
        )  # before any work; staging checks again
        self.candidates = [Candidate(n, PATHS[n].label) for n in names]
        self.steps = len(self.candidates) + len(self.batches) * (opts.warmup + opts.repeats) + 1
        self.done = 0

    def step(self, what: str, advance: bool = True) -> None:
        self.report(self.done, self.steps, what)
        self.done += advance

    def go(self) -> DeployResult:
        with staged_dir(self.out, self.overwrite, DEPLOY_JSON, self.keep) as stage:
            work = stage / _WORK
            work.mkdir()
            ctx = Context(self.analysis, self.in_shape, self.opts.weights, work)
            with quiet():
                ctx.prepare_data(self.source, self.split, self.seed)
            self.export_all(ctx)
            self.time_all(ctx, [c for c in self.candidates if c.status == "measured"])
            result = self.choose(ctx)
            self.place(ctx, result, stage)
            self.report(self.steps, self.steps, "done")
        return result

    def export_all(self, ctx: Context) -> None:
        """Each path's artifact written, verified and loaded; skipped where it cannot run here."""
        for c in self.candidates:
            self.step(f"exporting {c.name}")
            path = PATHS[c.name]
            why = path.available()
            if why is not None:
                c.status, c.reason = "skipped", why
            else:
                ctx.prepare(c, path)

    def time_all(self, ctx: Context, live: list[Candidate]) -> None:
        """At each batch size: warm-up rounds, then timed rounds of one call of each path."""
        warmup, repeats = self.opts.warmup, self.opts.repeats
        for b in self.batches:
            calls = {c.name: ctx.timer(c, b) for c in live}
            for r in range(warmup + repeats):
                timed = r >= warmup
                which = f"round {r - warmup + 1}/{repeats}" if timed else f"warm-up {r + 1}/{warmup}"
                self.step(f"batch {b}: {which}")
                for c in live:
                    start = time.perf_counter()
                    calls[c.name]()
                    if timed:
                        c.times.setdefault(b, []).append(time.perf_counter() - start)
            del calls

    def choose(self, ctx: Context) -> DeployResult:
        live = [c for c in self.candidates if c.status == "measured"]
        self.step("held-out accuracy" if ctx.val is not None else "choosing", advance=False)
        reference_accuracy = ctx.accuracies(live, max(self.batches))
        winner, why = choose(self.candidates, self.tol, max(self.batches), reference_accuracy)
        if winner is None:
            raise ArgumentError(
                "tolerance", "a tolerance that some measured path meets", f"{self.tol}: {why}"
            )
        return DeployResult(
            self.out,
            self.analysis.plan.model.name,
            winner,
            why,
            self.candidates,
            self.batches,
            self.tol,
            reference_accuracy,
            ctx.data_info,
        )

    def place(self, ctx: Context, result: DeployResult, stage: Path) -> None:
        """The winner's artifact (and sidecar) into the staged DIR, the rest removed, the two reports."""
        from ..keras.export.artifact import SIDECAR_SUFFIX

        work = ctx.work
        for suffix in ("", SIDECAR_SUFFIX):  # the winner's artifact and (one-file formats) its sidecar
            src = work / (ARTIFACTS[result.winner.name] + suffix)
            if src.exists():
                os.rename(src, stage / src.name)
        ctx.release()
        shutil.rmtree(work)
        (stage / DEPLOY_JSON).write_text(json.dumps(_json(result), indent=2) + "\n", encoding="utf-8")
        (stage / DEPLOY_MD).write_text(_markdown(result), encoding="utf-8")


def _split_settings(weights: Any, split: float | None, seed: int | None) -> tuple[float, int]:
    """The held-out split: as given, else as the training run beside the weights, else 0.2, 0."""
    from ..train.runs import MAX_RUN_JSON_BYTES

    run: Any = {}
    if weights is not None:
        try:  # bounded, without blocking on a FIFO, as `train` reads it
            run = json.loads(
                read_bounded(Path(weights).parent / "run.json", MAX_RUN_JSON_BYTES).decode("utf-8")
            )
        except (OSError, ValueError, RecursionError):
            run = {}
    if not isinstance(run, dict):
        run = {}
    try:
        split = split if split is not None else float(run.get("validation_split", 0.2))
        seed = seed if seed is not None else int(run.get("seed", 0))
    except (TypeError, ValueError, OverflowError):  # a forged run.json: its settings are not used
        split, seed = (split if split is not None else 0.2), (seed if seed is not None else 0)
    return split, seed


# --------------------------------------------------------------------------- files


def read_deploy_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A deploy.json read back: a regular file of at most `MAX_DEPLOY_JSON_BYTES` (no link, no
    FIFO), a JSON object whose choice and paths are as `deploy` writes them.

    Raises:
        SpecError: naming the file and the field that is wrong.
    """
    path = Path(path)
    expected = "a deploy.json written by inception-kit deploy"
    try:
        data = json.loads(read_bounded(path, MAX_DEPLOY_JSON_BYTES).decode("utf-8"))
    except OSError as err:
        raise SpecError.one(str(path), expected, err.strerror or type(err).__name__) from None
    except RecursionError:
        raise SpecError.one(str(path), expected, "JSON nested too deep") from None
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise SpecError.one(str(path), expected, f"invalid JSON ({str(err)[:80]})") from None
    problem = _deploy_json_problem(data)
    if problem:
        raise SpecError.one(f"{path}: {problem[0]}", problem[1], problem[2])
    return data  # type: ignore[no-any-return]


def _deploy_json_problem(d: Any) -> tuple[str, str, str] | None:
    """(field, expected, received) of the first thing wrong with a deploy.json, or None."""
    from ..errors import show

    if not isinstance(d, dict):
        return "<top>", "a JSON object", f"a JSON {type(d).__name__}"
    paths = d.get("paths")
    if not isinstance(paths, list) or not all(
        isinstance(p, dict) and isinstance(p.get("name"), str) for p in paths
    ):
        return "paths", "a list of paths, each with a name", show(paths)
    names = [p["name"] for p in paths]
    if d.get("chosen") not in names:
        return (
            "chosen",
            f"one of the paths listed ({', '.join(n[:20] for n in names[:8])})",
            show(d.get("chosen")),
        )
    if d.get("artifact") != ARTIFACTS.get(d["chosen"]):
        return (
            "artifact",
            f"the chosen path's artifact ({ARTIFACTS.get(d['chosen'])})",
            show(d.get("artifact")),
        )
    batch = d.get("deciding_batch")
    if isinstance(batch, bool) or not isinstance(batch, int):
        return "deciding_batch", "a whole number", show(batch)
    return None


def _json(r: DeployResult) -> dict[str, Any]:
    from ..keras.profile import machine_info

    base = next((c for c in r.candidates if c.name == BASELINE and c.status == "measured"), None)
    paths = []
    for c in r.candidates:
        d = asdict(c)
        d["times_s"] = {str(b): t for b, t in d.pop("times").items()}
        d["median_ms"] = {str(b): c.median(b) * 1e3 for b in c.times}  # type: ignore[operator]
        d["spread_ms"] = {str(b): {k: v * 1e3 for k, v in c.spread(b).items()} for b in c.times}
        d["speedup_over_savedmodel"] = {str(b): c.speedup(base, b) for b in c.times} if base else {}
        paths.append(d)
    batch = r.deciding_batch
    return {
        "model": r.model,
        "chosen": r.winner.name,
        "artifact": ARTIFACTS[r.winner.name],
        "why": r.why,
        "tolerance": {"kind": r.tolerance.kind, "limit": r.tolerance.limit},
        "batches": list(r.batches),
        "deciding_batch": batch,
        "speedup": {
            "over": BASELINE,
            "batch": batch,
            "factor": r.speedup(),  # the baseline's median latency over the chosen path's
            "chosen_median_ms": _ms(r.winner.median(batch)),
            "baseline_median_ms": _ms(base.median(batch)) if base else None,
        },
        "spread": "spread_ms: min, q1, q3 and max of the timed rounds (quartiles: statistics.quantiles, "
        "n=4, inclusive)",
        "keras_accuracy": r.reference_accuracy,
        "data": r.data,
        "machine": machine_info(),
        "paths": paths,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _markdown(r: DeployResult) -> str:
    from ..keras.profile import machine_info, machine_line

    return (
        f"# Deploy\n\n{machine_line(machine_info())}\n\n{r.table()}\n"
        f"Chosen: **{r.winner.name}** ({ARTIFACTS[r.winner.name]}): {r.why}.\n"
    )
