"""Fit a design to a budget by choosing the widths of its 1×1 reductions.

The rule, stated once: **one scale factor s on every selected reduction width, each
rounded to a multiple of `multiple` (8 by default), never below one multiple and never
above its original width; the largest s (in steps of 0.001, s ≤ 1) whose model meets
every budget given.** The reductions are exactly the layers the naive network removes
(`planner.is_bottleneck`: a 1×1 conv, stride 1, no groups, fewer output than input channels, directly
before a k×k conv), so the block outputs, every other layer and everything downstream
keep their widths; only the reduction and the k×k conv it feeds change cost.

Why this rule: one factor keeps the designer's proportions between branches (the paper's
table stays recognisable), the cost is monotone in s so the largest fitting s is found by
bisection in a few milliseconds, and multiples of 8 keep the widths friendly to vector
units. A width already smaller than one multiple is left as it is.

Costs come from the analysis (exact integer arithmetic), never from a profiler; only the
reductions and the convs they feed are recounted for each candidate s. Plain Python.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import os
import re
from dataclasses import dataclass, replace
from typing import Union

from ..analysis import Analysis, analyse, check_budget, op_cost
from ..errors import UNSET, ArgumentError, SpecError
from ..kinds import Cost, kind_of
from ..loading import load, loads
from ..planner import DEFAULT_BUDGET, BlockPlan, Budget, Op, Plan, Step, is_bottleneck, iter_ops, plan
from ..spec.types import LayerSpec, ModelSpec, Node
from ..spec.yaml_io import read_text
from ..tables import human, text_table
from .diff import Diff, diff

Source = Union[Plan, ModelSpec, str, "os.PathLike[str]"]
GRID = 1000  # s is searched on k / GRID, k = 1 .. GRID
SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_count(text: str | int) -> int:
    """'1.2G' -> 1_200_000_000, '5M', '800K', '12,000' or a plain number.

    Raises:
        ValueError: not a positive count.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([kKmMgGtT]?)\s*", str(text))
        if not m:
            raise ValueError(f"expected a count such as 1.2G, 5M, 800K or 12000; received {text!r}")
        value = float(m.group(1).replace(",", "").replace("_", "")) * SUFFIXES[m.group(2).upper()]
    if value < 1:
        raise ValueError(f"expected a positive count; received {text!r}")
    return round(value)


@dataclass
class Reduction:
    """One selected 1×1 reduction, the k×k conv it feeds and where it is written."""

    layer: LayerSpec  # the spec object (in the model being fitted)
    op: Op
    feeds: Op
    block: str | None  # the top-level block holding it
    step: int  # widths are multiples of this (the multiple, and the fed conv's groups)

    @property
    def width(self) -> int:
        return int(self.op.args["filters"])

    def width_at(self, scale: float) -> int:
        """The rule: round(w·s) to a multiple of `step`, at least one step, at most w."""
        w = self.width
        if scale >= 1 or w <= self.step:
            return w
        return min(w, self.step * max(1, math.floor(w * scale / self.step + 0.5)))

    def cost(self, width: int) -> Cost:
        """The reduction and the conv it feeds, with the reduction `width` wide."""
        r, f = self.op, self.feeds
        mine = kind_of(r.kind).op_cost({**r.args, "filters": width}, r.inputs, (*r.output_shape[:-1], width))
        return mine + op_cost(f, (*f.input_shape[:-1], width))


@dataclass
class Change:
    """A width the fit changed."""

    name: str  # the reduction's layer name
    path: str  # its spec path (a table row's column where it came from one)
    old: int
    new: int


@dataclass
class SweepPoint:
    scale: float
    macs: int
    params: int
    fits: bool | None  # None without a budget


@dataclass
class FitResult:
    """What `fit` chose and what it costs."""

    scale: float
    changes: list[Change]
    model: ModelSpec  # the fitted spec (expanded objects)
    before: Analysis
    after: Analysis
    text: str  # the fitted spec as YAML, with a comment per changed width
    rewritten: bool  # True: the original YAML edited in place; False: written out expanded
    predicted: tuple[float, float] | None = None  # seconds before and after, with a latency budget

    @property
    def diff(self) -> Diff:
        return diff(self.before, self.after)

    def table(self) -> str:
        """The widths changed, old -> new."""
        rows = [[c.name, c.path, str(c.old), str(c.new)] for c in self.changes]
        return text_table(["reduction", "spec path", "before", "after"], rows, {2, 3})


class _Fitter:
    def __init__(
        self,
        model: ModelSpec,
        blocks: str | None,
        multiple: int,
        budget: Budget = DEFAULT_BUDGET,
        planned: Plan | None = None,
    ) -> None:
        if multiple < 1:
            raise ArgumentError("multiple", "a positive integer", multiple)
        self.model = model
        # `planned` is the plan of `model` or of an equal copy: its steps line up with model's nodes.
        self.before = analyse(planned if planned is not None else plan(model))
        check_budget(self.before, budget)
        self.plan = self.before.plan
        self.blocks = blocks
        self.multiple = multiple
        self.reductions: list[Reduction] = []
        self._walk(model.layers, self.plan.layers, None)
        if not self.reductions:
            names = ", ".join(b.name for b in self.before.blocks) or "none"
            raise ArgumentError(
                "blocks",
                "blocks holding 1x1 reductions (a 1x1 conv narrowing the channels before a kxk conv)",
                blocks if blocks else UNSET,
                hint=f"blocks: {names}" if blocks else f"this spec has no such reductions; blocks: {names}",
            )
        self._cache: dict[tuple[int, int], Cost] = {}
        self.base = self.before.total
        for i, r in enumerate(self.reductions):
            self.base = _minus(self.base, self.cost(i, r.width))

    def _walk(self, nodes: list[Node], steps: list[Step], top: str | None) -> None:
        for i, (node, step) in enumerate(zip(nodes, steps)):
            if isinstance(step, BlockPlan):
                for bname, bsteps in step.branches.items():
                    self._walk(node.branches[bname], bsteps, top or step.name)  # type: ignore[union-attr]
                continue
            nxt = steps[i + 1] if i + 1 < len(steps) else None
            if not is_bottleneck(step, nxt) or not isinstance(nxt, Op):
                continue
            if self.blocks is not None and (top is None or not fnmatch.fnmatchcase(top, self.blocks)):
                continue
            step_ = math.lcm(self.multiple, nxt.args.get("groups", 1))
            self.reductions.append(Reduction(node, step, nxt, top, step_))  # type: ignore[arg-type]

    def cost(self, i: int, width: int) -> Cost:
        key = (i, width)
        if key not in self._cache:
            self._cache[key] = self.reductions[i].cost(width)
        return self._cache[key]

    def total(self, scale: float) -> Cost:
        total = self.base
        for i, r in enumerate(self.reductions):
            total = total + self.cost(i, r.width_at(scale))
        return total


def _minus(a: Cost, b: Cost) -> Cost:
    ops = a.flops_by_op.copy()
    ops.subtract(b.flops_by_op)
    return Cost(a.params - b.params, a.trainable - b.trainable, a.macs - b.macs, ops)


def _fits(cost: Cost, macs: int | None, params: int | None) -> bool:
    return (macs is None or cost.macs <= macs) and (params is None or cost.params <= params)


def _model(spec: Source) -> tuple[ModelSpec, Plan | None]:
    """A model the fit may edit (read afresh, or a copy of the caller's) and its plan where
    one is at hand: a spec is loaded and planned once."""
    if isinstance(spec, Plan):
        return copy.deepcopy(spec.model), spec
    if isinstance(spec, ModelSpec):
        return copy.deepcopy(spec), None
    loaded = load(spec, budget=None)
    return loaded.model, loaded


def sweep(
    spec: Source,
    steps: int = 10,
    blocks: str | None = None,
    multiple: int = 8,
    macs: int | None = None,
    params: int | None = None,
    budget: Budget = DEFAULT_BUDGET,
) -> list[SweepPoint]:
    """MACs and params at s = 1/steps, 2/steps, ..., 1 under the fitting rule."""
    if not 1 <= steps <= GRID:  # the scale is searched on a grid of GRID steps: no finer sweep exists
        raise ArgumentError("steps", f"a whole number from 1 to {GRID}", steps)
    model, planned = _model(spec)
    f = _Fitter(model, blocks, multiple, budget, planned)
    points = []
    for k in range(1, steps + 1):
        c = f.total(k / steps)
        fits = None if macs is None and params is None else _fits(c, macs, params)
        points.append(SweepPoint(k / steps, c.macs, c.params, fits))
    return points


def render_sweep(points: list[SweepPoint]) -> str:
    """The sweep as a terminal table."""
    rows = [
        [
            f"{p.scale:.2f}",
            human(p.macs),
            f"{p.macs:,}",
            human(p.params),
            f"{p.params:,}",
            "" if p.fits is None else ("yes" if p.fits else "no"),
        ]
        for p in points
    ]
    return (
        text_table(
            ["scale", "MACs", "MACs (exact)", "params", "params (exact)", "fits"], rows, {0, 1, 2, 3, 4}
        )
        + "\n"
    )


class _Timed:
    """Predicted seconds of the fitter's model at a scale: like `_Fitter.total`, only the
    reductions and the convs they feed are predicted again (the latency profile's rule)."""

    def __init__(self, f: _Fitter, profile: object, batch: int | None, allow_other_machine: bool) -> None:
        from ..latency.predict import network_latency, op_seconds
        from ..latency.profile import load_profile

        self.profile = load_profile(profile, allow_other_machine)  # type: ignore[arg-type]
        self.batch = self.profile.batches[0] if batch is None else batch
        if self.batch not in self.profile.batches:
            raise ArgumentError(
                "latency_batch",
                "one of the profile's batch sizes: " + ", ".join(map(str, self.profile.batches)),
                self.batch,
            )
        self.f, self.op_seconds, self.network = f, op_seconds, network_latency
        self._cache: dict[tuple[int, int], float] = {}
        self.before = network_latency(f.plan, self.profile, self.batch).total
        self.base = self.before - sum(self.time(i, r.width) for i, r in enumerate(f.reductions))

    def time(self, i: int, width: int) -> float:
        if (i, width) not in self._cache:
            r = self.f.reductions[i]
            narrow = (*r.op.output_shape[:-1], width)
            mine = replace(r.op, args={**r.op.args, "filters": width}, output_shape=narrow)
            fed_input = (*r.feeds.input_shape[:-1], width)
            fed = replace(r.feeds, input_shape=fed_input, inputs=(fed_input,))
            self._cache[(i, width)] = self.op_seconds(mine, self.profile, self.batch) + self.op_seconds(
                fed, self.profile, self.batch
            )
        return self._cache[(i, width)]

    def total(self, scale: float) -> float:
        return self.base + sum(self.time(i, r.width_at(scale)) for i, r in enumerate(self.f.reductions))


def fit(
    spec: Source,
    macs: int | str | None = None,
    params: int | str | None = None,
    blocks: str | None = None,
    multiple: int = 8,
    budget: Budget = DEFAULT_BUDGET,
    latency: float | str | None = None,
    latency_profile: object = None,
    latency_batch: int | None = None,
    allow_other_machine: bool = False,
) -> FitResult:
    """Scales the selected 1×1 reduction widths so the model meets the budget (the module's rule).

    Args:
        spec: a YAML path or a Model; from a file, the result's text is that file edited.
        macs, params: the budget (at least one); counts or strings such as '1.2G', '5M'.
        blocks: a glob over top-level block names ('inc4*'); None: every reduction.
        multiple: widths are rounded to multiples of this.
        budget: the resource limits every spec is checked against (not the fit's budget).
        latency: at most this predicted time (seconds, or '20ms'), from `latency_profile`
            (a file or `latency.Profile`) at `latency_batch` (default the profile's first);
            `allow_other_machine` as for `ik.predict_latency`.

    Raises:
        SpecError: the spec is invalid.
        ArgumentError: nothing matches `blocks`, or the budget cannot be met
            (the message gives the smallest reachable figures).
    """
    budget_macs = None if macs is None else parse_count(macs)
    budget_params = None if params is None else parse_count(params)
    budget_time = None
    if latency is not None:
        from ..latency.predict import parse_duration

        try:
            budget_time = parse_duration(latency)
        except ValueError:
            raise ArgumentError("latency", "a duration such as 20ms, 1.5s or 800us", latency) from None
        if latency_profile is None:
            raise ArgumentError(
                "latency_profile",
                "a latency profile to predict the time with (inception-kit calibrate -o PROFILE)",
                hint="a latency budget needs one",
            )
    if budget_macs is None and budget_params is None and budget_time is None:
        raise ArgumentError(
            "macs",
            "a MACs budget, a params budget, a latency budget or several",
            hint="neither macs, params nor latency was given",
        )
    model, planned = _model(spec)
    f = _Fitter(model, blocks, multiple, budget, planned)
    timed = (
        _Timed(f, latency_profile, latency_batch, allow_other_machine) if budget_time is not None else None
    )

    def ok(scale: float) -> bool:
        if not _fits(f.total(scale), budget_macs, budget_params):
            return False
        return timed is None or budget_time is None or timed.total(scale) <= budget_time

    lo = f.total(1 / GRID)
    if (
        timed is not None
        and budget_time is not None
        and _fits(lo, budget_macs, budget_params)
        and not ok(1 / GRID)
    ):
        where = f"blocks matching {blocks!r}" if blocks else "the model"
        raise ArgumentError(
            "latency",
            f"at least {timed.total(1 / GRID) * 1e3:.3f} ms predicted ({timed.profile.runtime}, batch {timed.batch}): "
            f"the smallest reachable, with every 1x1 reduction of {where} at its narrowest",
            f"{budget_time * 1e3:g} ms",
            raw=True,
        )
    if not _fits(lo, budget_macs, budget_params):
        wanted = []
        if budget_macs is not None and lo.macs > budget_macs:
            wanted.append(("macs", f"at least {lo.macs:,} MACs", f"{budget_macs:,}"))
        if budget_params is not None and lo.params > budget_params:
            wanted.append(("params", f"at least {lo.params:,} params", f"{budget_params:,}"))
        where = f"blocks matching {blocks!r}" if blocks else "the model"
        (parameter, expected, got), *also = wanted
        raise ArgumentError(
            parameter,
            f"{expected}: the smallest reachable, with every 1x1 reduction of {where} at its narrowest"
            f" ({len(f.reductions)} reductions, multiples of {multiple})",
            got,
            hint="; ".join(f"{p}: {e}, received {g}" for p, e, g in also) or None,
            raw=True,
        )
    # Largest k with total(k / GRID) within budget: bisection (costs are monotone in k; the
    # predicted time nearly so, and the k found always meets the budget: every k_lo was checked).
    k_lo, k_hi = 1, GRID
    if ok(1.0):
        k_lo = GRID
    while k_lo < k_hi:
        mid = (k_lo + k_hi + 1) // 2
        if ok(mid / GRID):
            k_lo = mid
        else:
            k_hi = mid - 1
    scale = k_lo / GRID
    if scale < 1 and f.before.plan.model is model:  # widths are edited in place: `before` keeps the original
        f.before.plan.model = copy.deepcopy(model)
    changes = []
    for r in f.reductions:
        new = r.width_at(scale)
        if new != r.width:
            changes.append(
                Change(r.op.name, r.layer.paths.get("filters", f"{r.op.path}.filters"), r.width, new)
            )
            r.layer.args["filters"] = new
    after = analyse(plan(model))
    if after.total.macs != f.total(scale).macs or after.total.params != f.total(scale).params:
        raise AssertionError("fit: the incremental cost disagrees with the analysis")  # a bug, never input
    header = (
        f"# Fitted by inception-kit fit ({_budget_words(budget_macs, budget_params, budget_time)}"
        f"{', blocks ' + blocks if blocks else ''}): "
        f"1x1 reduction widths x{scale:g}, multiples of {multiple}.\n"
        f"# MACs {after.total.macs:,} (was {f.before.total.macs:,}); "
        f"params {after.total.params:,} (was {f.before.total.params:,}).\n"
    )
    predicted = None
    if timed is not None:
        now = timed.network(after.plan, timed.profile, timed.batch).total
        if abs(now - timed.total(scale)) > 1e-9 * max(now, 1e-9):
            raise AssertionError("fit: the incremental prediction disagrees with the whole plan's")  # a bug
        predicted = (timed.before, now)
        header += (
            f"# Predicted {now * 1e3:.3f} ms (was {timed.before * 1e3:.3f} ms; {timed.profile.runtime}, "
            f"batch {timed.batch}, profile {timed.profile.source}).\n"
        )
    text, rewritten = _rewrite(model, f.reductions, changes, after.plan)
    model.source = None  # the fitted model is not what the file says (until written)
    return FitResult(scale, changes, model, f.before, after, header + text, rewritten, predicted)


def _budget_words(macs: int | None, params: int | None, seconds: float | None = None) -> str:
    words = [] if seconds is None else [f"at most {seconds * 1e3:g} ms predicted"]
    if macs is not None:
        words.append(f"at most {human(macs)} MACs")
    if params is not None:
        words.append(f"at most {human(params)} params")
    return " and ".join(words)


def _rewrite(
    model: ModelSpec, reductions: list[Reduction], changes: list[Change], target: Plan
) -> tuple[str, bool]:
    """The fitted spec as text: the original file with each changed number replaced in place
    and commented (templates, table rows and comments kept), when that yields exactly the
    fitted model; otherwise the expanded spec with one comment line per change."""
    edited = _edit_source(model, reductions) if model.source and os.path.isfile(model.source) else None
    if edited is not None:
        try:
            again = loads(edited, file=model.source or "<fit>", budget=None)
        except SpecError:
            again = None
        want = {op.name: op.args.get("filters") for op in iter_ops(target.steps)}
        if again is not None and {op.name: op.args.get("filters") for op in iter_ops(again.steps)} == want:
            return edited, True
    lines = [f"# fit: {c.path} ({c.name}): {c.old} -> {c.new}\n" for c in changes]
    return "".join(lines) + model.to_yaml(), False


def _edit_source(model: ModelSpec, reductions: list[Reduction]) -> str | None:
    """Replaces each changed width where the YAML writes it; None where that is ambiguous
    (one number feeding several widths that end up different)."""
    text = read_text(model.source)  # type: ignore[arg-type]
    lines = text.splitlines(keepends=True)
    edits: dict[tuple[int, int], tuple[str, int, int]] = {}  # (line, col) -> (label, old, new)
    for r in reductions:
        new = r.layer.args["filters"]
        mark = r.layer.origins.get("filters", (None, None))[0]
        if mark is None or mark.file != model.source:
            if new != r.width:
                return None
            continue
        label = r.layer.paths.get("filters", "filters").rsplit(".", 1)[-1]
        key = (mark.line, mark.col)
        if key in edits and edits[key][2] != new:
            return None
        edits[key] = (label, r.width, new)
    by_line: dict[int, list[tuple[int, str, int, int]]] = {}
    for (line, col), (label, old, new) in edits.items():
        if old != new:
            by_line.setdefault(line, []).append((col, label, old, new))
    for line, items in by_line.items():
        body = lines[line - 1]
        end = "\n" if body.endswith("\n") else ""
        body = body.rstrip("\n")
        notes = []
        for col, label, old, new in sorted(items, reverse=True):  # right to left: columns stay valid
            m = re.compile(r"\d+").match(body, col - 1)
            if not m or int(m.group()) != old:
                return None
            body = body[: m.start()] + str(new) + body[m.end() :]
            notes.append(f"{label} {old} -> {new}")
        note = "fit: " + ", ".join(reversed(notes))
        body = body + (f" ({note})" if "#" in body else f"  # {note}")
        lines[line - 1] = body + end
    return "".join(lines)


def write(result: FitResult, out: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Writes the fitted spec atomically; an existing file only with overwrite."""
    from ..files import write_text

    write_text(out, result.text, overwrite)


# The fitting machinery, public for `design.search` (which searches the same reductions and
# writes its designs the same way).
Fitter = _Fitter
rewrite = _rewrite
