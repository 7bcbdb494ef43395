"""keras.applications' knobs for every spec, as a transformation of the spec.

`input_shape`, `include_top`, `pooling`, `classes` and `classifier_activation` mean what they
mean in `keras.applications.InceptionV3(...)`. They rewrite the spec before it is planned, so
the report, the diagrams, training and export all see the same network.

A spec's **top** is its `head:` section (for the presets: global pooling, maybe dropout, and
the classifier, a dense layer). `include_top=False` drops the head; `pooling` then appends
`gap` ("avg") or `gmaxpool` ("max"), or nothing (None: the feature map is the output).
`classes` and `classifier_activation` set the units and activation of the head's last dense
layer. Plain Python: no TensorFlow here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..errors import SpecError, show
from ..kinds import ACTIVATION, Bad, fmt_shape, get_kind, list_kinds
from .types import LayerSpec, ModelSpec, Node

POOLINGS = {"avg": "gap", "max": "gmaxpool"}  # Keras' pooling= -> the layer kind appended
KEEP: Any = type("Keep", (), {"__repr__": lambda self: "KEEP"})()  # "as the spec says"
KNOBS = ("input_shape", "include_top", "pooling", "classes", "classifier_activation", "include_aux")


def apply_knobs(
    model: ModelSpec,
    *,
    input_shape: Sequence[int] | None = None,
    include_top: bool = True,
    pooling: str | None = None,
    classes: int | None = None,
    classifier_activation: str | None = KEEP,
    include_aux: bool = True,
) -> ModelSpec:
    """The spec with keras.applications' knobs applied; a new Model, `model` is untouched.

    Args:
        input_shape: (height, width, channels); None keeps the spec's.
        include_top: False drops the spec's head (its classifier).
        pooling: with include_top=False, "avg" or "max" global pooling, or None.
        classes: units of the head's last dense layer; None keeps the spec's.
        classifier_activation: that layer's activation (None is linear); KEEP keeps it.
        include_aux: False drops the spec's auxiliary heads (`aux:`; not a Keras knob).

    Raises:
        SpecError: a knob's value is wrong, or the spec has no classifier to change.
    """
    out = replace(model, layers=list(model.layers), head=list(model.head), origins=dict(model.origins))
    if input_shape is not None:
        out.input_shape = _input_shape(input_shape)
        out.origins.pop("input", None)  # the spec file's line no longer holds the value
    for knob, value in (("include_top", include_top), ("include_aux", include_aux)):
        if not isinstance(value, bool):
            raise SpecError.one(knob, "true or false", show(value))
    if pooling not in (None, *POOLINGS):
        raise SpecError.one("pooling", "one of avg, max or None", show(pooling))
    if include_top:
        out.head = _top(out, pooling, classes, classifier_activation)
        out.aux = {name: _aux_head(out, name, classes, classifier_activation) for name in out.aux}
    else:
        unset_values: tuple[tuple[str, Any, Any], ...] = (
            ("classes", classes, None),
            ("classifier_activation", classifier_activation, KEEP),
        )
        for knob, value, unset in unset_values:
            if value is not unset:
                raise SpecError.one(
                    knob, f"no {knob} with include_top=False (the classifier is dropped)", show(value)
                )
        out.head = [LayerSpec(POOLINGS[pooling])] if pooling else []
        out.aux = {}  # side classifiers go with the top
    if not include_aux:
        out.aux = {}
    return out


def _top(
    model: ModelSpec, pooling: str | None, classes: int | None, classifier_activation: Any
) -> list[Node]:
    if pooling is not None:
        raise SpecError.one(
            "pooling",
            "no pooling with include_top (the top pools already)",
            show(pooling),
            hint="pooling is for include_top=False, as in keras.applications",
        )
    if classes is not None or classifier_activation is not KEEP:
        return _set_classifier(model, classes, classifier_activation)
    return list(model.head)


def _aux_head(model: ModelSpec, name: str, classes: int | None, activation: Any) -> Any:
    """An auxiliary head classifies like the top: the same classes and activation."""
    head = model.aux[name]
    if classes is None and activation is KEEP:
        return head
    layers = _set_classifier(replace(model, head=list(head.layers)), classes, activation)
    return replace(head, layers=layers)


def misfit(model: ModelSpec, err: SpecError) -> SpecError:
    """The error for a spec valid as written that fails with a new input: the input is too
    small for one of its windows. One error, naming the first layer it fails at."""
    first = err.problems[0]  # in build order: the first layer whose output vanishes
    where = f"{first.mark}: " if first.mark else ""
    hint = f"it vanishes at {where}{first.path}: {first.expected}; received {first.received}"
    if first.path.startswith("aux."):
        hint += "; include_aux=False drops the auxiliary heads"
    return SpecError.one(
        "input_shape", "an input large enough for every layer", fmt_shape(model.input_shape), hint=hint
    )


def _input_shape(value: Any) -> tuple[int, int, int]:
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    )
    if not ok:
        raise SpecError.one("input_shape", "(height, width, channels) as positive integers", show(value))
    return (value[0], value[1], value[2])


def _set_classifier(model: ModelSpec, classes: int | None, activation: Any) -> list[Node]:
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise SpecError.one("classes", "a positive whole number", show(classes))
    if activation is not KEEP:
        try:
            activation = ACTIVATION.check(activation)
        except Bad as bad:
            raise SpecError.one("classifier_activation", bad.expected, show(activation)) from None
    head = list(model.head)
    at = next(
        (i for i in reversed(range(len(head))) if _classifies(head[i])),
        None,
    )
    if at is None:
        knob = "classes" if classes is not None else "classifier_activation"
        raise SpecError.one(
            knob,
            "a spec whose head has a dense layer (the classifier)",
            f"model '{model.name}' with no dense layer in its head",
        )
    dense = copy.copy(head[at])
    assert isinstance(dense, LayerSpec)  # _classifies said so
    dense.args = dict(dense.args)
    if classes is not None:
        dense.args["units"] = classes
    if activation is not KEEP:
        dense.args["activation"] = activation
    head[at] = dense
    return head


def _classifies(node: Node) -> bool:
    """A classifier is a layer of a kind with `units` (dense, or one registered like it)."""
    if not isinstance(node, LayerSpec):
        return False
    kind = get_kind(node.kind) if node.kind in list_kinds() else None
    return kind is not None and "units" in kind.fields


def knobs_given(**knobs: Any) -> dict[str, Any]:
    """The knobs that differ from 'as the spec says' (for passing on only what was set)."""
    defaults = {
        "input_shape": None,
        "include_top": True,
        "pooling": None,
        "classes": None,
        "classifier_activation": KEEP,
        "include_aux": True,
    }
    unknown = [k for k in knobs if k not in defaults]
    if unknown:
        raise TypeError(f"unknown knob {unknown[0]!r}; the knobs are: {', '.join(KNOBS)}")
    return {k: v for k, v in knobs.items() if v is not defaults[k]}
