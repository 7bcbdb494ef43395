"""The Keras builder: names, shapes and parameters equal the plan's; files reload."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import inception_kit as ik
from conftest import ROOT, SHIPPED, SPECS
from inception_kit.planner import iter_ops, walk

pytestmark = pytest.mark.slow  # every test here starts TensorFlow (make check leaves them out)

SMALL = [p for p in SHIPPED if p.stem not in ("inception_v3", "inception_resnet_v2", "xception")]


def keras_layers(model):
    return {layer.name: layer for layer in model.layers}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_layer_name_and_shape_equals_the_plan(path):
    a = ik.analyse(path)
    model = ik.build_model(a.plan)
    layers = keras_layers(model)
    for op in iter_ops(a.plan.steps):
        # A conv may be followed by its _bn and _<activation> layers: the last one is the output.
        tail = [
            n for n in (op.name, f"{op.name}_bn", f"{op.name}_{op.args.get('activation')}") if n in layers
        ]
        assert tail and tail[0] == op.name, op.name
        assert tuple(layers[tail[-1]].output.shape[1:]) == op.output_shape, op.name
    for row in a.rows:  # merges, scales and post-merge activations are real layers too
        assert row.name in layers, row.name
        assert tuple(layers[row.name].output.shape[1:]) == row.output_shape
    assert model.count_params() == a.total.params
    assert tuple(model.output.shape[1:]) == a.plan.output_shape


def test_names_are_stable_across_builds():
    spec = ik.load_spec(SPECS / "googlenet.yaml")
    first = [l.name for l in ik.build_model(spec).layers]
    keras.backend.clear_session()
    assert [l.name for l in ik.build_model(spec).layers] == first
    assert "inc3a_b2_conv3x3" in first and "inc3a_b3_conv5x5" in first and "inc3a_concat" in first


def test_keras_defaults_of_inceptionv3_are_expressible():
    m = ik.Model(
        "v3conv", (9, 9, 3), [ik.Layer("conv", filters=4, kernel=3, bias=False, batchnorm={"scale": False})]
    )
    model = ik.build_model(m)
    conv, bn, act = model.layers[1:]
    assert (type(conv).__name__, conv.use_bias) == ("Conv2D", False)
    assert (type(bn).__name__, bn.scale, bn.center) == ("BatchNormalization", False, True)
    assert (type(act).__name__, act.get_config()["activation"]) == ("Activation", "relu")


def test_keras_file_reloads_without_custom_objects(tmp_path):
    model = ik.build_model(ROOT / "tests/specs/valid/residual_and_nested.yaml")
    x = np.random.default_rng(0).normal(size=(2, *model.input_shape[1:])).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)  # no custom_objects
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_get_config_survives_json():
    model = ik.build_model(SPECS / "inception_3a.yaml")
    config = json.loads(json.dumps(model.get_config()))
    clone = keras.Model.from_config(config)
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    assert clone.count_params() == model.count_params()


def test_apply_block_inside_a_users_functional_model():
    inputs = keras.Input((28, 28, 192))
    block = ik.Block(
        "mine",
        {
            "a": [ik.Layer("conv", filters=16, kernel=1)],
            "b": [
                ik.Layer("conv", filters=8, kernel=1),
                ik.Layer("conv", filters=8, kernel=[1, 7]),
                ik.Layer("conv", filters=8, kernel=[7, 1]),
            ],
        },
    )
    x = ik.apply_block(block, inputs)  # (B, 28, 28, 24)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    assert tuple(model.get_layer("mine_concat").output.shape) == (None, 28, 28, 24)
    block_params = ik.analyse(ik.Model("b", (28, 28, 192), [block])).total.params
    assert model.count_params() == block_params + 24 * 3 + 3


def test_apply_block_reports_spec_errors_against_the_tensor():
    inputs = keras.Input((5, 5, 8))
    with pytest.raises(
        ik.SpecError, match=r"layers\[0\].kernel: expected a kernel no larger than the input height \(5\)"
    ):
        ik.apply_block(ik.Layer("conv", filters=4, kernel=7, padding="valid"), inputs)


DISTRIBUTED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import inception_kit as ik
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = ik.build_model("specs/inception_3a.yaml")
print("REPLICAS", strategy.num_replicas_in_sync)
print("MIRRORED", type(model.weights[0].value).__name__, model.count_params())  # the tf.Variable under Keras
"""


def test_builds_under_a_mirrored_strategy_over_two_cpus():
    r = subprocess.run(
        [sys.executable, "-c", DISTRIBUTED], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = dict(
        line.split(" ", 1) for line in r.stdout.splitlines() if line.startswith(("REPLICAS", "MIRRORED"))
    )
    assert lines["REPLICAS"] == "2"
    kind, params = lines["MIRRORED"].split()
    assert "Mirrored" in kind
    assert int(params) == ik.analyse(SPECS / "inception_3a.yaml").total.params


def test_bfloat16_precision_keeps_params_and_float32_outputs():
    spec = ik.load_spec(SPECS / "inception_3a.yaml")
    full, half = ik.build_model(spec), ik.build_model(spec, precision="bfloat16")
    assert half.count_params() == full.count_params()
    half.set_weights(full.get_weights())  # weights stay float32 under mixed_bfloat16
    x = np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 192)).astype("float32")
    a, b = full.predict(x, verbose=0), half.predict(x, verbose=0)
    assert b.dtype == np.float32 and keras.config.dtype_policy().name == "float32"
    rel = np.linalg.norm(a - b) / np.linalg.norm(a)
    assert 0 < rel < 0.05  # bfloat16 keeps 8 bits of mantissa: not equal, but close


AUX_SPEC = (
    "name: t\ninput: [8, 8, 3]\nlayers:\n"
    "  - conv: {name: stem, filters: 4, kernel: 3}\n"
    "  - conv: {name: LAST, filters: 4, kernel: 1}\n"
    "head: [gap, {dense: {units: 5, activation: softmax}}]\n"
    "aux:\n  side: {at: stem, layers: [gap, {dense: 5}]}\n"
)


def test_an_aux_heads_float32_cast_is_a_name_the_planner_reserves():
    # A user's layer named like the cast the builder adds under bfloat16 is refused by the plan,
    # before Keras would refuse the duplicate name.
    with pytest.raises(
        ik.SpecError,
        match=r"aux\.side: expected an aux head whose layer names the model does "
        r"not use already; received 'side_float32'",
    ):
        ik.loads_spec(AUX_SPEC.replace("LAST", "side_float32"))
    with pytest.raises(ik.SpecError, match=r"received 'side_head_gap'"):
        ik.loads_spec(AUX_SPEC.replace("LAST", "side_head_gap"))
    assert ik.plan(ik.loads_spec(AUX_SPEC)).aux["side"].cast_name == "side_float32"


def test_bfloat16_outputs_with_aux_heads_are_cast_under_the_plans_names():
    from inception_kit.planner import INPUT_NAME, OUTPUT_CAST_NAME, OUTPUT_NAME

    p = ik.plan(ik.loads_spec(AUX_SPEC))
    model = ik.build_model(p, precision="bfloat16", aux=True)
    assert set(model.output) == {OUTPUT_NAME, "side"}
    names = [layer.name for layer in model.layers]
    assert names[0] == INPUT_NAME and {OUTPUT_CAST_NAME, p.aux["side"].cast_name} <= set(names)
    out = model(np.zeros((1, 8, 8, 3), "float32"))
    assert {k: keras.backend.standardize_dtype(v.dtype) for k, v in out.items()} == {
        "output": "float32",
        "side": "float32",
    }
    planned = {n for op in walk([*p.steps, *(a.block for a in p.aux.values())]) for n in op.layer_names}
    assert set(names) - planned == {INPUT_NAME, OUTPUT_CAST_NAME, p.aux["side"].cast_name}


def test_a_bad_precision_names_the_parameter():
    from inception_kit.errors import ArgumentError

    with pytest.raises(
        ArgumentError, match=r"^precision: expected one of float32, bfloat16; received 'float16'$"
    ):
        ik.build_model("inception_3a_tiny", precision="float16")
