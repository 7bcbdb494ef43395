"""Keras 3 functional models from validated specs. Imports Keras only when called.

Every layer comes from its kind's entry in the registry and is named by the plan, so
the built model's layer names, shapes and parameters are the ones the report shows.
Only standard Keras layers are used: a saved `.keras` file reloads without custom objects.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, SpecError
from ..kinds import kind_of
from ..loading import load
from ..planner import (
    DEFAULT_BUDGET,
    INPUT_NAME,
    OUTPUT_CAST_NAME,
    OUTPUT_NAME,
    BlockPlan,
    Op,
    Plan,
    Step,
    plan,
    walk,
)
from ..spec.types import BlockSpec, LayerSpec, ModelSpec, Node
from ._keras_internals import upstream_layer_names

if TYPE_CHECKING:
    import keras


PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # -> Keras dtype policy


def build_model(
    spec: ModelSpec | Plan | str | os.PathLike[str],
    precision: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    aux: bool = False,
    **knobs: Any,
) -> keras.Model:
    """Builds a `keras.Model` from a spec (object, plan, YAML path or preset name).

    `weights` is None (Keras' initializers), a keras.applications weight file (legacy HDF5,
    as Keras caches under ~/.keras/models) or "imagenet" (Keras downloads it) for the presets
    inception_v3, inception_resnet_v2 and xception; see `inception_kit.weights`.
    `aux=True` adds the spec's auxiliary heads (training only) as outputs: the model then
    returns a dict, {"output": ..., "aux1": ..., ...}; without them it is the inference graph.

    `knobs` are keras.applications' (`input_shape`, `include_top`, `pooling`, `classes`,
    `classifier_activation`), applied to the spec first: `build_model("inception_v3",
    include_top=False, pooling="avg")`.

    `precision=None` follows Keras' global dtype policy, as Keras layers do;
    "float32" or "bfloat16" set it for this model only. "bfloat16" computes in bfloat16 with
    float32 weights (Keras' mixed_bfloat16 policy) and casts the output back to float32 (its
    speed and accuracy: README, "Performance, measured"). The parameters are the same either way.
    """
    import keras

    if precision is not None and precision not in PRECISIONS:
        raise ArgumentError("precision", "one of " + ", ".join(PRECISIONS), precision)
    # Within its budget before Keras allocates anything: a plan's own, else the default.
    p = load(spec, budget=spec.budget if isinstance(spec, Plan) else DEFAULT_BUDGET, **knobs)
    previous = keras.config.dtype_policy()
    if precision is not None:
        keras.config.set_dtype_policy(PRECISIONS[precision])  # layers take it when created
    try:
        inputs = keras.Input(shape=tuple(p.model.input_shape), name=INPUT_NAME)
        taps: dict[str, Any] = {}  # top-level outputs by name, where aux heads attach
        outputs = apply_steps(p.steps, inputs, taps)  # (B, *plan.output_shape)
        if aux and p.aux:
            heads = {name: apply_steps([a.block], taps[a.at]) for name, a in p.aux.items()}
            outputs = {OUTPUT_NAME: outputs, **heads}
        if keras.config.dtype_policy().compute_dtype != "float32":  # float32 outputs for all
            # the casts' names are the plan's (reserved there, as every name is)
            cast_names = {OUTPUT_NAME: OUTPUT_CAST_NAME, **{k: a.cast_name for k, a in p.aux.items()}}
            named = outputs if isinstance(outputs, dict) else {OUTPUT_NAME: outputs}
            cast = {
                k: keras.layers.Activation("linear", dtype="float32", name=cast_names[k])(t)
                for k, t in named.items()
            }
            outputs = cast if isinstance(outputs, dict) else cast[OUTPUT_NAME]
    finally:
        keras.config.set_dtype_policy(previous)
    model = keras.Model(inputs, outputs, name=p.model.name)
    if weights is not None:
        from .weights import load_application_weights

        load_application_weights(model, weights, p.model.name)
    return model


def apply_block(
    node: Node | Sequence[Node],
    x: Any,
    defaults: dict[str, dict[str, Any]] | None = None,
    name: str | None = None,
) -> Any:
    """Applies a Block, a Layer or a list of them to a Keras tensor inside your own model.

    Take blocks from a spec with `spec.block("inc4a")`: they carry the spec's defaults, so
    the layers are the ones its report counts. `defaults` adds more (a node's own values win).
    `name` renames a single Block or Layer (its layers' names follow), to apply it twice.
    The spec is validated against the tensor's shape first, so mistakes are SpecErrors
    with paths, not Keras tracebacks. Layer names come from the spec, as in build_model.

    Raises:
        SpecError: `x` is not an image tensor the nodes accept, or a layer name is taken.
    """
    nodes = [node] if isinstance(node, (BlockSpec, LayerSpec)) else list(node)
    if name is not None:
        if len(nodes) != 1:
            raise SpecError.one("name", "a single Block or Layer to rename", f"{len(nodes)} nodes")
        nodes = [_renamed(nodes[0], name)]
    what = " and ".join(
        repr(n.name) if n.name else n.kind if isinstance(n, LayerSpec) else "a block" for n in nodes[:2]
    )
    shape = getattr(x, "shape", None)
    if shape is None or any(d is None for d in shape[1:]):
        raise SpecError.one(
            "x",
            f"a Keras tensor with a known shape (batch, height, width, channels) for {what}",
            f"{type(x).__name__} of shape {shape}",
        )
    shape = tuple(int(d) for d in shape[1:])
    try:
        p = plan(ModelSpec("applied", shape, nodes, defaults=dict(defaults or {})))
    except SpecError:
        if len(shape) != 3 and isinstance(nodes[0], BlockSpec):
            raise SpecError.one(
                "x",
                f"a rank-4 tensor (batch, height, width, channels) for block {what}",
                f"a rank-{len(shape) + 1} tensor of shape {tuple(x.shape)}",
            ) from None
        raise
    taken = upstream_layer_names(x) & {name for op in walk(p.steps) for name in op.layer_names}
    if taken:
        raise SpecError.one(
            "name",
            f"layer names not already in the graph of x (applying {what} twice? pass name=)",
            ", ".join(sorted(taken)[:3]),
        )
    return apply_steps(p.steps, x)


def _renamed(node: Node, name: str) -> Node:
    out = copy.copy(node)
    out.name = name
    return out


def apply_steps(steps: list[Step], x: Any, taps: dict[str, Any] | None = None) -> Any:
    """Applies planned steps to a Keras tensor: every layer as the plan names it. `taps`
    collects each step's output by name (where auxiliary heads attach)."""
    for step in steps:
        x = _block(step, x) if isinstance(step, BlockPlan) else apply_op(step, x)
        if taps is not None:
            taps[step.name] = x
    return x


def apply_op(op: Op, x: Any) -> Any:
    """One op of a plan: its kind's Keras layers (a merge takes the list of branch outputs)."""
    for layer in kind_of(op.kind).layers(op.args, op.name):
        x = layer(x)
    return x


def _block(step: BlockPlan, x: Any) -> Any:
    outs = {bname: apply_steps(steps, x) for bname, steps in step.branches.items()}
    y = outs[next(iter(outs))] if len(outs) == 1 else None
    for op in step.joins:
        if op.branch is not None:  # a residual scale, on its branch
            outs[op.branch] = apply_op(op, outs[op.branch])
            y = outs[op.branch] if len(outs) == 1 else y
        elif len(op.inputs) > 1:  # the merge
            y = apply_op(op, list(outs.values()))
        else:
            y = apply_op(op, y)
    return y
