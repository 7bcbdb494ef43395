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

Layers read: InputLayer, Conv2D (with groups), SeparableConv2D, BatchNormalization,
Activation, ReLU, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten,
Dropout, Dense, Concatenate, Add, Rescaling (as a residual scale) and CustomScaleLayer.
Anything else, or an option the spec language cannot state (dilation, channels_first, a
shared layer, several inputs or outputs, ...), is a SpecError naming the layer, its class
and its position in `model.layers`; nothing is dropped in silence. Initialisers,
regularisers and constraints are training settings, not part of a design: they are not
carried. Keras is needed only to hand over the model; the walk itself is plain Python.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import Problem, SpecError
from ..planner import from_data
from ..spec.parse import TABLE_COLUMNS
from ..spec.types import Model

SUPPORTED = (
    "InputLayer",
    "Conv2D",
    "SeparableConv2D",
    "BatchNormalization",
    "Activation",
    "ReLU",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Dropout",
    "Dense",
    "Concatenate",
    "Add",
    "Rescaling",
    "CustomScaleLayer",
)
MERGE_CLASSES = ("Concatenate", "Add", "CustomScaleLayer")
ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "softmax", "linear")
BN_DEFAULTS = {"scale": True, "epsilon": 1e-3, "momentum": 0.99}  # the spec's (and Keras') defaults
CONV_DEFAULT_KEYS = ("activation", "padding", "bias", "batchnorm")
_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class Imported:
    """The spec data of an imported model, and for every layer of the spec (in build
    order) the Keras layers it came from: {"layer": conv/dense/bn name, "bn": bn name}."""

    data: dict[str, Any]
    sources: list[dict[str, str]] = field(default_factory=list)

    @property
    def model(self) -> Model:
        return from_data(self.data)

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
        for user, ins in self.inputs.items():
            for i in ins:
                self.users.setdefault(i, []).append(user)
        unsupported = [
            Problem(self.where(name), "a layer inception-kit can express: " + ", ".join(SUPPORTED[1:]), cls)
            for name, cls in self.cls.items()
            if cls not in SUPPORTED
        ]
        if unsupported:  # all of them at once
            raise SpecError(unsupported)
        self._ancestors: dict[str, frozenset[str]] = {}

    def where(self, name: str) -> str:
        return f"model.layers[{self.position.get(name, '?')}] '{name}' ({self.cls.get(name, '?')})"

    def fail(self, name: str, expected: str, received: str) -> None:
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
        if g.cls[cur] == "InputLayer" or not ins:
            if stop is not None:
                g.fail(cur, "branches that meet again at one merge", "a path that leaves its block")
            if g.cls[cur] != "InputLayer":  # a Sequential model's first layer
                items.append(("layer", cur))
            break
        if g.cls[cur] in MERGE_CLASSES:
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


def _size(v: Any) -> int | list[int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v, v]
    return v[0] if v[0] == v[1] else v


def _activation(g: _Graph, name: str, value: Any) -> str | None:
    if isinstance(value, dict):  # a serialised activation function
        value = value.get("config", value.get("class_name"))
    if value in (None, "linear"):
        return None
    if value not in ACTIVATIONS:
        g.fail(name, "an activation of " + ", ".join(ACTIVATIONS), repr(value))
    return value


def _check_2d(g: _Graph, name: str, cfg: dict[str, Any]) -> None:
    if cfg.get("data_format", "channels_last") not in (None, "channels_last"):
        g.fail(name, "data_format channels_last", repr(cfg["data_format"]))
    if tuple(_pair(cfg.get("dilation_rate", 1))) != (1, 1):
        g.fail(name, "no dilation (dilation_rate 1)", repr(cfg["dilation_rate"]))
    if cfg.get("padding", "valid") not in ("same", "valid"):
        g.fail(name, "padding same or valid", repr(cfg["padding"]))


def _pair(v: Any) -> list[int]:
    return list(v) if isinstance(v, (list, tuple)) else [v, v]


def _bn(g: _Graph, name: str) -> dict[str, Any]:
    cfg = g.config[name]
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if axis not in (-1, 3) or not cfg.get("center", True) or cfg.get("renorm") or cfg.get("synchronized"):
        g.fail(
            name,
            "batch norm over the channels with a beta (axis -1, center true, no renorm)",
            f"axis {cfg.get('axis')}, center {cfg.get('center')}",
        )
    return {
        "scale": bool(cfg.get("scale", True)),
        "epsilon": float(cfg["epsilon"]),
        "momentum": float(cfg["momentum"]),
    }


class _Writer:
    def __init__(self, g: _Graph) -> None:
        self.g = g
        self.sources: list[dict[str, str]] = []

    def sequence(
        self, items: list[Any], parent: str | None
    ) -> list[tuple[dict[str, Any], list[dict[str, str]]]]:
        """[(layer or block data, its sources in build order)], conv+bn+activation fused."""
        g, out, i = self.g, [], 0
        while i < len(items):
            kind, name = items[i][0], items[i][1]
            nxt = items[i + 1] if i + 1 < len(items) else None
            if kind == "block":
                after = (
                    nxt[1] if nxt and nxt[0] == "layer" and g.cls[nxt[1]] in ("Activation", "ReLU") else None
                )
                data, src = self.block(items[i], parent, after)
                if (
                    nxt
                    and nxt[0] == "layer"
                    and g.cls[nxt[1]] in ("Activation", "ReLU")
                    and "activation" not in data["block"]
                ):
                    act = self.act_layer(nxt[1])
                    if act is not None:
                        data["block"]["activation"] = act
                    i += 1
                out.append((data, src))
                i += 1
                continue
            cls, cfg = g.cls[name], g.config[name]
            src = {"layer": name}
            if cls in ("Conv2D", "SeparableConv2D"):
                _check_2d(g, name, cfg)
                body: dict[str, Any] = {"filters": cfg["filters"], "kernel": _size(cfg["kernel_size"])}
                if _pair(cfg["strides"]) != [1, 1]:
                    body["strides"] = _size(cfg["strides"])
                body["padding"] = cfg["padding"]
                if cls == "Conv2D" and cfg.get("groups", 1) != 1:
                    body["groups"] = cfg["groups"]
                if cls == "SeparableConv2D" and cfg.get("depth_multiplier", 1) != 1:
                    body["depth_multiplier"] = cfg["depth_multiplier"]
                body["bias"] = bool(cfg["use_bias"])
                act = _activation(g, name, cfg.get("activation"))
                body["batchnorm"] = False
                if (
                    act is None
                    and nxt
                    and nxt[0] == "layer"
                    and g.cls[nxt[1]] == "BatchNormalization"
                    and g.consumers[name] == 1
                ):
                    bn = _bn(g, nxt[1])
                    changed = {k: v for k, v in bn.items() if BN_DEFAULTS[k] != v}  # only what differs
                    body["batchnorm"] = changed or True
                    src["bn"] = nxt[1]
                    i += 1
                    nxt = items[i + 1] if i + 1 < len(items) else None
                if (
                    act is None
                    and nxt
                    and nxt[0] == "layer"
                    and g.cls[nxt[1]] in ("Activation", "ReLU")
                    and g.consumers[items[i][1]] == 1
                ):
                    act = self.act_layer(nxt[1])
                    i += 1
                body["activation"] = act
                out.append(({"conv" if cls == "Conv2D" else "sepconv": body}, [src]))
            elif cls == "BatchNormalization":
                out.append(({"batchnorm": _bn(g, name)}, [src]))
            elif cls in ("Activation", "ReLU"):
                out.append(({"activation": self.act_layer(name)}, [src]))
            elif cls in ("MaxPooling2D", "AveragePooling2D"):
                _check_2d(g, name, cfg)
                pool = {"pool": _size(cfg["pool_size"])}
                strides = cfg.get("strides") or cfg["pool_size"]
                if _pair(strides) != _pair(cfg["pool_size"]):
                    pool["strides"] = _size(strides)
                pool["padding"] = cfg["padding"]
                out.append(({"maxpool" if cls == "MaxPooling2D" else "avgpool": pool}, [src]))
            elif cls == "GlobalAveragePooling2D":
                _check_2d(g, name, cfg)
                if cfg.get("keepdims"):
                    g.fail(name, "keepdims false (a flat output)", "keepdims true")
                out.append(("gap", [src]))
            elif cls == "Flatten":
                _check_2d(g, name, cfg)
                out.append(("flatten", [src]))
            elif cls == "Dropout":
                if cfg.get("noise_shape") is not None:
                    g.fail(name, "dropout without noise_shape", repr(cfg["noise_shape"]))
                out.append(({"dropout": {"rate": float(cfg["rate"])}}, [src]))
            elif cls == "Dense":
                out.append(
                    (
                        {
                            "dense": {
                                "units": cfg["units"],
                                "activation": _activation(g, name, cfg.get("activation")),
                                "bias": bool(cfg["use_bias"]),
                            }
                        },
                        [src],
                    )
                )
            elif cls == "Rescaling":
                g.fail(
                    name,
                    "Rescaling only as the scale ending every residual branch of an add "
                    "(the spec language has no rescaling layer)",
                    f"scale {cfg.get('scale')}, offset {cfg.get('offset')}",
                )
            else:  # a merge outside a block cannot happen; any other class was refused earlier
                g.fail(name, "a layer inception-kit can express", cls)
            i += 1
        return out

    def act_layer(self, name: str) -> str | None:
        cls, cfg = self.g.cls[name], self.g.config[name]
        if cls == "Activation":
            return _activation(self.g, name, cfg["activation"])
        if cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
            self.g.fail(
                name,
                "ReLU with negative_slope 0 and threshold 0",
                f"{cfg.get('negative_slope')}, {cfg.get('threshold')}",
            )
        top = cfg.get("max_value")
        if top is None:
            return "relu"
        if float(top) == 6.0:
            return "relu6"
        self.g.fail(name, "ReLU with max_value none or 6", repr(top))
        return None

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
        if cls == "Concatenate":
            axis = cfg.get("axis", -1)
            if axis not in (-1, 3):
                g.fail(merge, "concatenation along the channels (axis -1)", f"axis {axis}")
            body["merge"] = "concat"
        else:
            body["merge"] = "add"
            if cls == "CustomScaleLayer":
                if branch_items[0]:
                    g.fail(
                        merge,
                        "x + scale * residual with x the block's input",
                        "a first input with layers of its own",
                    )
                scale = float(cfg["scale"])
            else:  # our own builder's residual scale: a Rescaling ending every non-identity branch
                ends = [b[-1] for b in branch_items if b]
                if ends and all(e[0] == "layer" and g.cls[e[1]] == "Rescaling" for e in ends):
                    scales = {
                        (float(g.config[e[1]]["scale"]), float(g.config[e[1]].get("offset", 0.0)))
                        for e in ends
                    }
                    if len(scales) == 1 and next(iter(scales))[1] == 0.0:
                        scale = next(iter(scales))[0]
                        branch_items = [b[:-1] if b else b for b in branch_items]
        if scale is not None:
            body["scale"] = scale
        names = _branch_names(body["merge"], branch_items)
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
    for suffix in ("_concat", "_add"):  # inception-kit's own merge names: NAME_concat
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


def _branch_names(merge: str, branches: list[list[Any]]) -> list[str]:
    if merge == "add" and len(branches) == 2 and sum(1 for b in branches if not b) == 1:
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
    out: dict[str, dict[str, Any]] = {}
    for kind, keys in (
        ("conv", CONV_DEFAULT_KEYS),
        ("sepconv", CONV_DEFAULT_KEYS),
        ("maxpool", ("padding",)),
        ("avgpool", ("padding",)),
    ):
        bodies = [b for k, b in _walk_layers(layers) if k == kind]
        if not bodies:
            continue
        if kind.endswith("pool") and Counter(b["padding"] for b in bodies).most_common(1)[0][0] == "same":
            continue  # the built-in default: nothing to say
        out[kind] = {}
        for key in keys:
            values = Counter(repr(b[key]) for b in bodies)
            top = values.most_common(1)[0][0]
            out[kind][key] = next(b[key] for b in bodies if repr(b[key]) == top)
    return out


def _strip(nodes: list[Any], defaults: dict[str, dict[str, Any]]) -> None:
    for node in nodes:
        if isinstance(node, str):
            continue
        ((kind, body),) = node.items()
        if kind == "block":
            for branch in body["branches"].values():
                _strip(branch, defaults)
        elif isinstance(body, dict):
            for key, value in list(body.items()):
                if key in defaults.get(kind, {}) and defaults[kind][key] == value:
                    del body[key]
            if (
                kind.endswith("pool")
                and "padding" not in defaults.get(kind, {})
                and body.get("padding") == "same"
            ):
                del body["padding"]  # the built-in default
            if kind == "dense":
                if body.get("activation") is None:
                    body.pop("activation", None)
                if body.get("bias") is True:
                    body.pop("bias")


def _table_row(node: dict[str, Any]) -> dict[str, Any] | None:
    """A GoogLeNet-shaped concat block as `inception: {name, 1x1, ...}`, or None."""
    body = node.get("block")
    if body is None or body.get("merge") != "concat" or set(body) != {"name", "merge", "branches"}:
        return None
    br = body["branches"]
    if list(br) != ["b1", "b2", "b3", "b4"]:
        return None

    def conv(n: Any, k: int) -> int | None:
        c = n.get("conv") if isinstance(n, dict) else None
        return (
            c["filters"] if c is not None and set(c) == {"filters", "kernel"} and c["kernel"] == k else None
        )

    shapes = [(br["b1"], (1,)), (br["b2"], (1, 3)), (br["b3"], (1, 5))]
    cols: list[int | None] = []
    for nodes, kernels in shapes:
        if len(nodes) != len(kernels):
            return None
        cols.extend(conv(n, k) for n, k in zip(nodes, kernels))
    b4 = br["b4"]
    if len(b4) != 2:
        return None
    if not isinstance(b4[0], dict):
        return None
    ((pkind, pbody),) = b4[0].items()
    if pkind not in ("maxpool", "avgpool") or pbody != {"pool": 3, "strides": 1}:
        return None
    cols.append(conv(b4[1], 1))
    if any(c is None for c in cols):
        return None
    row = {"name": body["name"], **dict(zip(TABLE_COLUMNS, cols))}
    if pkind == "avgpool":
        row["pool"] = "avg"
    return {"inception": row}


def _repeats(nodes: list[Any]) -> list[Any]:
    """Consecutive blocks equal but for a trailing number in their names -> one with repeat."""
    out: list[Any] = []
    i = 0
    while i < len(nodes):
        kind, body = next(iter(nodes[i].items())) if isinstance(nodes[i], dict) else (nodes[i], None)
        m = re.fullmatch(r"(.*?)(\d+)", str(body.get("name", ""))) if isinstance(body, dict) else None
        j = i + 1
        if m and kind in ("block", "inception"):
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
        if j - i > 1 and m:
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


class _Flow(dict):
    """A mapping written on one line (a layer's fields)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)
)


def _represent_list(dumper: yaml.SafeDumper, data: list) -> Any:
    flat = all(not isinstance(v, (dict, list)) for v in data)  # [299, 299, 3], [1, 7]
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def _node(node: Any) -> Any:
    if not isinstance(node, dict):
        return node  # gap, flatten
    ((kind, body),) = node.items()
    if kind != "block":
        return {kind: _Flow(body) if isinstance(body, dict) else body}
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
        out["defaults"] = {kind: _Flow(v) for kind, v in out["defaults"].items()}
    for part in ("layers", "head"):
        if part in out:
            out[part] = [_node(n) for n in out[part]]
    return yaml.dump(out, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


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
    layers, head, sources = [], [], []
    for data, src in converted:
        in_head = bool(head) or data in ("gap", "flatten")
        (head if in_head else layers).append(data)
        sources.extend(src)
    if not layers:
        raise SpecError.one("<model>", "a model with at least one layer before its head", "none")
    defaults = _defaults(layers + head)
    _strip(layers + head, defaults)
    layers = _repeats([_table_row(n) or n for n in layers])
    name = _NAME.sub("_", model.name) or "model"
    data: dict[str, Any] = {"name": name, "input": [int(d) for d in shape]}
    if defaults:
        data["defaults"] = defaults
    data["layers"] = layers
    if head:
        data["head"] = head
    out = Imported(data, sources)
    from ..planner import plan

    p = plan(out.model)  # a bug, not the user's model, if this fails: let it raise
    if tuple(p.output_shape) != tuple(model.output_shape[1:]):
        raise AssertionError(f"import: output {p.output_shape} differs from Keras' {model.output_shape[1:]}")
    return out


def from_keras(model: Any) -> Model:
    """An existing Keras 3 model as a spec `Model` (see the module docstring)."""
    return import_keras(model).model


def load_keras(path: str | os.PathLike[str]) -> Any:
    """Loads a .keras file (safe mode), knowing InceptionResNetV2's CustomScaleLayer."""
    import keras

    custom = {}
    try:
        from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

        custom["CustomScaleLayer"] = CustomScaleLayer
    except ImportError:  # a Keras without it: such files then fail to load, with Keras' message
        pass
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise SpecError.one("<file>", "an existing .keras file", f"{name!r}, which is not a file")
    return keras.models.load_model(name, custom_objects=custom, compile=False)


def copy_weights(source: Any, built: Any, imported: Imported) -> None:
    """Copies every weight of `source` (the imported Keras model) into `built`
    (`build_model(imported.model)`), layer by layer in build order."""
    from ..planner import iter_ops, plan

    ops = list(iter_ops(plan(imported.model).steps))
    if len(ops) != len(imported.sources):
        raise AssertionError("import: layers and their sources differ in number")
    for op, src in zip(ops, imported.sources):
        if built.get_layer(op.name).weights:
            built.get_layer(op.name).set_weights(source.get_layer(src["layer"]).get_weights())
        if "bn" in src:  # the batch norm the conv's kind adds after it: its second Keras layer
            built.get_layer(op.layer_names[1]).set_weights(source.get_layer(src["bn"]).get_weights())
    expected = sum(math.prod(w.shape) for w in source.weights)
    if expected != sum(math.prod(w.shape) for w in built.weights):
        raise AssertionError("import: the built model's weights differ in size from the source's")
