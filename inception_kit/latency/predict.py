"""Predicted time of a plan, per layer, branch, block and model, from a latency profile.
Plain Python: the profile's regressors are walked by hand; nothing imports TensorFlow.

The rule, stated once: **a network's time is the profile's per-call overhead plus the sum
of its ops' kernel times**, each kernel's time its regressor's times the profile's measured
composition factor (a kernel inside a network against the same kernel timed alone).
Calibration pins the runtime to one inter-op thread, so ops run one after another and their
times add; a block's time is the sum of its branches and joins
(what it costs inside the model), and a unit run as its own model (`standalone`) adds one
call's overhead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..errors import ArgumentError
from ..planner import BlockPlan, Op, Plan, naive, walk
from . import regressor
from .kernels import features
from .profile import Profile, load_profile


@dataclass
class Latency:
    """Predicted seconds of one network: each op, branch and top-level block, and the whole."""

    layers: dict[str, float] = field(default_factory=dict)  # by op name
    branches: dict[str, dict[str, float]] = field(default_factory=dict)  # block name -> branch -> s
    blocks: dict[str, float] = field(default_factory=dict)  # by top-level block name
    paths: dict[str, str] = field(default_factory=dict)  # block path -> name (naive blocks match by path)
    overhead: float = 0.0
    kernels: float = 0.0  # the sum of every op's time

    @property
    def total(self) -> float:
        """The whole network as one call: overhead plus every kernel."""
        return self.overhead + self.kernels


@dataclass
class LatencyPrediction:
    """`predict_latency`'s answer: the plan's times and its naive counterpart's."""

    plan: Latency
    naive: Latency
    runtime: str
    batch: int
    threads: dict[str, object]
    source: str

    @property
    def saving(self) -> float:
        """Naive time / real time, predicted."""
        return self.naive.total / self.plan.total if self.plan.total > 0 else 1.0

    def describe(self) -> str:
        threads = ", ".join(f"{k} {v}" for k, v in self.threads.items())
        return f"{self.runtime}, batch {self.batch}, threads {threads} (profile {self.source})"


_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}


def parse_duration(text: str | float) -> float:
    """'20ms' -> 0.02, '1.5s', '800us', or a number of seconds.

    Raises:
        ValueError: not a positive duration.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(s|ms|us|µs)?\s*", str(text))
        if not m:
            raise ValueError(f"expected a duration such as 20ms, 1.5s or 800us; received {text!r}")
        value = float(m.group(1)) * _UNITS[m.group(2) or ""]
    if not 0 < value < 1e6:
        raise ValueError(f"expected a positive duration; received {text!r}")
    return value


def op_seconds(op: Op, profile: Profile, batch: int) -> float:
    """Predicted seconds of one op at `batch` (its kind's regressor in the profile)."""
    x = features(op.kind, op.args, op.inputs, op.output_shape)
    return regressor.predict(profile.kernel(batch, op.kind), x) * profile.composition(batch)


def network_latency(plan: Plan, profile: Profile, batch: int) -> Latency:
    """Predicted times of one plan's ops, branches and top-level blocks."""
    out = Latency(overhead=profile.overhead(batch))
    for op in plan.ops():
        out.layers[op.name] = op_seconds(op, profile, batch)
    out.kernels = sum(out.layers.values())
    for step in plan.steps:
        if not isinstance(step, BlockPlan):
            continue
        out.branches[step.name] = {
            b: sum(out.layers[o.name] for o in walk(steps)) for b, steps in step.branches.items()
        }
        out.blocks[step.name] = sum(out.layers[o.name] for o in walk([step]))
        out.paths[step.path] = step.name
    return out


def predict_latency(
    plan: Plan,
    profile: Profile | str | os.PathLike[str],
    batch: int | None = None,
    allow_other_machine: bool = False,
    naive_plan: Plan | None = None,
) -> LatencyPrediction:
    """Predicted time of `plan` and of its naive counterpart, per layer, branch, block and model.

    Args:
        plan: what `ik.load` returns.
        profile: a profile file (`inception-kit calibrate -o FILE`) or a loaded `Profile`.
        batch: one of the profile's batch sizes; default its first.
        allow_other_machine: use a profile measured on another machine (its times are that
            machine's).
        naive_plan: `naive(plan)` where the caller has it (`analysis.naive_plan`).

    Returns:
        The prediction: `.plan` and `.naive` (`Latency`: `layers`, `branches`, `blocks`,
        `total` in seconds) and what it holds for (runtime, batch, threads).

    Raises:
        ProfileError: the file is unreadable, malformed or from another machine.
        ArgumentError: `batch` is not one of the profile's.

    Example:
        >>> import inception_kit as ik
        >>> p = ik.predict_latency(ik.load("inception_3a"), "cpu.json")  # doctest: +SKIP
        >>> round(p.plan.total * 1e3, 2), round(p.saving, 2)  # doctest: +SKIP
        (4.12, 1.31)
    """
    loaded = load_profile(profile, allow_other_machine)
    batch = loaded.batches[0] if batch is None else batch
    if batch not in loaded.batches:
        raise ArgumentError(
            "batch", "one of the profile's batch sizes: " + ", ".join(map(str, loaded.batches)), batch
        )
    counterpart = naive_plan if naive_plan is not None else naive(plan)
    return LatencyPrediction(
        network_latency(plan, loaded, batch),
        network_latency(counterpart, loaded, batch),
        loaded.runtime,
        batch,
        loaded.threads,
        loaded.source,
    )
