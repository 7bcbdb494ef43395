"""`inception-kit import MODEL.keras` and `ik.from_keras(model)`: Keras models as specs.

Golden figures: the keras.applications models built here (weights=None) and the shipped
specs, which tests/test_canonical.py holds equal to them; outputs compared numerically
after copying the weights.
"""

import json
import os
import re
import subprocess
import sys
import zipfile

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


# Hostile and broken .keras files (issue 22): each is refused with the file named, exit 2, no
# traceback, before Keras deserialises anything (and so before TensorFlow loads).


def _rezip(src, dst, replace=None, add=None, compression=zipfile.ZIP_STORED):
    """A copy of the .keras archive `src`, members replaced or added."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)))
        for name, data in add.items():
            zout.writestr(name, data)
    return dst


def _with_layer_class(src, dst, cls, module):
    """The archive with its last layer's class (and module) rewritten in config.json."""
    with zipfile.ZipFile(src) as z:
        config = json.loads(z.read("config.json"))
    config["config"]["layers"][-1].update(class_name=cls, module=module, registered_name=cls)
    return _rezip(src, dst, replace={"config.json": json.dumps(config)})


def _refused_before_tensorflow(path):
    """load_keras's message in a fresh process, and whether TensorFlow or Keras got imported."""
    code = (
        "import sys\nfrom inception_kit.errors import SpecError\nfrom inception_kit.keras.importer import load_keras\n"
        f"try:\n    load_keras({str(path)!r})\nexcept SpecError as err:\n    print(err)\n"
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    message, loaded = r.stdout.strip().rsplit("\n", 1)
    return message, loaded == "True"


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keras") / "small.keras"
    small_inception().save(path)
    return path


def _lambda_model(marker):
    """A model whose Lambda writes `marker` when it runs (its code travels in the .keras file)."""
    x = keras.Input((4, 4, 3))
    # The path is a constant of the lambda's code (a closure would not be saved with it).
    writes = eval(f"lambda t: (open({str(marker)!r}, 'w').write('ran'), t)[1]")
    y = L.Lambda(writes, name="evil")(x)
    return keras.Model(x, L.Conv2D(2, 1, name="c")(y))


def test_a_lambda_is_refused_and_never_run(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    path = tmp_path / "lambda.keras"
    _lambda_model(marker).save(path, zipped=True)
    marker.unlink()  # building the model ran it once; loading must not
    r = run("import", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"{path}: layers[1] 'evil' (Lambda): expected a layer inception-kit can express" in r.stderr
    message, loaded = _refused_before_tensorflow(path)
    assert message.startswith(f"{path}: layers[1] 'evil' (Lambda)") and not loaded
    # With our own check switched off, Keras' safe mode is the second fence: refused, not run.
    from inception_kit.keras import importer

    monkeypatch.setattr(importer, "_check_archive", lambda name: None)
    with pytest.raises(
        ik.SpecError,
        match=rf"^{re.escape(str(path))}: expected a .keras file Keras loads in safe mode; "
        r"received ValueError: .*(unsafe|safe_mode)",
    ):
        importer.load_keras(path)
    assert not marker.exists()


def test_a_lambda_hidden_in_a_supported_layers_config_is_refused(tmp_path, small_file):
    with zipfile.ZipFile(small_file) as z:
        config = json.loads(z.read("config.json"))
    config["config"]["layers"][1]["config"]["kernel_initializer"] = {
        "class_name": "__lambda__",
        "config": {"code": "AA=="},
    }
    path = _rezip(small_file, tmp_path / "hidden.keras", replace={"config.json": json.dumps(config)})
    message, loaded = _refused_before_tensorflow(path)
    assert (
        message
        == (
            f"{path}: layers[1] 'stem' (Conv2D): expected standard Keras objects only (no Python code, "
            "no other module); received a serialised Python function (__lambda__)"
        )
        and not loaded
    )


@pytest.mark.parametrize(
    "cls, module, received",
    [
        ("EvilLayer", "keras.layers", "EvilLayer"),
        ("Conv2D", "evil.module", "an object from module 'evil.module'"),
    ],
)
def test_an_unknown_class_or_module_is_refused_before_keras(tmp_path, small_file, cls, module, received):
    path = _with_layer_class(small_file, tmp_path / "unknown.keras", cls, module)
    message, loaded = _refused_before_tensorflow(path)
    assert message.startswith(f"{path}: layers[") and message.endswith(f"received {received}") and not loaded
    r = run("import", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(path) in r.stderr


def test_a_member_leaving_the_archive_is_refused_and_nothing_is_written(tmp_path, small_file):
    inner = tmp_path / "in"
    inner.mkdir()
    path = _rezip(
        small_file, inner / "escape.keras", add={"../escaped.txt": b"x", "assets/../../e2.txt": b"x"}
    )
    message, loaded = _refused_before_tensorflow(path)
    assert (
        message
        == (
            f"{path}: '../escaped.txt': expected an archive member inside the archive; "
            "received a path that leaves it"
        )
        and not loaded
    )
    r = run("import", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["escape.keras", "in"]


def test_an_unknown_member_and_a_zip_bomb_are_refused_before_unpacking(tmp_path, small_file):
    path = _rezip(small_file, tmp_path / "extra.keras", add={"run_me.py": b"print(1)"})
    message, _ = _refused_before_tensorflow(path)
    assert message.startswith(f"{path}: 'run_me.py': expected only Keras' members: config.json, ")
    bomb = 32 * 2**20  # 32 MiB of zeros packs into about 32 KiB
    path = _rezip(
        small_file,
        tmp_path / "bomb.keras",
        replace={"model.weights.h5": bytes(bomb)},
        compression=zipfile.ZIP_DEFLATED,
    )
    message, loaded = _refused_before_tensorflow(path)
    assert (
        message.startswith(
            f"{path}: 'model.weights.h5': expected a member that unpacks to at most 100 times "
            f"its size; received {bomb:,} bytes from "
        )
        and not loaded
    )


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "empty"])
def test_a_broken_file_is_refused_with_its_name(tmp_path, small_file, damage):
    data = small_file.read_bytes()
    path = tmp_path / f"{damage.replace(' ', '_')}.keras"
    path.write_bytes({"truncated": data[: len(data) // 2], "not a zip": b"name: x\n", "empty": b""}[damage])
    message, loaded = _refused_before_tensorflow(path)
    assert message.startswith(
        f"{path}: expected a .keras file (a Keras 3 zip archive); received a file that is not one"
    )
    assert not loaded
    r = run("import", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(path) in r.stderr
