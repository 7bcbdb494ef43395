"""Weights from keras.applications' weight files (legacy HDF5), matched by structure.

The files are written offline, as keras.applications caches them, from the application
built with weights=None in the same run (Keras' own writer, legacy_h5_format).
"""

import subprocess

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

import inception_kit as ik
from conftest import CLI, ROOT
from inception_kit.errors import SpecError

APPS = {"inception_v3": "InceptionV3", "inception_resnet_v2": "InceptionResNetV2", "xception": "Xception"}


def _application_file(preset, path, **knobs):
    keras.utils.set_random_seed(1)
    app = getattr(keras.applications, APPS[preset])(weights=None, **knobs)
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, app)
    return app


@pytest.mark.slow
@pytest.mark.parametrize(
    "knobs", [{}, {"include_top": False, "input_shape": (96, 96, 3), "pooling": "avg"}], ids=["top", "no-top"]
)
@pytest.mark.parametrize("preset", sorted(APPS))
def test_application_weights_give_the_applications_outputs(preset, knobs, tmp_path):
    path = tmp_path / f"{preset}.h5"
    app = _application_file(preset, path, **knobs)
    ours = ik.build_model(preset, weights=path, **knobs)
    x = np.random.default_rng(0).uniform(-1, 1, (2, *app.input.shape[1:])).astype("float32")
    diff = np.max(np.abs(ours.predict(x, verbose=0) - app.predict(x, verbose=0)))
    assert diff == 0.0


@pytest.mark.slow
def test_the_first_mismatch_is_named(tmp_path):
    path = tmp_path / "v3.h5"
    _application_file("inception_v3", path)  # 1000 classes
    with pytest.raises(SpecError) as err:
        ik.build_model("inception_v3", weights=path, classes=10)
    text = str(err.value)
    assert text.startswith(
        "weights: expected shape (2048, 10) for 'dense/kernel' (layer #188); received shape (2048, 1000)"
    )
    with pytest.raises(
        SpecError,
        match=r"^weights: expected 188 layers with weights, as model 'inception_v3' has; received 189",
    ):
        ik.build_model("inception_v3", weights=path, include_top=False)
    r = subprocess.run(
        [*CLI, "build", "inception_v3", "--classes", "10", "--weights", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "expected shape (2048, 10)" in r.stderr and "Traceback" not in r.stderr


def test_files_that_are_not_application_weights(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        ik.build_model("inception_3a_tiny", weights=tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(SpecError, match="which is not an HDF5 file"):
        ik.build_model("inception_3a_tiny", weights=tmp_path / "text.h5")


def test_imagenet_is_for_the_keras_application_presets():
    with pytest.raises(SpecError, match=r"^weights: expected 'imagenet' only for the presets inception_v3, "):
        ik.build_model("inception_3a_tiny", weights="imagenet")


def test_imagenet_offline_says_what_to_do(monkeypatch):
    def offline(**kwargs):  # what keras.utils.get_file raises without a network
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(keras.applications, "InceptionV3", offline)
    with pytest.raises(
        RuntimeError, match=r"could not download the imagenet weights of InceptionV3 .*~/.keras/models"
    ):
        ik.build_model("inception_v3", weights="imagenet", include_top=False, input_shape=(75, 75, 3))


# Forged and mismatched weight files (issue 22): a clear error naming the file and the layer,
# exit 2 from the CLI, and no array read before every shape is checked.

TINY = "inception_3a_tiny"


def _first_weights(f):
    """The first layer with arrays in a legacy file, and its first array's name."""
    first = next(str(n) for n in f.attrs["layer_names"] if len(f[str(n)].attrs["weight_names"]))
    return first, str(f[first].attrs["weight_names"][0])


def _legacy_file(path, model=None):
    model = model or ik.build_model(TINY)
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, model)
    return model


@pytest.mark.slow
def test_a_legacy_file_with_a_wrong_shape_names_the_file_and_the_layer(tmp_path):
    path = tmp_path / "tiny.h5"
    _legacy_file(path, ik.build_model(TINY, classes=7))  # 7 classes where the spec has 10
    with pytest.raises(SpecError) as err:
        ik.build_model(TINY, weights=path)
    assert str(err.value).startswith(
        "weights: expected shape (512, 10) for 'dense/kernel' (layer #7); "
        f"received shape (512, 7) from {path}'s 'dense/kernel"
    )
    r = subprocess.run(
        [*CLI, "build", TINY, "--weights", path], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert (
        r.returncode == 2
        and str(path) in r.stderr
        and "'dense/kernel'" in r.stderr
        and "Traceback" not in r.stderr
    )


@pytest.mark.slow
def test_a_huge_forged_array_is_refused_by_its_shape_unread(tmp_path):
    path = tmp_path / "huge.h5"
    _legacy_file(path)
    with h5py.File(path, "r+") as f:
        first, name = _first_weights(f)
        layer = f[first]
        del layer[name]
        # 4 TB of float32, declared: chunked and never written, so the file stays small
        layer.create_dataset(name, shape=(10**6, 10**6), dtype="float32", chunks=(64, 64))
    assert path.stat().st_size < 10**6
    with pytest.raises(SpecError, match=r"received shape \(1000000, 1000000\) from "):
        ik.build_model(TINY, weights=path)


@pytest.mark.slow
@pytest.mark.parametrize("forgery", ["missing layer", "missing array", "external link", "text array"])
def test_a_forged_legacy_file_is_a_spec_error(tmp_path, forgery):
    path = tmp_path / "forged.h5"
    _legacy_file(path)
    with h5py.File(path, "r+") as f:
        first, array = _first_weights(f)
        layer = f[first]
        if forgery == "missing layer":
            del f[first]
        elif forgery == "missing array":
            del layer[array]
        elif forgery == "external link":
            del layer[array]
            layer[array] = h5py.ExternalLink("/etc/passwd", "/x")
        else:
            del layer[array]
            layer[array] = np.array([b"a", b"b"])
    expected = {
        "missing layer": f"weights: expected a layer group '{first}', as the file's own index lists; received none in {path}",
        "missing array": f"weights: expected layer '{first}''s array '{array}', as the file's own index lists; received none in {path}",
        "external link": f"weights: expected layer '{first}''s array '{array}' stored in the file; received a link elsewhere in {path}",
        "text array": f"weights: expected numbers for layer '{first}''s array '{array}'; received another kind of data in {path}",
    }[forgery]
    with pytest.raises(SpecError) as err:
        ik.build_model(TINY, weights=path)
    assert str(err.value) == expected


@pytest.mark.slow
def test_a_keras3_weights_file_with_a_wrong_shape_names_the_file_and_the_layer(tmp_path):
    from inception_kit.keras.export.weights_file import load_weights

    path = tmp_path / "seven.weights.h5"
    ik.build_model(TINY, classes=7).save_weights(path)
    model = ik.build_model(TINY)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(SpecError) as err:
        load_weights(model, path)
    assert str(err.value) == (
        f"weights: layer 'dense': expected weights of shapes (512, 10), (10,) (the spec's "
        f"architecture); received (512, 7), (7,) in {path}"
    )
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # nothing assigned
    out = tmp_path / "out"
    r = subprocess.run(
        [*CLI, "export", TINY, "--weights", path, "--format", "keras", "-o", out.with_suffix(".keras")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        r.returncode == 2 and f"received (512, 7), (7,) in {path}" in r.stderr and "Traceback" not in r.stderr
    )
    assert not out.with_suffix(".keras").exists()
