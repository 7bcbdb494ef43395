"""Shape inference: resolves every layer's arguments, names it and infers its shapes.

`plan(model)` is the whole validation of a spec: it checks every field value against the
registry, every block's merge, and every shape, and collects all problems into one
SpecError. What it returns (a Plan) is what the cost model and the Keras builder walk, so
names and shapes are decided once, here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import UNSET, Mark, Problems, did_you_mean
from .kinds import ACTIVATION, KINDS, MERGES, Bad, FieldBad, Shape, ShapeError, fmt_shape
from .spec import NAME_RULE, Block, Layer, Model, Node, valid_name
from .yaml_io import YDict, mark_of, reads_as_number


def _fields_wanted(kind: str) -> str:
    fields = KINDS[kind].fields
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
    """One resolved layer: its final arguments, its name and its shapes."""

    name: str
    kind: str
    args: dict[str, Any]
    path: str
    input_shape: Shape
    output_shape: Shape
    mark: Mark | None = None  # where the layer is written, for later errors (the budget)


@dataclass
class BlockPlan:
    """One resolved block; `merge_name` is the Keras name of its merge layer."""

    name: str
    path: str
    merge: str
    scale: float | None
    activation: str | None
    branches: dict[str, list[Step]]
    input_shape: Shape
    output_shape: Shape
    mark: Mark | None = None

    @property
    def merge_name(self) -> str:
        return f"{self.name}_{self.merge}"


Step = Op | BlockPlan


@dataclass
class Plan:
    model: Model
    layers: list[Step]
    head: list[Step]
    output_shape: Shape

    @property
    def steps(self) -> list[Step]:
        return [*self.layers, *self.head]


def iter_ops(steps: list[Step]) -> Iterator[Op]:
    """Every Op, in build order."""
    for step in steps:
        if isinstance(step, Op):
            yield step
        else:
            for branch in step.branches.values():
                yield from iter_ops(branch)


def describe(kind: str, args: dict[str, Any]) -> str:
    """The truthful short name of a layer: conv3x3, sepconv1x7, maxpool3x3, dense, ..."""
    if kind in ("conv", "sepconv"):
        return f"{kind}{args['kernel'][0]}x{args['kernel'][1]}"
    if kind in ("maxpool", "avgpool"):
        return f"{kind}{args['pool'][0]}x{args['pool'][1]}"
    if kind == "activation":
        return args["activation"] or "linear"
    if kind == "batchnorm":
        return "bn"
    return kind


def keras_depth(step: Step) -> int:
    """Keras layers a step adds to the longest path from the input."""
    if isinstance(step, Op):
        return 1 + len(KINDS[step.kind].derived(step.args, step.name))
    inner = max((sum(keras_depth(s) for s in branch) for branch in step.branches.values()), default=0)
    extra = (len(step.branches) > 1) + bool(step.activation) + (step.scale is not None)
    return inner + extra


def plan(model: Model, shapes: bool = True) -> Plan:
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
OUTPUT_CAST_NAME = "output_float32"  # casts the output back to float32 under bfloat16
RESERVED_NAMES = {
    INPUT_NAME: "the model's input",
    OUTPUT_CAST_NAME: "the float32 cast of the output under bfloat16",
}
# Keras builds a functional model recursively, about one Python frame per layer on the
# longest path: 900 layers built and exported, 1,000 hit RecursionError (default limit 1,000).
MAX_KERAS_DEPTH = 700


class _Planner:
    def __init__(self, model: Model, shapes: bool = True) -> None:
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
        return Plan(self.model, layers, head, shape)  # type: ignore[arg-type]

    def check_depth(self, steps: list[Step]) -> None:
        """Refuses a plan deeper than Keras can build (see MAX_KERAS_DEPTH), at the step
        where the longest path from the input passes the limit."""
        depth = 1  # the input layer
        for step in steps:
            depth += keras_depth(step)
            if depth > MAX_KERAS_DEPTH:
                self.p.add(step.path, f"at most {MAX_KERAS_DEPTH} Keras layers from input to output",
                           f"{depth} at this layer", step.mark, "Keras recurses once per layer", raw=True)
                return

    # -- problems ----------------------------------------------------------------------

    def where(self, node: Node, key: str = "") -> tuple[Mark | None, str | None]:
        origins = node.origins
        return origins.get(key) or origins.get("") or (None, None)

    def problem(self, node: Node, path: str, key: str, expected: str, received: Any = UNSET, raw: bool = False, hint: str | None = None) -> None:
        mark, note = self.where(node, key)
        hints = "; ".join(h for h in (hint, note) if h)
        self.p.add(path, expected, received, mark, hints or None, raw=raw)

    def field_problem(self, layer: Layer, path: str, bad: FieldBad) -> None:
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
        hints = "; ".join(h for h in (hint, note) if h) or None
        self.p.add(f"{fpath}.{bad.key}", bad.expected, bad.value, mark or self.where(layer, bad.field)[0], hints)

    def check_defaults(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for kind, values in self.model.defaults.items():
            if kind not in KINDS:
                self.p.add(f"defaults.{kind}", "a layer kind", kind, hint=did_you_mean(kind, KINDS))
                continue
            fields = KINDS[kind].fields
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

    def claim(self, name: str, path: str, node: Node, derived: list[str] = (), what: str = "") -> str:
        """Takes a name and the names Keras derives from it; a collision is reported once."""
        for taken in (name, *derived):
            if taken in self.all_names:
                received = repr(taken)
                if taken != name:
                    received += f", the name Keras gives the {taken[len(name) + 1:]} after {name!r}"
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

    def sequence(self, nodes: list[Node], shape: Shape | None, path: str, prefix: str, names: _Names) -> tuple[list[Step], Shape | None]:
        steps: list[Step] = []
        for i, node in enumerate(nodes):
            npath = getattr(node, "source_path", None) or f"{path}[{i}]"
            if isinstance(node, Layer):
                step = self.layer(node, shape, npath, prefix, names)
            elif isinstance(node, Block):
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

    def layer(self, layer: Layer, shape: Shape | None, path: str, prefix: str, names: _Names) -> Op | None:
        kind = KINDS.get(layer.kind) if isinstance(layer.kind, str) else None
        if kind is None:
            self.problem(layer, path, "", "a layer kind: " + ", ".join(KINDS), layer.kind, hint=did_you_mean(layer.kind, KINDS))
            return None
        unknown = [k for k in layer.args if k not in kind.fields]
        for key in unknown:
            self.problem(layer, f"{path}.{key}", key, _fields_wanted(layer.kind), key, hint=did_you_mean(key, kind.fields))
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
            out = kind.shape(args, shape)
        except ShapeError as err:
            fpath = layer.paths.get(err.field, f"{path}.{err.field}") if err.field else path
            hint = f"input is {fmt_shape(shape)}" if err.field else None
            self.problem(layer, fpath, err.field, err.expected, err.received, raw=True, hint=hint)
            return None
        return Op(name, layer.kind, args, path, shape, out, self.where(layer)[0])

    def block(self, block: Block, shape: Shape | None, path: str, prefix: str) -> BlockPlan | None:
        ok = True
        if not isinstance(block.merge, str) or block.merge not in MERGES:
            self.problem(block, f"{path}.merge", "merge", "one of " + ", ".join(MERGES), block.merge, hint=did_you_mean(str(block.merge), MERGES))
            ok = False
        scale = block.scale
        if scale is not None:
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (-1e6 < scale < 1e6):
                self.problem(block, f"{path}.scale", "scale", "a finite number", scale)
                ok = False
            elif block.merge != "add":
                self.problem(block, f"{path}.scale", "scale", "no scale unless merge is add", scale)
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
            steps, out = self.sequence(list(nodes), shape, f"{path}.branches.{bname}", f"{name}_{bname}", _Names())
            branches[bname], outs[bname] = steps, out
        for suffix in (block.merge, activation):
            if suffix:
                self.claim(f"{name}_{suffix}", path, block)
        if scale is not None:
            for bname, nodes in block.branches.items():
                if nodes:
                    self.claim(f"{name}_{bname}_scale", path, block)
        if not ok or shape is None or any(o is None for o in outs.values()):
            return None
        try:
            out = MERGES[block.merge].shape(list(outs.values()))  # type: ignore[arg-type]
        except ShapeError as err:
            received = ", ".join(f"{b} {fmt_shape(s)}" for b, s in outs.items())  # type: ignore[arg-type]
            self.problem(block, f"{path}.merge", "merge", err.expected, received, raw=True)
            return None
        return BlockPlan(name, path, block.merge, None if scale is None else float(scale), activation, branches, shape, out, self.where(block)[0])
