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
