"""A kind registered here, in the test alone, goes through everything: validate, report,
the JSON Schema, the naive counterpart, build, the profiler check and diagrams.

No module of inception_kit knows the kind: the one `register_kind` call below is all.
It is the README's worked example ("Adding a layer kind").
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

import inception_kit as ik
from inception_kit.kinds import KINDS, POS_INT, Cost, Field, Kind, register_kind


def _pointwise_shape(args, shape):
    return (*shape[:-1], args["filters"])


def _pointwise_cost(args, inp, out):
    weights = inp[-1] * out[-1]
    macs = out[0] * out[1] * weights
    return Cost(weights + out[-1], weights + out[-1], macs, Counter(Conv2D=2 * macs, BiasAdd=out[0] * out[1] * out[-1]))


def _pointwise_keras(args, name):
    from keras import layers

    return [layers.Conv2D(args["filters"], 1, name=name)]


POINTWISE = Kind(
    "pointwise",
    "a 1×1 convolution with a bias and no activation (a linear bottleneck)",
    {"filters": Field(POS_INT, doc="output channels")},
    _pointwise_shape,
    _pointwise_cost,
    _pointwise_keras,
    shorthand="filters",
    title=lambda a: f"pointwise {a['filters']}",
    caption=lambda a: f"1×1 linear to {a['filters']}",
    reduces=lambda a, inp, out: out[-1] < inp[-1],  # a bottleneck when it narrows
)

SPEC = """
name: linear_bottleneck
input: [28, 28, 192]
layers:
  - pointwise: 16
  - conv: {filters: 32, kernel: 5}
"""


@pytest.fixture
def pointwise():
    register_kind(POINTWISE)
    yield POINTWISE
    del KINDS["pointwise"]


def test_a_registered_kind_validates_and_is_named_from_its_kind(pointwise):
    plan = ik.validate(ik.loads_spec(SPEC))
    assert [op.name for op in plan.ops()] == ["pointwise", "conv5x5"]
    assert plan.layers[1].layer_names == ("conv5x5", "conv5x5_relu")
    assert plan.layers[0].output_shape == (28, 28, 16)


def test_a_registered_kind_fields_are_checked_with_paths(pointwise):
    with pytest.raises(ik.SpecError) as err:
        ik.loads_spec(SPEC.replace("pointwise: 16", "pointwise: {filter: 16}"), file="lb.yaml")
    assert str(err.value) == ("lb.yaml:5:17: layers[0].filter: expected a pointwise field: filters; "
                              "received 'filter' (did you mean 'filters'?)")


def test_a_registered_kind_is_costed_and_reported_with_its_text(pointwise):
    data = json.loads(ik.report(ik.loads_spec(SPEC), "json"))
    first = data["layers"][0]
    assert first["kind"] == "pointwise" and first["config"] == "pointwise 16"
    assert first["macs"] == 28 * 28 * 192 * 16 == 2_408_448
    # Its kind says it reduces, so the naive counterpart drops it: the classic 120.4M 5x5.
    assert first["removed_in_naive"] is True
    assert data["model"]["naive_macs"] == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400
    naive = ik.naive(ik.validate(ik.loads_spec(SPEC)))
    assert [op.name for op in naive.ops()] == ["conv5x5"]
    assert naive.layers[0].input_shape == (28, 28, 192)


def test_a_registered_kind_is_in_the_json_schema(pointwise):
    import jsonschema
    import yaml

    from inception_kit.spec.schema import spec_schema

    schema = spec_schema()

    jsonschema.validate(yaml.safe_load(SPEC), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(SPEC.replace("pointwise: 16", "pointwise: -1")), schema)


def test_a_registered_kind_is_drawn_with_its_caption(pointwise):
    from inception_kit.viz.diagram import layer_text

    plan = ik.validate(ik.loads_spec(SPEC))
    assert layer_text(plan.layers[0]) == "1×1 linear to 16"


@pytest.mark.slow
def test_a_registered_kind_builds_and_equals_the_profiler(pointwise):
    from inception_kit.keras.verify import compare

    analysis = ik.analyse(ik.loads_spec(SPEC))
    model = ik.build_model(analysis.plan)
    assert model.get_layer("pointwise").count_params() == 192 * 16 + 16
    assert tuple(model.output.shape[1:]) == (28, 28, 32)
    assert [(c.what, c.analytic, c.measured) for c in compare(analysis, model) if not c.ok] == []
    naive = ik.build_model(ik.naive(analysis.plan))
    assert naive.count_params() == analysis.naive.params


def test_a_kind_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_kind(KINDS["conv"])
    with pytest.raises(ValueError, match="spec language"):
        register_kind(Kind("block", "", {}, _pointwise_shape, _pointwise_cost, _pointwise_keras))


def _pointwise_from_keras(cfg):
    """A linear 1×1 Conv2D with a bias is a pointwise; any other Conv2D is a conv's (None)."""
    one = [1, 1]
    if (list(cfg["kernel_size"]), list(cfg["strides"]), list(cfg["dilation_rate"])) != (one, one, one):
        return None
    if cfg["groups"] != 1 or not cfg["use_bias"] or cfg["activation"] not in (None, "linear"):
        return None
    return {"filters": cfg["filters"]}


@pytest.fixture
def importable_pointwise():
    # The same kind, declaring how it is imported: Keras' Conv2D, when it is a linear 1×1.
    kind = register_kind(replace(POINTWISE, keras_classes=("Conv2D",), from_keras=_pointwise_from_keras))
    yield kind
    del KINDS["pointwise"]


@pytest.mark.slow
def test_a_registered_kind_is_imported_from_keras(importable_pointwise):
    import keras
    import numpy as np

    from inception_kit.keras.importer import copy_weights, import_keras, supported_classes

    x = keras.Input((28, 28, 192))
    y = keras.layers.Conv2D(16, 1, name="reduce")(x)
    y = keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="wide")(y)
    model = keras.Model(x, y, name="linear_bottleneck")
    imported = import_keras(model)
    # Asked first, the registered kind takes the linear 1×1; the 5×5 stays a conv.
    assert imported.data["layers"] == [{"pointwise": 16}, {"conv": {"filters": 32, "kernel": 5}}]
    assert imported.model == ik.loads_spec(SPEC)
    assert supported_classes().count("Conv2D") == 1
    analysis = ik.analyse(imported.model)
    assert analysis.total.params == model.count_params()
    built = ik.build_model(analysis.plan)
    copy_weights(model, built, imported)
    inputs = np.random.default_rng(0).normal(size=(2, 28, 28, 192)).astype("float32")
    assert np.array_equal(np.asarray(model(inputs)), np.asarray(built(inputs)))
