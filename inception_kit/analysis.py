"""The cost model: parameters, MACs and FLOPs per layer, branch, block and model, each
beside its naive counterpart.

The counting rules live in `kinds` (one rule per kind). `analyse` costs two networks, each
on its own: the plan, and `naive(plan)` (every 1×1 bottleneck removed, see `planner.naive`).
The naive figures beside each layer, branch and block are the naive network's, matched by
layer name and by block path and branch name: a removed bottleneck costs 0 there.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from .errors import ArgumentError, Mark, Problem, SpecError
from .kinds import Cost, fmt_shape, kind_of
from .planner import DEFAULT_BUDGET, BlockPlan, Budget, Op, Plan, Step, aux_plan, naive

BYTES_PER_VALUE = 4  # float32


@dataclass
class Row:
    """One line of the layer table: any op of the plan, a block's joins included."""

    name: str
    kind: str
    path: str
    output_shape: tuple[int, ...]
    cost: Cost
    naive: Cost = field(default_factory=Cost)  # the same layer in the naive network
    block: str | None = None
    branch: str | None = None
    removed_in_naive: bool = False
    mark: Mark | None = None
    args: dict[str, Any] = field(default_factory=dict)  # resolved arguments (what was built)


@dataclass
class BranchCost:
    name: str
    cost: Cost
    output_shape: tuple[int, ...]
    naive: Cost = field(default_factory=Cost)


@dataclass
class BlockCost:
    name: str
    path: str
    output_shape: tuple[int, ...]
    cost: Cost
    branches: list[BranchCost]
    naive: Cost = field(default_factory=Cost)


@dataclass
class Memory:
    """Per-sample estimates, float32."""

    param_bytes: int
    peak_activation_bytes: int  # the largest set of tensors alive at once, estimated


@dataclass
class Analysis:
    """The costs of a plan, beside those of its naive counterpart (`naive_plan`)."""

    plan: Plan
    rows: list[Row]
    blocks: list[BlockCost]
    total: Cost
    naive: Cost
    memory: Memory = field(default_factory=lambda: Memory(0, 0))
    naive_plan: Plan | None = None  # naive(plan), costed here: profile builds and times it

    def _repr_html_(self) -> str:
        """Jupyter and VS Code show the report inline (see `viz.html`)."""
        from .viz.html import analysis_html

        return analysis_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: the terminal report."""
        from .report import render

        p.text("Analysis(...)" if cycle else render(self, "table"))


def op_cost(op: Op, input_shape: tuple[int, ...] | None = None) -> Cost:
    """Cost of one op of a plan; `input_shape` overrides its (single) input."""
    inputs = (input_shape,) if input_shape is not None else op.inputs
    return kind_of(op.kind).op_cost(op.args, inputs, op.output_shape)


class _Column:
    """The costs of one network: every op, branch and top-level block, and the total."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.blocks: list[BlockCost] = []
        self.peak = 0

    def sequence(self, steps: list[Step], block: str | None, branch: str | None, top: bool) -> Cost:
        total = Cost()
        for step in steps:
            if isinstance(step, BlockPlan):
                total += self.block(step, top)
                continue
            c = op_cost(step)
            self.peak = max(self.peak, math.prod(step.input_shape) + math.prod(step.output_shape))
            self.rows.append(
                Row(
                    step.name,
                    step.kind,
                    step.path,
                    step.output_shape,
                    c,
                    block=block,
                    branch=branch,
                    mark=step.mark,
                    args=step.args,
                )
            )
            total += c
        return total

    def block(self, step: BlockPlan, top: bool) -> Cost:
        branches: list[BranchCost] = []
        for bname, steps in step.branches.items():
            c = self.sequence(steps, step.name, bname, False)
            branches.append(BranchCost(bname, c, steps[-1].output_shape if steps else step.input_shape))
        joins = Cost()
        for op in step.joins:
            c = op_cost(op)
            joins += c
            self.rows.append(
                Row(
                    op.name,
                    op.kind,
                    op.path,
                    op.output_shape,
                    c,
                    block=step.name,
                    branch=op.branch,
                    mark=op.mark,
                    args=op.args,
                )
            )
        alive = math.prod(step.input_shape) + sum(math.prod(b.output_shape) for b in branches)
        self.peak = max(self.peak, alive + math.prod(step.output_shape))
        total = sum((b.cost for b in branches), Cost()) + joins
        if top:
            self.blocks.append(BlockCost(step.name, step.path, step.output_shape, total, branches))
        return total


def _column(plan: Plan) -> tuple[_Column, Cost]:
    column = _Column()
    total = column.sequence(plan.layers, None, None, True) + column.sequence(plan.head, None, None, True)
    return column, total


def analyse(plan: Plan, budget: Budget | None = None, **knobs: Any) -> Analysis:
    """Costs of every layer, branch, block and the model, beside those of `naive(plan)`.

    Args:
        plan: what `ik.load` returns (its budget was checked there). A spec in its place
            (a file, a preset name, a ModelSpec) is deprecated: it is loaded with `knobs`.
        budget: deprecated; `ik.load(source, budget=...)` checks the budget.

    Returns:
        The analysis: `rows` (layers), `blocks` (with branches), `total` and `naive_total`
        (each a `Cost` of params, MACs and FLOPs) and `memory`.

    Example:
        >>> import inception_kit as ik
        >>> a = ik.analyse(ik.load("inception_3a"))
        >>> a.total.macs < a.naive_total.macs
        True
    """
    if not isinstance(plan, Plan) or knobs or budget is not None:
        warnings.warn(
            "analyse(spec, budget, **knobs) is deprecated and goes in 0.5; use "
            "analyse(ik.load(spec, budget=..., **knobs))",
            DeprecationWarning,
            stacklevel=2,
        )
        from .loading import load

        plan = load(plan, budget=budget or DEFAULT_BUDGET, **knobs)
    return _analyse(plan)


def check_plan_budget(plan: Plan, budget: Budget = DEFAULT_BUDGET) -> None:
    """Raises SpecError naming the largest layer when `plan` exceeds `budget`; costs the
    plan alone (its naive counterpart is not needed)."""
    column, total = _column(plan)
    check_budget(
        Analysis(
            plan,
            column.rows,
            column.blocks,
            total,
            Cost(),
            Memory(total.params * BYTES_PER_VALUE, column.peak * BYTES_PER_VALUE),
        ),
        budget,
    )


def _analyse(plan: Plan) -> Analysis:
    real, total = _column(plan)
    naive_plan = naive(plan)
    counterpart, naive_total = _column(naive_plan)
    naive_rows = {r.name: r for r in counterpart.rows}
    for row in real.rows:
        twin = naive_rows.get(row.name)
        row.naive, row.removed_in_naive = (twin.cost, False) if twin else (Cost(), True)
    naive_blocks = {b.path: b for b in counterpart.blocks}
    for b in real.blocks:
        twin_block = naive_blocks[b.path]
        b.naive = twin_block.cost
        naive_branches = {br.name: br.cost for br in twin_block.branches}
        for br in b.branches:
            br.naive = naive_branches[br.name]
    memory = Memory(total.params * BYTES_PER_VALUE, real.peak * BYTES_PER_VALUE)
    return Analysis(plan, real.rows, real.blocks, total, naive_total, memory, naive_plan)


def aux_analyses(plan: Plan) -> dict[str, Analysis]:
    """Each auxiliary head's costs, on its own (training only: not in the model's totals)."""
    return {name: _analyse(aux_plan(plan, name)) for name in plan.aux}


def saving(real: int, naive: int) -> tuple[float, float]:
    """(naive / real, percent saved); (1.0, 0.0) where nothing is spent."""
    if real <= 0:
        return 1.0, 0.0
    return naive / real, 100.0 * (naive - real) / naive if naive else 0.0


# ---------------------------------------------------------------------------------------
# Resource budget: refuse specs whose size would exhaust memory before anything is built.


def check_batch(analysis: Analysis, batch: int, budget: Budget | None = None) -> None:
    """Raises ArgumentError unless `batch` is a positive whole number of samples whose
    activations, all together, fit the budget's activation bytes: a batch of 10**12 is refused
    before anything allocates it."""
    limit = (budget or analysis.plan.budget).max_activation_bytes
    per_sample = max(analysis.memory.peak_activation_bytes, 1)
    most = max(limit // per_sample, 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= most:
        raise ArgumentError(
            "batch",
            f"a whole number of samples from 1 to {most:,} (each needs about "
            f"{per_sample:,} bytes of activations; the budget allows {limit:,})",
            batch,
        )


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
                "a larger budget: Budget(max_params=...) (on the command line, --max-params)",
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
                "a larger budget: Budget(max_activation_bytes=...) (on the command line, --max-activation-bytes)",
            )
        )
    if problems:
        raise SpecError(problems)
