"""Calibration: sample the kernels the planner emits, time them, fit a regressor per kind.

What is sampled: every op of every preset's plan (`ik.list_presets()`), the seeds of
`kernels.SAMPLERS` (so every registry kind is measured) and configurations widened around
them (`kernels.vary`); then, per batch, **adaptive resampling**: each sample whose
cross-validated error exceeds 10% gets new configurations around it (nn-Meter's rule),
measured and fitted again, within the sample budget. Everything drawn is seeded, so a
calibration given the same measurements fits the same profile.

How it is timed is the timer's business (`timers.py` for TensorFlow and ONNX Runtime; tests
inject a fake one): warm-ups, rounds alternating over a group of samples, medians with the
quartiles as spread, the per-call overhead timed among them and subtracted. Measurements
are written atomically to `OUT.partial` after each group, so a killed calibration resumes
where it stopped; the profile is written whole at the end. Plain Python but for the fit
(scikit-learn) and the timer.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import ArgumentError, Failure
from ..files import read_bounded, write_text
from ..progress import Progress, no_progress
from . import regressor
from .kernels import FEATURES, Sample, registry_kinds, sample_of, sampler_of, vary
from .profile import FORMAT, MAX_BYTES, RUNTIMES, VERSION, this_machine

# Small whole models timed beside the kernels: how a network's time relates to the sum of its
# kernels timed alone (an op inside a graph reads a tensor its neighbour just wrote and skips
# the call's input and output handling; the ratio is measured, not assumed).
COMPOSITION_SPECS = ("inception_3a", "five_by_five_bottleneck", "inception_3a_tiny")
ADAPTIVE_ERROR = 0.10  # a sample predicted worse than this (cross-validated) is resampled around
GROUP = 8  # samples timed together, round-robin


@dataclass(frozen=True)
class Measurement:
    """Seconds per call of one sample: the median of the rounds and its quartiles."""

    median: float
    q1: float
    q3: float
    runs: int

    def data(self) -> dict[str, Any]:
        return {
            "median_ms": self.median * 1e3,
            "q1_ms": self.q1 * 1e3,
            "q3_ms": self.q3 * 1e3,
            "runs": self.runs,
        }

    @classmethod
    def of(cls, data: dict[str, Any]) -> Measurement:
        return cls(data["median_ms"] / 1e3, data["q1_ms"] / 1e3, data["q3_ms"] / 1e3, int(data["runs"]))


class Timer(Protocol):
    """Times samples at a batch size; says what it ran on."""

    runtime: str
    threads: dict[str, Any]
    versions: dict[str, str]
    method: str

    def __call__(self, samples: Sequence[Sample], batch: int) -> tuple[list[Measurement | None], Measurement]:
        """Each sample's time per call (None: the runtime cannot run it), and the per-call
        overhead timed among them."""
        ...


@dataclass(frozen=True)
class Settings:
    """How many samples a calibration takes: `initial` per batch, then up to `adaptive` more."""

    initial: int
    adaptive: int
    per_kind: int  # at least this many of each kind
    around: int  # new samples around a poorly predicted one
    rounds: int = 2  # adaptive rounds


QUICK = Settings(initial=80, adaptive=24, per_kind=3, around=4, rounds=1)
MAX_SAMPLES = 1500  # measurements (samples x batches) of a full calibration


def full_settings(batches: int) -> Settings:
    per_batch = MAX_SAMPLES // batches
    return Settings(
        initial=per_batch * 7 // 10, adaptive=per_batch - per_batch * 7 // 10, per_kind=12, around=20
    )


def preset_samples() -> list[Sample]:
    """Every distinct op of every preset's plan, as a sample."""
    from ..loading import load
    from ..spec.catalog import list_presets

    seen: dict[str, Sample] = {}
    for name in list_presets():
        for op in load(name).ops():
            s = Sample(op.kind, dict(op.args), tuple(op.inputs), op.output_shape, "preset")
            seen.setdefault(s.key, s)
    return list(seen.values())


def initial_samples(count: int, per_kind: int, seed: int) -> list[Sample]:
    """`count` samples: at least `per_kind` of every registry kind, the presets' ops, and
    configurations widened around them; deterministic for a seed."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for kind in registry_kinds():
        for seed_ in sampler_of(kind):  # refuses a kind without a sampler, by name
            made = sample_of(kind, seed_.fields, seed_.inputs, "seed")
            if made is not None:
                by_kind[kind].append(made)
    for s in preset_samples():
        by_kind[s.kind].append(s)
    chosen: dict[str, Sample] = {}
    for kind in (
        registry_kinds()
    ):  # every kind first: all its seeds, then the presets' and widened ones up to per_kind
        pool = by_kind[kind]
        if not pool:
            raise Failure(
                f"no latency sample of kind '{kind}' fits (its seeds in inception_kit.latency.kernels)"
            )
        seeds = [s for s in pool if s.origin == "seed"]
        others = [s for s in pool if s.origin != "seed"]
        for s in seeds + rng.sample(others, min(len(others), max(0, per_kind - len(seeds)))):
            chosen.setdefault(s.key, s)
        tries = 0
        while sum(1 for c in chosen.values() if c.kind == kind) < per_kind and tries < 50 * per_kind:
            tries += 1
            v = vary(rng.choice(pool), rng)
            if v is not None:
                chosen.setdefault(v.key, v)
    rest = [s for pool in by_kind.values() for s in pool if s.key not in chosen]
    rng.shuffle(rest)
    for s in rest[: max(0, (count - len(chosen)) // 2)]:  # half of what is left: the presets' own ops
        chosen.setdefault(s.key, s)
    everything = [s for pool in by_kind.values() for s in pool]
    tries = 0
    while len(chosen) < count and tries < 50 * count:  # the other half: widened around them
        tries += 1
        v = vary(rng.choice(everything), rng)
        if v is not None:
            chosen.setdefault(v.key, v)
    return list(chosen.values())  # every seed of every kind, even where that exceeds `count`


# --------------------------------------------------------------------------- resuming


def _partial_path(out: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(out)}.partial")


def _read_partial(path: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Measurements of an interrupted calibration with the same settings, by batch then key."""
    if not path.exists():
        return {}
    try:
        data = json.loads(read_bounded(path, MAX_BYTES))
    except (OSError, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT + " (partial)":
        raise Failure(
            f"{path} exists and inception-kit did not write it; move it away to calibrate to {path.name[:-8]}"
        )
    if data.get("settings") != settings:
        raise Failure(
            f"{path} holds a calibration with other settings ({json.dumps(data.get('settings'))}); "
            "calibrate with those to resume it, or remove it to start afresh"
        )
    measured = data.get("measured")
    return measured if isinstance(measured, dict) else {}


def _write_partial(path: Path, settings: dict[str, Any], measured: dict[str, dict[str, Any]]) -> None:
    write_text(
        path, json.dumps({"format": FORMAT + " (partial)", "settings": settings, "measured": measured}), True
    )


# --------------------------------------------------------------------------- fitting


def _targets(samples: list[Sample], measured: dict[str, Any], overhead: float) -> list[float]:
    # The kernel's own time: the call's minus the fixed cost of a call (at least 0.1 µs).
    return [max(measured[s.key]["median_ms"] / 1e3 - overhead, 1e-7) for s in samples]


def cross_errors(samples: list[Sample], ys: list[float], seed: int, floor: float = 0.0) -> list[float]:
    """Error of each sample predicted by a regressor fitted without it (5 folds), relative
    to the time of a call (kernel plus `floor`, the per-call overhead)."""
    n = len(samples)

    def error(model: dict[str, Any], i: int) -> float:
        return abs(regressor.predict(model, samples[i].features) - ys[i]) / (ys[i] + floor)

    if n < 5:
        model = regressor.fit([s.features for s in samples], ys, seed, floor)
        return [error(model, i) for i in range(n)]
    errors = [0.0] * n
    for fold in range(5):
        train = [i for i in range(n) if i % 5 != fold]
        model = regressor.fit([samples[i].features for i in train], [ys[i] for i in train], seed, floor)
        for i in range(fold, n, 5):
            errors[i] = error(model, i)
    return errors


def _fit_all(
    samples: list[Sample], measured: dict[str, Any], overhead: float, seed: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    models, errors = {}, {}
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if "unsupported" not in measured[s.key]:
            by_kind[s.kind].append(s)
    for kind, group in sorted(by_kind.items()):
        ys = _targets(group, measured, overhead)
        errors[kind] = cross_errors(group, ys, seed, overhead)
        spread = [
            (measured[s.key]["q3_ms"] - measured[s.key]["q1_ms"]) / max(measured[s.key]["median_ms"], 1e-9)
            for s in group
        ]
        models[kind] = {
            **regressor.fit([s.features for s in group], ys, seed, overhead),
            "samples": len(group),
            "cv_mape_percent": round(100 * statistics.fmean(errors[kind]), 2),
            "within_10_percent": round(sum(e <= 0.10 for e in errors[kind]) / len(group), 4),
            "median_spread": round(
                statistics.median(spread), 4
            ),  # (q3 - q1) / median of the samples' timings
            # what was measured, so that a profile can be audited or refitted
            "measured": [{"origin": s.origin, "features": s.features, **measured[s.key]} for s in group],
        }
    return models, errors


def _composition(timer: Timer, batch: int, models: dict[str, Any], overhead: float) -> dict[str, Any]:
    """The median ratio of small whole models' measured kernel time (a call minus its overhead)
    to the sum of their kernels' predictions; 1 where the timer cannot time whole models."""
    time_models = getattr(timer, "models", None)
    if time_models is None:
        return {"factor": 1.0, "models": []}
    from ..loading import load
    from .kernels import features

    plans = [load(name) for name in COMPOSITION_SPECS]
    if any(op.kind not in models for plan in plans for op in plan.ops()):
        return {"factor": 1.0, "models": []}  # a kind the runtime could not run: no check
    measured = time_models(plans, batch)
    rows = []
    for name, plan, m in zip(COMPOSITION_SPECS, plans, measured):
        kernels = sum(
            regressor.predict(models[op.kind], features(op.kind, op.args, op.inputs, op.output_shape))
            for op in plan.ops()
        )
        rows.append(
            {
                "spec": name,
                **m.data(),
                "kernels_ms": kernels * 1e3,
                "ratio": max(m.median - overhead, 1e-7) / max(kernels, 1e-9),
            }
        )
    factor = min(max(statistics.median(r["ratio"] for r in rows), 0.2), 5.0)
    return {"factor": factor, "models": rows}


# --------------------------------------------------------------------------- calibrating


def calibrate(
    runtime: str = "tensorflow",
    batches: Sequence[int] = (1,),
    quick: bool = False,
    out: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
    threads: int | None = None,
    seed: int = 0,
    settings: Settings | None = None,
    timer: Timer | None = None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Measures this machine's kernels and fits the latency profile.

    Args:
        runtime: 'tensorflow' or 'onnxruntime'.
        batches: the batch sizes to calibrate (a regressor per kind for each).
        quick: a small sample set (about 5 minutes) instead of the full one (at most 1,500
            measurements).
        out: where the profile is written (atomically; refused if it exists unless
            `overwrite`); measurements so far are kept in `out.partial` and resumed from.
        threads: intra-op threads to pin (default: the cores this process may use); inter-op
            threads are pinned to 1.
        seed: seeds every sample drawn.
        settings: sample counts other than `quick`'s or the full mode's (tests).
        timer: what measures (default: the runtime's own, see `timers.py`).
        progress: told of every group timed.

    Returns:
        The profile as data (what `out` holds).
    """
    if runtime not in RUNTIMES:
        raise ArgumentError("runtime", "one of " + ", ".join(RUNTIMES), runtime)
    batch_list = sorted(set(batches))
    if not batch_list or any(b < 1 or b > 4096 for b in batch_list):
        raise ArgumentError("batch", "batch sizes from 1 to 4096", list(batches))
    if out is not None:
        from ..files import check_file_destination

        check_file_destination(out, overwrite)  # before minutes of measuring
    plan = settings or (QUICK if quick else full_settings(len(batch_list)))
    machine = this_machine()
    if timer is None:
        from .timers import make_timer

        timer = make_timer(runtime, threads or machine["cores"])
    key = {
        "runtime": runtime,
        "batches": batch_list,
        "quick": quick,
        "seed": seed,
        "settings": plan.__dict__,
        "threads": timer.threads,
        "cpu": machine["cpu"],
    }
    partial = _partial_path(out) if out is not None else None
    measured: dict[str, dict[str, Any]] = _read_partial(partial, key) if partial else {}
    started = time.monotonic()
    samples = initial_samples(plan.initial, plan.per_kind, seed)
    total = (len(samples) + plan.adaptive) * len(batch_list)
    done = sum(len(v) - ("overhead" in v) for v in measured.values())

    def measure(batch: int, todo: list[Sample], stage: str) -> None:
        nonlocal done
        table = measured.setdefault(str(batch), {})
        todo = [s for s in todo if s.key not in table]
        for i in range(0, len(todo), GROUP):
            group = todo[i : i + GROUP]
            progress(done, total, f"batch {batch} {stage}: {', '.join(sorted({s.kind for s in group}))}")
            times, overhead = timer(group, batch)
            for s, m in zip(group, times):
                table[s.key] = {"unsupported": True} if m is None else m.data()
            table.setdefault("overhead", []).append(overhead.data())
            done += len(group)
            if partial is not None:
                _write_partial(partial, key, measured)

    kernels: dict[str, Any] = {}
    overheads: dict[str, Any] = {}
    counts: dict[str, int] = {}
    composition: dict[str, Any] = {}
    unsupported: dict[str, int] = {}
    for batch in batch_list:
        chosen = list(samples)
        measure(batch, chosen, "sampling")
        rng = random.Random(seed * 1000 + batch)
        budget = plan.adaptive
        for round_ in range(plan.rounds):
            overhead = statistics.median(m["median_ms"] for m in measured[str(batch)]["overhead"]) / 1e3
            _, errors = _fit_all(chosen, measured[str(batch)], overhead, seed)
            by_kind: dict[str, list[Sample]] = defaultdict(list)
            for s in chosen:
                if "unsupported" not in measured[str(batch)][s.key]:
                    by_kind[s.kind].append(s)
            worst = sorted(
                (
                    (e, s)
                    for kind, group in by_kind.items()
                    for s, e in zip(group, errors[kind])
                    if e > ADAPTIVE_ERROR
                ),
                key=lambda t: -t[0],
            )
            extra: dict[str, Sample] = {}
            known = {s.key for s in chosen}
            for _, s in worst:
                made = 0
                for _ in range(plan.around * 3):
                    if len(extra) >= budget or made >= plan.around:
                        break
                    v = vary(s, rng, "adaptive")
                    if v is not None and v.key not in known and v.key not in extra:
                        extra[v.key] = v
                        made += 1
                if len(extra) >= budget:
                    break
            if not extra:
                break
            budget -= len(extra)
            measure(batch, list(extra.values()), f"adaptive {round_ + 1}")
            chosen += list(extra.values())
        table = measured[str(batch)]
        overhead = statistics.median(m["median_ms"] for m in table["overhead"]) / 1e3
        overhead_spread = [m for m in table["overhead"]]
        kernels[str(batch)], _ = _fit_all(chosen, table, overhead, seed)
        overheads[str(batch)] = {
            "median_ms": overhead * 1e3,
            "q1_ms": statistics.median(m["q1_ms"] for m in overhead_spread),
            "q3_ms": statistics.median(m["q3_ms"] for m in overhead_spread),
            "groups": len(overhead_spread),
        }
        counts[str(batch)] = len(chosen)
        unsupported[str(batch)] = sum("unsupported" in table[s.key] for s in chosen)
        composition[str(batch)] = _composition(timer, batch, kernels[str(batch)], overhead)
    progress(total, total, "fitted")
    data = {
        "format": FORMAT,
        "version": VERSION,
        "valid_for": {
            **machine,
            "runtime": runtime,
            "versions": timer.versions,
            "threads": timer.threads,
            "batches": batch_list,
        },
        "timing": timer.method,
        "calibration": {
            "quick": quick,
            "seed": seed,
            "samples": counts,
            "unsupported_by_runtime": unsupported,
            "seconds": round(time.monotonic() - started, 1),
        },
        "features": list(FEATURES),
        "overhead": overheads,
        "composition": composition,
        "kernels": kernels,
    }
    if out is not None:
        write_text(out, json.dumps(data, indent=1) + "\n", overwrite)
        if partial is not None:
            partial.unlink(missing_ok=True)  # ours (checked when read): the profile holds it all now
    return data
