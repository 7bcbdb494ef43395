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
Everything about a kind lives in its entry here: fields, shape rule, cost rule, Keras layers,
its text, whether it is a 1×1 reduction, what TensorFlow's profiler sees of it, and which
Keras layers it is imported from. Adding a kind is one public `register_kind(Kind(...))`
call; tests parametrise over `KINDS`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

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
        raise Bad("one of " + ", ".join(ACTIVATION_FLOPS) + ", linear or null", choices=[*ACTIVATION_FLOPS, "linear"])
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
ACTIVATION = FieldType(
    "activation", _activation, {"enum": [*ACTIVATION_FLOPS, "linear", None]}
)
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


def _windowed(kind: str, shape: Shape, kernel: tuple[int, int], args: dict[str, Any], field_: str) -> tuple[int, int]:
    h, w, _ = _spatial(kind, shape)
    sh, sw = args["strides"]
    return (
        _window(h, kernel[0], sh, args["padding"], "height", field_),
        _window(w, kernel[1], sw, args["padding"], "width", field_),
    )


def fmt_shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


# ---------------------------------------------------------------------------------------
# The kinds


def _words(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda args: name


def _no(*_: Any) -> bool:
    return False


@dataclass(frozen=True)
class Kind:
    """One layer kind. `shorthand` names the field a bare scalar sets (`dropout: 0.4`).

    Beyond its fields and its shape, cost and Keras rules, a kind says how it reads:
    `label` is the base of generated names (`conv3x3`), `title` heads its one-line config
    in reports (`conv 3x3`), `caption` is its text in diagrams (`conv 3×3 /2, bn, relu`).
    `reduces` says whether a layer only shrinks channels pointwise (a 1×1 bottleneck the
    naive counterpart removes); `widens` whether a layer may read the wider input instead
    (a k×k convolution after such a bottleneck). `profiled` is what TensorFlow's profiler
    counts of its cost, where that differs from the cost rule.

    How `inception-kit import` reads it from a Keras model (keras/importer.py):
    `keras_classes` are the Keras layer classes it is read from; `from_keras` turns such a
    layer's `get_config()` into the kind's fields (a value equal to the field's default may
    be given: the importer drops it), returns None when the config is another kind's (the
    kinds registered last are asked first), and raises `Bad(expected, value=received)`, the
    received value as text, for what a spec cannot state. `keras_folds` maps the kind of a
    following Keras layer to how it folds into this layer's fields (None: it does not), in
    the order `keras` builds them after its own layer: a conv takes the batch norm and the
    activation that follow it. `import_defaults` are the fields an imported spec states once
    under `defaults:` (their most common values), unless those are the fields' own defaults.
    """

    name: str
    doc: str
    fields: dict[str, Field]
    shape: Callable[[dict[str, Any], Shape], Shape]
    cost: Callable[[dict[str, Any], Shape, Shape], Cost]
    keras: Callable[[dict[str, Any], str], list[Any]]
    shorthand: str | None = None
    # Names of the Keras layers `keras` adds after the one named `name` (`X_bn`, `X_relu`):
    # the planner reserves them, so that no spec name collides with one at build time.
    derived: Callable[[dict[str, Any], str], list[str]] = lambda args, name: []
    label: Callable[[dict[str, Any]], str] | None = None
    title: Callable[[dict[str, Any]], str] | None = None
    caption: Callable[[dict[str, Any]], str] | None = None
    reduces: Callable[[dict[str, Any], Shape, Shape], bool] = _no
    widens: Callable[[dict[str, Any], Shape], bool] = _no
    profiled: Callable[[dict[str, Any], Cost], Counter[str]] = lambda args, cost: cost.flops_by_op
    keras_classes: tuple[str, ...] = ()
    from_keras: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    keras_folds: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]] = field(
        default_factory=dict
    )
    import_defaults: tuple[str, ...] = ()

    def resolve(self, args: dict[str, Any]) -> tuple[dict[str, Any], list[FieldBad]]:
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

    # What every consumer calls: one signature for layers and merges (see `Merge`).

    def op_shape(self, args: dict[str, Any], inputs: Sequence[Shape]) -> Shape:
        return self.shape(args, inputs[0])

    def op_cost(self, args: dict[str, Any], inputs: Sequence[Shape], out: Shape) -> Cost:
        return self.cost(args, inputs[0], out)

    def layers(self, args: dict[str, Any], name: str) -> list[Any]:
        return self.keras(args, name)

    def text(self, args: dict[str, Any]) -> str:
        """The resolved arguments in a few words: `conv 3x3/2 valid bn relu`."""
        words = [self.title(args) if self.title else self.name]
        strides: Any = args.get("strides") or args.get("pool")
        if "strides" in self.fields and strides and tuple(strides) != (1, 1):
            words[0] += f"/{strides[0]}" if strides[0] == strides[1] else f"/{_by(strides)}"
        if args.get("padding") == "valid":
            words.append("valid")
        if args.get("groups", 1) > 1:
            words.append(f"groups {args['groups']}")
        if args.get("depth_multiplier", 1) > 1:
            words.append(f"x{args['depth_multiplier']}")
        if args.get("batchnorm"):
            words.append("bn+scale" if args["batchnorm"]["scale"] else "bn")  # bn: no gamma, as Inception
        elif args.get("bias"):
            words.append("bias")
        if args.get("activation"):
            words.append(args["activation"])
        return " ".join(words)

    def base_name(self, args: dict[str, Any]) -> str:
        return self.label(args) if self.label else self.name

    def caption_of(self, args: dict[str, Any]) -> str:
        return self.caption(args) if self.caption else self.name


def _by(size: Sequence[int]) -> str:
    return f"{size[0]}x{size[1]}"


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


KINDS: dict[str, Kind] = {}
MERGES: dict[str, Merge] = {}  # filled below, by register_merge
BLOCK_OPS: dict[str, Kind] = {}  # kinds blocks add that specs do not write as layers


def register_kind(kind: Kind) -> Kind:
    """Adds a layer kind: specs, the JSON Schema, reports, the builder, the profiler check
    and diagrams all take it from here. Returns it (so it can be kept as a constant)."""
    if kind.name in KINDS or kind.name in MERGES or kind.name in BLOCK_OPS:
        raise ValueError(f"a layer kind or merge named '{kind.name}' is already registered")
    if kind.name in ("block", "inception", "templates", "defaults"):
        raise ValueError(f"'{kind.name}' is a word of the spec language, not a free kind name")
    KINDS[kind.name] = kind
    return kind


_register = register_kind


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


# conv -----------------------------------------------------------------------------------

_CONV_FIELDS = {
    "filters": Field(POS_INT, doc="output channels"),
    "kernel": Field(SIZE2, doc="kernel size, k or [height, width]"),
    "strides": Field(SIZE2, 1, "stride, s or [height, width]"),
    "padding": Field(PADDING, "same", "same keeps size/stride; valid shrinks by kernel-1"),
    "activation": Field(ACTIVATION, "relu", "applied after batch norm"),
    "batchnorm": Field(BATCHNORM, False, "batch norm after the conv: true, false or options"),
    "bias": Field(BOOL, True, "add a bias (usually false when batch norm follows)"),
}


def _conv_shape(args: dict[str, Any], shape: Shape) -> Shape:
    channels = _spatial("conv", shape)[2]
    groups = args["groups"]
    if channels % groups or args["filters"] % groups:
        raise ShapeError(
            f"groups dividing both input channels ({channels}) and filters ({args['filters']})",
            str(groups),
            "groups",
        )
    return (*_windowed("conv", shape, args["kernel"], args, "kernel"), args["filters"])


def _conv_cost(args: dict[str, Any], inp: Shape, out: Shape) -> Cost:
    kh, kw = args["kernel"]
    weights = kh * kw * (inp[2] // args["groups"]) * out[2]
    macs = out[0] * out[1] * weights
    return Cost(weights, weights, macs, Counter(Conv2D=2 * macs)) + _post(args, out)


def _post_names(args: dict[str, Any], name: str) -> list[str]:
    """Names of the batch norm and activation after a conv-like layer, in build order."""
    bn = [f"{name}_bn"] if args.get("batchnorm") else []
    return bn + ([f"{name}_{args['activation']}"] if args.get("activation") else [])


def _post_layers(args: dict[str, Any], name: str) -> list[Any]:
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


def _conv_keras(class_name: str, option: str) -> Callable[[dict[str, Any], str], list[Any]]:
    """Keras layers of a conv-like kind: the conv, then its batch norm and activation.
    `option` is the one argument the kinds differ in (groups, depth_multiplier)."""

    def build(args: dict[str, Any], name: str) -> list[Any]:
        from keras import layers

        conv = getattr(layers, class_name)(
            args["filters"],
            args["kernel"],
            strides=args["strides"],
            padding=args["padding"],
            use_bias=args["bias"],
            name=name,
            **{option: args[option]},
        )
        return [conv, *_post_layers(args, name)]

    return build


def _hw(size: Sequence[int]) -> str:
    return f"{size[0]}×{size[1]}"


def _conv_caption(kind: str) -> Callable[[dict[str, Any]], str]:
    def caption(a: dict[str, Any]) -> str:
        text = f"{kind} {_hw(a['kernel'])}"
        if a["strides"] != (1, 1):
            text += f" /{a['strides'][0]}" if a["strides"][0] == a["strides"][1] else f" /{_hw(a['strides'])}"
        if a.get("groups", 1) > 1:
            text += f", {a['groups']} groups"
        if a.get("padding") == "valid":
            text += ", valid"
        if a.get("batchnorm"):
            text += ", bn"
        if a.get("activation"):
            text += f", {a['activation']}"
        return text

    return caption


def _conv_reduces(a: dict[str, Any], inp: Shape, out: Shape) -> bool:
    """A 1×1 conv that only shrinks channels: stride 1, no groups, fewer out than in."""
    return a["kernel"] == (1, 1) and a["strides"] == (1, 1) and a["groups"] == 1 and out[-1] < inp[-1]


def _conv_widens(a: dict[str, Any], wider: Shape) -> bool:
    """A k×k conv (k > 1) can read the channels a removed 1×1 bottleneck read."""
    return bool(a["kernel"] != (1, 1) and wider[-1] % a.get("groups", 1) == 0)


def _conv_from_keras(option: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A Conv2D or SeparableConv2D config as conv fields; `option` as in `_conv_keras`."""

    def read(cfg: dict[str, Any]) -> dict[str, Any]:
        _keras_2d(cfg)
        body = {
            "filters": cfg["filters"],
            "kernel": _keras_size(cfg["kernel_size"]),
            "strides": _keras_size(cfg["strides"]),
            "padding": cfg["padding"],
            option: cfg.get(option, 1),
            "bias": bool(cfg["use_bias"]),
        }
        activation = _keras_activation(cfg.get("activation"))
        return {**body, "batchnorm": False, "activation": activation}

    return read


def _fold_batchnorm(body: dict[str, Any], bn: dict[str, Any]) -> dict[str, Any] | None:
    """A batch norm right after a conv without its own activation is the conv's `batchnorm`."""
    if body["activation"] is not None or body["batchnorm"]:
        return None
    changed = {k: v for k, v in bn.items() if BN_DEFAULTS[k] != v}  # only what differs
    return {**body, "batchnorm": changed or True}


def _fold_activation(body: dict[str, Any], act: dict[str, Any]) -> dict[str, Any] | None:
    """An activation after a conv (or its batch norm) without one is the conv's `activation`."""
    if body["activation"] is not None:
        return None
    return {**body, "activation": act["activation"]}


# Folded in the order `_post_layers` builds them.
_CONV_FOLDS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]] = {
    "batchnorm": _fold_batchnorm,
    "activation": _fold_activation,
}
_CONV_IMPORT_DEFAULTS = ("activation", "padding", "bias", "batchnorm")


def _conv_profiled(a: dict[str, Any], cost: Cost) -> Counter[str]:
    # On CPU, Keras runs grouped convolutions inside an XLA-compiled function that the
    # profiler cannot see into: it counts no Conv2D FLOPs for them (their bias adds it sees).
    if a["groups"] > 1:
        return cost.flops_by_op - Counter(Conv2D=cost.flops_by_op["Conv2D"])
    return cost.flops_by_op


_register(
    Kind(
        "conv",
        "2-D convolution, then optional batch norm and activation",
        {**_CONV_FIELDS, "groups": Field(POS_INT, 1, "channel groups (grouped convolution)")},
        _conv_shape,
        _conv_cost,
        _conv_keras("Conv2D", "groups"),
        derived=_post_names,
        label=lambda a: f"conv{a['kernel'][0]}x{a['kernel'][1]}",
        title=lambda a: f"conv {_by(a['kernel'])}",
        caption=_conv_caption("conv"),
        reduces=_conv_reduces,
        widens=_conv_widens,
        profiled=_conv_profiled,
        keras_classes=("Conv2D",),
        from_keras=_conv_from_keras("groups"),
        keras_folds=_CONV_FOLDS,
        import_defaults=_CONV_IMPORT_DEFAULTS,
    )
)

# sepconv --------------------------------------------------------------------------------


def _sepconv_shape(args: dict[str, Any], shape: Shape) -> Shape:
    return (*_windowed("sepconv", shape, args["kernel"], args, "kernel"), args["filters"])


def _sepconv_cost(args: dict[str, Any], inp: Shape, out: Shape) -> Cost:
    kh, kw = args["kernel"]
    mid = inp[2] * args["depth_multiplier"]
    depthwise, pointwise = kh * kw * mid, mid * out[2]
    pixels = out[0] * out[1]
    flops = Counter(DepthwiseConv2dNative=2 * pixels * depthwise, Conv2D=2 * pixels * pointwise)
    params = depthwise + pointwise
    return Cost(params, params, pixels * (depthwise + pointwise), flops) + _post(args, out)


_register(
    Kind(
        "sepconv",
        "separable convolution (depthwise k×k, then pointwise 1×1), as in Xception",
        {**_CONV_FIELDS, "depth_multiplier": Field(POS_INT, 1, "depthwise outputs per input channel")},
        _sepconv_shape,
        _sepconv_cost,
        _conv_keras("SeparableConv2D", "depth_multiplier"),
        derived=_post_names,
        label=lambda a: f"sepconv{a['kernel'][0]}x{a['kernel'][1]}",
        title=lambda a: f"sepconv {_by(a['kernel'])}",
        caption=_conv_caption("sepconv"),
        widens=_conv_widens,
        keras_classes=("SeparableConv2D",),
        from_keras=_conv_from_keras("depth_multiplier"),
        keras_folds=_CONV_FOLDS,
        import_defaults=_CONV_IMPORT_DEFAULTS,
    )
)

# pools ----------------------------------------------------------------------------------

_POOL_FIELDS = {
    "pool": Field(SIZE2, doc="window size, k or [height, width]"),
    "strides": Field(SIZE2, None, "stride; defaults to the window size, as in Keras"),
    "padding": Field(PADDING, "same", "same or valid"),
}


def _pool_args(args: dict[str, Any]) -> dict[str, Any]:
    return {**args, "strides": args["strides"] or args["pool"]}


def _pool(kind: str, op: str, keras_name: str) -> Kind:
    def shape(args: dict[str, Any], inp: Shape) -> Shape:
        return (*_windowed(kind, inp, args["pool"], _pool_args(args), "pool"), inp[2])

    def cost(args: dict[str, Any], inp: Shape, out: Shape) -> Cost:
        kh, kw = args["pool"]
        return Cost(flops_by_op=Counter({op: kh * kw * _n(out)}))

    def keras_(args: dict[str, Any], name: str) -> list[Any]:
        from keras import layers

        a = _pool_args(args)
        return [getattr(layers, keras_name)(a["pool"], strides=a["strides"], padding=a["padding"], name=name)]

    def caption(a: dict[str, Any]) -> str:
        strides = a["strides"] or a["pool"]
        text = f"{kind} {_hw(a['pool'])} /{strides[0] if strides[0] == strides[1] else _hw(strides)}"
        return text + (", valid" if a.get("padding") == "valid" else "")

    def from_keras(cfg: dict[str, Any]) -> dict[str, Any]:
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
        shape,
        cost,
        keras_,
        shorthand="pool",
        label=lambda a: f"{kind}{a['pool'][0]}x{a['pool'][1]}",
        title=lambda a: f"{kind} {_by(a['pool'])}",
        caption=caption,
        keras_classes=(keras_name,),
        from_keras=from_keras,
        import_defaults=("padding",),
    )


_register(_pool("maxpool", "MaxPool", "MaxPooling2D"))
_register(_pool("avgpool", "AvgPool", "AveragePooling2D"))

# gap, flatten, dropout, activation, batchnorm, dense ------------------------------------


def _keras_plain(class_name: str, **fixed: Any) -> Callable[[dict[str, Any], str], list[Any]]:
    def build(args: dict[str, Any], name: str) -> list[Any]:
        from keras import layers

        return [getattr(layers, class_name)(**fixed, **args, name=name)]

    return build


def _gap_from_keras(cfg: dict[str, Any]) -> dict[str, Any]:
    _keras_2d(cfg)
    if cfg.get("keepdims"):
        raise Bad("keepdims false (a flat output)", value="keepdims true")
    return {}


def _flatten_from_keras(cfg: dict[str, Any]) -> dict[str, Any]:
    _keras_2d(cfg)
    return {}


def _dropout_from_keras(cfg: dict[str, Any]) -> dict[str, Any]:
    if cfg.get("noise_shape") is not None:
        raise Bad("dropout without noise_shape", value=repr(cfg["noise_shape"]))
    return {"rate": float(cfg["rate"])}


def _activation_from_keras(cfg: dict[str, Any]) -> dict[str, Any]:
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


def _batchnorm_from_keras(cfg: dict[str, Any]) -> dict[str, Any]:
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


_register(
    Kind(
        "gap",
        "global average pooling to (channels,)",
        {},
        lambda args, inp: (_spatial("gap", inp)[2],),
        lambda args, inp, out: Cost(flops_by_op=Counter(Mean=_n(inp))),
        _keras_plain("GlobalAveragePooling2D"),
        caption=_words("global average pool"),
        keras_classes=("GlobalAveragePooling2D",),
        from_keras=_gap_from_keras,
    )
)
_register(
    Kind(
        "gmaxpool",
        "global max pooling to (channels,)",
        {},
        lambda args, inp: (_spatial("gmaxpool", inp)[2],),
        # TensorFlow's profiler has no FLOP rule for Max; like Relu it counts none.
        lambda args, inp, out: Cost(),
        _keras_plain("GlobalMaxPooling2D"),
    )
)
_register(
    Kind(
        "flatten",
        "flatten to (features,)",
        {},
        lambda args, inp: (_n(inp),),
        lambda args, inp, out: Cost(),
        _keras_plain("Flatten"),
        keras_classes=("Flatten",),
        from_keras=_flatten_from_keras,
    )
)
_register(
    Kind(
        "dropout",
        "dropout (identity at inference)",
        {"rate": Field(RATE, doc="fraction of units dropped while training")},
        lambda args, inp: inp,
        lambda args, inp, out: Cost(),
        _keras_plain("Dropout"),
        shorthand="rate",
        title=lambda a: f"dropout {a['rate']:g}",
        caption=lambda a: f"dropout {a['rate']:g}",
        keras_classes=("Dropout",),
        from_keras=_dropout_from_keras,
    )
)
_register(
    Kind(
        "activation",
        "an activation on its own",
        {"activation": Field(ACTIVATION, doc="relu, relu6, sigmoid, tanh or softmax")},
        lambda args, inp: inp,
        lambda args, inp, out: activation_cost(args["activation"], _n(out)),
        lambda args, name: _keras_plain("Activation")({"activation": args["activation"] or "linear"}, name),
        shorthand="activation",
        label=lambda a: a["activation"] or "linear",
        caption=lambda a: a["activation"] or "linear",
        keras_classes=("Activation", "ReLU"),
        from_keras=_activation_from_keras,
    )
)
_register(
    Kind(
        "batchnorm",
        "batch normalisation on its own",
        {
            "scale": Field(BOOL, True, "learn a gamma"),
            "epsilon": Field(POSITIVE, 1e-3, "added to the variance"),
            "momentum": Field(RATE, 0.99, "of the moving statistics"),
        },
        lambda args, inp: inp,
        lambda args, inp, out: batchnorm_cost(out[-1], _n(out), args["scale"]),
        _keras_plain("BatchNormalization"),
        label=_words("bn"),
        keras_classes=("BatchNormalization",),
        from_keras=_batchnorm_from_keras,
    )
)


def _dense_shape(args: dict[str, Any], inp: Shape) -> Shape:
    if len(inp) != 1:
        raise ShapeError("a flat (features,) input for 'dense' (add gap or flatten first)", f"an input of shape {fmt_shape(inp)}")
    return (args["units"],)


def _dense_cost(args: dict[str, Any], inp: Shape, out: Shape) -> Cost:
    weights = inp[0] * out[0]
    return Cost(weights, weights, weights, Counter(MatMul=2 * weights)) + _post(args, out)


def _dense_keras(args: dict[str, Any], name: str) -> list[Any]:
    from keras import layers

    return [layers.Dense(args["units"], activation=args["activation"], use_bias=args["bias"], name=name)]


_register(
    Kind(
        "dense",
        "fully connected layer",
        {
            "units": Field(POS_INT, doc="output features"),
            "activation": Field(ACTIVATION, None, "e.g. softmax for class probabilities"),
            "bias": Field(BOOL, True, "add a bias"),
        },
        _dense_shape,
        _dense_cost,
        _dense_keras,
        shorthand="units",
        title=lambda a: f"dense {a['units']}",
        caption=lambda a: "dense" + (f", {a['activation']}" if a.get("activation") else ""),
        keras_classes=("Dense",),
        from_keras=lambda cfg: {
            "units": cfg["units"],
            "activation": _keras_activation(cfg.get("activation")),
            "bias": bool(cfg["use_bias"]),
        },
    )
)

# ---------------------------------------------------------------------------------------
# Merges: how a block joins its branches. Same idea as a kind, over several inputs.


@dataclass(frozen=True)
class Merge:
    """How a block joins its branches: a kind over several inputs, one per branch."""

    name: str
    doc: str
    shape: Callable[[list[Shape]], Shape]
    cost: Callable[[list[Shape], Shape], Cost]
    keras: Callable[[str], Any]
    # How `inception-kit import` reads it, as for a kind: the Keras merge classes, and their
    # config as the block's fields (raising `Bad(expected, value=received)` where it cannot).
    keras_classes: tuple[str, ...] = ()
    from_keras: Callable[[dict[str, Any]], dict[str, Any]] = lambda cfg: {}

    def op_shape(self, args: dict[str, Any], inputs: Sequence[Shape]) -> Shape:
        return self.shape(list(inputs))

    def derived(self, args: dict[str, Any], name: str) -> list[str]:
        return []

    def op_cost(self, args: dict[str, Any], inputs: Sequence[Shape], out: Shape) -> Cost:
        return self.cost(list(inputs), out)

    def layers(self, args: dict[str, Any], name: str) -> list[Any]:
        return [self.keras(name)]

    def text(self, args: dict[str, Any]) -> str:
        return self.name

    def base_name(self, args: dict[str, Any]) -> str:
        return self.name

    def caption_of(self, args: dict[str, Any]) -> str:
        return self.name

    def profiled(self, args: dict[str, Any], cost: Cost) -> Counter[str]:
        return cost.flops_by_op

    def reduces(self, args: dict[str, Any], inp: Shape, out: Shape) -> bool:
        return False

    def widens(self, args: dict[str, Any], wider: Shape) -> bool:
        return False


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


def _concat_from_keras(cfg: dict[str, Any]) -> dict[str, Any]:
    axis = cfg.get("axis", -1)
    if axis not in (-1, 3):
        raise Bad("concatenation along the channels (axis -1)", value=f"axis {axis}")
    return {}


def _keras_merge(class_name: str) -> Callable[[str], Any]:
    def build(name: str) -> Any:
        from keras import layers

        return getattr(layers, class_name)(name=name)

    return build


def register_merge(merge: Merge) -> Merge:
    """Adds a way for blocks to join their branches (`merge:` in a spec)."""
    if merge.name in MERGES or merge.name in KINDS or merge.name in BLOCK_OPS:
        raise ValueError(f"a layer kind or merge named '{merge.name}' is already registered")
    MERGES[merge.name] = merge
    return merge


register_merge(
    Merge(
        "concat",
        "concatenate along channels",
        _concat_shape,
        lambda shapes, out: Cost(),
        _keras_merge("Concatenate"),
        keras_classes=("Concatenate",),
        from_keras=_concat_from_keras,
    )
)
register_merge(
    Merge(
        "add",
        "element-wise sum (residual)",
        _add_shape,
        lambda shapes, out: Cost(flops_by_op=Counter(AddV2=(len(shapes) - 1) * _n(out))),
        _keras_merge("Add"),
        keras_classes=("Add",),
    )
)


def scale_cost(shape: Shape) -> Cost:
    """A residual scale, built as keras Rescaling: x * scale + 0."""
    return Cost(flops_by_op=Counter(Mul=_n(shape), AddV2=_n(shape)))


def _rescaling(args: dict[str, Any], name: str) -> list[Any]:
    from keras import layers

    # Rescaling is a standard layer, so .keras files need no custom objects.
    return [layers.Rescaling(args["scale"], name=name)]


def _finite(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (-1e6 < v < 1e6):
        raise Bad("a finite number")
    return float(v)


# A residual branch's `scale` (Inception-ResNet): added by blocks, not written as a layer.
BLOCK_OPS.update(
    scale=Kind(
        "scale",
        "a residual branch multiplied by a constant before the sum (a block's `scale`)",
        {"scale": Field(FieldType("finite", _finite, {"type": "number"}), doc="the factor")},
        lambda args, inp: inp,
        lambda args, inp, out: scale_cost(out),
        _rescaling,
        title=lambda a: f"scale {a['scale']:g}",
    )
)


def kind_of(name: str) -> Kind | Merge:
    """The registry entry of any layer a plan holds: a kind, a merge or a block's scale."""
    entry = KINDS.get(name) or MERGES.get(name) or BLOCK_OPS.get(name)
    if entry is None:
        raise KeyError(f"no layer kind or merge named {name!r} is registered")
    return entry
