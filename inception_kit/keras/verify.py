"""Analytic costs against the built Keras model: parameters and profiler FLOPs.

What the profiler should count is each kind's own word (`Kind.profiled`): where Keras runs
a layer where the profiler cannot see (grouped convolutions, on CPU, inside an XLA-compiled
function), its kind says which FLOPs the profiler misses.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..analysis import Analysis, op_cost
from ..kinds import kind_of


@dataclass
class Check:
    what: str
    analytic: int
    measured: int

    @property
    def ok(self) -> bool:
        return self.analytic == self.measured


def expected_profile(analysis: Analysis) -> Counter[str]:
    """What the profiler should report, op type by op type (see the module docstring)."""
    expected: Counter[str] = Counter()
    for op in analysis.plan.ops():
        expected.update(kind_of(op.kind).profiled(op.args, op_cost(op)))
    return +expected


def compare(analysis: Analysis, model: Any, flops: Counter[str] | None = None) -> list[Check]:
    """Params, trainable params, each profiler op type and the FLOP total, side by side.

    Raises:
        ArgumentError: (`backend`) Keras runs another backend than TensorFlow, whose profiler
            counts the FLOPs, and no `flops` were given.
    """
    from .backends import current

    if flops is None and current() != "tensorflow":
        from ..errors import ArgumentError

        raise ArgumentError(
            "backend",
            "the tensorflow backend: TensorFlow's profiler counts FLOPs on a "
            "TensorFlow graph (the cost report itself is the same on every backend)",
            current(),
        )
    from .profiler import profile_flops

    measured = profile_flops(model) if flops is None else flops
    expected = expected_profile(analysis)
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    checks = [
        Check("params", analysis.total.params, int(model.count_params())),
        Check("trainable params", analysis.total.trainable, trainable),
    ]
    for op in sorted(set(expected) | set(measured)):
        checks.append(Check(f"FLOPs {op}", expected.get(op, 0), measured.get(op, 0)))
    checks.append(Check("FLOPs total", sum(expected.values()), sum(measured.values())))
    return checks


def render_checks(checks: list[Check]) -> str:
    width = max(len(c.what) for c in checks)
    lines = [f"{'check'.ljust(width)}  {'analytic':>16}  {'measured':>16}  ok", "-" * (width + 40)]
    for c in checks:
        lines.append(
            f"{c.what.ljust(width)}  {c.analytic:>16,}  {c.measured:>16,}  {'yes' if c.ok else 'NO'}"
        )
    return "\n".join(lines)
