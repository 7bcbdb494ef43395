"""The real time of every block, branch and naive counterpart, beside the MACs the analysis
predicts (the library of `inception-kit profile SPEC`).

Each top-level block, each of its branches, and the naive counterpart of each (taken from
`naive(plan)`, the naive network as a plan of its own: every 1×1 bottleneck removed, the k×k
conv after it reading the wider input) is built as its own small Keras model
(`builder.apply_steps`, the code that builds the whole model) and run on random float32 input
of the block's input shape. The built sub-models are checked against the analysis first:
their parameters (`count_params`) and MACs (kernel sizes × output pixels) must equal the
analysis' real and naive figures, so what is timed is what the MACs describe.

Timing: each sub-model is traced once into a concrete `tf.function` (graph mode, no XLA,
`training=False`), the same for all, and called on a tensor already in memory; on CPU the
call returns when the result is computed. Of the ways to call a model this adds the least
overhead to the times (benchmarks/call_overhead.py; figures in docs/measurements.md). The
units of one block run round-robin: first `--warmup` calls of each, then `--repeats` rounds
of one call each, so slow drift of the machine's load hits real and naive alike. Reported:
the median and the min–max (JSON adds the quartiles). TensorFlow runs independent branches
in parallel, so branch times need not add up to their block's.

Achieved GFLOP/s divides profiler-convention FLOPs (see `kinds`: 2 per MAC, plus bias,
batch norm, pooling) per sample × batch by the median time. Savings are naive / real:
by MACs (predicted, exact from the analysis) and by time (measured).

The module's top level imports no TensorFlow: the CLI and `--help` stay fast.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..analysis import Analysis, BlockCost
from ..errors import ArgumentError
from ..kinds import Cost
from ..planner import BlockPlan, Step, naive, walk
from ..progress import Progress, no_progress
from ..tables import human, ms, ratio

TIMING = "concrete tf.function per sub-model (graph mode, no XLA, training=False)"
# Under JAX and torch there is no tf.function: Keras' predict_on_batch (jit-compiled by JAX,
# eager under torch.no_grad) on a numpy batch, its output back in numpy.
TIMING_KERAS = "Keras predict_on_batch per sub-model ({backend} backend), numpy in and out"


def timing_method() -> str:
    """How `measure` calls the sub-models under the current Keras backend."""
    from .backends import current

    backend = current()
    return TIMING if backend == "tensorflow" else TIMING_KERAS.format(backend=backend)


WIDTH = 100


# --------------------------------------------------------------------------- what is timed


@dataclass
class Timing:
    """Seconds of each timed call."""

    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def summary(self) -> dict[str, Any]:
        ms = sorted(t * 1e3 for t in self.times)
        q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else (ms[0],) * 3
        return {
            "median_ms": round(statistics.median(ms), 4),
            "min_ms": round(ms[0], 4),
            "max_ms": round(ms[-1], 4),
            "q1_ms": round(q1, 4),
            "q3_ms": round(q3, 4),
            "runs": len(ms),
        }


@dataclass
class Unit:
    """One thing to time: a block, a branch or a naive counterpart, as its own model."""

    label: str  # block, "block/branch", with " naive" for counterparts
    kind: str  # "block", "branch", "model"
    naive: bool
    steps: list[Step]
    input_shape: tuple[int, ...]
    cost: Cost  # what the analysis says this unit costs (real or naive)
    built_params: int = 0
    built_macs: int = 0
    timing: Timing = field(default_factory=Timing)
    call: Callable[[], Any] | None = None
    predicted: float | None = None  # seconds a latency profile predicts for it, run as its own model


@dataclass
class Pair:
    """A real unit and its naive counterpart (None where nothing is removed)."""

    real: Unit
    naive: Unit | None
    real_cost: Cost
    naive_cost: Cost
    children: list[Pair] = field(default_factory=list)  # branches of a block
    identity: bool = False  # an empty branch (a residual shortcut): nothing to time

    @property
    def predicted(self) -> float:
        return self.naive_cost.macs / self.real_cost.macs if self.real_cost.macs else 1.0

    @property
    def measured(self) -> float | None:
        if self.naive is None or not self.real.timing.times:
            return None
        return self.naive.timing.median / self.real.timing.median


def _changed(real: list[Step], naive: list[Step]) -> bool:
    """Whether the naive counterpart removed a layer here (else there is nothing to compare)."""
    return [op.name for op in walk(real)] != [op.name for op in walk(naive)]


def pairs_of(analysis: Analysis, only: str | None = None) -> list[Pair]:
    """What `measure` times: each top-level block (or only the block `only`) with its branches,
    then the whole model, each beside its naive counterpart.

    Raises:
        ArgumentError: `only` names no top-level block.
    """
    plan = analysis.plan
    counterpart = analysis.naive_plan or naive(plan)
    blocks = {s.name: s for s in plan.steps if isinstance(s, BlockPlan)}
    naive_blocks = {s.name: s for s in counterpart.steps if isinstance(s, BlockPlan)}
    costs: dict[str, BlockCost] = {b.name: b for b in analysis.blocks}
    if only is not None and only not in blocks:
        expected = f"one of the blocks: {', '.join(blocks)}" if blocks else "no block: this spec has none"
        raise ArgumentError("block", expected, only)
    pairs = []
    for name, block in blocks.items():
        if only is not None and name != only:
            continue
        bc, twin = costs[name], naive_blocks[name]
        shape = tuple(block.input_shape)
        pair = Pair(
            Unit(name, "block", False, [block], shape, bc.cost),
            Unit(f"{name} naive", "block", True, [twin], shape, bc.naive)
            if _changed([block], [twin])
            else None,
            bc.cost,
            bc.naive,
        )
        for br in bc.branches:
            steps, naive_steps = block.branches[br.name], twin.branches[br.name]
            label = f"{name}/{br.name}"
            real = Unit(label, "branch", False, steps, shape, br.cost)
            twin_unit = None
            if _changed(steps, naive_steps):
                twin_unit = Unit(f"{label} naive", "branch", True, naive_steps, shape, br.naive)
            pair.children.append(Pair(real, twin_unit, br.cost, br.naive, identity=not steps))
        pairs.append(pair)
    if only is None:
        steps = plan.steps
        shape = tuple(plan.model.input_shape)
        changed = _changed(steps, counterpart.steps)
        pairs.append(
            Pair(
                Unit("model", "model", False, steps, shape, analysis.total),
                Unit("model naive", "model", True, counterpart.steps, shape, analysis.naive)
                if changed
                else None,
                analysis.total,
                analysis.naive,
            )
        )
    return pairs


def attach_prediction(pairs: list[Pair], prediction: Any) -> None:
    """Sets each unit's `predicted` from a `latency.LatencyPrediction`: a block or branch run
    as its own model costs one call's overhead plus its kernels; the model, its total."""
    for pair in pairs:
        for p in (pair, *pair.children):
            for unit in (p.real, p.naive):
                if unit is None or p.identity:
                    continue
                side = prediction.naive if unit.naive else prediction.plan
                if unit.kind == "model":
                    unit.predicted = side.total
                elif unit.kind == "block":
                    unit.predicted = side.overhead + side.blocks[pair.real.label]
                else:
                    block, branch = p.real.label.split("/", 1)
                    unit.predicted = side.overhead + side.branches[block][branch]


def _units(pair: Pair) -> Iterator[Unit]:
    for p in (pair, *pair.children):
        if p.identity:
            continue
        yield p.real
        if p.naive is not None:
            yield p.naive


# --------------------------------------------------------------------------- building


def built_macs(model: Any) -> int:
    """MACs of a built Keras model, counted from its layers: the weights of every kernel
    (conv, grouped, depthwise, pointwise, dense) times the output pixels they are used at."""
    total = 0
    for layer in model.layers:
        kernels = [w for w in layer.weights if w.name in ("kernel", "depthwise_kernel", "pointwise_kernel")]
        if not kernels:
            continue
        pixels = math.prod(int(d) for d in layer.output.shape[1:-1])
        total += pixels * sum(math.prod(w.shape) for w in kernels)
    return total


def _build(unit: Unit, batch: int, rng: Any) -> None:
    import keras

    from .builder import apply_steps

    inputs = keras.Input(shape=unit.input_shape, name="x")
    model = keras.Model(
        inputs, apply_steps(unit.steps, inputs), name=unit.label.replace("/", "_").replace(" ", "_")
    )
    unit.built_params = int(model.count_params())
    unit.built_macs = built_macs(model)
    if (unit.built_params, unit.built_macs) != (unit.cost.params, unit.cost.macs):
        raise RuntimeError(
            f"the built {unit.label} has {unit.built_params:,} params and {unit.built_macs:,} MACs; "
            f"the analysis says {unit.cost.params:,} and {unit.cost.macs:,}"
        )
    if keras.backend.backend() != "tensorflow":
        xs = rng.standard_normal((batch, *unit.input_shape), dtype="float32")
        unit.call = lambda: model.predict_on_batch(xs)
        return
    import tensorflow as tf

    spec = tf.TensorSpec((batch, *unit.input_shape), tf.float32)
    concrete = tf.function(lambda x: model(x, training=False), autograph=False).get_concrete_function(spec)
    x = tf.constant(rng.standard_normal((batch, *unit.input_shape), dtype="float32"))
    unit.call = lambda: concrete(x)


def measure(
    pairs: list[Pair], batch: int, repeats: int, warmup: int, progress: Progress = no_progress
) -> None:
    """Builds and times every unit; each block's units round-robin (warm-ups first).

    Args:
        pairs: what `pairs_of` returns; each unit's times are filled in.
        batch: the batch size of the random input.
        repeats: timed rounds (one call of each unit per round).
        warmup: untimed rounds first.
        progress: told of every call, as (calls done, calls in all, "block: warm-up|timing").
    """
    import gc

    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    total = sum(len(list(_units(p))) for p in pairs) * (repeats + warmup)
    done = 0
    for pair in pairs:
        units = list(_units(pair))
        for unit in units:
            _build(unit, batch, rng)
        for _ in range(warmup):
            for unit in units:
                unit.call()  # type: ignore[misc]
                done += 1
                progress(done, total, f"{pair.real.label}: warm-up")
        for _ in range(repeats):
            for unit in units:
                start = time.perf_counter()
                unit.call()  # type: ignore[misc]
                unit.timing.times.append(time.perf_counter() - start)
                done += 1
                progress(done, total, f"{pair.real.label}: timing")
        for unit in units:
            unit.call = None  # frees the sub-model and its input before the next block
        keras.backend.clear_session()
        gc.collect()


# --------------------------------------------------------------------------- output


def cpu_fields() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo ("model name", "flags", ...); {} where there is none."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def machine_info() -> dict[str, Any]:
    """CPU model (from /proc/cpuinfo where there is one), cores, TF and Keras versions."""
    fields = cpu_fields()
    cpu = fields.get("model name", platform.processor() or platform.machine())
    if "cpu family" in fields:
        cpu += f" (family {fields['cpu family']} model {fields.get('model', '?')})"
    flags = set(fields.get("flags", "").split())
    vector = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "vector": vector,
        "python": platform.python_version(),
    }
    from .backends import current

    if current() != "tensorflow" and "keras" in sys.modules:
        from .backends import versions

        info.update(versions())
    elif "tensorflow" in sys.modules:
        import keras
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["keras"] = keras.__version__
        info["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads() or "default"
        info["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads() or "default"
        info["onednn"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")
    return info


def machine_line(info: dict[str, Any]) -> str:
    parts = [
        f"{info['cpu']}, {info['cores']} cores"
        + (f" ({' '.join(info['vector'])})" if info.get("vector") else "")
    ]
    if "tensorflow" in info:
        parts.append(f"TensorFlow {info['tensorflow']}, Keras {info['keras']}")
        threads = (info["intra_op_threads"], info["inter_op_threads"])
        parts.append(
            "TF's default threads"
            if threads == ("default", "default")
            else f"threads intra {threads[0]}, inter {threads[1]}"
        )
    elif info.get("backend"):
        parts.append(f"Keras {info['keras']} on {info['backend']} {info[info['backend']]}")
    return "machine: " + "; ".join(parts)


def _gflops(unit: Unit | None, batch: int) -> float | None:
    if unit is None or not unit.timing.times or unit.timing.median <= 0:
        return None
    return unit.cost.flops * batch / unit.timing.median / 1e9


def _unit_data(unit: Unit | None, batch: int) -> dict[str, Any] | None:
    if unit is None:
        return None
    return {
        "params": unit.cost.params,
        "macs": unit.cost.macs,
        "flops": unit.cost.flops,
        "built_params": unit.built_params,
        "built_macs": unit.built_macs,
        "time": unit.timing.summary() if unit.timing.times else None,
        "gflops_per_s": _round(_gflops(unit, batch), 3),
        **({} if unit.predicted is None else {"predicted_ms": round(unit.predicted * 1e3, 4)}),
    }


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _pair_data(pair: Pair, batch: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": pair.real.label.split("/")[-1],
        "input_shape": list(pair.real.input_shape),
        "real": None if pair.identity else _unit_data(pair.real, batch),
        "naive": _unit_data(pair.naive, batch),
        "naive_macs": pair.naive_cost.macs,
        "naive_params": pair.naive_cost.params,
        "predicted_saving": pair.predicted,  # naive MACs / real MACs, exact
        "measured_saving": _round(pair.measured, 4),  # naive median time / real median time
    }
    if pair.identity:
        data["identity"] = True
    if pair.children:
        data["branches"] = [_pair_data(c, batch) for c in pair.children]
    return data


def profile_data(
    analysis: Analysis, pairs: list[Pair], batch: int, repeats: int, warmup: int
) -> dict[str, Any]:
    blocks = [p for p in pairs if p.real.kind == "block"]
    model = [p for p in pairs if p.real.kind == "model"]
    return {
        "spec": analysis.plan.model.name,
        "batch": batch,
        "repeats": repeats,
        "warmup": warmup,
        "timing": timing_method() + "; units of one block run round-robin",
        "conventions": {
            "flops": "TensorFlow profiler float ops per sample (see the report) x batch",
            "gflops_per_s": "flops / median time / 1e9",
            "predicted_saving": "naive MACs / real MACs",
            "measured_saving": "naive median time / real median time",
        },
        "machine": machine_info(),
        "blocks": [_pair_data(p, batch) for p in blocks],
        "model": _pair_data(model[0], batch) if model else None,
    }


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap(text: str, width: int = WIDTH, indent: str = "") -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False)


HEADER = ["block / branch", "MACs", "median ms", "min–max ms", "GFLOP/s", "MACs saves", "time saves"]


def _row(
    name: str, unit: Unit | None, batch: int, pair: Pair | None, identity: bool = False, timed: bool = False
) -> list[str]:
    if identity:
        return [name, "0", "identity", "", "", "", ""] + [""] * timed
    if timed:  # the predicted time beside the measured median
        assert unit is not None
        cells = _row(name, unit, batch, pair)
        return [*cells[:3], "" if unit.predicted is None else ms(unit.predicted), *cells[3:]]
    assert unit is not None
    t = unit.timing
    spread = f"{ms(min(t.times))}–{ms(max(t.times))}" if t.times else ""
    g = _gflops(unit, batch)
    cells = [
        name,
        human(unit.cost.macs),
        ms(t.median) if t.times else "",
        spread,
        "" if g is None else f"{g:.1f}",
    ]
    if pair is None:
        return [*cells, "", ""]
    return [*cells, ratio(pair.predicted), ratio(pair.measured)]


def render_table(analysis: Analysis, pairs: list[Pair], batch: int, repeats: int, warmup: int) -> str:
    rows: list[list[str]] = []
    timed = any(u.predicted is not None for p in pairs for u in _units(p))
    header = [*HEADER[:3], "predicted ms", *HEADER[3:]] if timed else HEADER
    for pair in pairs:
        label = pair.real.label
        rows.append(_row(label, pair.real, batch, pair, timed=timed))
        for child in pair.children:
            name = "  " + child.real.label.split("/", 1)[1]
            rows.append(_row(name, child.real, batch, child, child.identity, timed=timed))
            if child.naive is not None:
                rows.append(_row(f"{name} naive", child.naive, batch, None, timed=timed))
        if pair.naive is not None:
            rows.append(
                _row(
                    "  naive " + ("model" if pair.real.kind == "model" else "block"),
                    pair.naive,
                    batch,
                    None,
                    timed=timed,
                )
            )
    name_w = min(26, max(len(header[0]), *(len(r[0]) for r in rows)))
    rows = [[_fit(r[0], name_w), *r[1:]] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = _wrap(
        f"{analysis.plan.model.name}: real time at batch {batch}, median of {repeats} calls after "
        f"{warmup} warm-up{'s' if warmup != 1 else ''} (min–max beside it); each block, branch and naive "
        f"counterpart timed as its own model: {timing_method()}, on random input."
    )
    out += _wrap(machine_line(machine_info()), indent="  ")
    out += ["", line(header), rule]
    for r in rows:
        out.append(line(r))
    out.append("")
    out += _wrap(
        "MACs saves: naive MACs / real MACs (predicted by the analysis); time saves: naive median time / "
        "real median time (measured). naive: each 1x1 conv that only reduces channels before a kxk conv "
        "removed. GFLOP/s: profiler-convention FLOPs x batch / median time. Branch times need not add "
        "up to the block's: TensorFlow runs independent branches in parallel."
    )
    return "\n".join(line_.rstrip() for line_ in out) + "\n"
