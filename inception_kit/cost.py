"""The cost model: parameters, MACs and FLOPs per layer, branch, block and model, each
beside its naive counterpart.

The counting rules live in `kinds` (one rule per kind). The naive counterpart of a layer
sequence removes every 1×1 convolution that only reduces channels (stride 1, no groups,
fewer output than input channels) for a following k×k convolution (k > 1); that k×k
convolution then reads the channels the 1×1 read. Nothing else changes, so a block's
naive output shape equals its real one and blocks can be compared one by one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import Mark, Problem, SpecError
from .kinds import KINDS, MERGES, Cost, activation_cost, fmt_shape, scale_cost
from .shapes import BlockPlan, Op, Plan, Step

BYTES_PER_VALUE = 4  # float32


@dataclass
class Row:
    """One line of the layer table: a layer, or a block's merge, scale or activation."""

    name: str
    kind: str
    path: str
    output_shape: tuple[int, ...]
    cost: Cost
    naive: Cost
    block: str | None = None
    branch: str | None = None
    removed_in_naive: bool = False
    mark: Mark | None = None
    args: dict[str, Any] = field(default_factory=dict)  # resolved arguments (what was built)


@dataclass
class BranchCost:
    name: str
    cost: Cost
    naive: Cost
    output_shape: tuple[int, ...]


@dataclass
class BlockCost:
    name: str
    path: str
    output_shape: tuple[int, ...]
    cost: Cost
    naive: Cost
    branches: list[BranchCost]


@dataclass
class Memory:
    """Per-sample estimates, float32."""

    param_bytes: int
    peak_activation_bytes: int  # the largest set of tensors alive at once, estimated


@dataclass
class Analysis:
    plan: Plan
    rows: list[Row]
    blocks: list[BlockCost]
    total: Cost
    naive: Cost
    memory: Memory = field(default_factory=lambda: Memory(0, 0))


def op_cost(op: Op, input_shape: tuple[int, ...] | None = None) -> Cost:
    """Cost of one resolved layer; `input_shape` overrides its input (naive counterparts)."""
    return KINDS[op.kind].cost(op.args, input_shape or op.input_shape, op.output_shape)


def _is_reduction(op: Op) -> bool:
    a = op.args
    return (
        op.kind == "conv"
        and a["kernel"] == (1, 1)
        and a["strides"] == (1, 1)
        and a["groups"] == 1
        and op.output_shape[-1] < op.input_shape[-1]
    )


def _feeds_kxk(op: Op, wider: tuple[int, ...]) -> bool:
    return (
        KINDS[op.kind].convolution
        and op.args["kernel"] != (1, 1)
        and wider[-1] % op.args.get("groups", 1) == 0
    )


class _Analyser:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.blocks: list[BlockCost] = []
        self.peak = 0

    def sequence(self, steps: list[Step], block: str | None, branch: str | None, top: bool) -> tuple[Cost, Cost]:
        real, naive = Cost(), Cost()
        removed: Op | None = None
        for i, step in enumerate(steps):
            if isinstance(step, BlockPlan):
                c, n = self.block(step, top)
                removed = None
            else:
                nxt = steps[i + 1] if i + 1 < len(steps) else None
                c = op_cost(step)
                drop = _is_reduction(step) and isinstance(nxt, Op) and _feeds_kxk(nxt, step.input_shape)
                if drop:
                    n = Cost()
                elif removed is not None:
                    n = op_cost(step, removed.input_shape)
                else:
                    n = c
                removed = step if drop else None
                self.peak = max(self.peak, math.prod(step.input_shape) + math.prod(step.output_shape))
                self.rows.append(Row(step.name, step.kind, step.path, step.output_shape, c, n, block, branch, drop, step.mark, step.args))
            real, naive = real + c, naive + n
        return real, naive

    def block(self, step: BlockPlan, top: bool) -> tuple[Cost, Cost]:
        branches: list[BranchCost] = []
        for bname, steps in step.branches.items():
            c, n = self.sequence(steps, step.name, bname, False)
            out = steps[-1].output_shape if steps else step.input_shape
            branches.append(BranchCost(bname, c, n, out))
        extra = Cost()
        if step.scale is not None:
            for b in branches:
                if step.branches[b.name]:
                    sc = scale_cost(b.output_shape)
                    extra += sc
                    self.rows.append(Row(f"{step.name}_{b.name}_scale", "scale", step.path, b.output_shape, sc, sc, step.name, b.name, mark=step.mark, args={"scale": step.scale}))
        if len(branches) > 1:  # one branch needs no merge layer (the builder adds none)
            merge = MERGES[step.merge].cost([b.output_shape for b in branches], step.output_shape)
            extra += merge
            self.rows.append(Row(step.merge_name, step.merge, f"{step.path}.merge", step.output_shape, merge, merge, step.name, mark=step.mark))
        if step.activation:
            act = activation_cost(step.activation, math.prod(step.output_shape))
            extra += act
            self.rows.append(Row(f"{step.name}_{step.activation}", "activation", f"{step.path}.activation", step.output_shape, act, act, step.name, mark=step.mark, args={"activation": step.activation}))
        alive = math.prod(step.input_shape) + sum(math.prod(b.output_shape) for b in branches)
        self.peak = max(self.peak, alive + math.prod(step.output_shape))
        real = sum((b.cost for b in branches), Cost()) + extra
        naive = sum((b.naive for b in branches), Cost()) + extra
        if top:
            self.blocks.append(BlockCost(step.name, step.path, step.output_shape, real, naive, branches))
        return real, naive


def analyse(plan: Plan) -> Analysis:
    """Costs of every layer, branch, block and the model, with naive counterparts."""
    a = _Analyser()
    real, naive = a.sequence(plan.layers, None, None, True)
    hr, hn = a.sequence(plan.head, None, None, True)
    total, naive = real + hr, naive + hn
    memory = Memory(total.params * BYTES_PER_VALUE, a.peak * BYTES_PER_VALUE)
    return Analysis(plan, a.rows, a.blocks, total, naive, memory)


def saving(real: int, naive: int) -> tuple[float, float]:
    """(naive / real, percent saved); (1.0, 0.0) where nothing is spent."""
    if real <= 0:
        return 1.0, 0.0
    return naive / real, 100.0 * (naive - real) / naive if naive else 0.0


# ---------------------------------------------------------------------------------------
# Resource budget: refuse specs whose size would exhaust memory before anything is built.


@dataclass(frozen=True)
class Budget:
    max_params: int = 1_000_000_000  # 4 GB of float32 weights
    max_activation_bytes: int = 4 * 1024**3  # per sample


DEFAULT_BUDGET = Budget()


def check_budget(analysis: Analysis, budget: Budget = DEFAULT_BUDGET) -> None:
    """Raises SpecError naming the largest layer when the model exceeds the budget."""
    problems = []
    if analysis.total.params > budget.max_params:
        worst = max(analysis.rows, key=lambda r: r.cost.params)
        problems.append(
            Problem(
                worst.path,
                f"a model of at most {budget.max_params:,} parameters",
                f"{analysis.total.params:,}, of which {worst.cost.params:,} in {worst.name}",
                worst.mark,
                "a larger budget: --max-params, or Budget(max_params=...) in Python",
            )
        )
    if analysis.memory.peak_activation_bytes > budget.max_activation_bytes:
        worst = max(analysis.rows, key=lambda r: math.prod(r.output_shape))
        problems.append(
            Problem(
                worst.path,
                f"at most {budget.max_activation_bytes:,} bytes of activations per sample",
                f"about {analysis.memory.peak_activation_bytes:,}; {worst.name} outputs "
                f"{fmt_shape(worst.output_shape)}",
                worst.mark,
                "a larger budget: --max-activation-bytes, or Budget(max_activation_bytes=...)",
            )
        )
    if problems:
        raise SpecError(problems)
