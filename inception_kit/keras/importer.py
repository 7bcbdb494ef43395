"""An existing Keras 3 model as a spec: `from_keras(model)` and `inception-kit import`.

The functional graph is read from `model.get_config()` (public, and the same for a model
loaded from a .keras file). A sequence of single-input layers becomes a list of layers;
where the graph forks and the branches merge again (Concatenate, Add, or
InceptionResNetV2's CustomScaleLayer `x + scale * residual`) the branches become a block,
found by walking back from each merge to the nearest layer all its inputs pass through.
A conv followed by its batch norm and activation becomes one conv with those fields, an
Activation after a merge the block's activation, a Rescaling ending every non-identity
branch of an add its `scale`. The most common conv settings become the spec's defaults;
a GoogLeNet-shaped block becomes an `inception:` table row; consecutive blocks that differ
only in a trailing number of their names become one block with `repeat`.

Which Keras layers become which kinds, and how their configs become fields, the registry
says (each entry's `KerasRules`: `classes`, `from_keras`, `folds`, `import_defaults`; the
merges' and the block scale's alike); this module knows the graph, blocks and the spec's readability. Read today:
Conv2D (with groups), SeparableConv2D, BatchNormalization, Activation, ReLU, MaxPooling2D,
AveragePooling2D, GlobalAveragePooling2D, Flatten, Dropout, Dense, Concatenate, Add and
CustomScaleLayer (the add merge's), Rescaling (the block scale's), and here InputLayer. Anything else,
or an option the spec language cannot state (dilation, channels_first, a
shared layer, several inputs or outputs, ...), is a SpecError naming the layer, its class
and its position in `model.layers`; nothing is dropped in silence. Initialisers,
regularisers and constraints are training settings, not part of a design: they are not
carried. Keras is needed only to hand over the model; the walk itself is plain Python.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NoReturn

from ..errors import Problem, SpecError
from ..kinds import Bad, Kind, Merge, get_block_op, get_kind, get_merge, list_kinds, list_merges
from ..loading import load
from ..planner import Plan, iter_ops
from ..spec.parse import TABLE_COLUMNS, parse_plain
from ..spec.types import ModelSpec
from ..spec.yaml_io import Flow, dump_yaml

INPUT = "InputLayer"
ACTIVATION = "activation"  # a block's field, set by a layer that is only an activation
_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def supported_classes() -> list[str]:
    """The Keras layer classes an import reads: the registered kinds' and merges', then the
    two this module reads as a block's scale."""
    registered = [c for k in _kinds() for c in k.keras.classes]
    registered += [c for m in _merges().values() for c in m.keras.classes]
    return list(dict.fromkeys([*registered, *_scale_op().keras.classes]))


def _kinds() -> list[Kind]:
    return [get_kind(name) for name in list_kinds()]


def _scale_op() -> Kind:
    """A block's residual scale: the Keras layers it is read from end a residual branch."""
    return get_block_op("scale")


def _merges() -> dict[str, Merge]:
    """The registered merges by Keras class."""
    return {c: m for m in map(get_merge, list_merges()) for c in m.keras.classes}


@dataclass
class Imported:
    """The spec data of an imported model, and for every layer of the spec (in build
    order) the Keras layers it came from: {"layer": its own layer's name}, and for each layer
    folded into it the folded layer's kind and name ({"batchnorm": bn name})."""

    data: dict[str, Any]
    sources: list[dict[str, str]] = field(default_factory=list)

    @cached_property
    def plan(self) -> Plan:
        """The spec planned, once: what `analyse`, `build_model` and `copy_weights` take."""
        return load(self.data, budget=None)  # parsed and planned once

    @property
    def model(self) -> ModelSpec:
        return self.plan.model

    def to_yaml(self) -> str:
        """The spec as YAML: one line per layer, blocks written out."""
        return _dump(self.data)


class _Graph:
    """The functional graph as names: inputs per layer, consumers, positions, configs."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.position = {layer.name: i for i, layer in enumerate(model.layers)}
        self.cls = {layer.name: type(layer).__name__ for layer in model.layers}
        self.config = {layer.name: layer.get_config() for layer in model.layers}
        self.merges = _merges()
        self.inputs: dict[str, list[str]] = {}
        if type(model).__name__ == "Sequential":
            previous = None
            for layer in model.layers:
                self.inputs[layer.name] = [previous] if previous else []
                previous = layer.name
            self.input = None
            self.output = model.layers[-1].name
        else:
            cfg = model.get_config()
            for lc in cfg["layers"]:
                name, nodes = lc["name"], lc.get("inbound_nodes", [])
                if len(nodes) > 1:
                    self.fail(
                        name,
                        "a layer used once (a shared layer has no place in a spec)",
                        f"{self.cls[name]} called {len(nodes)} times",
                    )
                self.inputs[name] = [h[0] for h in _histories(nodes[0])] if nodes else []
            ins, outs = _triples(cfg["input_layers"]), _triples(cfg["output_layers"])
            if len(ins) != 1 or len(outs) != 1:
                raise SpecError.one(
                    "<model>",
                    "a model with one input and one output",
                    f"{len(ins)} inputs and {len(outs)} outputs",
                )
            self.input, self.output = ins[0][0], outs[0][0]
        self.consumers: Counter[str] = Counter(i for ins in self.inputs.values() for i in ins)
        self.users: dict[str, list[str]] = {}
        for user, feeds in self.inputs.items():
            for i in feeds:
                self.users.setdefault(i, []).append(user)
        supported = supported_classes()
        unsupported = [
            Problem(self.where(name), "a layer inception-kit can express: " + ", ".join(supported), cls)
            for name, cls in self.cls.items()
            if cls not in supported and cls != INPUT
        ]
        if unsupported:  # all of them at once
            raise SpecError(unsupported)
        self._ancestors: dict[str, frozenset[str]] = {}

    def where(self, name: str) -> str:
        return f"model.layers[{self.position.get(name, '?')}] '{name}' ({self.cls.get(name, '?')})"

    def fail(self, name: str, expected: str, received: str) -> NoReturn:
        raise SpecError([Problem(self.where(name), expected, received)])

    def ancestors(self, name: str) -> frozenset[str]:
        """The layer and every layer before it (iteratively: deep nets overflow recursion)."""
        if name in self._ancestors:
            return self._ancestors[name]
        stack = [name]
        while stack:  # post-order without recursion
            n = stack[-1]
            pending = [i for i in self.inputs[n] if i not in self._ancestors]
            if pending:  # a layer may be pushed twice; it is computed once
                stack.extend(pending)
            else:
                stack.pop()
                if n not in self._ancestors:
                    self._ancestors[n] = frozenset({n}).union(*(self._ancestors[i] for i in self.inputs[n]))
        return self._ancestors[name]


def _histories(value: Any) -> list[list[Any]]:
    """Every keras_history [layer, node, tensor] inside an inbound node, in order."""
    out: list[list[Any]] = []
    if isinstance(value, dict):
        cfg = value.get("config")
        if value.get("class_name") == "__keras_tensor__" and isinstance(cfg, dict):
            out.append(cfg["keras_history"])
        else:
            for v in value.values():
                out.extend(_histories(v))
    elif isinstance(value, (list, tuple)):
        for v in value:
            out.extend(_histories(v))
    return out


def _triples(value: Any) -> list[list[Any]]:
    if value and not isinstance(value[0], (list, tuple)):
        return [list(value)]
    return [list(v) for v in value]


# ---------------------------------------------------------------------------------------
# Graph -> items: ("layer", name) and ("block", merge name, [branch items, ...])


def _seq(g: _Graph, stop: str | None, end: str) -> list[Any]:
    items: list[Any] = []
    cur = end
    while cur != stop:
        ins = g.inputs[cur]
        if g.cls[cur] == INPUT or not ins:
            if stop is not None:
                g.fail(cur, "branches that meet again at one merge", "a path that leaves its block")
            if g.cls[cur] != INPUT:  # a Sequential model's first layer
                items.append(("layer", cur))
            break
        if g.cls[cur] in g.merges:
            if len(ins) < 2:
                g.fail(cur, "a merge of two or more inputs", f"{len(ins)} input")
            common = frozenset.intersection(*(g.ancestors(i) for i in ins))
            fork = max(common, key=lambda n: len(g.ancestors(n)))  # the last layer all branches pass through
            branches = [_seq(g, fork, i) for i in ins]
            _check_closed(g, cur, branches)
            items.append(("block", cur, branches))
            cur = fork
        else:
            if len(ins) != 1:
                g.fail(cur, "one input", f"{len(ins)} inputs")
            items.append(("layer", cur))
            cur = ins[0]
    items.reverse()
    return items


def _names(items: list[Any]) -> list[str]:
    out = []
    for item in items:
        out.append(item[1])
        if item[0] == "block":
            for branch in item[2]:
                out.extend(_names(branch))
    return out


def _check_closed(g: _Graph, merge: str, branches: list[list[Any]]) -> None:
    """Every layer inside the block feeds only layers inside it (or its merge)."""
    region = {n for b in branches for n in _names(b)}
    inside = region | {merge}
    for name in region:
        for user in g.users.get(name, []):
            if user not in inside:
                g.fail(
                    name, f"a layer used only inside the block that {merge!r} closes", f"also feeds {user!r}"
                )


# ---------------------------------------------------------------------------------------
# Items -> spec data


def _same(value: Any, default: Any) -> bool:
    """A value equal to a field's default, and of its type (1 is not True)."""
    return type(value) is type(default) and value == default


class _Writer:
    def __init__(self, g: _Graph) -> None:
        self.g = g
        self.read_layers: dict[str, tuple[Kind, dict[str, Any]] | None] = {}

    def read(self, name: str) -> tuple[Kind, dict[str, Any]] | None:
        """The kind of a Keras layer and its fields, from the registry: the kinds that read
        its class, registered last first; None when none takes it."""
        if name not in self.read_layers:
            cls, cfg, found = self.g.cls[name], self.g.config[name], None
            for kind in reversed(_kinds()):
                if cls in kind.keras.classes and kind.keras.from_keras is not None:
                    try:
                        fields = kind.keras.from_keras(cfg)
                    except Bad as bad:
                        self.g.fail(name, bad.expected, str(bad.value))
                    if fields is not None:
                        found = (kind, fields)
                        break
            self.read_layers[name] = found
        return self.read_layers[name]

    def block_activation(self, name: str) -> bool:
        """Whether a layer after a merge is the block's `activation`: a layer of a kind whose
        one field is an activation (Activation, ReLU)."""
        cls = self.g.cls[name]
        return any(cls in k.keras.classes and set(k.fields) == {ACTIVATION} for k in _kinds())

    def sequence(
        self, items: list[Any], parent: str | None
    ) -> list[tuple[dict[str, Any], list[dict[str, str]]]]:
        """[(layer or block data, its sources in build order)], each layer with the layers
        its kind folds in (a conv's batch norm and activation)."""
        g, out, i = self.g, [], 0
        while i < len(items):
            nxt = items[i + 1] if i + 1 < len(items) else None
            if items[i][0] == "block":
                after = nxt[1] if nxt and nxt[0] == "layer" and self.block_activation(nxt[1]) else None
                data, src = self.block(items[i], parent, after)
                read = self.read(after) if after is not None else None
                if read and set(read[0].fields) == {ACTIVATION} and ACTIVATION not in data["block"]:
                    if read[1][ACTIVATION] is not None:
                        data["block"][ACTIVATION] = read[1][ACTIVATION]
                    i += 1
                out.append((data, src))
                i += 1
                continue
            name = items[i][1]
            read = self.read(name)
            if read is None:
                self.refuse(name)
            kind, body = read
            source, last = {"layer": name}, name
            for following, fold in kind.keras.folds.items():  # in build order
                nxt = items[i + 1] if i + 1 < len(items) else None
                if not nxt or nxt[0] != "layer" or g.consumers[last] != 1:
                    continue
                other = self.read(nxt[1])
                folded = fold(body, other[1]) if other and other[0].name == following else None
                if folded is not None:
                    body, source[following], last = folded, nxt[1], nxt[1]
                    i += 1
            out.append(({kind.name: body}, [source]))
            i += 1
        return out

    def refuse(self, name: str) -> NoReturn:
        cls = self.g.cls[name]
        if cls in _scale_op().keras.classes:
            self.g.fail(
                name,
                "Rescaling only as the scale ending every residual branch of an add "
                "(the spec language has no rescaling layer)",
                f"scale {self.g.config[name].get('scale')}, offset {self.g.config[name].get('offset')}",
            )
        # a merge outside a block cannot happen; any other class was refused earlier
        self.g.fail(name, "a layer inception-kit can express", cls)

    def block(
        self, item: Any, parent: str | None, after: str | None = None
    ) -> tuple[dict[str, Any], list[dict[str, str]]]:
        g = self.g
        _, merge, branch_items = item
        cls, cfg = g.cls[merge], g.config[merge]
        name = merge
        if _auto(merge, cls):  # Keras' own name (add_3): the prefix the block's named layers share
            named = [
                n
                for n in [*_names([x for b in branch_items for x in b]), *([after] if after else [])]
                if not _auto(n, g.cls[n])
            ]
            prefix = _common_prefix(named)
            name = prefix or merge
        name = _block_name(name, parent)
        full = f"{parent}_{name}" if parent else name
        body: dict[str, Any] = {"name": name}
        scale = None
        joint = g.merges[cls]
        try:
            fields = dict(joint.keras.from_keras(cfg) or {}) if joint.keras.from_keras else {}
        except Bad as bad:
            g.fail(merge, bad.expected, str(bad.value))
        body["merge"] = joint.name
        scale = fields.pop("scale", None)  # a merge that scales (CustomScaleLayer: x + scale * residual)
        body.update(fields)
        if joint.residual:
            if scale is not None:
                if branch_items[0]:
                    g.fail(
                        merge,
                        "x + scale * residual with x the block's input",
                        "a first input with layers of its own",
                    )
            else:  # our own builder's residual scale: a scale layer ending every non-identity branch
                scaler = _scale_op()
                ends = [b[-1] for b in branch_items if b]
                reads = [
                    scaler.keras.from_keras(g.config[e[1]])
                    if e[0] == "layer" and g.cls[e[1]] in scaler.keras.classes and scaler.keras.from_keras
                    else None
                    for e in ends
                ]
                if ends and all(reads) and len({r["scale"] for r in reads if r}) == 1:
                    scale = reads[0]["scale"]  # type: ignore[index]
                    branch_items = [b[:-1] if b else b for b in branch_items]
        if scale is not None:
            body["scale"] = scale
        names = _branch_names(joint.residual, branch_items)
        branches, sources = {}, []
        for bname, items in zip(names, branch_items):
            converted = self.sequence(items, f"{full}_{bname}")
            branches[bname] = [d for d, _ in converted]
            for _, s in converted:
                sources.extend(s)
        body["branches"] = branches
        return {"block": body}, sources


def _auto(name: str, cls: str) -> bool:
    """A name Keras made up from the class (conv2d_7, add, custom_scale_layer_2)."""
    snake = re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", cls).lower()
    return re.fullmatch(re.escape(snake) + r"(_\d+)?", name) is not None


def _common_prefix(names: list[str]) -> str:
    """The '_'-separated words all names start with (block35_1_conv, block35_1_ac -> block35_1)."""
    if not names:
        return ""
    words = [n.split("_") for n in names]
    out = []
    for group in zip(*words):
        if len(set(group)) != 1:
            break
        out.append(group[0])
    if all(len(w) == len(out) for w in words):  # one name, or all equal: keep a word back
        out = out[:-1] if len(out) > 1 else out
    return "_".join(out)


def _block_name(merge: str, parent: str | None) -> str:
    name = _NAME.sub("_", merge)
    for suffix in [f"_{m}" for m in list_merges()]:  # inception-kit's own merge names: NAME_concat
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    if parent:  # nested names are prefixed by the builder: keep them relative
        for prefix in _prefixes(parent):
            if name.startswith(prefix + "_") and name[len(prefix) + 1 :][:1].isalpha():
                return name[len(prefix) + 1 :]
    return name


def _prefixes(parent: str) -> list[str]:
    """block35_1_residual -> [block35_1_residual, block35_1, block35]."""
    parts = parent.split("_")
    return ["_".join(parts[:k]) for k in range(len(parts), 0, -1)]


def _branch_names(summed: bool, branches: list[list[Any]]) -> list[str]:
    """A sum of one identity and one other branch names them shortcut and residual."""
    if summed and len(branches) == 2 and sum(1 for b in branches if not b) == 1:
        return ["shortcut" if not b else "residual" for b in branches]
    return [f"b{i}" for i in range(1, len(branches) + 1)]


# ---------------------------------------------------------------------------------------
# Readability: defaults, table rows, repeats


def _walk_layers(nodes: list[Any]) -> Any:
    for node in nodes:
        if isinstance(node, str):  # gap, flatten
            continue
        ((kind, body),) = node.items()
        if kind == "block":
            for branch in body["branches"].values():
                yield from _walk_layers(branch)
        else:
            yield kind, body


def _defaults(layers: list[Any]) -> dict[str, dict[str, Any]]:
    """The spec's `defaults:`: for each kind with `import_defaults`, their most common values,
    unless those are all the fields' own defaults (nothing to say)."""
    out: dict[str, dict[str, Any]] = {}
    found = list(_walk_layers(layers))
    for kind in _kinds():
        name = kind.name
        bodies = [b for k, b in found if k == name]
        if not kind.keras.import_defaults or not bodies:
            continue
        top = {}
        for key in kind.keras.import_defaults:
            values = Counter(repr(b.get(key)) for b in bodies)
            best = values.most_common(1)[0][0]
            top[key] = next(b.get(key) for b in bodies if repr(b.get(key)) == best)
        if all(_same(value, kind.fields[key].default) for key, value in top.items()):
            continue
        out[name] = top
    return out


def _strip(nodes: list[Any], defaults: dict[str, dict[str, Any]]) -> None:
    """Drops every value the spec states already: in `defaults:`, or else as the field's
    default. A layer left with no fields is its bare kind name (`gap`); one whose kind has a
    single field is written short (`activation: relu`)."""
    for n, node in enumerate(nodes):
        if isinstance(node, str):
            continue
        ((name, body),) = node.items()
        if name == "block":
            for branch in body["branches"].values():
                _strip(branch, defaults)
            continue
        kind, stated = get_kind(name), defaults.get(name, {})
        for key, value in list(body.items()):
            if key in stated:
                if stated[key] == value:
                    del body[key]
            elif key in kind.fields and _same(value, kind.fields[key].default):
                del body[key]
        if not body:
            nodes[n] = name
        elif len(kind.fields) == 1 and kind.shorthand in body:
            nodes[n] = {name: body[kind.shorthand]}


def _table_row(node: Any) -> dict[str, Any] | None:
    """A GoogLeNet-shaped concat block as `inception: {name, 1x1, ...}`, or None: the row
    that the parser (spec.parse) expands into exactly this block."""
    body = node.get("block") if isinstance(node, dict) else None
    if body is None or set(body) != {"name", "merge", "branches"}:
        return None
    filters, others = [], []
    for branch in body["branches"].values():
        for layer in branch:
            ((name, fields),) = layer.items() if isinstance(layer, dict) else ((layer, None),)
            if isinstance(fields, dict) and "filters" in fields:
                filters.append(fields["filters"])
            else:
                others.append(name)
    if len(filters) != len(TABLE_COLUMNS):
        return None
    row = {"name": body["name"], **dict(zip(TABLE_COLUMNS, filters))}
    # The row's `pool:` is its pool layer's kind without the `pool` the parser appends
    # (`pool: avg` is avgpool); left out, the parser's default. The parser has the last word.
    for pool in [None, *(str(name).removesuffix("pool") for name in others)]:
        candidate = row if pool is None else {**row, "pool": pool}
        if _expands_to(candidate, node):
            return {"inception": candidate}
    return None


def _expands_to(row: dict[str, Any], node: dict[str, Any]) -> bool:
    """Whether the parser reads the table row as the block `node` (branches in order)."""
    parsed = []
    for item in ({"inception": row}, node):
        model, problems = parse_plain({"name": "row", "input": [1, 1, 1], "layers": [item]})
        if problems or len(model.layers) != 1:
            return False
        parsed.append(model.layers[0])
    a, b = parsed
    return a == b and list(getattr(a, "branches", {})) == list(getattr(b, "branches", {}))


def _repeats(nodes: list[Any]) -> list[Any]:
    """Consecutive blocks equal but for a trailing number in their names -> one with repeat."""
    out: list[Any] = []
    i = 0
    while i < len(nodes):
        kind, body = next(iter(nodes[i].items())) if isinstance(nodes[i], dict) else (nodes[i], None)
        m = re.fullmatch(r"(.*?)(\d+)", str(body.get("name", ""))) if isinstance(body, dict) else None
        j = i + 1
        if m and isinstance(body, dict) and kind in ("block", "inception"):
            rest = {k: v for k, v in body.items() if k != "name"}
            while j < len(nodes):
                k2, b2 = next(iter(nodes[j].items())) if isinstance(nodes[j], dict) else (nodes[j], {})
                if (
                    k2 != kind
                    or {k: v for k, v in b2.items() if k != "name"} != rest
                    or b2.get("name") != f"{m.group(1)}{int(m.group(2)) + j - i}"
                ):
                    break
                j += 1
        if j - i > 1 and m and isinstance(body, dict):
            prefix, first = m.group(1), int(m.group(2))
            name = prefix[:-1] if prefix.endswith("_") and prefix[:-1] else prefix + "{i}"
            times: Any = (
                j - i if (first == 1 and not name.endswith("{i}")) else {"times": j - i, "first": first}
            )
            out.append(
                {kind: {"name": name, "repeat": times, **{k: v for k, v in body.items() if k != "name"}}}
            )
        else:
            out.append(nodes[i])
            j = i + 1
        i = j
    return out


def _node(node: Any) -> Any:
    if not isinstance(node, dict):
        return node  # gap, flatten
    ((kind, body),) = node.items()
    if kind != "block":
        return {kind: Flow(body) if isinstance(body, dict) else body}
    return {
        "block": {
            k: ({b: [_node(x) for x in items] for b, items in v.items()} if k == "branches" else v)
            for k, v in body.items()
        }
    }


def _dump(data: dict[str, Any]) -> str:
    """Block style down to each layer, which is one line: `- conv: {filters: 64, kernel: [1, 7]}`."""
    out = dict(data)
    if "defaults" in out:
        out["defaults"] = {kind: Flow(v) for kind, v in out["defaults"].items()}
    for part in ("layers", "head"):
        if part in out:
            out[part] = [_node(n) for n in out[part]]
    return dump_yaml(out, width=1000)  # one layer a line, however long


# ---------------------------------------------------------------------------------------


def import_keras(model: Any) -> Imported:
    """The spec data of a Keras functional (or Sequential) model, and its layer sources.

    Raises:
        SpecError: a layer or structure the spec language cannot express (named, with its
            class and position in `model.layers`).
    """
    g = _Graph(model)
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or any(d is None for d in shape):
        raise SpecError.one("<model>", "an input of fixed [height, width, channels]", str(list(shape)))
    w = _Writer(g)
    converted = w.sequence(_seq(g, g.input, g.output), None)
    layers: list[Any] = []
    head: list[Any] = []
    sources: list[dict[str, str]] = []
    for node, src in converted:
        in_head = bool(head) or _flat(g, node, src)
        (head if in_head else layers).append(node)
        sources.extend(src)
    if not layers:
        raise SpecError.one("<model>", "a model with at least one layer before its head", "none")
    defaults = _defaults(layers + head)
    _strip(layers, defaults)  # in place: bare and short forms replace list items
    _strip(head, defaults)
    layers = _repeats([_table_row(n) or n for n in layers])
    name = _NAME.sub("_", model.name) or "model"
    data: dict[str, Any] = {"name": name, "input": [int(d) for d in shape]}
    if defaults:
        data["defaults"] = defaults
    data["layers"] = layers
    if head:
        data["head"] = head
    out = Imported(data, sources)
    p = out.plan  # a bug, not the user's model, if this fails: let it raise
    if tuple(p.output_shape) != tuple(model.output_shape[1:]):
        raise AssertionError(f"import: output {p.output_shape} differs from Keras' {model.output_shape[1:]}")
    return out


def _flat(g: _Graph, data: dict[str, Any], src: list[dict[str, str]]) -> bool:
    """A layer with a flat output (gap, flatten): the spec's head starts there."""
    return "block" not in data and len(g.model.get_layer(src[0]["layer"]).output.shape) == 2


def from_keras(model: Any) -> ModelSpec:
    """An existing Keras 3 model as a spec `Model` (see the module docstring)."""
    return import_keras(model).model


# What a .keras archive may hold, and how much (Keras writes its members uncompressed).
KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5", "model.weights.npz")
MAX_MEMBERS = 1_000  # the members above, and a few under assets/
MAX_CONFIG_BYTES = 64 * 2**20  # config.json, metadata.json: InceptionResNetV2's config is about 1 MB
MAX_ARCHIVE_BYTES = 8 * 2**30  # all members unpacked: InceptionResNetV2's weights are about 215 MB
MAX_RATIO = 100  # a member that unpacks to more than this times its packed size ...
RATIO_FLOOR = 16 * 2**20  # ... and to more than this is a zip bomb
MODEL_CLASSES = ("Functional", "Sequential")  # the graphs an import reads


def load_keras(path: str | os.PathLike[str]) -> Any:
    """Loads a .keras file for `import_keras`, refusing a hostile or broken one first.

    The archive is checked in plain Python before Keras reads it: a zip with only Keras'
    members (no `../`, no absolute path, no link), their sizes bounded before anything is
    unpacked (a zip bomb), and a config whose every layer is one an import reads, from a
    Keras module, with no Python function in it (a Lambda's code is never deserialised,
    let alone run). Keras then loads it in safe mode, which refuses such code again.

    Raises:
        SpecError: no such file, not a .keras archive (a truncated file, another format),
            a member or layer refused (named), or Keras could not load it; each names the file.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise SpecError.one("<file>", "an existing .keras file", f"{name!r}, which is not a file")
    _check_archive(name)
    import keras

    try:
        return keras.models.load_model(name, compile=False, safe_mode=True)
    except Exception as err:  # Keras' reasons are many (safe mode, a bad weights file): its words, one line
        reason = " ".join(str(err).split())[:300]
        raise SpecError.one(
            name, "a .keras file Keras loads in safe mode", f"{type(err).__name__}: {reason}"
        ) from None


def _check_archive(name: str) -> None:
    """Refuses, before Keras opens it, a .keras archive that is broken or hostile (see `load_keras`)."""
    import stat
    import zipfile

    def fail(where: str, expected: str, received: str) -> NoReturn:
        raise SpecError.one(f"{name}: {where}" if where else name, expected, received)

    try:
        archive = zipfile.ZipFile(name)
    except (zipfile.BadZipFile, OSError, ValueError) as err:  # truncated, another format, a bad header
        fail("", "a .keras file (a Keras 3 zip archive)", f"a file that is not one ({err})")
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            fail("", f"at most {MAX_MEMBERS:,} archive members", f"{len(members):,}")
        total = 0
        for info in members:
            member = info.filename
            parts = member.replace("\\", "/").split("/")
            if member.startswith(("/", "\\")) or ".." in parts or "\0" in member or ":" in parts[0]:
                fail(repr(member), "an archive member inside the archive", "a path that leaves it")
            if stat.S_ISLNK(info.external_attr >> 16):
                fail(repr(member), "an archive member that is a file", "a symbolic link")
            if member not in KERAS_MEMBERS and not member.startswith("assets/"):
                fail(
                    repr(member),
                    "only Keras' members: " + ", ".join(KERAS_MEMBERS) + " and assets/",
                    "another",
                )
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                fail(
                    repr(member),
                    f"a member that unpacks to at most {MAX_RATIO} times its size",
                    f"{info.file_size:,} bytes from {info.compress_size:,} (a zip bomb)",
                )
            total += info.file_size
        if total > MAX_ARCHIVE_BYTES:
            fail("", f"at most {MAX_ARCHIVE_BYTES:,} bytes unpacked", f"{total:,}")
        for required in ("config.json", "metadata.json"):
            if required not in archive.namelist():
                fail("", f"a .keras archive with {required}", "none")
        config = archive.getinfo("config.json")
        if config.file_size > MAX_CONFIG_BYTES:
            fail("config.json", f"at most {MAX_CONFIG_BYTES:,} bytes", f"{config.file_size:,}")
        try:
            with archive.open(config) as f:
                data = json.loads(f.read(MAX_CONFIG_BYTES + 1))
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RecursionError) as err:
            fail(
                "config.json", "the model's config as JSON", f"unreadable ({type(err).__name__}: {err})"[:300]
            )
    _check_config(data, fail)


def _check_config(data: Any, fail: Any) -> None:
    """A functional or Sequential model whose layers are all read by an import, from Keras'
    own modules, with no serialised Python function anywhere in the config."""
    if not isinstance(data, dict) or data.get("class_name") not in MODEL_CLASSES:
        received = data.get("class_name") if isinstance(data, dict) else type(data).__name__
        fail("config.json", "a " + " or ".join(MODEL_CLASSES) + " model", repr(received))
    layers = (data.get("config") or {}).get("layers") if isinstance(data.get("config"), dict) else None
    if not isinstance(layers, list):
        fail("config.json", "a model config with a list of layers", "none")
    assert isinstance(layers, list)  # fail() raises; mypy reads a nested NoReturn loosely
    allowed = {*supported_classes(), INPUT}
    for i, layer in enumerate(layers):
        cfg = layer.get("config") if isinstance(layer, dict) else None
        lname = cfg.get("name") if isinstance(cfg, dict) else None
        cls = layer.get("class_name") if isinstance(layer, dict) else None
        where = f"layers[{i}] {lname!r} ({cls})"
        if cls not in allowed:
            fail(where, "a layer inception-kit can express: " + ", ".join(supported_classes()), str(cls))
        found = _foreign(layer)
        if found:
            fail(where, "standard Keras objects only (no Python code, no other module)", found)


def _foreign(tree: Any) -> str | None:
    """The first serialised object in a config that is a Python function (a lambda's code)
    or comes from a module other than Keras', or None. Iterative: configs nest deeply."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module, cls = node.get("module"), node.get("class_name")
            if cls in ("__lambda__", "function", "__function__") or "__lambda__" in node:
                return f"a serialised Python function ({cls})"
            if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
                return f"an object from module {module!r}"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def copy_weights(source: Any, built: Any, imported: Imported) -> None:
    """Copies every weight of `source` (the imported Keras model) into `built`
    (`build_model(imported.plan)`), layer by layer in build order."""
    ops = list(iter_ops(imported.plan.steps))
    if len(ops) != len(imported.sources):
        raise AssertionError("import: layers and their sources differ in number")
    for op, src in zip(ops, imported.sources):
        if built.get_layer(op.name).weights:
            built.get_layer(op.name).set_weights(source.get_layer(src["layer"]).get_weights())
        # The layers folded in are the Keras layers the kind builds after its own, in order
        # (a conv's batch norm: its second Keras layer).
        folded = [name for key, name in src.items() if key != "layer"]
        for built_name, name in zip(op.layer_names[1:], folded):
            if source.get_layer(name).weights:
                built.get_layer(built_name).set_weights(source.get_layer(name).get_weights())
    expected = sum(math.prod(w.shape) for w in source.weights)
    if expected != sum(math.prod(w.shape) for w in built.weights):
        raise AssertionError("import: the built model's weights differ in size from the source's")
