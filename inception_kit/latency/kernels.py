"""The kernels a runtime executes for each layer kind, how each is sampled, and the features
its regressor reads. Plain Python.

A plan's op is one kernel: a conv with its batch norm and activation is timed as the one
unit the runtime fuses it into (oneDNN and ONNX Runtime fold inference batch norm into the
conv and fuse the activation), so the regressor of `conv` learns the fused time. Every entry
of the registry (`kinds.entries()`: kinds, merges and block ops) needs an entry in `SAMPLERS`: its seed
configurations (raw fields and input shapes), widened by `vary`. The registry has no hook for
this yet, so the table lives here, keyed by kind name; `register_sampler` adds one for a kind
registered from outside, and `sampler_of` refuses a kind without one by name.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ..errors import ArgumentError
from ..kinds import ACTIVATION_FLOPS, Kind, Shape, ShapeError, entries, kind_of, list_merges

# The features every regressor reads, in this order (batch 1: the profile has a model per batch).
FEATURES = (
    "macs",
    "in_elems",
    "out_elems",
    "params",
    "h_in",
    "w_in",
    "c_in",
    "h_out",
    "w_out",
    "c_out",
    "kh",
    "kw",
    "sh",
    "sw",
    "groups",
    "batchnorm",
    "activation",
    "inputs",
)
# The work terms of the linear part (time grows with them; the constant is the kernel's fixed cost).
LINEAR = ("macs", "in_elems", "out_elems", "params")

MAX_ELEMENTS = 12_000_000  # per sample and input (48 MB of float32 at batch 1): bounds a sample's time
MAX_MACS = 4_000_000_000


@dataclass(frozen=True)
class Seed:
    """One configuration to sample: raw fields (resolved by the kind) and the input shapes."""

    fields: dict[str, Any]
    inputs: tuple[Shape, ...]


@dataclass
class Sample:
    """One kernel configuration: a kind, its resolved arguments, its input and output shapes."""

    kind: str
    args: dict[str, Any]
    inputs: tuple[Shape, ...]
    output: Shape
    origin: str = "seed"  # seed, preset, widened or adaptive
    features: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.features = self.features or features(self.kind, self.args, self.inputs, self.output)

    @property
    def key(self) -> str:
        """What identifies the configuration (resumed calibrations match measurements by it)."""
        return json.dumps([self.kind, _plain(self.args), [list(s) for s in self.inputs]], sort_keys=True)


def _plain(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in sorted(data.items())}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    return data


def _spatial(shape: Shape) -> tuple[int, int, int]:
    return (shape[0], shape[1], shape[2]) if len(shape) == 3 else (1, 1, math.prod(shape))


def features(kind: str, args: dict[str, Any], inputs: Sequence[Shape], out: Shape) -> list[float]:
    """The feature vector of one op (see FEATURES); the cost terms come from the registry."""
    cost = kind_of(kind).op_cost(args, inputs, out)
    h, w, c = _spatial(inputs[0])
    ho, wo, co = _spatial(out)
    kh, kw = args.get("kernel") or args.get("pool") or (1, 1)
    sh, sw = args.get("strides") or args.get("pool") or (1, 1)
    activation = args.get("activation")
    code = list(ACTIVATION_FLOPS).index(activation) + 1 if activation in ACTIVATION_FLOPS else 0
    groups = args.get("groups", 1) * args.get("depth_multiplier", 1)
    return [
        float(cost.macs),
        float(sum(math.prod(s) for s in inputs)),
        float(math.prod(out)),
        float(cost.params),
        h,
        w,
        c,
        ho,
        wo,
        co,
        kh,
        kw,
        sh,
        sw,
        groups,
        float(bool(args.get("batchnorm"))),
        code,
        len(inputs),
    ]


def _conv(filters: int, kernel: Any, shape: Shape, **more: Any) -> Seed:
    return Seed({"filters": filters, "kernel": kernel, **more}, (shape,))


# Seeds beside the presets' own layers: at least two per kind, so that a kind no preset uses
# (gmaxpool, batchnorm) is still measured.
SAMPLERS: dict[str, list[Seed]] = {
    "conv": [
        _conv(64, 3, (28, 28, 64)),
        _conv(32, 1, (28, 28, 192)),
        _conv(96, 5, (14, 14, 32), batchnorm=True),
        _conv(64, [1, 7], (17, 17, 128), bias=False, batchnorm={"scale": False}),
        _conv(64, 3, (56, 56, 64), strides=2, groups=4),
    ],
    "sepconv": [_conv(128, 3, (37, 37, 128)), _conv(256, 3, (19, 19, 256), batchnorm=True, activation=None)],
    "maxpool": [
        Seed({"pool": 3, "strides": 1}, ((28, 28, 192),)),
        Seed({"pool": 3, "strides": 2}, ((56, 56, 64),)),
    ],
    "avgpool": [
        Seed({"pool": 3, "strides": 1}, ((17, 17, 768),)),
        Seed({"pool": 5, "strides": 3}, ((14, 14, 512),)),
    ],
    "gap": [Seed({}, ((8, 8, 1024),)), Seed({}, ((7, 7, 2048),))],
    "gmaxpool": [Seed({}, ((8, 8, 1024),)), Seed({}, ((14, 14, 256),))],
    "flatten": [Seed({}, ((7, 7, 64),)), Seed({}, ((4, 4, 128),))],
    "dropout": [Seed({"rate": 0.4}, ((1024,),)), Seed({"rate": 0.2}, ((14, 14, 256),))],
    "activation": [
        Seed({"activation": "relu"}, ((28, 28, 192),)),
        Seed({"activation": "softmax"}, ((1000,),)),
    ],
    "batchnorm": [Seed({}, ((28, 28, 192),)), Seed({"scale": False}, ((17, 17, 768),))],
    "dense": [Seed({"units": 1000}, ((1024,),)), Seed({"units": 128, "activation": "relu"}, ((2048,),))],
    "concat": [
        Seed({}, ((28, 28, 64), (28, 28, 128), (28, 28, 32), (28, 28, 32))),
        Seed({}, ((17, 17, 192), (17, 17, 192))),
    ],
    "add": [Seed({}, ((17, 17, 384), (17, 17, 384))), Seed({}, ((35, 35, 256), (35, 35, 256)))],
    "scale": [Seed({"scale": 0.2}, ((17, 17, 1088),)), Seed({"scale": 0.1}, ((8, 8, 2080),))],
}


def register_sampler(kind: str, seeds: list[Seed]) -> None:
    """Adds the seed configurations of a kind registered from outside (`ik.register_kind`)."""
    if kind in SAMPLERS:
        raise ValueError(f"a latency sampler for '{kind}' is already registered")
    if not seeds:
        raise ValueError(f"a latency sampler for '{kind}' needs at least one seed")
    SAMPLERS[kind] = list(seeds)


def registry_kinds() -> list[str]:
    """Every entry of the registry a plan can hold: layer kinds, merges and block ops."""
    return [entry.name for entry in entries()]


def sampler_of(kind: str) -> list[Seed]:
    """The seeds of `kind`.

    Raises:
        ArgumentError: the kind has no sampler (registered without `register_sampler`).
    """
    if kind not in SAMPLERS:
        raise ArgumentError(
            "kind",
            "a layer kind with a latency sampler: " + ", ".join(SAMPLERS),
            kind,
            hint="add one with inception_kit.latency.register_sampler(kind, [Seed(...)])",
        )
    return SAMPLERS[kind]


def sample_of(kind: str, raw: dict[str, Any], inputs: Sequence[Shape], origin: str) -> Sample | None:
    """The sample of raw fields on `inputs`; None where the kind refuses them (a shape that
    does not fit) or the sample is too large to time quickly."""
    entry = kind_of(kind)
    if kind in list_merges():
        args: dict[str, Any] = {}
    else:
        args, bad = cast(Kind, entry).resolve(raw)  # kinds and block ops resolve fields; merges take none
        if bad:
            raise ValueError(f"a bad latency seed for '{kind}': {bad[0].field}: {bad[0].expected}")
    return checked(kind, args, tuple(tuple(s) for s in inputs), origin)


def checked(kind: str, args: dict[str, Any], inputs: tuple[Shape, ...], origin: str) -> Sample | None:
    try:
        out = kind_of(kind).op_shape(args, inputs)
    except ShapeError:
        return None
    if any(math.prod(s) > MAX_ELEMENTS for s in (*inputs, out)) or min(min(s) for s in (*inputs, out)) < 1:
        return None
    sample = Sample(kind, args, inputs, out, origin)
    return sample if sample.features[0] <= MAX_MACS else None


def _round8(n: float) -> int:
    return max(8, round(n / 8) * 8) if n >= 8 else max(1, round(n))


_FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0)
_KERNELS = ((1, 1), (3, 3), (5, 5), (7, 7), (1, 7), (7, 1), (1, 3), (3, 1))


def vary(sample: Sample, rng: random.Random, origin: str = "widened") -> Sample | None:
    """A configuration near `sample`: spatial size, channels, widths, kernel or stride changed
    (each with some chance); None where the result does not fit."""
    args = dict(sample.args)
    inputs = [list(s) for s in sample.inputs]
    if rng.random() < 0.5 and len(inputs[0]) == 3:
        f = rng.choice(_FACTORS)
        size = max(1, min(299, round(inputs[0][0] * f)))
        for s in inputs:
            s[0] = s[1] = size
    if rng.random() < 0.6:
        apart = [_round8(s[-1] * rng.choice(_FACTORS)) for s in inputs]
        try:  # inputs of their own widths where the kind takes them (concat), else one width (add)
            kind_of(sample.kind).op_shape(args, tuple((*s[:-1], c) for s, c in zip(inputs, apart)))
        except ShapeError:
            apart = [apart[0]] * len(inputs)
        for s, c in zip(inputs, apart):
            s[-1] = c
    for width in ("filters", "units"):
        if width in args and rng.random() < 0.6:
            args[width] = _round8(args[width] * rng.choice(_FACTORS))
    if "kernel" in args and rng.random() < 0.3:
        args["kernel"] = rng.choice(_KERNELS)
    if "strides" in args and args["strides"] is not None and rng.random() < 0.2:
        args["strides"] = (2, 2) if tuple(args["strides"]) == (1, 1) else (1, 1)
    return checked(sample.kind, args, tuple(tuple(s) for s in inputs), origin)
