"""Spec objects: LayerSpec, BlockSpec, ModelSpec (and AuxHead), and the one name rule.

These are what YAML specs parse into (`spec.parse`) and what Python users write directly;
field values are checked by the planner, so both get exactly the same checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import Mark
from .yaml_io import dump_yaml, plain

# Where a field's value came from, for error messages: its mark and an optional note.
Origin = tuple[Mark | None, str | None]


class LayerSpec:
    """One layer: a registry kind and its arguments, e.g. `LayerSpec("conv", filters=64, kernel=3)`."""

    def __init__(self, kind: str, /, name: str | None = None, **args: Any) -> None:
        self.kind = kind
        self.name = name
        self.args: dict[str, Any] = dict(args)
        self.origins: dict[str, Origin] = {}  # "" is the layer itself
        self.paths: dict[str, str] = {}  # field -> spec path, where it differs (table rows)
        self.source_path: str | None = None  # path in the YAML file, when read from one

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LayerSpec) and (self.kind, self.name, plain(self.args)) == (
            other.kind,
            other.name,
            plain(other.args),
        )

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        named = f", name={self.name!r}" if self.name else ""
        return f"Layer({self.kind!r}{named}{', ' if inner else ''}{inner})"

    def to_data(self) -> dict[str, Any]:
        body = {**({"name": self.name} if self.name else {}), **plain(self.args)}
        return {self.kind: body or None}


@dataclass(eq=True)
class BlockSpec:
    """Named branches from one input, merged by `concat` or `add`.

    An empty branch is the identity. With `merge="add"`, `scale` multiplies every
    non-identity branch before the sum (Inception-ResNet); `activation` follows the merge.
    """

    name: str | None
    branches: dict[str, list[Node]]
    merge: str = "concat"
    scale: float | None = None
    activation: str | None = None
    origins: dict[str, Origin] = field(default_factory=dict, compare=False, repr=False)
    source_path: str | None = field(default=None, compare=False, repr=False)

    def to_data(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.name:
            body["name"] = self.name
        body["merge"] = self.merge
        if self.scale is not None:
            body["scale"] = self.scale
        if self.activation is not None:
            body["activation"] = self.activation
        body["branches"] = {b: [n.to_data() for n in nodes] for b, nodes in self.branches.items()}
        return {"block": body}


Node = LayerSpec | BlockSpec


@dataclass(eq=True)
class AuxHead:
    """A side head for training (GoogLeNet's auxiliary classifiers): `layers` applied to
    the output of the top-level layer or block named `at`; its loss counts `weight` times."""

    at: str
    layers: list[Node]
    weight: float = 0.3  # the paper's
    origins: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # key -> Mark

    def to_data(self) -> dict[str, Any]:
        return {"at": self.at, "weight": self.weight, "layers": [n.to_data() for n in self.layers]}


@dataclass(eq=True)
class ModelSpec:
    """A whole network: input shape, defaults per kind, layers, and a head."""

    name: str
    input_shape: tuple[int, ...]
    layers: list[Node]
    head: list[Node] = field(default_factory=list)
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = field(default=None, compare=False)
    origins: dict[str, Origin] = field(default_factory=dict, compare=False, repr=False)
    aux: dict[str, AuxHead] = field(default_factory=dict)  # training-only side heads, by name

    def to_data(self) -> dict[str, Any]:
        """The expanded spec as plain data (templates and table rows written out)."""
        data: dict[str, Any] = {"name": self.name, "input": list(self.input_shape)}
        if self.defaults:
            data["defaults"] = plain(self.defaults)
        data["layers"] = [n.to_data() for n in self.layers]
        if self.head:
            data["head"] = [n.to_data() for n in self.head]
        if self.aux:
            data["aux"] = {name: head.to_data() for name, head in self.aux.items()}
        return data

    def to_yaml(self) -> str:
        return dump_yaml(self.to_data())

    def block(self, name: str) -> BlockSpec:
        """The block named `name`, carrying this spec's defaults, for `apply_block`."""
        from .blocks import find_block

        return find_block(self, name)


# The names of version 0.2, kept for one release: Keras has its own Model and Layer.
Layer = LayerSpec
Block = BlockSpec
Model = ModelSpec


# The one rule for names, checked by the parser and (for specs made in Python) the planner.
MAX_NAME_LENGTH = 64
NAME_RULE = f"a name of 1 to {MAX_NAME_LENGTH} letters, digits, '_', '-' or '.', not starting with '-' or '.'"


def valid_name(name: Any) -> bool:
    """The one rule for model, block, branch, layer and template names. Names become Keras
    layer names and parts of file names, so no '/', no NUL, no '.' or '..', no leading '-'."""
    if not isinstance(name, str):
        return False
    name = name.replace("{i}", "0")  # `{i}` stands for the copy's number in repeated items
    return len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name) is not None


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
