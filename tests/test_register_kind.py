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
from inception_kit.errors import ArgumentError
from inception_kit.kinds import (
    POS_INT,
    Cost,
    Entry,
    Field,
    KerasRules,
    Kind,
    Merge,
    MergeRules,
    Rules,
    Words,
    get_kind,
    get_merge,
    list_kinds,
    list_merges,
    register_kind,
    register_merge,
    registry_scope,
)


def _pointwise_shape(args, shape):
    return (*shape[:-1], args["filters"])


def _pointwise_cost(args, inp, out):
    weights = inp[-1] * out[-1]
    macs = out[0] * out[1] * weights
    return Cost(
        weights + out[-1],
        weights + out[-1],
        macs,
        Counter(Conv2D=2 * macs, BiasAdd=out[0] * out[1] * out[-1]),
    )


def _pointwise_keras(args, name):
    from keras import layers

    return [layers.Conv2D(args["filters"], 1, name=name)]


POINTWISE = Kind(
    "pointwise",
    "a 1×1 convolution with a bias and no activation (a linear bottleneck)",
    {"filters": Field(POS_INT, doc="output channels")},
    Rules(
        _pointwise_shape, _pointwise_cost, reduces=lambda a, inp, out: out[-1] < inp[-1]
    ),  # narrows: a bottleneck
    KerasRules(_pointwise_keras),
    Words(config=lambda a: f"pointwise {a['filters']}", caption=lambda a: f"1×1 linear to {a['filters']}"),
    shorthand="filters",
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
    with registry_scope():
        register_kind(POINTWISE)
        yield POINTWISE


def test_a_registered_kind_validates_and_is_named_from_its_kind(pointwise):
    plan = ik.validate(ik.loads_spec(SPEC))
    assert [op.name for op in plan.ops()] == ["pointwise", "conv5x5"]
    assert plan.layers[1].layer_names == ("conv5x5", "conv5x5_relu")
    assert plan.layers[0].output_shape == (28, 28, 16)


def test_a_registered_kind_fields_are_checked_with_paths(pointwise):
    with pytest.raises(ik.SpecError) as err:
        ik.loads_spec(SPEC.replace("pointwise: 16", "pointwise: {filter: 16}"), file="lb.yaml")
    assert str(err.value) == (
        "lb.yaml:5:17: layers[0].filter: expected a pointwise field: filters; "
        "received 'filter' (did you mean 'filters'?)"
    )


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
        register_kind(get_kind("conv"))
    with pytest.raises(ValueError, match="already registered"):  # kinds and merges share one namespace
        register_merge(replace(get_merge("add"), name="conv"))
    with pytest.raises(ValueError, match="already registered"):
        register_kind(replace(POINTWISE, name="concat"))
    with pytest.raises(ValueError, match="spec language"):
        register_kind(replace(POINTWISE, name="block"))
    assert "pointwise" not in list_kinds()


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
    keras = replace(POINTWISE.keras, classes=("Conv2D",), from_keras=_pointwise_from_keras)
    with registry_scope():
        yield register_kind(replace(POINTWISE, keras=keras))


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


def test_the_registry_is_read_through_functions_and_not_changed_from_outside():
    import inception_kit.kinds as kinds

    assert not hasattr(kinds, "KINDS") and not hasattr(kinds, "MERGES")
    with pytest.warns(DeprecationWarning, match="ik.list_kinds"):
        old = ik.KINDS  # 0.3's dict, for one release: a read-only view
    assert list(old) == list_kinds() and old["conv"] is get_kind("conv")
    with pytest.raises(TypeError):
        old["mine"] = old["conv"]
    names = list_kinds()
    names.append("pointwise")  # a copy: the registry does not change
    assert "pointwise" not in list_kinds()
    assert list_kinds()[:2] == ["conv", "sepconv"] and list_merges() == ["concat", "add"]
    assert get_kind("conv").name == "conv" and get_merge("add").residual and not get_merge("concat").residual
    with pytest.raises(ArgumentError) as err:
        get_kind("sepcov")
    assert str(err.value).startswith("name: expected a registered layer kind: conv, sepconv, ")
    assert str(err.value).endswith("; received 'sepcov' (did you mean 'sepconv'?)")
    with pytest.raises(ArgumentError, match="did you mean 'concat'"):
        get_merge("conact")


def test_registry_scope_undoes_what_was_registered_inside():
    with registry_scope():
        register_kind(POINTWISE)
        assert "pointwise" in list_kinds()
    assert "pointwise" not in list_kinds()
    register_kind(POINTWISE)  # registers again once the scope undid it
    try:
        assert get_kind("pointwise") is POINTWISE
    finally:
        from inception_kit import kinds

        kinds._KINDS.pop("pointwise")  # test-only cleanup of a registration made outside a scope


def test_kinds_and_merges_answer_one_interface():
    from inception_kit.kinds import kind_of

    for name in [*list_kinds(), *list_merges(), "scale"]:
        assert isinstance(kind_of(name), Entry), name
    add = get_merge("add")
    assert add.op_shape({}, [(4, 4, 8), (4, 4, 8)]) == (4, 4, 8)
    assert add.op_cost({}, [(4, 4, 8)] * 3, (4, 4, 8)).flops_by_op == Counter(AddV2=2 * 4 * 4 * 8)
    assert (add.text({}), add.base_name({}), add.caption_of({}), dict(add.fields)) == (
        "add",
        "add",
        "add",
        {},
    )


def test_a_merge_registered_in_one_call_validates_and_costs():
    mul = Merge(
        "mul",
        "element-wise product (a gate)",
        MergeRules(
            lambda shapes: shapes[0],
            lambda shapes, out: Cost(flops_by_op=Counter(Mul=(len(shapes) - 1) * 16)),
        ),
        KerasRules(lambda args, name: []),
    )
    with registry_scope():
        register_merge(mul)
        block = ik.BlockSpec("g", {"a": [ik.LayerSpec("conv", filters=4, kernel=1)], "b": []}, merge="mul")
        a = ik.analyse(ik.ModelSpec("gate", (2, 2, 4), [block]))
        assert a.total.flops_by_op["Mul"] == 16
        with pytest.raises(ik.SpecError, match="no scale unless merge is add"):
            ik.validate(ik.ModelSpec("gate", (2, 2, 4), [replace(block, scale=0.5)]))
    assert "mul" not in list_merges()


CONV = {
    "filters": 8,
    "kernel": (3, 1),
    "strides": (2, 2),
    "padding": "valid",
    "activation": "relu",
    "batchnorm": {"scale": False, "epsilon": 1e-3, "momentum": 0.99},
    "bias": False,
}


def test_conv_like_kinds_word_their_own_fields():
    """The report's config and the caption come from each kind's words, not a generic text."""
    conv, sep = get_kind("conv"), get_kind("sepconv")
    assert conv.text({**CONV, "groups": 2}) == "conv 3x1/2 valid groups 2 bn relu"
    assert (
        sep.text({**CONV, "depth_multiplier": 3, "bias": True, "batchnorm": None})
        == "sepconv 3x1/2 valid x3 bias relu"
    )
    assert conv.caption_of({**CONV, "groups": 2}) == "conv 3×1 /2, 2 groups, valid, bn, relu"
    assert sep.caption_of({**CONV, "depth_multiplier": 3}) == "sepconv 3×1 /2, valid, bn, relu"
    assert (conv.base_name({**CONV, "groups": 1}), sep.base_name({**CONV, "depth_multiplier": 1})) == (
        "conv3x1",
        "sepconv3x1",
    )
    assert get_kind("maxpool").text({"pool": (3, 3), "strides": None, "padding": "same"}) == "maxpool 3x3/3"
    assert (
        get_kind("dense").text({"units": 10, "activation": "softmax", "bias": True})
        == "dense 10 bias softmax"
    )
    assert get_kind("activation").text({"activation": None}) == "activation"


def _dilated_cost(args, inp, out):  # as a conv's: the dilation spreads the kernel, not its weights
    kh, kw = args["kernel"]
    weights = kh * kw * inp[-1] * out[-1]
    return Cost(weights, weights, out[0] * out[1] * weights, Counter(Conv2D=2 * out[0] * out[1] * weights))


@pytest.fixture
def dilated():
    from inception_kit.kinds import conv_like

    kind = conv_like(
        "dilated",
        "dilated convolution (padding same)",
        "Conv2D",
        ("dilation_rate", Field(POS_INT, 1, "spacing of the kernel's taps")),
        _dilated_cost,
        option_words=lambda n: [f"dilation {n}"] if n > 1 else [],
    )
    with registry_scope():
        yield register_kind(kind)


DILATED = "name: dil\ninput: [8, 8, 4]\nlayers:\n  - dilated: {filters: 6, kernel: 3, dilation_rate: 2, batchnorm: true}\n"


def test_conv_like_makes_a_new_convolution_kind(dilated):
    a = ik.analyse(ik.loads_spec(DILATED))
    conv = a.rows[0]
    assert (
        conv.name == "dilated3x3"
        and get_kind("dilated").text(conv.args) == "dilated 3x3 dilation 2 bn+scale relu"
    )
    assert a.plan.layers[0].layer_names == ("dilated3x3", "dilated3x3_bn", "dilated3x3_relu")
    assert conv.cost.macs == 8 * 8 * 3 * 3 * 4 * 6
    assert a.plan.output_shape == (8, 8, 6)


@pytest.mark.slow
def test_a_conv_like_kind_builds_and_equals_the_profiler(dilated):
    from inception_kit.keras.verify import compare

    a = ik.analyse(ik.loads_spec(DILATED))
    model = ik.build_model(a.plan)
    assert model.get_layer("dilated3x3").get_config()["dilation_rate"] == (2, 2)
    assert [(c.what, c.analytic, c.measured) for c in compare(a, model) if not c.ok] == []
