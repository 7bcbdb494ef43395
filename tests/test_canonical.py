"""The canonical specs reproduce keras.applications exactly: parameters and block shapes.

Each Keras application is built here, in the same run, so nothing is copied from it.
Concatenating blocks are matched to the Keras layer of the same name (mixed0, mixed_5b, ...);
residual blocks, whose Keras merge layers are auto-named, to Keras' Add (or Inception-ResNet's
scaling) layers in order, and must share their name prefix with that block's Keras layers.
"""

from __future__ import annotations

import math

import keras
import pytest

import inception_kit
from conftest import SPECS
from inception_kit.planner import BlockPlan

NETWORKS = {
    "inception_v3": "InceptionV3",
    "inception_resnet_v2": "InceptionResNetV2",
    "xception": "Xception",
}
RESIDUAL_MERGES = ("Add", "CustomScaleLayer")  # CustomScaleLayer: x + scale * residual

pytestmark = pytest.mark.slow


def _summary(model) -> dict:
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    total = sum(math.prod(w.shape) for w in model.weights)
    return {
        "params": (total, trainable, total - trainable),
        "output": tuple(model.output.shape[1:]),
        "layers": [
            (type(layer).__name__, layer.name, tuple(layer.output.shape[1:])) for layer in model.layers
        ],
    }


@pytest.fixture(scope="module", params=list(NETWORKS))
def net(request):
    """One network: its spec path and plan, and summaries of the Keras app and our build."""
    keras.backend.clear_session()
    path = SPECS / f"{request.param}.yaml"
    spec = inception_kit.load_spec(path)
    app = getattr(keras.applications, NETWORKS[request.param])(weights=None)
    ours = inception_kit.build_model(spec)
    result = {"path": path, "plan": inception_kit.plan(spec), "keras": _summary(app), "ours": _summary(ours)}
    del app, ours
    keras.backend.clear_session()
    return result


def test_built_params_equal_keras(net):
    assert net["ours"]["params"] == net["keras"]["params"]  # (total, trainable, non-trainable)


def test_analytic_params_equal_keras(net):
    total = inception_kit.analyse(net["path"]).total
    assert (total.params, total.trainable, total.non_trainable) == net["keras"]["params"]


def test_output_shape_equals_keras(net):
    assert net["plan"].output_shape == net["ours"]["output"] == net["keras"]["output"]


def test_every_block_shape_equals_keras(net):
    keras_layers = net["keras"]["layers"]
    by_name = {name: shape for _, name, shape in keras_layers}
    residual = iter([shape for cls, _, shape in keras_layers if cls in RESIDUAL_MERGES])
    blocks = [b for b in net["plan"].layers if isinstance(b, BlockPlan)]
    assert blocks
    for block in blocks:
        if block.merge == "concat":
            assert block.name in by_name, f"Keras has no layer {block.name}"
            assert block.output_shape == by_name[block.name], block.name
        else:
            assert any(name.startswith(block.name + "_") for name in by_name), (
                f"Keras has no {block.name}_* layers"
            )
            assert block.output_shape == next(residual, None), block.name
    assert next(residual, None) is None, "Keras has more residual blocks than the spec"
