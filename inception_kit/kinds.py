"""The registry of layer kinds: each kind's fields, shape rule, cost rule and Keras layers.

Counting rules, stated once for the whole package:

* **MACs** are multiply-accumulates of convolutions (regular, grouped, depthwise and
  pointwise) and dense layers: one per weight use. Pooling, normalisation, activations
  and merges have 0 MACs.
* **FLOPs** follow TensorFlow's profiler (`tf.compat.v1.profiler`, `float_operation()`) on
  the frozen inference graph, op type by op type: 2 per multiply-add for Conv2D,
  DepthwiseConv2dNative and MatMul; 1 per output element for BiasAdd, AddV2, Mul and Sub
  (a bias of one channel is added with AddV2, as Keras does);
  2 per element for Rsqrt; kernel area per output element for MaxPool and AvgPool; one
  per input element for Mean (global average pooling); 5 per element for Softmax; 0 for
  Relu, Relu6, Sigmoid, Tanh, ConcatV2 and reshapes. Inference batch norm is what Keras
  freezes it into: `x * inv + (beta - mean * inv)` with `inv = rsqrt(var + eps) * gamma`.

Shapes exclude the batch dimension: (height, width, channels) or (features,).
Everything about a kind lives in its entry here, in three records by concern: `Rules`
(shape and cost: its shape rule, its cost rule, whether it is a 1×1 reduction, what
TensorFlow's profiler sees of it), `KerasRules` (its Keras layers and the names they add,
and which Keras layers it is imported from) and `Words` (its generated names, report text
and diagram caption). Kinds, merges and a block's scale answer one interface, `Entry`.
Adding a kind is one public `register_kind(Kind(...))` call (`conv_like` makes a
convolution-like one); the registry is read through `list_kinds()`/`get_kind()` (and
`list_merges()`/`get_merge()`, `kind_of()` for any op of a plan), and tests parametrise
over it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, cast, runtime_checkable

from .errors import ArgumentError, did_you_mean

Shape = tuple[int, ...]

REQUIRED = object()


class Bad(Exception):
    """A field value is wrong; `expected` says what would be right.

    `key` names the option at fault inside a mapping value (batchnorm's `momentum`),
    with its `value`; `choices` lets the message offer a did-you-mean."""

    def __init__(self, expected: str, key: str | None = None, value: Any = None, choices: Sequence[str] = ()):
        super().__init__(expected)
        self.expected, self.key, self.value, self.choices = expected, key, value, tuple(choices)


# ---------------------------------------------------------------------------------------
# Field types: how a value is checked, normalised and described in the JSON Schema.


@dataclass(frozen=True)
class FieldType:
    name: str
    check: Callable[[Any], Any]  # returns the normalised value, or raises Bad
    schema: dict[str, Any]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v: Any) -> int:
    if not _is_int(v) or v < 1:
        raise Bad("a positive integer")
    return cast(int, v)


def _size2(v: Any) -> tuple[int, int]:
    if _is_int(v) and v >= 1:
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) and x >= 1 for x in v):
        return (v[0], v[1])
    raise Bad("a positive integer or [height, width] of positive integers")


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Bad("true or false")
    return v


def _rate(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        raise Bad("a number from 0 up to (not including) 1")
    return float(v)


def _positive_float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < math.inf):
        raise Bad("a positive number")
    return float(v)


# Activations Keras can apply, with the profiler's FLOPs per element of each.
ACTIVATION_FLOPS: dict[str, int] = {
    "relu": 0,
    "relu6": 0,
    "sigmoid": 0,
    "tanh": 0,
    "softmax": 5,
}


def _activation(v: Any) -> str | None:
    if v is None or v == "linear":
        return None
    if not isinstance(v, str) or v not in ACTIVATION_FLOPS:
        raise Bad(
            "one of " + ", ".join(ACTIVATION_FLOPS) + ", linear or null",
            choices=[*ACTIVATION_FLOPS, "linear"],
        )
    return v


_BN_KEYS = {"scale": _bool, "epsilon": _positive_float, "momentum": _rate}
BN_DEFAULTS = {"scale": True, "epsilon": 1e-3, "momentum": 0.99}


def _batchnorm(v: Any) -> dict[str, Any] | None:
    """false, true, or a mapping of batch norm options; normalised to None or a full dict."""
    if v is False or v is None:
        return None
    if v is True:
        return dict(BN_DEFAULTS)
    if isinstance(v, dict):
        out = dict(BN_DEFAULTS)
        for key, value in v.items():
            if key not in _BN_KEYS:
                raise Bad("a batchnorm option: " + ", ".join(_BN_KEYS), key, key, choices=list(_BN_KEYS))
            try:
                out[key] = _BN_KEYS[key](value)
            except Bad as bad:
                raise Bad(bad.expected, key, value) from None
        return out
    raise Bad("true, false or a mapping with keys scale, epsilon, momentum")


def _choice(*values: str) -> FieldType:
    def check(v: Any) -> str:
        if v not in values:
            raise Bad("one of " + ", ".join(values), choices=values)
        return cast(str, v)

    return FieldType("choice", check, {"enum": list(values)})


POS_INT = FieldType("pos_int", _pos_int, {"type": "integer", "minimum": 1})
SIZE2 = FieldType(
    "size2",
    _size2,
    {
        "oneOf": [
            {"type": "integer", "minimum": 1},
            {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
        ]
    },
)
BOOL = FieldType("bool", _bool, {"type": "boolean"})
RATE = FieldType("rate", _rate, {"type": "number", "minimum": 0, "exclusiveMaximum": 1})
POSITIVE = FieldType("positive", _positive_float, {"type": "number", "exclusiveMinimum": 0})
ACTIVATION = FieldType("activation", _activation, {"enum": [*ACTIVATION_FLOPS, "linear", None]})
BATCHNORM = FieldType(
    "batchnorm",
    _batchnorm,
    {
        "oneOf": [
            {"type": "boolean"},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "scale": {"type": "boolean"},
                    "epsilon": {"type": "number", "exclusiveMinimum": 0},
                    "momentum": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                },
            },
        ]
    },
)
PADDING = _choice("same", "valid")


@dataclass(frozen=True)
class Field:
    type: FieldType
    default: Any = REQUIRED
    doc: str = ""


# ---------------------------------------------------------------------------------------
# Costs


@dataclass
class Cost:
    """Parameters, MACs and profiler FLOPs (by TensorFlow op type) of one piece of a model."""

    params: int = 0
    trainable: int = 0
    macs: int = 0
    flops_by_op: Counter[str] = field(default_factory=Counter)

    @property
    def flops(self) -> int:
        return sum(self.flops_by_op.values())

    @property
    def non_trainable(self) -> int:
        return self.params - self.trainable

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.params + other.params,
            self.trainable + other.trainable,
            self.macs + other.macs,
            self.flops_by_op + other.flops_by_op,
        )


def _n(shape: Shape) -> int:
    return math.prod(shape)


def batchnorm_cost(channels: int, elements: int, scale: bool) -> Cost:
    """Inference batch norm as Keras freezes it (see the module docstring)."""
    ops = Counter(
        AddV2=elements + channels,  # x*inv + b, and var + eps
        Rsqrt=2 * channels,
        Mul=elements + channels + (channels if scale else 0),  # x*inv, mean*inv, inv*gamma
        Sub=channels,  # beta - mean*inv
    )
    trainable = channels * (2 if scale else 1)  # beta, and gamma when scaled
    return Cost(params=trainable + 2 * channels, trainable=trainable, flops_by_op=ops)


def activation_cost(activation: str | None, elements: int) -> Cost:
    per = ACTIVATION_FLOPS.get(activation, 0) if activation else 0
    return Cost(flops_by_op=Counter(Softmax=per * elements) if per else Counter())


def _post(args: dict[str, Any], out: Shape) -> Cost:
    """Bias, batch norm and activation that a conv or dense layer applies after its product."""
    cost = Cost()
    channels, elements = out[-1], _n(out)
    if args.get("bias"):
        # Keras adds a bias with tf.nn.bias_add, except a 1-element bias, which is tf.add.
        op = "BiasAdd" if channels > 1 else "AddV2"
        cost += Cost(channels, channels, 0, Counter({op: elements}))
    if args.get("batchnorm"):
        cost += batchnorm_cost(channels, elements, args["batchnorm"]["scale"])
    return cost + activation_cost(args.get("activation"), elements)


# ---------------------------------------------------------------------------------------
# Shape rules


class ShapeError(Exception):
    """A layer cannot take its input; `field` names the field at fault (or '')."""

    def __init__(self, expected: str, received: str, field: str = ""):
        super().__init__(expected)
        self.expected, self.received, self.field = expected, received, field


def _spatial(kind: str, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(
            f"a (height, width, channels) input for '{kind}'",
            f"a flat input of {shape[0]:,} features (gap, flatten or dense came before it)",
        )
    return shape


def _window(size: int, k: int, s: int, padding: str, axis: str, field_: str) -> int:
    if padding == "same":
        return -(-size // s)
    if k > size:
        raise ShapeError(
            f"a {field_} no larger than the input {axis} ({size}) with padding valid",
            f"{k}",
            field_,
        )
    return (size - k) // s + 1


def _windowed(
    kind: str, shape: Shape, kernel: tuple[int, int], args: dict[str, Any], field_: str
) -> tuple[int, int]:
    h, w, _ = _spatial(kind, shape)
    sh, sw = args["strides"]
    return (
        _window(h, kernel[0], sh, args["padding"], "height", field_),
        _window(w, kernel[1], sw, args["padding"], "width", field_),
    )


def fmt_shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


# ---------------------------------------------------------------------------------------
# What a registry entry is: a few records, one per concern, and the interface consumers call.

Args = dict[str, Any]
# How a following Keras layer's fields fold into this layer's fields (None: they do not).
Fold = Callable[[Args, Args], Args | None]


def _no(*_: Any) -> bool:
    return False


def _as_costed(args: Args, cost: Cost) -> Counter[str]:
    return cost.flops_by_op


def _no_names(args: Args, name: str) -> list[str]:
    return []


@dataclass(frozen=True)
class Rules:
    """Shape and cost of a layer kind: plain arithmetic on shapes (batch excluded).

    `shape(args, input)` is the output shape, raising ShapeError for an input the layer
    cannot take; `cost(args, input, output)` its Cost. `reduces(args, input, output)` says
    whether the layer only shrinks channels pointwise (a 1×1 bottleneck the naive
    counterpart removes); `widens(args, wider)` whether the layer after it may read the
    wider input instead (a k×k convolution). `profiled(args, cost)` is what TensorFlow's
    profiler counts of the cost, where that differs from the cost rule.
    """

    shape: Callable[[Args, Shape], Shape]
    cost: Callable[[Args, Shape, Shape], Cost]
    reduces: Callable[[Args, Shape, Shape], bool] = _no
    widens: Callable[[Args, Shape], bool] = _no
    profiled: Callable[[Args, Cost], Counter[str]] = _as_costed


@dataclass(frozen=True)
class MergeRules:
    """Shape and cost of a merge: over the branch outputs, one shape per branch."""

    shape: Callable[[list[Shape]], Shape]
    cost: Callable[[list[Shape], Shape], Cost]


@dataclass(frozen=True)
class KerasRules:
    """How an entry becomes Keras layers, and how `inception-kit import` reads it back.

    `layers(args, name)` are its Keras layers, the first named `name`; `derived(args, name)`
    the names of the layers it adds after that one (`X_bn`, `X_relu`): the planner reserves
    them, so that no spec name collides with one at build time.
    `classes` are the Keras layer classes it is imported from; `from_keras(config)` turns
    such a layer's `get_config()` into its fields (a value equal to the field's default may be
    given: the importer drops it), returns None when the config is another entry's (the kinds
    registered last are asked first), and raises `Bad(expected, value=received)`, the
    received value as text, for what a spec cannot state. `folds` maps the kind of a
    following Keras layer to how it folds into this layer's fields, in the order `layers`
    builds them after its own: a conv takes the batch norm and the activation that follow it.
    `import_defaults` are the fields an imported spec states once under `defaults:` (their
    most common values), unless those are the fields' own defaults.
    """

    layers: Callable[[Args, str], list[Any]]
    derived: Callable[[Args, str], list[str]] = _no_names
    classes: tuple[str, ...] = ()
    from_keras: Callable[[dict[str, Any]], Args | None] | None = None
    folds: dict[str, Fold] = field(default_factory=dict)
    import_defaults: tuple[str, ...] = ()


@dataclass(frozen=True)
class Words:
    """How an entry reads; each is `(args) -> str`, the entry's name where None.

    `label` is the base of generated layer names (`conv3x3`), `config` the one-line config
    in reports (`conv 3x3/2 valid bn relu`), `caption` the text in diagrams
    (`conv 3×3 /2, bn, relu`).
    """

    label: Callable[[Args], str] | None = None
    config: Callable[[Args], str] | None = None
    caption: Callable[[Args], str] | None = None


@runtime_checkable
class Entry(Protocol):
    """What every consumer calls, for a layer kind, a merge or a block's scale alike: one
    signature over the op's input shapes (one, or one per branch for a merge)."""

    @property
    def name(self) -> str: ...

    @property
    def doc(self) -> str: ...

    @property
    def keras(self) -> KerasRules: ...

    @property
    def words(self) -> Words: ...

    @property
    def fields(self) -> Mapping[str, Field]: ...

    def op_shape(self, args: Args, inputs: Sequence[Shape]) -> Shape: ...

    def op_cost(self, args: Args, inputs: Sequence[Shape], out: Shape) -> Cost: ...

    def reduces(self, args: Args, inp: Shape, out: Shape) -> bool: ...

    def widens(self, args: Args, wider: Shape) -> bool: ...

    def profiled(self, args: Args, cost: Cost) -> Counter[str]: ...

    def layers(self, args: Args, name: str) -> list[Any]: ...

    def derived(self, args: Args, name: str) -> list[str]: ...

    def text(self, args: Args) -> str: ...

    def base_name(self, args: Args) -> str: ...

    def caption_of(self, args: Args) -> str: ...


class _Reads:
    """The Keras and text side of `Entry`, shared by kinds and merges (both hold `name`,
    `keras` and `words`)."""

    name: str
    keras: KerasRules
    words: Words

    def layers(self, args: Args, name: str) -> list[Any]:
        return self.keras.layers(args, name)

    def derived(self, args: Args, name: str) -> list[str]:
        return self.keras.derived(args, name)

    def text(self, args: Args) -> str:
        """The resolved arguments in a few words: `conv 3x3/2 valid bn relu`."""
        return self.words.config(args) if self.words.config else self.name

    def base_name(self, args: Args) -> str:
        return self.words.label(args) if self.words.label else self.name

    def caption_of(self, args: Args) -> str:
        return self.words.caption(args) if self.words.caption else self.name


@dataclass(frozen=True)
class Kind(_Reads):
    """One layer kind: its fields, its `rules` (shape and cost), its `keras` side (layers and
    import) and its `words` (names, report text, captions). `shorthand` names the field a
    bare scalar sets (`dropout: 0.4`)."""

    name: str
    doc: str
    fields: dict[str, Field]
    rules: Rules
    keras: KerasRules
    words: Words = Words()
    shorthand: str | None = None

    def resolve(self, args: Args) -> tuple[Args, list[FieldBad]]:
        """Fills in field defaults (normalised); returns the arguments and every bad field."""
        out, bad_fields = {}, []
        for key, spec in self.fields.items():
            if key in args:
                try:
                    out[key] = spec.type.check(args[key])
                except Bad as bad:
                    bad_fields.append(FieldBad(key, bad.expected, args[key], bad))
            elif spec.default is REQUIRED:
                bad_fields.append(FieldBad(key, f"a value for '{key}' ({spec.doc})", _MISSING))
            else:
                out[key] = spec.type.check(spec.default) if spec.default is not None else None
        return out, bad_fields

    def op_shape(self, args: Args, inputs: Sequence[Shape]) -> Shape:
        return self.rules.shape(args, inputs[0])

    def op_cost(self, args: Args, inputs: Sequence[Shape], out: Shape) -> Cost:
        return self.rules.cost(args, inputs[0], out)

    def reduces(self, args: Args, inp: Shape, out: Shape) -> bool:
        return self.rules.reduces(args, inp, out)

    def widens(self, args: Args, wider: Shape) -> bool:
        return self.rules.widens(args, wider)

    def profiled(self, args: Args, cost: Cost) -> Counter[str]:
        return self.rules.profiled(args, cost)


@dataclass(frozen=True)
class Merge(_Reads):
    """How a block joins its branches (`merge:` in a spec): an entry over several inputs.

    `residual` says the merge sums its branches, so that a block's `scale` may weight its
    residual (non-identity) branches, as Inception-ResNet does. Its `keras.from_keras` reads a
    Keras merge's config as the block's fields (`scale`, for a merge that carries one)."""

    name: str
    doc: str
    rules: MergeRules
    keras: KerasRules
    words: Words = Words()
    residual: bool = False

    @property
    def fields(self) -> Mapping[str, Field]:
        return MappingProxyType({})  # a merge takes no fields of its own

    def op_shape(self, args: Args, inputs: Sequence[Shape]) -> Shape:
        return self.rules.shape(list(inputs))

    def op_cost(self, args: Args, inputs: Sequence[Shape], out: Shape) -> Cost:
        return self.rules.cost(list(inputs), out)

    def reduces(self, args: Args, inp: Shape, out: Shape) -> bool:
        return False

    def widens(self, args: Args, wider: Shape) -> bool:
        return False

    def profiled(self, args: Args, cost: Cost) -> Counter[str]:
        return cost.flops_by_op


def _by(size: Sequence[int]) -> str:
    return f"{size[0]}x{size[1]}"


def _hw(size: Sequence[int]) -> str:
    return f"{size[0]}×{size[1]}"


_MISSING = object()


class FieldBad(Exception):
    def __init__(self, field: str, expected: str, value: Any, bad: Bad | None = None):
        super().__init__(expected)
        self.field, self.expected, self.value = field, expected, value
        self.key = bad.key if bad else None  # option inside a mapping value
        self.choices = bad.choices if bad else ()
        if bad and bad.key is not None:
            self.value = bad.value

    @property
    def missing(self) -> bool:
        return self.value is _MISSING


# ---------------------------------------------------------------------------------------
# The registry: private tables, read through functions, extended only by registering.

_KINDS: dict[str, Kind] = {}
_MERGES: dict[str, Merge] = {}
_BLOCK_OPS: dict[str, Kind] = {}  # kinds blocks add that specs do not write as layers
_SPEC_WORDS = ("block", "inception", "templates", "defaults")


def _add(table: dict[str, Any], entry: Kind | Merge) -> None:
    if entry.name in _KINDS or entry.name in _MERGES or entry.name in _BLOCK_OPS:
        raise ValueError(f"a layer kind or merge named '{entry.name}' is already registered")
    if entry.name in _SPEC_WORDS:
        raise ValueError(f"'{entry.name}' is a word of the spec language, not a free kind name")
    table[entry.name] = entry


def register_kind(kind: Kind) -> Kind:
    """Adds a layer kind: specs, the JSON Schema, reports, the builder, the profiler check,
    diagrams and the importer all take it from here.

    Args:
        kind: the kind, with its fields, rules, Keras side and words.

    Returns:
        The kind (so that it can be kept as a constant).

    Raises:
        ValueError: the name is taken (by a kind or a merge) or is a word of the spec language.
    """
    _add(_KINDS, kind)
    return kind


def register_merge(merge: Merge) -> Merge:
    """Adds a way for blocks to join their branches (`merge:` in a spec), as `register_kind`."""
    _add(_MERGES, merge)
    return merge


def list_kinds() -> list[str]:
    """The names of the registered layer kinds, in registration order."""
    return list(_KINDS)


def list_merges() -> list[str]:
    """The names of the registered merges, in registration order."""
    return list(_MERGES)


def _get(table: Mapping[str, Any], name: str, what: str) -> Any:
    entry = table.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ArgumentError(
            "name", f"a registered {what}: " + ", ".join(table), name, did_you_mean(str(name), table)
        )
    return entry


def get_kind(name: str) -> Kind:
    """The registered layer kind `name`.

    Raises:
        ArgumentError: no kind of that name (with the closest registered name, if any).
    """
    return cast(Kind, _get(_KINDS, name, "layer kind"))


def get_merge(name: str) -> Merge:
    """The registered merge `name`.

    Raises:
        ArgumentError: no merge of that name (with the closest registered name, if any).
    """
    return cast(Merge, _get(_MERGES, name, "merge"))


def get_block_op(name: str) -> Kind:
    """A kind blocks add that specs do not write as a layer (`scale`)."""
    return cast(Kind, _get(_BLOCK_OPS, name, "block op"))


def kind_of(name: str) -> Entry:
    """The registry entry of any layer a plan holds: a kind, a merge or a block's scale."""
    entry: Entry | None = _KINDS.get(name) or _MERGES.get(name) or _BLOCK_OPS.get(name)
    if entry is None:
        raise KeyError(f"no layer kind or merge named {name!r} is registered")
    return entry


def entries() -> list[Entry]:
    """Every registry entry: the kinds, the merges and the block ops, in that order."""
    return [*_KINDS.values(), *_MERGES.values(), *_BLOCK_OPS.values()]


@contextmanager
def registry_scope() -> Iterator[None]:
    """Undoes, on leaving, every registration made inside (tests, notebooks trying a kind)."""
    tables: list[dict[str, Any]] = [_KINDS, _MERGES, _BLOCK_OPS]
    saved = [dict(t) for t in tables]
    try:
        yield
    finally:
        for table, before in zip(tables, saved):
            table.clear()
            table.update(before)


# Reading Keras layer configs (`from_keras`): what each kind accepts of a Keras layer.
_KERAS_ACTIVATIONS = (*ACTIVATION_FLOPS, "linear")


def _keras_size(v: Any) -> int | list[int]:
    """A Keras size or stride as a spec writes it: k, or [height, width] when they differ."""
    h, w = _keras_pair(v)
    return h if h == w else [h, w]


def _keras_pair(v: Any) -> list[int]:
    return list(v) if isinstance(v, (list, tuple)) else [v, v]


def _keras_2d(cfg: dict[str, Any]) -> None:
    """What a spec assumes of every 2-D layer: channels last, no dilation, same or valid."""
    if cfg.get("data_format", "channels_last") not in (None, "channels_last"):
        raise Bad("data_format channels_last", value=repr(cfg["data_format"]))
    if tuple(_keras_pair(cfg.get("dilation_rate", 1))) != (1, 1):
        raise Bad("no dilation (dilation_rate 1)", value=repr(cfg["dilation_rate"]))
    if cfg.get("padding", "valid") not in ("same", "valid"):
        raise Bad("padding same or valid", value=repr(cfg["padding"]))


def _keras_activation(value: Any) -> str | None:
    if isinstance(value, dict):  # a serialised activation function
        value = value.get("config", value.get("class_name"))
    if value in (None, "linear"):
        return None
    if value not in _KERAS_ACTIVATIONS:
        raise Bad("an activation of " + ", ".join(_KERAS_ACTIVATIONS), value=repr(value))
    return cast(str, value)


# Words of a one-line config, shared by the kinds that take the fields.


def _stride_word(strides: Sequence[int]) -> str:
    """`/2` (or `/1x2`) after a title; nothing for stride 1."""
    if tuple(strides) == (1, 1):
        return ""
    return f"/{strides[0]}" if strides[0] == strides[1] else f"/{_by(strides)}"


def _post_words(args: Args) -> list[str]:
    """A conv or dense layer's batch norm (or else bias) and activation."""
    words = []
    if args.get("batchnorm"):
        words.append("bn+scale" if args["batchnorm"]["scale"] else "bn")  # bn: no gamma, as Inception
    elif args.get("bias"):
        words.append("bias")
    return words + ([args["activation"]] if args.get("activation") else [])


# conv-like kinds: conv and sepconv ------------------------------------------------------

_CONV_FIELDS = {
    "filters": Field(POS_INT, doc="output channels"),
    "kernel": Field(SIZE2, doc="kernel size, k or [height, width]"),
    "strides": Field(SIZE2, 1, "stride, s or [height, width]"),
    "padding": Field(PADDING, "same", "same keeps size/stride; valid shrinks by kernel-1"),
    "activation": Field(ACTIVATION, "relu", "applied after batch norm"),
    "batchnorm": Field(BATCHNORM, False, "batch norm after the conv: true, false or options"),
    "bias": Field(BOOL, True, "add a bias (usually false when batch norm follows)"),
}


def _post_names(args: Args, name: str) -> list[str]:
    """Names of the batch norm and activation after a conv-like layer, in build order."""
    bn = [f"{name}_bn"] if args.get("batchnorm") else []
    return bn + ([f"{name}_{args['activation']}"] if args.get("activation") else [])


def _post_layers(args: Args, name: str) -> list[Any]:
    from keras import layers

    names = iter(_post_names(args, name))
    out = []
    if args.get("batchnorm"):
        bn = args["batchnorm"]
        out.append(
            layers.BatchNormalization(
                scale=bn["scale"], epsilon=bn["epsilon"], momentum=bn["momentum"], name=next(names)
            )
        )
    if args.get("activation"):
        out.append(layers.Activation(args["activation"], name=next(names)))
    return out


def _fold_batchnorm(body: Args, bn: Args) -> Args | None:
    """A batch norm right after a conv without its own activation is the conv's `batchnorm`."""
    if body["activation"] is not None or body["batchnorm"]:
        return None
    changed = {k: v for k, v in bn.items() if BN_DEFAULTS[k] != v}  # only what differs
    return {**body, "batchnorm": changed or True}


def _fold_activation(body: Args, act: Args) -> Args | None:
    """An activation after a conv (or its batch norm) without one is the conv's `activation`."""
    if body["activation"] is not None:
        return None
    return {**body, "activation": act["activation"]}


def _conv_widens(a: Args, wider: Shape) -> bool:
    """A k×k conv (k > 1) can read the channels a removed 1×1 bottleneck read."""
    return bool(a["kernel"] != (1, 1) and wider[-1] % a.get("groups", 1) == 0)


def conv_like(
    name: str,
    doc: str,
    keras_class: str,
    option: tuple[str, Field],
    cost: Callable[[Args, Shape, Shape], Cost],
    *,
    option_words: Callable[[int], list[str]],
    option_caption: Callable[[int], str] = lambda n: "",
    check: Callable[[Args, int], None] = lambda args, channels: None,
    reduces: Callable[[Args, Shape, Shape], bool] = _no,
    profiled: Callable[[Args, Cost], Counter[str]] = _as_costed,
) -> Kind:
    """A convolution-like kind: a Keras conv layer (`keras_class`), then its optional batch
    norm and activation, with the conv fields and one field of its own.

    Args:
        name: the kind's name, also the base of its layer names (`conv3x3`).
        doc: one line on what it computes.
        keras_class: the `keras.layers` class, which takes `option` as a keyword.
        option: the field this kind adds (`groups`, `depth_multiplier`) and its Field.
        cost: its cost rule, before the bias, batch norm and activation (added here).
        option_words: the option's words in the report's config (`groups 2`), [] for none.
        option_caption: the option's text appended to a diagram's caption.
        check: raises ShapeError when the option does not fit the input channels.
        reduces: whether a layer is a 1×1 bottleneck (see Rules).
        profiled: what the profiler counts of its cost (see Rules).

    Returns:
        The Kind, to be registered.
    """
    key = option[0]

    def shape(args: Args, inp: Shape) -> Shape:
        check(args, _spatial(name, inp)[2])
        return (*_windowed(name, inp, args["kernel"], args, "kernel"), args["filters"])

    def layers_(args: Args, layer: str) -> list[Any]:
        from keras import layers

        conv = getattr(layers, keras_class)(
            args["filters"],
            args["kernel"],
            strides=args["strides"],
            padding=args["padding"],
            use_bias=args["bias"],
            name=layer,
            **{key: args[key]},
        )
        return [conv, *_post_layers(args, layer)]

    def from_keras(cfg: dict[str, Any]) -> Args:
        _keras_2d(cfg)
        body = {
            "filters": cfg["filters"],
            "kernel": _keras_size(cfg["kernel_size"]),
            "strides": _keras_size(cfg["strides"]),
            "padding": cfg["padding"],
            key: cfg.get(key, 1),
            "bias": bool(cfg["use_bias"]),
        }
        return {**body, "batchnorm": False, "activation": _keras_activation(cfg.get("activation"))}

    def config(a: Args) -> str:
        words = [f"{name} {_by(a['kernel'])}{_stride_word(a['strides'])}"]
        words += ["valid"] if a["padding"] == "valid" else []
        return " ".join([*words, *option_words(a[key]), *_post_words(a)])

    def caption(a: Args) -> str:
        text = f"{name} {_hw(a['kernel'])}"
        if a["strides"] != (1, 1):
            text += f" /{a['strides'][0]}" if a["strides"][0] == a["strides"][1] else f" /{_hw(a['strides'])}"
        text += option_caption(a[key])
        if a.get("padding") == "valid":
            text += ", valid"
        if a.get("batchnorm"):
            text += ", bn"
        if a.get("activation"):
            text += f", {a['activation']}"
        return text

    return Kind(
        name,
        doc,
        {**_CONV_FIELDS, key: option[1]},
        Rules(
            shape,
            lambda args, inp, out: cost(args, inp, out) + _post(args, out),
            reduces=reduces,
            widens=_conv_widens,
            profiled=profiled,
        ),
        KerasRules(
            layers_,
            derived=_post_names,
            classes=(keras_class,),
            from_keras=from_keras,
            # folded in the order `_post_layers` builds them
            folds={"batchnorm": _fold_batchnorm, "activation": _fold_activation},
            import_defaults=("activation", "padding", "bias", "batchnorm"),
        ),
        Words(
            label=lambda a: f"{name}{a['kernel'][0]}x{a['kernel'][1]}",
            config=config,
            caption=caption,
        ),
    )


def _conv_groups(args: Args, channels: int) -> None:
    groups = args["groups"]
    if channels % groups or args["filters"] % groups:
        raise ShapeError(
            f"groups dividing both input channels ({channels}) and filters ({args['filters']})",
            str(groups),
            "groups",
        )


def _conv_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    kh, kw = args["kernel"]
    weights = kh * kw * (inp[2] // args["groups"]) * out[2]
    macs = out[0] * out[1] * weights
    return Cost(weights, weights, macs, Counter(Conv2D=2 * macs))


def _conv_reduces(a: Args, inp: Shape, out: Shape) -> bool:
    """A 1×1 conv that only shrinks channels: stride 1, no groups, fewer out than in."""
    return a["kernel"] == (1, 1) and a["strides"] == (1, 1) and a["groups"] == 1 and out[-1] < inp[-1]


def _conv_profiled(a: Args, cost: Cost) -> Counter[str]:
    # On CPU, Keras runs grouped convolutions inside an XLA-compiled function that the
    # profiler cannot see into: it counts no Conv2D FLOPs for them (their bias adds it sees).
    if a["groups"] > 1:
        return cost.flops_by_op - Counter(Conv2D=cost.flops_by_op["Conv2D"])
    return cost.flops_by_op


def _sepconv_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    kh, kw = args["kernel"]
    mid = inp[2] * args["depth_multiplier"]
    depthwise, pointwise = kh * kw * mid, mid * out[2]
    pixels = out[0] * out[1]
    flops = Counter(DepthwiseConv2dNative=2 * pixels * depthwise, Conv2D=2 * pixels * pointwise)
    params = depthwise + pointwise
    return Cost(params, params, pixels * (depthwise + pointwise), flops)


register_kind(
    conv_like(
        "conv",
        "2-D convolution, then optional batch norm and activation",
        "Conv2D",
        ("groups", Field(POS_INT, 1, "channel groups (grouped convolution)")),
        _conv_cost,
        option_words=lambda n: [f"groups {n}"] if n > 1 else [],
        option_caption=lambda n: f", {n} groups" if n > 1 else "",
        check=_conv_groups,
        reduces=_conv_reduces,
        profiled=_conv_profiled,
    )
)
register_kind(
    conv_like(
        "sepconv",
        "separable convolution (depthwise k×k, then pointwise 1×1), as in Xception",
        "SeparableConv2D",
        ("depth_multiplier", Field(POS_INT, 1, "depthwise outputs per input channel")),
        _sepconv_cost,
        option_words=lambda n: [f"x{n}"] if n > 1 else [],
    )
)

# pools ----------------------------------------------------------------------------------

_POOL_FIELDS = {
    "pool": Field(SIZE2, doc="window size, k or [height, width]"),
    "strides": Field(SIZE2, None, "stride; defaults to the window size, as in Keras"),
    "padding": Field(PADDING, "same", "same or valid"),
}


def _pool_args(args: Args) -> Args:
    return {**args, "strides": args["strides"] or args["pool"]}


def _pool(kind: str, op: str, keras_name: str) -> Kind:
    def shape(args: Args, inp: Shape) -> Shape:
        return (*_windowed(kind, inp, args["pool"], _pool_args(args), "pool"), inp[2])

    def cost(args: Args, inp: Shape, out: Shape) -> Cost:
        kh, kw = args["pool"]
        return Cost(flops_by_op=Counter({op: kh * kw * _n(out)}))

    def keras_(args: Args, name: str) -> list[Any]:
        from keras import layers

        a = _pool_args(args)
        return [getattr(layers, keras_name)(a["pool"], strides=a["strides"], padding=a["padding"], name=name)]

    def config(a: Args) -> str:
        text = f"{kind} {_by(a['pool'])}{_stride_word(a['strides'] or a['pool'])}"
        return text + (" valid" if a["padding"] == "valid" else "")

    def caption(a: Args) -> str:
        strides = a["strides"] or a["pool"]
        text = f"{kind} {_hw(a['pool'])} /{strides[0] if strides[0] == strides[1] else _hw(strides)}"
        return text + (", valid" if a.get("padding") == "valid" else "")

    def from_keras(cfg: dict[str, Any]) -> Args:
        _keras_2d(cfg)
        size = cfg["pool_size"]
        strides = cfg.get("strides") or size
        return {
            "pool": _keras_size(size),
            # None: the window size, as the field's default says
            "strides": None if _keras_pair(strides) == _keras_pair(size) else _keras_size(strides),
            "padding": cfg["padding"],
        }

    return Kind(
        kind,
        f"{kind[:3]} pooling",
        dict(_POOL_FIELDS),
        Rules(shape, cost),
        KerasRules(keras_, classes=(keras_name,), from_keras=from_keras, import_defaults=("padding",)),
        Words(label=lambda a: f"{kind}{a['pool'][0]}x{a['pool'][1]}", config=config, caption=caption),
        shorthand="pool",
    )


register_kind(_pool("maxpool", "MaxPool", "MaxPooling2D"))
register_kind(_pool("avgpool", "AvgPool", "AveragePooling2D"))

# gap, flatten, dropout, activation, batchnorm, dense ------------------------------------


def _keras_plain(class_name: str, **fixed: Any) -> Callable[[Args, str], list[Any]]:
    def build(args: Args, name: str) -> list[Any]:
        from keras import layers

        return [getattr(layers, class_name)(**fixed, **args, name=name)]

    return build


def _same(shape: Callable[[Shape], Shape] = lambda inp: inp) -> Callable[[Args, Shape], Shape]:
    return lambda args, inp: shape(inp)


def _free(args: Args, inp: Shape, out: Shape) -> Cost:
    return Cost()


def _gap_from_keras(cfg: dict[str, Any]) -> Args:
    _keras_2d(cfg)
    if cfg.get("keepdims"):
        raise Bad("keepdims false (a flat output)", value="keepdims true")
    return {}


def _flatten_from_keras(cfg: dict[str, Any]) -> Args:
    _keras_2d(cfg)
    return {}


def _dropout_from_keras(cfg: dict[str, Any]) -> Args:
    if cfg.get("noise_shape") is not None:
        raise Bad("dropout without noise_shape", value=repr(cfg["noise_shape"]))
    return {"rate": float(cfg["rate"])}


def _activation_from_keras(cfg: dict[str, Any]) -> Args:
    """An Activation, or a ReLU (which has no `activation` in its config)."""
    if "activation" in cfg:
        return {"activation": _keras_activation(cfg["activation"])}
    if cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
        raise Bad(
            "ReLU with negative_slope 0 and threshold 0",
            value=f"{cfg.get('negative_slope')}, {cfg.get('threshold')}",
        )
    top = cfg.get("max_value")
    if top is None:
        return {"activation": "relu"}
    if float(top) == 6.0:
        return {"activation": "relu6"}
    raise Bad("ReLU with max_value none or 6", value=repr(top))


def _batchnorm_from_keras(cfg: dict[str, Any]) -> Args:
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if axis not in (-1, 3) or not cfg.get("center", True) or cfg.get("renorm") or cfg.get("synchronized"):
        raise Bad(
            "batch norm over the channels with a beta (axis -1, center true, no renorm)",
            value=f"axis {cfg.get('axis')}, center {cfg.get('center')}",
        )
    return {
        "scale": bool(cfg.get("scale", True)),
        "epsilon": float(cfg["epsilon"]),
        "momentum": float(cfg["momentum"]),
    }


register_kind(
    Kind(
        "gap",
        "global average pooling to (channels,)",
        {},
        Rules(
            _same(lambda inp: (_spatial("gap", inp)[2],)),
            lambda args, inp, out: Cost(flops_by_op=Counter(Mean=_n(inp))),
        ),
        KerasRules(
            _keras_plain("GlobalAveragePooling2D"),
            classes=("GlobalAveragePooling2D",),
            from_keras=_gap_from_keras,
        ),
        Words(caption=lambda a: "global average pool"),
    )
)
register_kind(
    Kind(
        "gmaxpool",
        "global max pooling to (channels,)",
        {},
        # TensorFlow's profiler has no FLOP rule for Max; like Relu it counts none.
        Rules(_same(lambda inp: (_spatial("gmaxpool", inp)[2],)), _free),
        KerasRules(_keras_plain("GlobalMaxPooling2D")),
    )
)
register_kind(
    Kind(
        "flatten",
        "flatten to (features,)",
        {},
        Rules(_same(lambda inp: (_n(inp),)), _free),
        KerasRules(_keras_plain("Flatten"), classes=("Flatten",), from_keras=_flatten_from_keras),
    )
)
register_kind(
    Kind(
        "dropout",
        "dropout (identity at inference)",
        {"rate": Field(RATE, doc="fraction of units dropped while training")},
        Rules(_same(), _free),
        KerasRules(_keras_plain("Dropout"), classes=("Dropout",), from_keras=_dropout_from_keras),
        Words(config=lambda a: f"dropout {a['rate']:g}", caption=lambda a: f"dropout {a['rate']:g}"),
        shorthand="rate",
    )
)
register_kind(
    Kind(
        "activation",
        "an activation on its own",
        {"activation": Field(ACTIVATION, doc="relu, relu6, sigmoid, tanh or softmax")},
        Rules(_same(), lambda args, inp, out: activation_cost(args["activation"], _n(out))),
        KerasRules(
            lambda args, name: _keras_plain("Activation")(
                {"activation": args["activation"] or "linear"}, name
            ),
            classes=("Activation", "ReLU"),
            from_keras=_activation_from_keras,
        ),
        Words(
            label=lambda a: a["activation"] or "linear",
            config=lambda a: " ".join(["activation", *([a["activation"]] if a["activation"] else [])]),
            caption=lambda a: a["activation"] or "linear",
        ),
        shorthand="activation",
    )
)
register_kind(
    Kind(
        "batchnorm",
        "batch normalisation on its own",
        {
            "scale": Field(BOOL, True, "learn a gamma"),
            "epsilon": Field(POSITIVE, 1e-3, "added to the variance"),
            "momentum": Field(RATE, 0.99, "of the moving statistics"),
        },
        Rules(_same(), lambda args, inp, out: batchnorm_cost(out[-1], _n(out), args["scale"])),
        KerasRules(
            _keras_plain("BatchNormalization"),
            classes=("BatchNormalization",),
            from_keras=_batchnorm_from_keras,
        ),
        Words(label=lambda a: "bn"),
    )
)


def _dense_shape(args: Args, inp: Shape) -> Shape:
    if len(inp) != 1:
        raise ShapeError(
            "a flat (features,) input for 'dense' (add gap or flatten first)",
            f"an input of shape {fmt_shape(inp)}",
        )
    return (args["units"],)


def _dense_cost(args: Args, inp: Shape, out: Shape) -> Cost:
    weights = inp[0] * out[0]
    return Cost(weights, weights, weights, Counter(MatMul=2 * weights)) + _post(args, out)


def _dense_keras(args: Args, name: str) -> list[Any]:
    from keras import layers

    return [layers.Dense(args["units"], activation=args["activation"], use_bias=args["bias"], name=name)]


register_kind(
    Kind(
        "dense",
        "fully connected layer",
        {
            "units": Field(POS_INT, doc="output features"),
            "activation": Field(ACTIVATION, None, "e.g. softmax for class probabilities"),
            "bias": Field(BOOL, True, "add a bias"),
        },
        Rules(_dense_shape, _dense_cost),
        KerasRules(
            _dense_keras,
            classes=("Dense",),
            from_keras=lambda cfg: {
                "units": cfg["units"],
                "activation": _keras_activation(cfg.get("activation")),
                "bias": bool(cfg["use_bias"]),
            },
        ),
        Words(
            config=lambda a: " ".join([f"dense {a['units']}", *_post_words(a)]),
            caption=lambda a: "dense" + (f", {a['activation']}" if a.get("activation") else ""),
        ),
        shorthand="units",
    )
)

# ---------------------------------------------------------------------------------------
# Merges: how a block joins its branches.


def _concat_shape(shapes: list[Shape]) -> Shape:
    spatial = {s[:-1] for s in shapes}
    if len(spatial) != 1:
        raise ShapeError(
            "branches with equal spatial sizes to concatenate",
            ", ".join(fmt_shape(s) for s in shapes),
        )
    return (*shapes[0][:-1], sum(s[-1] for s in shapes))


def _add_shape(shapes: list[Shape]) -> Shape:
    if len(set(shapes)) != 1:
        raise ShapeError("branches with equal shapes to add", ", ".join(fmt_shape(s) for s in shapes))
    return shapes[0]


def _concat_from_keras(cfg: dict[str, Any]) -> Args:
    axis = cfg.get("axis", -1)
    if axis not in (-1, 3):
        raise Bad("concatenation along the channels (axis -1)", value=f"axis {axis}")
    return {}


def _add_from_keras(cfg: dict[str, Any]) -> Args:
    """An Add, or InceptionResNetV2's CustomScaleLayer `x + scale * residual` (an add whose
    second branch is scaled): its `scale` is the block's."""
    return {"scale": _finite(cfg["scale"])} if "scale" in cfg else {}


def _keras_merge(class_name: str) -> Callable[[Args, str], list[Any]]:
    def build(args: Args, name: str) -> list[Any]:
        from keras import layers

        return [getattr(layers, class_name)(name=name)]

    return build


def _finite(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (-1e6 < v < 1e6):
        raise Bad("a finite number", value=repr(v))
    return float(v)


register_merge(
    Merge(
        "concat",
        "concatenate along channels",
        MergeRules(_concat_shape, lambda shapes, out: Cost()),
        KerasRules(_keras_merge("Concatenate"), classes=("Concatenate",), from_keras=_concat_from_keras),
    )
)
register_merge(
    Merge(
        "add",
        "element-wise sum (residual)",
        MergeRules(
            _add_shape, lambda shapes, out: Cost(flops_by_op=Counter(AddV2=(len(shapes) - 1) * _n(out)))
        ),
        KerasRules(_keras_merge("Add"), classes=("Add", "CustomScaleLayer"), from_keras=_add_from_keras),
        residual=True,
    )
)


def scale_cost(shape: Shape) -> Cost:
    """A residual scale, built as keras Rescaling: x * scale + 0."""
    return Cost(flops_by_op=Counter(Mul=_n(shape), AddV2=_n(shape)))


def _rescaling(args: Args, name: str) -> list[Any]:
    from keras import layers

    # Rescaling is a standard layer, so .keras files need no custom objects.
    return [layers.Rescaling(args["scale"], name=name)]


def _scale_from_keras(cfg: dict[str, Any]) -> Args | None:
    """A Rescaling with no offset is a residual scale; any other Rescaling is none (None)."""
    offset = cfg.get("offset", 0.0)
    if not isinstance(offset, (int, float)) or offset != 0:
        return None
    try:
        return {"scale": _finite(cfg.get("scale"))}
    except Bad:
        return None


# A residual branch's `scale` (Inception-ResNet): added by blocks, not written as a layer.
_add(
    _BLOCK_OPS,
    Kind(
        "scale",
        "a residual branch multiplied by a constant before the sum (a block's `scale`)",
        {"scale": Field(FieldType("finite", _finite, {"type": "number"}), doc="the factor")},
        Rules(_same(), lambda args, inp, out: scale_cost(out)),
        KerasRules(_rescaling, classes=("Rescaling",), from_keras=_scale_from_keras),
        Words(config=lambda a: f"scale {a['scale']:g}"),
    ),
)
