"""`inception-kit import MODEL.keras` and `ik.from_keras(model)`: Keras models as specs.

Golden figures: the keras.applications models built here (weights=None) and the shipped
specs, which tests/test_canonical.py holds equal to them; outputs compared numerically
after copying the weights.
"""

import subprocess

import keras
import numpy as np
import pytest

import inception_kit as ik
from conftest import CLI, ROOT, SHIPPED, SPECS
from inception_kit.keras.importer import copy_weights, import_keras
from inception_kit.report import report_data

APPLICATIONS = {
    "InceptionV3": "inception_v3",
    "InceptionResNetV2": "inception_resnet_v2",
    "Xception": "xception",
}
L = keras.layers


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600)


def totals(analysis):
    t = analysis.total
    return t.params, t.trainable, t.macs, t.flops, dict(t.flops_by_op)


def same_outputs(source, imported, shape, seed=0):
    built = ik.build_model(imported.model)
    copy_weights(source, built, imported)
    x = np.random.default_rng(seed).normal(size=(2, *shape)).astype("float32")
    a, b = source(x, training=False), built(x, training=False)
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def small_inception():
    """A GoogLeNet-shaped block, then an Add with an identity branch, then a head."""
    x = keras.Input((16, 16, 8), name="image")
    stem = L.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(x)
    stem = L.BatchNormalization(scale=False, name="stem_bn")(stem)
    stem = L.Activation("relu", name="stem_relu")(stem)
    b1 = L.Conv2D(8, 1, padding="same", activation="relu", name="b1")(stem)
    b2 = L.Conv2D(6, 1, padding="same", activation="relu", name="b2r")(stem)
    b2 = L.Conv2D(8, 3, padding="same", activation="relu", name="b2")(b2)
    b3 = L.Conv2D(2, 1, padding="same", activation="relu", name="b3r")(stem)
    b3 = L.Conv2D(4, 5, padding="same", activation="relu", name="b3")(b3)
    b4 = L.MaxPooling2D(3, strides=1, padding="same", name="b4p")(stem)
    b4 = L.Conv2D(4, 1, padding="same", activation="relu", name="b4")(b4)
    y = L.Concatenate(name="inc")([b1, b2, b3, b4])  # 16x16x24
    r = L.SeparableConv2D(24, 3, padding="same", use_bias=False, name="sep")(y)
    r = L.BatchNormalization(name="sep_bn")(r)
    y = L.Add(name="res")([y, r])
    y = L.ReLU(name="res_relu")(y)
    y = L.Conv2D(32, 3, strides=2, groups=4, padding="valid", name="grouped")(y)
    y = L.AveragePooling2D(2, name="avg")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    y = L.Dropout(0.3, name="drop")(y)
    y = L.Dense(10, activation="softmax", name="out")(y)
    return keras.Model(x, y, name="small")


def test_small_model_reads_as_a_table_row_and_a_residual_block():
    model = small_inception()
    imported = import_keras(model)
    data = imported.data
    assert data["input"] == [16, 16, 8]
    layers = data["layers"]
    assert layers[1] == {
        "inception": {
            "name": "inc",
            "1x1": 8,
            "3x3_reduce": 6,
            "3x3": 8,
            "5x5_reduce": 2,
            "5x5": 4,
            "pool_proj": 4,
        }
    }
    res = layers[2]["block"]
    assert res["name"] == "res" and res["merge"] == "add" and res["activation"] == "relu"
    assert list(res["branches"]) == ["shortcut", "residual"] and res["branches"]["shortcut"] == []
    assert data["head"][0] == "gap" and data["head"][-1] == {"dense": {"units": 10, "activation": "softmax"}}
    assert ik.loads_spec(imported.to_yaml()) == imported.model  # the YAML reads back as the spec
    a = ik.analyse(imported.model)
    assert a.total.params == model.count_params()
    conv_macs = (
        16 * 16 * 16 * 9 * 8
        + 16 * 16 * (8 * 16 + 6 * 16 + 8 * 9 * 6 + 2 * 16 + 4 * 25 * 2 + 4 * 16)
        + 16 * 16 * (9 * 24 + 24 * 24)
        + 7 * 7 * 32 * 9 * (24 // 4)
        + 32 * 10
    )
    assert a.total.macs == conv_macs
    assert same_outputs(model, imported, (16, 16, 8)) == 0.0


def test_sequential_model():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(3),
        ],
        name="seq",
    )
    imported = import_keras(model)
    assert imported.data["layers"] == [{"conv": {"filters": 4, "kernel": 3}}, {"maxpool": {"pool": 2}}]
    assert imported.data["head"] == ["flatten", {"dense": {"units": 3}}]
    assert ik.analyse(imported.model).total.params == model.count_params()
    assert same_outputs(model, imported, (8, 8, 1)) == 0.0


def test_unsupported_layers_are_named_with_class_and_position():
    x = keras.Input((8, 8, 3))
    y = L.Conv2D(4, 1, name="c")(x)
    y = L.LayerNormalization(name="ln")(y)
    y = L.UpSampling2D(name="up")(y)
    with pytest.raises(ik.SpecError) as err:
        ik.from_keras(keras.Model(x, y))
    msg = str(err.value)
    assert "model.layers[2] 'ln' (LayerNormalization): expected a layer inception-kit can express" in msg
    assert "received LayerNormalization" in msg and "model.layers[3] 'up' (UpSampling2D)" in msg


@pytest.mark.parametrize("case", ["dilation", "shared", "two_outputs", "leaky"])
def test_what_a_spec_cannot_state_is_an_error(case):
    x = keras.Input((8, 8, 3))
    if case == "dilation":
        model, where = (
            keras.Model(x, L.Conv2D(4, 3, dilation_rate=2, name="d")(x)),
            "'d' (Conv2D): expected no dilation",
        )
    elif case == "shared":
        conv = L.Conv2D(3, 1, name="s")
        model, where = keras.Model(x, conv(conv(x))), "'s' (Conv2D): expected a layer used once"
    elif case == "two_outputs":
        model, where = (
            keras.Model(x, [L.Conv2D(2, 1)(x), L.Conv2D(2, 1)(x)]),
            "expected a model with one input and one output",
        )
    else:
        model, where = (
            keras.Model(x, L.ReLU(negative_slope=0.1, name="lk")(x)),
            "'lk' (ReLU): expected ReLU with negative_slope 0",
        )
    with pytest.raises(ik.SpecError, match=None) as err:
        ik.from_keras(model)
    assert where in str(err.value)


def test_cli_import_writes_yaml_and_refuses_bad_models(tmp_path):
    path = tmp_path / "small.keras"
    small_inception().save(path)
    out = tmp_path / "small.yaml"
    r = run("import", path, "-o", out)
    assert r.returncode == 0, r.stderr
    assert ik.analyse(out).total.params == small_inception().count_params()
    r = run("report", out, "--format", "json")  # report works on the imported model
    assert r.returncode == 0
    r = run("import", path, "-o", out)
    assert r.returncode == 2 and "already exists" in r.stderr
    x = keras.Input((8, 8, 3))
    bad = tmp_path / "bad.keras"
    keras.Model(x, L.LayerNormalization(name="ln")(x)).save(bad)
    r = run("import", bad)
    assert r.returncode == 2 and "'ln' (LayerNormalization)" in r.stderr and "Traceback" not in r.stderr
    r = run("import", tmp_path / "missing.keras")
    assert r.returncode == 2 and "an existing .keras file" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("app", list(APPLICATIONS))
def test_keras_applications_import_to_the_shipped_figures_and_the_same_outputs(app):
    keras.backend.clear_session()
    model = getattr(keras.applications, app)(weights=None)
    imported = import_keras(model)
    ours, shipped = ik.analyse(imported.model), ik.analyse(SPECS / f"{APPLICATIONS[app]}.yaml")
    assert totals(ours) == totals(shipped)
    assert ours.total.params == model.count_params()
    assert [b.output_shape for b in ours.blocks] == [b.output_shape for b in shipped.blocks]
    assert len(imported.to_yaml().splitlines()) < 300  # repeats and one line per layer keep it readable
    assert same_outputs(model, imported, model.input_shape[1:]) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_round_trip_every_shipped_spec(path):
    keras.backend.clear_session()
    a = ik.analyse(path)
    model = ik.build_model(a.plan)
    b = ik.analyse(ik.from_keras(model))
    ma, mb = report_data(a)["model"], report_data(b)["model"]
    (
        ma.pop("peak_activation_bytes"),
        mb.pop("peak_activation_bytes"),
    )  # an estimate: fused activations count once
    assert ma == mb
    assert [(x.name, x.output_shape, totals_of(x)) for x in a.blocks] == [
        (x.name, x.output_shape, totals_of(x)) for x in b.blocks
    ]


def totals_of(block):
    return block.cost.params, block.cost.macs, block.cost.flops
