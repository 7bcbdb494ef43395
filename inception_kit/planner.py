"""The plan: every layer the builder will create, with its final arguments, name and shapes.

`plan(model)` is the whole validation of a spec: it checks every field value against the
registry, every block's merge, and every shape, and collects all problems into one
SpecError. A block's merge, residual scales and post-merge activation are ops of the plan
like any layer (`BlockPlan.joins`), so the cost model, the builder, diagrams and the
profiler walk ops and never compose a name. `naive(plan)` is the same network without its
1×1 bottlenecks, a plan of its own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import UNSET, Mark, Problems, SpecError, did_you_mean
from .kinds import (
    ACTIVATION,
    Bad,
    FieldBad,
    Shape,
    ShapeError,
    fmt_shape,
    get_kind,
    get_merge,
    kind_of,
    list_kinds,
    list_merges,
)
from .spec.types import NAME_RULE, BlockSpec, LayerSpec, ModelSpec, Node, valid_name
from .spec.yaml_io import YDict, mark_of, reads_as_number


def _fields_wanted(kind: str) -> str:
    fields = get_kind(kind).fields
    if not fields:
        return f"nothing after '{kind}' (it has no fields)"
    return f"a {kind} field: " + ", ".join(fields)


def _yaml_hint(value: Any) -> str | None:
    """Where text was received but a number was meant, say why it is text and what to write."""
    if not isinstance(value, str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if reads_as_number(value):  # so it was quoted (or made in Python as a string)
        return "a number in quotes is text; write it without quotes"
    # YAML 1.1 floats need a dot and a signed exponent: 1e-5 and 1.0e2 are text.
    form = re.fullmatch(r"([+-]?)([0-9]*\.?[0-9]*)[eE]([+-]?)([0-9]+)", value)
    if form is None:
        return None
    sign, mantissa, exp_sign, exponent = form.groups()
    why = "it has no dot" if "." not in mantissa else "its exponent has no sign"
    if number.is_integer() and abs(number) < 1e15:
        fixed = str(int(number))
    else:
        fixed = f"{sign}{mantissa if '.' in mantissa else mantissa + '.0'}e{exp_sign or '+'}{exponent}"
    return f"YAML reads {value} as text: {why}; write {fixed}"


@dataclass
class Op:
    """One resolved layer: its final arguments, its name and its shapes.

    `inputs` are the shapes it reads (one, or one per branch for a merge); `branch` names
    the branch a block's scale acts on; `layer_names` are the Keras layers it becomes (the
    layer, then the batch norm and activation a conv adds: `X`, `X_bn`, `X_relu`)."""

    name: str
    kind: str
    args: dict[str, Any]
    path: str
    input_shape: Shape
    output_shape: Shape
    mark: Mark | None = None  # where the layer is written, for later errors (the budget)
    inputs: tuple[Shape, ...] = ()
    branch: str | None = None
    layer_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.inputs = self.inputs or (self.input_shape,)
        self.layer_names = self.layer_names or (self.name, *kind_of(self.kind).derived(self.args, self.name))


@dataclass
class BlockPlan:
    """One resolved block: its branches, then `joins`: the residual scales (each on its
    branch), the merge (none for one branch) and the activation after it, in build order."""

    name: str
    path: str
    merge: str
    scale: float | None
    activation: str | None
    branches: dict[str, list[Step]]
    input_shape: Shape
    output_shape: Shape
    mark: Mark | None = None
    joins: list[Op] = field(default_factory=list)

    @property
    def merge_op(self) -> Op | None:
        """The layer that joins the branches; None for a one-branch block."""
        return next((op for op in self.joins if len(op.inputs) > 1), None)


Step = Op | BlockPlan


@dataclass
class AuxPlan:
    """An auxiliary head (training only): a one-branch block on the output of `at`."""

    name: str
    at: str
    weight: float
    block: BlockPlan
    cast_name: str = ""  # its float32 cast under bfloat16, reserved as OUTPUT_CAST_NAME is

    @property
    def steps(self) -> list[Step]:
        return self.block.branches[AUX_BRANCH]


AUX_BRANCH = "head"


@dataclass(frozen=True)
class Budget:
    """The resource limits a model must fit before anything is built or allocated."""

    max_params: int = 1_000_000_000  # 4 GB of float32 weights
    max_activation_bytes: int = 4 * 1024**3  # per sample


DEFAULT_BUDGET = Budget()


@dataclass
class Plan:
    """Every layer the builder will create, named once, with its shapes: what `ik.load`
    returns and everything downstream takes. `budget` is the one it was checked against."""

    model: ModelSpec
    layers: list[Step]
    head: list[Step]
    output_shape: Shape
    aux: dict[str, AuxPlan] = field(default_factory=dict)
    budget: Budget = DEFAULT_BUDGET

    @property
    def steps(self) -> list[Step]:
        return [*self.layers, *self.head]

    @property
    def input_shape(self) -> Shape:
        return tuple(self.model.input_shape)

    def ops(self) -> Iterator[Op]:
        """Every layer the builder creates, joins included, in build order."""
        return walk(self.steps)

    def _repr_html_(self) -> str:
        """Jupyter and VS Code show the layers inline, each block folded (see `viz.html`)."""
        from .viz.html import plan_html

        return plan_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: every layer with its config and output shape."""
        from .viz.html import plan_text

        p.text("Plan(...)" if cycle else plan_text(self))


def steps_of(steps: list[Step], joins: bool = False) -> Iterator[Step]:
    """The one walk over a plan's tree: every step in build order, a block before the steps
    of its branches, and (with `joins`) its joins after them."""
    for step in steps:
        yield step
        if isinstance(step, BlockPlan):
            for branch in step.branches.values():
                yield from steps_of(branch, joins)
            if joins:
                yield from step.joins


def iter_ops(steps: list[Step]) -> Iterator[Op]:
    """Every layer a spec writes (not a block's joins), in build order."""
    return (s for s in steps_of(steps) if isinstance(s, Op))


def walk(steps: list[Step]) -> Iterator[Op]:
    """Every op, a block's joins included, in build order."""
    return (s for s in steps_of(steps, joins=True) if isinstance(s, Op))


def iter_block_plans(steps: list[Step]) -> Iterator[BlockPlan]:
    """Every block, outer before inner, in build order."""
    return (s for s in steps_of(steps) if isinstance(s, BlockPlan))


def describe(kind: str, args: dict[str, Any]) -> str:
    """The truthful short name of a layer: conv3x3, sepconv1x7, maxpool3x3, dense, ..."""
    return kind_of(kind).base_name(args)


def keras_depth(step: Step) -> int:
    """Keras layers a step adds to the longest path from the input."""
    if isinstance(step, Op):
        return len(step.layer_names)
    inner = max((sum(keras_depth(s) for s in branch) for branch in step.branches.values()), default=0)
    scales = any(op.branch is not None for op in step.joins)  # one per branch, on each path
    return inner + scales + sum(len(op.layer_names) for op in step.joins if op.branch is None)


def is_bottleneck(op: Step, nxt: Step | None) -> bool:
    """A layer the naive counterpart removes: it only reduces channels (its kind says so)
    for the next layer, which can read the wider input instead (a k×k convolution)."""
    return (
        isinstance(op, Op)
        and isinstance(nxt, Op)
        and kind_of(op.kind).reduces(op.args, op.input_shape, op.output_shape)
        and kind_of(nxt.kind).widens(nxt.args, op.input_shape)
    )


def naive(p: Plan) -> Plan:
    """The naive counterpart of a plan: every 1×1 bottleneck removed, the layer after it
    re-planned on the wider input. Names and output shapes are the plan's, so the two
    networks compare block by block and branch by branch; it builds and profiles like any."""
    return Plan(p.model, _naive_steps(p.layers), _naive_steps(p.head), p.output_shape, p.aux)


def _naive_steps(steps: list[Step]) -> list[Step]:
    out: list[Step] = []
    removed: Op | None = None
    for i, step in enumerate(steps):
        if isinstance(step, BlockPlan):
            out.append(replace(step, branches={b: _naive_steps(s) for b, s in step.branches.items()}))
            removed = None
            continue
        if is_bottleneck(step, steps[i + 1] if i + 1 < len(steps) else None):
            removed = step
            continue
        if removed is not None:
            wider = removed.input_shape
            shape = kind_of(step.kind).op_shape(step.args, [wider])
            if shape != step.output_shape:  # a kind whose `widens` says yes must keep its output
                raise AssertionError(f"naive: {step.name} gives {shape} on {wider}, not {step.output_shape}")
            step = replace(step, input_shape=wider, inputs=(wider,))
            removed = None
        out.append(step)
    return out


def plan(model: ModelSpec, shapes: bool = True) -> Plan:
    """Validates a model and infers all shapes. Raises SpecError with every problem.

    With `shapes=False` only fields and names are checked (used when the YAML structure
    is already known to be broken)."""
    return _Planner(model, shapes).run()


class _Names:
    """Hands out stable, unique names within one scope (`conv3x3`, then `conv3x3_2`)."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def take(self, base: str) -> str:
        self.seen[base] += 1
        return base if self.seen[base] == 1 else f"{base}_{self.seen[base]}"


# Names the builder gives layers that no spec names: reserved here, where every name is decided.
INPUT_NAME = "image"  # the model's input layer
OUTPUT_NAME = "output"  # the model's output, as a key beside the aux heads' names
CAST_SUFFIX = "_float32"  # an output's cast back to float32 under bfloat16: OUTPUT_NAME + CAST_SUFFIX
OUTPUT_CAST_NAME = OUTPUT_NAME + CAST_SUFFIX
RESERVED_NAMES = {
    INPUT_NAME: "the model's input",
    OUTPUT_CAST_NAME: "the float32 cast of the output under bfloat16",
}
# Keras builds a functional model recursively, about one Python frame per layer on the
# longest path: 900 layers built and exported, 1,000 hit RecursionError (default limit 1,000).
MAX_KERAS_DEPTH = 700


class _Planner:
    def __init__(self, model: ModelSpec, shapes: bool = True) -> None:
        self.model = model
        self.shapes = shapes
        self.p = Problems()
        self.all_names: dict[str, str] = dict(RESERVED_NAMES)  # name -> path, to catch collisions
        self.unnamed: Counter[str] = Counter()  # unnamed blocks: block_1, block_2, ...
        self.defaults = self.check_defaults()

    def run(self) -> Plan:
        shape: Shape | None = tuple(self.model.input_shape) if self.shapes else None
        top = _Names()
        if self.shapes and not self.model.layers and not self.model.head:  # else parse said why
            mark = self.model.origins.get("layers", (None, None))[0]
            self.p.add("layers", "at least one layer or block", "an empty list", mark, raw=True)
        if not valid_name(self.model.name):
            mark = self.model.origins.get("name", (None, None))[0]
            self.p.add("name", NAME_RULE, self.model.name, mark)
        layers, shape = self.sequence(self.model.layers, shape, "layers", "", top)
        head, shape = self.sequence(self.model.head, shape, "head", "", top)
        self.p.raise_if_any()
        self.check_depth([*layers, *head])
        self.p.raise_if_any()
        p = Plan(self.model, layers, head, shape)  # type: ignore[arg-type]
        if self.shapes and self.model.aux:  # heads hang on planned layers
            p.aux = _plan_aux(p)
        return p

    def check_depth(self, steps: list[Step]) -> None:
        """Refuses a plan deeper than Keras can build (see MAX_KERAS_DEPTH), at the step
        where the longest path from the input passes the limit."""
        depth = 1  # the input layer
        for step in steps:
            depth += keras_depth(step)
            if depth > MAX_KERAS_DEPTH:
                self.p.add(
                    step.path,
                    f"at most {MAX_KERAS_DEPTH} Keras layers from input to output",
                    f"{depth} at this layer",
                    step.mark,
                    "Keras recurses once per layer",
                    raw=True,
                )
                return

    # -- problems ----------------------------------------------------------------------

    def where(self, node: Node, key: str = "") -> tuple[Mark | None, str | None]:
        origins = node.origins
        return origins.get(key) or origins.get("") or (None, None)

    def problem(
        self,
        node: Node,
        path: str,
        key: str,
        expected: str,
        received: Any = UNSET,
        raw: bool = False,
        hint: str | None = None,
    ) -> None:
        mark, note = self.where(node, key)
        hints = "; ".join(h for h in (hint, note) if h)
        self.p.add(path, expected, received, mark, hints or None, raw=raw)

    def field_problem(self, layer: LayerSpec, path: str, bad: FieldBad) -> None:
        fpath = layer.paths.get(bad.field, f"{path}.{bad.field}")
        if bad.missing:
            self.problem(layer, fpath, "", bad.expected, hint=f"'{bad.field}' is missing")
            return
        hints = [did_you_mean(str(bad.value), bad.choices) if bad.choices else None, _yaml_hint(bad.value)]
        hint = "; ".join(h for h in hints if h) or None
        if bad.key is None:
            self.problem(layer, fpath, bad.field, bad.expected, bad.value, hint=hint)
            return
        # An option inside a mapping value (batchnorm: {momentum: 1.5}): point at it.
        container = layer.args.get(bad.field)
        mark = mark_of(container, bad.key) if isinstance(container, YDict) else None
        note = self.where(layer, bad.field)[1]
        joined = "; ".join(h for h in (hint, note) if h) or None
        self.p.add(
            f"{fpath}.{bad.key}", bad.expected, bad.value, mark or self.where(layer, bad.field)[0], joined
        )

    def check_defaults(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for kind, values in self.model.defaults.items():
            if kind not in list_kinds():
                self.p.add(f"defaults.{kind}", "a layer kind", kind, hint=did_you_mean(kind, list_kinds()))
                continue
            fields = get_kind(kind).fields
            out[kind] = {}
            for key, value in values.items():
                path = f"defaults.{kind}.{key}"
                mark = self.model.origins.get(path, (None, None))[0]
                if key not in fields:
                    self.p.add(path, _fields_wanted(kind), key, mark, did_you_mean(key, fields))
                    continue
                try:
                    fields[key].type.check(value)
                    out[kind][key] = value
                except Bad as bad:
                    hint = did_you_mean(str(value), bad.choices) if bad.choices else _yaml_hint(value)
                    self.p.add(path, bad.expected, value, mark, hint)
        return out

    def claim(self, name: str, path: str, node: Node, derived: Sequence[str] = (), what: str = "") -> str:
        """Takes a name and the names Keras derives from it; a collision is reported once."""
        for taken in (name, *derived):
            if taken in self.all_names:
                received = repr(taken)
                if taken != name:
                    received += f", the name Keras gives the {taken[len(name) + 1 :]} after {name!r}"
                expected = f"a layer name not used before (also at {self.all_names[taken]})"
                self.problem(node, f"{path}.name", "name", expected, received, raw=True)
                break
        for taken in (name, *derived):
            self.all_names.setdefault(taken, path)
        return name

    def auto_name(self, base: str, names: _Names, derived: Any = lambda name: []) -> str:
        """The next free generated name (with the names Keras derives from it): never one
        a user or an earlier layer took."""
        name = names.take(base)
        while any(n in self.all_names for n in (name, *derived(name))):
            name = names.take(base)
        return name

    # -- walking -------------------------------------------------------------------------

    def sequence(
        self, nodes: list[Node], shape: Shape | None, path: str, prefix: str, names: _Names
    ) -> tuple[list[Step], Shape | None]:
        steps: list[Step] = []
        for i, node in enumerate(nodes):
            npath = getattr(node, "source_path", None) or f"{path}[{i}]"
            step: Step | None
            if isinstance(node, LayerSpec):
                step = self.layer(node, shape, npath, prefix, names)
            elif isinstance(node, BlockSpec):
                step = self.block(node, shape, npath, prefix)
            else:
                self.p.add(npath, "a Layer or a Block", type(node).__name__, raw=True)
                step = None
            if step is None:
                shape = None  # already reported; later shapes are unknown
                continue
            steps.append(step)
            shape = step.output_shape
        return steps, shape

    def layer(
        self, layer: LayerSpec, shape: Shape | None, path: str, prefix: str, names: _Names
    ) -> Op | None:
        kind = get_kind(layer.kind) if isinstance(layer.kind, str) and layer.kind in list_kinds() else None
        if kind is None:
            self.problem(
                layer,
                path,
                "",
                "a layer kind: " + ", ".join(list_kinds()),
                layer.kind,
                hint=did_you_mean(layer.kind, list_kinds()),
            )
            return None
        unknown = [k for k in layer.args if k not in kind.fields]
        for key in unknown:
            self.problem(
                layer,
                f"{path}.{key}",
                key,
                _fields_wanted(layer.kind),
                key,
                hint=did_you_mean(key, kind.fields),
            )
        if unknown:
            return None  # a misspelt field would also read as a missing one: say it once
        args, bad_fields = kind.resolve({**self.defaults.get(layer.kind, {}), **layer.args})
        for bad in bad_fields:
            self.field_problem(layer, path, bad)
        if bad_fields:
            return None
        desc = describe(layer.kind, args)
        if layer.name and not valid_name(layer.name):  # a spec made in Python; YAML's parser said it
            self.problem(layer, f"{path}.name", "", NAME_RULE, layer.name)
            return None
        if layer.name:
            name = f"{prefix}_{layer.name}" if prefix else layer.name
        else:
            base = f"{prefix}_{desc}" if prefix else desc
            name = self.auto_name(base, names, lambda n: kind.derived(args, n))
        name = self.claim(name, path, layer, kind.derived(args, name))
        if shape is None:
            return None
        try:
            out = kind.op_shape(args, [shape])
        except ShapeError as err:
            fpath = layer.paths.get(err.field, f"{path}.{err.field}") if err.field else path
            hint = f"input is {fmt_shape(shape)}" if err.field else None
            self.problem(layer, fpath, err.field, err.expected, err.received, raw=True, hint=hint)
            return None
        return Op(name, layer.kind, args, path, shape, out, self.where(layer)[0])

    def block(self, block: BlockSpec, shape: Shape | None, path: str, prefix: str) -> BlockPlan | None:
        ok = True
        if not isinstance(block.merge, str) or block.merge not in list_merges():
            self.problem(
                block,
                f"{path}.merge",
                "merge",
                "one of " + ", ".join(list_merges()),
                block.merge,
                hint=did_you_mean(str(block.merge), list_merges()),
            )
            ok = False
        scale = block.scale
        if scale is not None:
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (-1e6 < scale < 1e6):
                self.problem(block, f"{path}.scale", "scale", "a finite number", scale)
                ok = False
            elif (
                block.merge not in list_merges() or not get_merge(block.merge).residual
            ):  # a scale weights a sum's branches
                residual = " or ".join(m for m in list_merges() if get_merge(m).residual)
                self.problem(block, f"{path}.scale", "scale", f"no scale unless merge is {residual}", scale)
                ok = False
        try:
            activation = ACTIVATION.check(block.activation)
        except Bad as bad:
            self.problem(block, f"{path}.activation", "activation", bad.expected, block.activation)
            activation, ok = None, False
        if not block.branches:
            self.problem(block, f"{path}.branches", "branches", "at least one branch", "none", raw=True)
            ok = False
        if block.name and not valid_name(block.name):
            self.problem(block, f"{path}.name", "", NAME_RULE, block.name)
            ok = False
        if block.name:
            name = f"{prefix}_{block.name}" if prefix else block.name
        else:
            base = f"{prefix}_block" if prefix else "block"
            self.unnamed[base] += 1
            name = f"{base}_{self.unnamed[base]}"
        outs: dict[str, Shape | None] = {}
        branches: dict[str, list[Step]] = {}
        for bname, nodes in block.branches.items():
            steps, out = self.sequence(
                list(nodes), shape, f"{path}.branches.{bname}", f"{name}_{bname}", _Names()
            )
            branches[bname], outs[bname] = steps, out
        merge_name, act_name = f"{name}_{block.merge}", f"{name}_{activation}"
        for taken in (merge_name if block.merge else None, act_name if activation else None):
            if taken:
                self.claim(taken, path, block)
        scale_names = {
            b: self.claim(f"{name}_{b}_scale", path, block)
            for b, nodes in block.branches.items()
            if scale is not None and nodes
        }
        if not ok or shape is None or any(o is None for o in outs.values()):
            return None
        try:
            out = get_merge(block.merge).op_shape({}, list(outs.values()))  # type: ignore[arg-type]
        except ShapeError as err:
            received = ", ".join(f"{b} {fmt_shape(s)}" for b, s in outs.items())  # type: ignore[arg-type]
            self.problem(block, f"{path}.merge", "merge", err.expected, received, raw=True)
            return None
        mark = self.where(block)[0]
        joins = [
            Op(scale_names[b], "scale", {"scale": float(scale)}, path, o, o, mark, branch=b)  # type: ignore[arg-type]
            for b, o in outs.items()
            if b in scale_names
        ]
        if len(outs) > 1:  # one branch needs no merge layer
            shapes = tuple(outs.values())
            joins.append(
                Op(merge_name, block.merge, {}, f"{path}.merge", shapes[0], out, mark, inputs=shapes)  # type: ignore[arg-type]
            )
        if activation:
            joins.append(
                Op(act_name, "activation", {"activation": activation}, f"{path}.activation", out, out, mark)
            )
        return BlockPlan(
            name,
            path,
            block.merge,
            None if scale is None else float(scale),
            activation,
            branches,
            shape,
            out,
            mark,
            joins,
        )


def _plan_aux(p: Plan) -> dict[str, AuxPlan]:
    """Plans every auxiliary head of a planned model: each a one-branch block named after
    it, on the output of a top-level layer or block. Raises SpecError with every problem."""
    model = p.model
    taps = {step.name: step for step in p.layers}
    taken = {*RESERVED_NAMES, *(n for op in walk(p.steps) for n in op.layer_names)}
    problems = []
    out: dict[str, AuxPlan] = {}
    for name, head in model.aux.items():
        mark = head.origins.get("at")
        if head.at not in taps:
            problems.append(
                SpecError.one(
                    f"aux.{name}.at",
                    "the name of a top-level layer or block",
                    repr(head.at),
                    mark,
                    did_you_mean(head.at, taps) or None,
                ).problems[0]
            )
            continue
        block = BlockSpec(name, {AUX_BRANCH: list(head.layers)})
        block.origins = {"": (head.origins.get("layers"), None)}
        try:
            sub = plan(
                ModelSpec(
                    f"{model.name}_{name}", taps[head.at].output_shape, [block], defaults=model.defaults
                )
            )
        except SpecError as err:
            problems.extend(err.problems)
            continue
        cast = name + CAST_SUFFIX  # the builder's float32 cast of this head, under bfloat16
        clash = sorted(taken & {cast, *(n for op in sub.ops() for n in op.layer_names)})
        if clash:
            problems.append(
                SpecError.one(
                    f"aux.{name}",
                    "an aux head whose layer names the model does not use already",
                    repr(clash[0]),
                    mark,
                ).problems[0]
            )
            continue
        taken |= {cast, *(n for op in sub.ops() for n in op.layer_names)}
        out[name] = AuxPlan(name, head.at, head.weight, sub.layers[0], cast)  # type: ignore[arg-type]
    if problems:
        raise SpecError(problems)
    return out


def aux_plan(p: Plan, name: str) -> Plan:
    """An auxiliary head as a plan of its own (its input is the output of the layer it hangs on)."""
    a = p.aux[name]
    return Plan(
        ModelSpec(f"{p.model.name}_{name}", a.block.input_shape, []), [a.block], [], a.block.output_shape
    )
