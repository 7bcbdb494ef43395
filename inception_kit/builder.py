"""Keras 3 functional models from validated specs. Imports Keras only when called.

Every layer comes from its kind's entry in the registry and is named by the plan, so
the built model's layer names, shapes and parameters are the ones the report shows.
Only standard Keras layers are used: a saved `.keras` file reloads without custom objects.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import SpecError
from .kinds import KINDS, MERGES
from .knobs import knobs_given
from .shapes import INPUT_NAME, BlockPlan, Plan, Step, plan
from .spec import Block, Layer, Model, Node


def _as_plan(spec: Model | Plan | str | os.PathLike[str], **knobs: Any) -> Plan:
    from . import load_spec  # the one that applies the knobs

    if isinstance(spec, Plan):
        return plan(load_spec(spec.model, **knobs)) if knobs_given(**knobs) else spec
    return plan(load_spec(spec, **knobs))


PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # -> Keras dtype policy


def build_model(
    spec: Model | Plan | str | os.PathLike[str],
    precision: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    aux: bool = False,
    **knobs: Any,
) -> Any:
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
    "float32" or "bfloat16" set it for this model only. "bfloat16" computes in bfloat16 with float32 weights (Keras' mixed_bfloat16
    policy) and casts the output back to float32; on CPUs with AVX-512 BF16 it ran
    InceptionV3 about 1.4x faster, its logits within about 1% (relative L2) of float32
    (benchmarks/compare.py). The parameters are the same either way.
    """
    import keras

    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; received {precision!r}")
    p = _as_plan(spec, **knobs)
    previous = keras.config.dtype_policy()
    if precision is not None:
        keras.config.set_dtype_policy(PRECISIONS[precision])  # layers take it when created
    try:
        inputs = keras.Input(shape=tuple(p.model.input_shape), name=INPUT_NAME)
        taps: dict[str, Any] = {}  # top-level outputs by name, where aux heads attach
        outputs = _apply(p.steps, inputs, taps)  # (B, *plan.output_shape)
        if aux and p.model.aux:
            from .aux import plan_aux

            heads = {name: _apply([a.block], taps[a.at]) for name, a in plan_aux(p).items()}
            outputs = {"output": outputs, **heads}
        if keras.config.dtype_policy().compute_dtype != "float32":  # float32 outputs for all
            named = outputs if isinstance(outputs, dict) else {"output": outputs}
            cast = {k: keras.layers.Activation("linear", dtype="float32", name=f"{k}_float32")(t)
                    for k, t in named.items()}
            outputs = cast if isinstance(outputs, dict) else cast["output"]
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
    nodes = [node] if isinstance(node, (Block, Layer)) else list(node)
    if name is not None:
        if len(nodes) != 1:
            raise SpecError.one("name", "a single Block or Layer to rename", f"{len(nodes)} nodes")
        nodes = [_renamed(nodes[0], name)]
    what = " and ".join(
        repr(n.name) if n.name else n.kind if isinstance(n, Layer) else "a block" for n in nodes[:2]
    )
    shape = getattr(x, "shape", None)
    if shape is None or any(d is None for d in shape[1:]):
        raise SpecError.one(
            "x", f"a Keras tensor with a known shape (batch, height, width, channels) for {what}",
            f"{type(x).__name__} of shape {shape}",
        )
    shape = tuple(int(d) for d in shape[1:])
    try:
        p = plan(Model("applied", shape, nodes, defaults=dict(defaults or {})))
    except SpecError:
        if len(shape) != 3 and isinstance(nodes[0], Block):
            raise SpecError.one("x", f"a rank-4 tensor (batch, height, width, channels) for block {what}",
                                f"a rank-{len(shape) + 1} tensor of shape {tuple(x.shape)}") from None
        raise
    taken = _upstream_names(x) & set(_step_names(p.steps))
    if taken:
        raise SpecError.one(
            "name", f"layer names not already in the graph of x (applying {what} twice? pass name=)",
            ", ".join(sorted(taken)[:3]),
        )
    return _apply(p.steps, x)


def _renamed(node: Node, name: str) -> Node:
    out = copy.copy(node)
    out.name = name
    return out


def _step_names(steps: list[Step]) -> Iterator[str]:
    """The name of every layer and merge of a plan (a conv's batch norm and activation take
    its name with a suffix, so a clash of these is a clash of those too)."""
    for step in steps:
        yield step.name
        if isinstance(step, BlockPlan):
            yield step.merge_name
            for branch in step.branches.values():
                yield from _step_names(branch)


def _upstream_names(x: Any) -> set[str]:
    """Names of the layers that x was computed by (Keras 3's graph history of a symbolic tensor)."""
    names: set[str] = set()
    stack, seen = [x], set()
    while stack:
        history = getattr(stack.pop(), "_keras_history", None)
        if history is None or id(history.operation) in seen:
            continue
        seen.add(id(history.operation))
        names.add(history.operation.name)
        stack.extend(history.operation._inbound_nodes[history.node_index].input_tensors)
    return names


def _apply(steps: list[Step], x: Any, taps: dict[str, Any] | None = None) -> Any:
    for step in steps:
        if isinstance(step, BlockPlan):
            x = _block(step, x)
        else:
            for layer in KINDS[step.kind].keras(step.args, step.name):
                x = layer(x)
        if taps is not None:
            taps[step.name] = x
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
