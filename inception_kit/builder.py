"""Keras 3 functional models from validated specs. Imports Keras only when called.

Every layer comes from its kind's entry in the registry and is named by the plan, so
the built model's layer names, shapes and parameters are the ones the report shows.
Only standard Keras layers are used: a saved `.keras` file reloads without custom objects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .kinds import KINDS, MERGES
from .shapes import BlockPlan, Plan, Step, plan
from .spec import Block, Layer, Model, Node, load_spec

INPUT_NAME = "image"


def _as_plan(spec: Model | Plan | str | os.PathLike[str]) -> Plan:
    if isinstance(spec, Plan):
        return spec
    if isinstance(spec, Model):
        return plan(spec)
    return plan(load_spec(spec))


PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # -> Keras dtype policy


def build_model(spec: Model | Plan | str | os.PathLike[str], precision: str | None = None) -> Any:
    """Builds a `keras.Model` from a spec (object, plan or YAML path).

    `precision=None` follows Keras' global dtype policy, as Keras layers do;
    "float32" or "bfloat16" set it for this model only. "bfloat16" computes in bfloat16 with float32 weights (Keras' mixed_bfloat16
    policy) and casts the output back to float32; on CPUs with AVX-512 BF16 it ran
    InceptionV3 about 1.4x faster, its logits within about 1% (relative L2) of float32
    (benchmarks/compare.py). The parameters are the same either way.
    """
    import keras

    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; received {precision!r}")
    p = _as_plan(spec)
    previous = keras.config.dtype_policy()
    if precision is not None:
        keras.config.set_dtype_policy(PRECISIONS[precision])  # layers take it when created
    try:
        inputs = keras.Input(shape=tuple(p.model.input_shape), name=INPUT_NAME)
        outputs = _apply(p.steps, inputs)  # (B, *plan.output_shape)
        if keras.config.dtype_policy().compute_dtype != "float32":  # float32 outputs for all
            outputs = keras.layers.Activation("linear", dtype="float32", name="output_float32")(outputs)
    finally:
        keras.config.set_dtype_policy(previous)
    return keras.Model(inputs, outputs, name=p.model.name)


def apply_block(
    node: Node | Sequence[Node],
    x: Any,
    defaults: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """Applies a Block, a Layer or a list of them to a Keras tensor inside your own model.

    The spec is validated against the tensor's shape first, so mistakes are SpecErrors
    with paths, not Keras tracebacks. Layer names come from the spec, as in build_model.
    """
    nodes = [node] if isinstance(node, (Block, Layer)) else list(node)
    shape = tuple(int(d) for d in x.shape[1:])
    p = plan(Model("applied", shape, nodes, defaults=dict(defaults or {})))
    return _apply(p.steps, x)


def _apply(steps: list[Step], x: Any) -> Any:
    for step in steps:
        if isinstance(step, BlockPlan):
            x = _block(step, x)
        else:
            for layer in KINDS[step.kind].keras(step.args, step.name):
                x = layer(x)
    return x


def _block(step: BlockPlan, x: Any) -> Any:
    from keras import layers

    outs = []
    for bname, steps in step.branches.items():
        y = _apply(steps, x)
        if step.scale is not None and steps:
            # Rescaling is a standard layer, so .keras files need no custom objects.
            y = layers.Rescaling(step.scale, name=f"{step.name}_{bname}_scale")(y)
        outs.append(y)
    y = MERGES[step.merge].keras(step.merge_name)(outs) if len(outs) > 1 else outs[0]
    if step.activation:
        y = layers.Activation(step.activation, name=f"{step.name}_{step.activation}")(y)
    return y
