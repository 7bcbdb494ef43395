"""One spec on three Keras backends: TensorFlow, JAX and PyTorch.

Keras reads its backend once per process, so every backend runs in its own subprocess; to
keep the time down, one subprocess per backend builds every preset and writes what the
tests compare (parameters, cost report, weights, outputs on a seeded batch), and one more
per backend reads the other backends' files back. The three run side by side.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import inception_kit as ik
from conftest import CLI, ROOT, SHIPPED, SPECS

pytestmark = pytest.mark.slow

BACKENDS = ("tensorflow", "jax", "torch")
PRESETS = [p.stem for p in SHIPPED]
KERAS_FILES = {"googlenet", "inception_3a", "inception_3a_tiny", "one_by_one"}  # the rest: .weights.h5
TINY = SPECS / "inception_3a_tiny.yaml"


def env(backend, **more):
    return dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT), **more)


# Builds every preset under this process' backend: its parameters and cost report on stdout
# (JSON), its weights (.keras or .weights.h5) and its outputs on a seeded batch into a folder.
WRITE = r"""
import json, math, sys
from pathlib import Path
import numpy as np, keras
import inception_kit as ik
from inception_kit.report import render

out, keras_files = Path(sys.argv[1]), set(sys.argv[2].split(","))
backend = keras.backend.backend()
result = {"backend": backend}
for path in sorted(Path("specs").glob("*.yaml")):
    analysis = ik.analyse(path)
    model = ik.build_model(analysis.plan)
    x = np.random.default_rng(0).uniform(-1, 1, (2, *analysis.plan.model.input_shape)).astype("float32")
    np.save(out / f"{path.stem}.{backend}.npy", keras.ops.convert_to_numpy(model(x, training=False)))
    if path.stem in keras_files:
        model.save(str(out / f"{path.stem}.{backend}.keras"))
    else:
        model.save_weights(str(out / f"{path.stem}.{backend}.weights.h5"))
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    result[path.stem] = {"params": [int(model.count_params()), trainable, int(model.count_params()) - trainable],
                         "report": render(analysis, "json")}
    keras.backend.clear_session()
x = keras.Input((28, 28, 192))
y = ik.apply_block(ik.Block("mine", {"a": [ik.Layer("conv", filters=16, kernel=1)],
                                     "b": [ik.Layer("conv", filters=8, kernel=[1, 7])]}), x)
result["apply_block"] = [int(keras.Model(x, y).count_params()), list(y.shape[1:])]
print(json.dumps(result))
"""

# Loads every other backend's file of every preset and runs the seeded batch: the largest
# difference from the writer's outputs and the tolerance, per preset and writer.
READ = r"""
import json, sys
from pathlib import Path
import numpy as np, keras
import inception_kit as ik

folder = Path(sys.argv[1])
backend = keras.backend.backend()
result = {}
for path in sorted(Path("specs").glob("*.yaml")):
    analysis = ik.analyse(path)
    x = np.random.default_rng(0).uniform(-1, 1, (2, *analysis.plan.model.input_shape)).astype("float32")
    built = None
    for writer in ("tensorflow", "jax", "torch"):
        if writer == backend:
            continue
        expected = np.load(folder / f"{path.stem}.{writer}.npy")
        file = folder / f"{path.stem}.{writer}.keras"
        if file.exists():
            model = keras.models.load_model(str(file))
        else:
            built = built or ik.build_model(analysis.plan)
            built.load_weights(str(folder / f"{path.stem}.{writer}.weights.h5"))
            model = built
        y = keras.ops.convert_to_numpy(model(x, training=False))
        result.setdefault(path.stem, {})[writer] = {
            "diff": float(np.abs(y - expected).max()), "tolerance": 1e-5 * max(1.0, float(np.abs(expected).max())),
            "format": file.suffix if file.exists() else ".weights.h5", "shape": list(y.shape)}
    keras.backend.clear_session()
print(json.dumps(result))
"""


def _run_all(script, folder):
    """The script under every backend at once; {backend: its JSON}."""
    procs = {
        b: subprocess.Popen(
            [sys.executable, "-c", script, str(folder), ",".join(sorted(KERAS_FILES))],
            cwd=ROOT,
            env=env(b),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for b in BACKENDS
    }
    results = {}
    for b, p in procs.items():
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, f"{b}: {err[-3000:]}"
        results[b] = json.loads(out.strip().splitlines()[-1])
    return results


@pytest.fixture(scope="module")
def backends_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backends")
    written = _run_all(WRITE, folder)
    read = _run_all(READ, folder)
    return written, read


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_process_ran_its_backend(backends_run, backend):
    assert backends_run[0][backend]["backend"] == backend


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_preset_builds_with_the_same_params_on_every_backend(backends_run, preset, backend):
    written = backends_run[0]
    total, trainable, non_trainable = written[backend][preset]["params"]
    # TensorFlow's Keras count is the reference (tests/test_canonical.py ties it to keras.applications).
    assert [total, trainable, non_trainable] == written["tensorflow"][preset]["params"]
    assert total == ik.analyse(SPECS / f"{preset}.yaml").total.params


@pytest.mark.parametrize("backend", BACKENDS)
def test_apply_block_inside_your_own_model_on_every_backend(backends_run, backend):
    # 1x1: 192*16 weights + 16 biases; 1x7: 192*8*7 + 8; concatenated: 16 + 8 channels.
    assert backends_run[0][backend]["apply_block"] == [192 * 16 + 16 + 192 * 8 * 7 + 8, [28, 28, 24]]


@pytest.mark.parametrize("preset", PRESETS)
def test_the_cost_report_does_not_depend_on_the_backend(backends_run, preset):
    written = backends_run[0]
    reports = {b: written[b][preset]["report"] for b in BACKENDS}
    assert reports["jax"] == reports["tensorflow"] and reports["torch"] == reports["tensorflow"]
    assert json.loads(reports["tensorflow"])["model"]["name"] == preset


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("writer, reader", [(w, r) for w in BACKENDS for r in BACKENDS if w != r])
def test_weights_move_between_backends(backends_run, preset, writer, reader):
    got = backends_run[1][reader][preset][writer]
    assert got["format"] == (".keras" if preset in KERAS_FILES else ".weights.h5")
    assert got["shape"][0] == 2
    assert got["diff"] <= got["tolerance"], got


# --------------------------------------------------------------------------- training


def cli(*args, backend, timeout=600, **more):
    return subprocess.run(
        [*CLI, "--backend", backend, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env("tensorflow", **more),
    )  # --backend overrides KERAS_BACKEND


def log_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


TRAININGS = {
    "jax": ("jax", "default", {}),
    "jax-data-parallel": ("jax", "data-parallel", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}),
    "torch": ("torch", "default", {}),
}


@pytest.fixture(scope="module")
def trainings(tmp_path_factory):
    """One epoch of digits from the CLI per backend and strategy, the three side by side."""
    root = tmp_path_factory.mktemp("trainings")
    procs = {}
    for name, (backend, strategy, more) in TRAININGS.items():
        args = [
            "--backend",
            backend,
            "train",
            TINY,
            "--data",
            "digits",
            "--epochs",
            1,
            "--strategy",
            strategy,
            "--out",
            root / name,
            "--verbose",
            0,
        ]
        procs[name] = subprocess.Popen(
            [*CLI, *map(str, args)],
            cwd=ROOT,
            env=env("tensorflow", **more),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    done = {}
    for name, p in procs.items():
        out, err = p.communicate(timeout=600)
        done[name] = (p.returncode, out, err, root / name)
    return done


@pytest.mark.parametrize("name", TRAININGS)
def test_one_epoch_of_digits_from_the_cli(trainings, name):
    code, out, err, folder = trainings[name]
    assert code == 0, err[-3000:]
    _backend, strategy, _ = TRAININGS[name]
    replicas = 2 if strategy == "data-parallel" else 1
    assert f"{strategy}, {replicas} replica" in out
    run = json.loads((folder / "run.json").read_text())
    assert (run["status"], run["strategy"], run["replicas"], run["per_replica_batch"]) == (
        "finished",
        strategy,
        replicas,
        64 // replicas,
    )
    # 1,797 digits: 1,438 to train (22 whole batches of 64), 359 to validate, less 359 % 2 on two replicas.
    assert (run["train_samples"], run["val_samples"]) == (1438, 359 - 359 % replicas)
    rows = log_rows(folder / "log.csv")
    assert [r["epoch"] for r in rows] == ["0"]
    assert set(rows[0]) == {"epoch", "accuracy", "loss", "val_accuracy", "val_loss"}
    assert float(rows[0]["val_accuracy"]) > 0.3  # 10 classes: chance is 0.1; TF's first epoch gives about 0.5
    model = ik.build_model(TINY)
    model.load_weights(folder / "best.weights.h5")  # written under JAX or torch, read under TensorFlow
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        ["run.json", "report.json", "spec.yaml", "log.csv", "best.weights.h5", "final.weights.h5"]
    )


def test_data_parallel_trains_like_one_device(trainings):
    # DataParallel splits each global batch over the two devices and averages the gradients:
    # the same batches, the same updates as one device, up to float rounding.
    one = log_rows(trainings["jax"][3] / "log.csv")[0]
    two = log_rows(trainings["jax-data-parallel"][3] / "log.csv")[0]
    assert float(two["loss"]) == pytest.approx(float(one["loss"]), rel=1e-4)
    assert float(two["accuracy"]) == pytest.approx(float(one["accuracy"]), abs=1e-6)


RESUME = r"""
import json, sys, keras
from inception_kit import train
from inception_kit.files import DestinationExists

class Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("crash")

out, spec = sys.argv[1], sys.argv[2]
common = dict(epochs=2, batch_size=32, seed=0, verbose=0, strategy="data-parallel")
try:
    train.fit(spec, "digits", out=out, callbacks=[Crash()], **common)
except RuntimeError as err:
    print("CRASHED", err)
status = json.load(open(out + "/run.json"))["status"]
resumed = train.fit(spec, "digits", out=out, **common)
try:
    train.fit(spec, "digits", out=out, **common)
except DestinationExists:
    print("REFUSED")
fresh = train.fit(spec, "digits", out=None, **common)
print(json.dumps({"status_after_crash": status, "initial_epoch": resumed.initial_epoch, "log": resumed.log,
                  "fresh": fresh.log}))
"""


def test_data_parallel_resumes_a_crashed_run_like_the_tf_strategies(tmp_path):
    r = subprocess.run(
        [sys.executable, "-c", RESUME, str(tmp_path / "run"), str(TINY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "CRASHED crash" in r.stdout and "REFUSED" in r.stdout  # a finished run is not resumed
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert (got["status_after_crash"], got["initial_epoch"]) == ("running", 1)
    assert [row["epoch"] for row in got["log"]] == [0, 1]
    rows = log_rows(tmp_path / "run" / "log.csv")
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    # Resumed from epoch 0's backup, epoch 1 sees the batches and weights an uninterrupted run does.
    for resumed, fresh in zip(got["log"], got["fresh"]):
        assert resumed["loss"] == pytest.approx(fresh["loss"], rel=1e-4)
        assert resumed["val_accuracy"] == pytest.approx(fresh["val_accuracy"], abs=1e-6)


@pytest.mark.parametrize(
    "backend, strategy, words",
    [
        (
            "torch",
            "mirrored",
            "'mirrored', a tf.distribute strategy (the tensorflow backend; on the command line, --backend tensorflow)",
        ),
        ("torch", "data-parallel", "keras.distribution runs on JAX only"),
        ("tensorflow", "data-parallel", "keras.distribution runs on JAX only"),
    ],
)
def test_a_strategy_the_backend_cannot_run_is_a_clear_error(tmp_path, backend, strategy, words):
    r = cli(
        "train",
        TINY,
        "--data",
        "digits",
        "--epochs",
        1,
        "--strategy",
        strategy,
        "--out",
        tmp_path / "r",
        backend=backend,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert words in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()  # refused before the run folder is made


# --------------------------------------------------------------------------- export, profile, verify


@pytest.mark.parametrize(
    "backend, fmt, suffix",
    [("torch", "onnx", ".onnx"), ("jax", "tflite", ".tflite"), ("torch", "savedmodel", "")],
)
def test_export_from_another_backend(tmp_path, backend, fmt, suffix):
    out = tmp_path / f"tiny{suffix}"
    r = cli("export", TINY, "--format", fmt, "--out", out, backend=backend)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "verified by reloading it" in r.stdout
    meta = out / "assets.extra" / "inception_kit" if fmt == "savedmodel" else Path(f"{out}.inception-kit")
    manifest = json.loads((meta / "manifest.json").read_text())
    assert manifest["verification"]["max_abs_diff"] <= manifest["verification"]["tolerance"]
    # TF formats are written by a TensorFlow child; ONNX under torch by Keras' own exporter.
    assert manifest["versions"]["backend"] == ("torch" if fmt == "onnx" else "tensorflow")
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["image"]
        x = (
            np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 1)).astype("float32")
        )  # batch 3: the batch is free
        y = session.run(["output"], {"image": x})[0]
        assert y.shape == (3, 10) and np.allclose(y.sum(axis=1), 1.0, atol=1e-5)  # the softmax head


def test_report_verify_needs_tensorflow(tmp_path):
    r = cli("report", TINY, "--verify", backend="jax")
    assert r.returncode == 2
    # a library error names the parameter (the backend), never the flag that asked for the check
    assert "backend: expected the tensorflow backend" in r.stderr and "received 'jax'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_profile_runs_on_other_backends(backend):
    r = cli("profile", TINY, "--repeats", 3, "--warmup", 1, "--format", "json", backend=backend)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads(r.stdout)
    assert f"({backend} backend)" in data["timing"]
    assert data["machine"]["backend"] == backend
