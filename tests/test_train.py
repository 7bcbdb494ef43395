"""`inception-kit train` and `inception_kit.train.fit`: data, strategies, resuming, errors.

Every data set is made here or is scikit-learn's digits (packaged, no download). Tests that
start TensorFlow in other processes (two logical CPUs, two workers, a killed run) are slow.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import inception_kit as ik
from conftest import CLI, ROOT, SPECS, write_pngs
from conftest import run as cli  # `run` names a training run here
from inception_kit import train
from inception_kit.errors import ArgumentError
from inception_kit.files import DestinationExists

pytestmark = pytest.mark.slow  # every test here starts TensorFlow (make check leaves them out)

TINY = SPECS / "inception_3a_tiny.yaml"
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))


def python(code, *args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
    )


def log_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def h5_arrays(path):
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
        )
    return arrays


def digits_accuracy(model):
    """Accuracy on all 1,797 digits, computed here: load_digits scaled to [0, 1]."""
    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    return float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == d.target))


# ---------------------------------------------------------------------------------------
# Real training


@pytest.mark.slow
def test_short_training_on_digits_reaches_the_accuracy_bar(tmp_path):
    # Measured on 2 CPU cores (TF 2.21, Keras 3.15, seed 0): val_accuracy 0.978 after these
    # 5 epochs and 0.983 on all 1,797 digits (seeds 1 and 2: 0.961 / 0.975 validation).
    # The bar, 0.90, leaves room for other CPUs' float rounding.
    out = tmp_path / "run"
    r = train.fit(TINY, "digits", epochs=5, batch_size=32, learning_rate=3e-3, seed=0, out=out, verbose=0)
    assert r.val_accuracy >= 0.90
    assert digits_accuracy(r.model) >= 0.90

    # The run folder: one log row per epoch, the cost report and the expanded spec.
    rows = log_rows(out / "log.csv")
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3, 4]
    assert set(rows[0]) == {"epoch", "accuracy", "loss", "val_accuracy", "val_loss"}
    assert (out / "report.json").read_text() == ik.render(ik.analyse(TINY), "json")
    assert (out / "spec.yaml").read_text() == ik.load_spec(TINY).to_yaml()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert not (out / "backup").exists()  # BackupAndRestore's state goes when the run ends

    # best.weights.h5 holds the epoch with the best val_accuracy; final.weights.h5 the last.
    best_epoch = max(rows, key=lambda row: float(row["val_accuracy"]))
    for name, _want in (("best.weights.h5", best_epoch), ("final.weights.h5", rows[-1])):
        model = ik.build_model(TINY)
        model.load_weights(out / name)
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        assert digits_accuracy(model) >= 0.90, name
    final = ik.build_model(TINY)
    final.load_weights(out / "final.weights.h5")
    for a, b in zip(final.get_weights(), r.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_keras_model_built_in_python_trains_in_place():
    x, y = load_digits(return_X_y=True)
    x = (x.reshape(-1, 8, 8, 1) / 16.0).astype("float32")
    inputs = keras.Input((8, 8, 1))
    h = ik.apply_block(ik.load_spec(TINY).layers, inputs)
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(h))  # logits: no softmax
    model = keras.Model(inputs, outputs)
    before = [w.copy() for w in model.get_weights()]
    r = train.fit(model, (x[:640], y[:640]), epochs=2, batch_size=64, seed=3, verbose=0)
    assert r.model is model and r.out is None and r.paths == {}
    assert len(r.history["loss"]) == 2 and r.initial_epoch == 0
    assert r.history["loss"][1] < r.history["loss"][0]
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    # 640 samples, validation int(0.2 * 640) = 128, leaves 512: 8 whole batches of 64.
    assert r.global_batch == 64 and r.replicas == 1 and r.per_replica_batch == 64


# ---------------------------------------------------------------------------------------
# Strategies


def assert_same_training(weights, reference, initial):
    """Each tensor of `weights` differs from `reference` by under 1% of how far training moved
    it from `initial`. Measured (2 CPUs, mirrored against one device, seeds 0-5, 3 epochs):
    4e-7 to 1.3e-6 of it, once 3e-3 (seed 5: Adam turns a rounding-sized gradient into a
    whole step, and summing two replicas' gradients rounds differently from one sum)."""
    assert len(weights) == len(reference) == len(initial) > 0
    for i, (w, ref, init) in enumerate(zip(weights, reference, initial)):
        moved = np.linalg.norm(ref - init)
        assert moved > 0, i
        assert np.linalg.norm(w - ref) <= 1e-2 * moved, (i, np.linalg.norm(w - ref) / moved)


MIRRORED = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from sklearn.datasets import load_digits
from inception_kit import train
d = load_digits()
x, y = (d.images[:1280] / 16.0).astype("float32")[..., None], d.target[:1280]
import keras, inception_kit as ik
keras.utils.set_random_seed(1)
np.savez(f"{sys.argv[1]}/init.npz", *ik.build_model("specs/inception_3a_tiny.yaml").get_weights())
out = {}
for strategy in ("default", "mirrored"):
    r = train.fit("specs/inception_3a_tiny.yaml", (x, y), epochs=3, batch_size=64, seed=1,
                  strategy=strategy, verbose=0)
    np.savez(f"{sys.argv[1]}/{strategy}.npz", *r.model.get_weights())
    out[strategy] = {"replicas": r.replicas, "per_replica": r.per_replica_batch, "history": r.history}
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_mirrored_over_two_cpus_trains_like_one_device(tmp_path):
    r = python(MIRRORED, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("RESULT "))[7:])
    one, two = res["default"], res["mirrored"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["per_replica"] == 64 // 2  # the global batch, split over the replicas
    # The same curve: every epoch's losses and accuracies agree to float rounding.
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(two["history"][key], one["history"][key], rtol=1e-3, err_msg=key)
    assert one["history"]["loss"][-1] < one["history"]["loss"][0]
    a, b, init = (np.load(tmp_path / f"{name}.npz") for name in ("default", "mirrored", "init"))
    assert len(a.files) == len(b.files) == len(init.files) == len(ik.build_model(TINY).weights)
    assert_same_training([b[k] for k in b.files], [a[k] for k in a.files], [init[k] for k in init.files])


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_two_workers_train_one_model_with_multi_worker_mirrored(tmp_path):
    out = tmp_path / "run"
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(
            ENV, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        )
        procs.append(
            subprocess.Popen(
                [
                    *CLI,
                    "train",
                    TINY,
                    "--data",
                    "digits",
                    "--strategy",
                    "multi-worker",
                    "--epochs",
                    "2",
                    "--batch-size",
                    "64",
                    "--out",
                    out,
                    "--verbose",
                    "2",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=240)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, text in zip(procs, outputs):
        assert p.returncode == 0, text[-3000:]
    # The chief (worker 0) writes OUT, worker 1 its own copy in OUT/worker-1.
    chief, other = out, out / "worker-1"
    for folder in (chief, other):
        run = json.loads((folder / "run.json").read_text())
        assert (run["status"], run["replicas"], run["per_replica_batch"]) == ("finished", 2, 32)
        assert [int(row["epoch"]) for row in log_rows(folder / "log.csv")] == [0, 1]
    a, b = h5_arrays(chief / "final.weights.h5"), h5_arrays(other / "final.weights.h5")
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # One model trained together: the same as one device on the same global batches.
    keras.utils.set_random_seed(0)
    initial = ik.build_model(TINY).get_weights()
    single = train.fit(TINY, "digits", epochs=2, batch_size=64, seed=0, verbose=0)
    together = ik.build_model(TINY)
    together.load_weights(chief / "final.weights.h5")
    assert_same_training(together.get_weights(), single.model.get_weights(), initial)


# ---------------------------------------------------------------------------------------
# Fault tolerance

RESUMABLE = r"""
import os, sys, time
import numpy as np, keras
from inception_kit import train
out, dump, hold = sys.argv[1], sys.argv[2], sys.argv[3] == "hold"
os.makedirs(dump, exist_ok=True)

def save(name, weights):
    tmp = os.path.join(dump, "." + name)
    np.savez(tmp, *weights)
    os.replace(tmp + ".npz", os.path.join(dump, name + ".npz"))

class Probe(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        save(f"begin-{epoch}", self.model.get_weights())
    def on_epoch_end(self, epoch, logs=None):
        save(f"end-{epoch}", self.model.get_weights())
    def on_train_batch_end(self, batch, logs=None):
        if hold and self.epoch == 2 and batch == 5:  # mid-epoch 2: say so, then wait to be killed
            save("held-2", self.model.get_weights())
            time.sleep(3600)

r = train.fit("specs/inception_3a_tiny.yaml", "digits", epochs=4, batch_size=32, learning_rate=3e-3,
              seed=0, out=out, callbacks=[Probe()], verbose=2)
print("FIRST_EPOCH", r.initial_epoch, "RAN", len(r.history["loss"]))
"""


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_from_its_backup(tmp_path):
    out, dump1, dump2 = tmp_path / "run", tmp_path / "first", tmp_path / "second"
    # The first run stops after batch 5 of epoch 2 (of 44) and writes held-2.npz: killed there.
    first = subprocess.Popen(
        [sys.executable, "-c", RESUMABLE, out, dump1, "hold"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    held = dump1 / "held-2.npz"
    deadline = time.monotonic() + 300  # a hung run fails the test instead of hanging it
    try:
        while time.monotonic() < deadline and first.poll() is None and not held.exists():
            time.sleep(0.05)
        assert held.exists() and first.poll() is None, first.stdout.read().decode()[-3000:]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    # Killed in the middle of epoch 2: it began, it did not end.
    assert (dump1 / "begin-2.npz").exists() and not (dump1 / "end-2.npz").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    before = log_rows(out / "log.csv")
    assert [int(row["epoch"]) for row in before] == [0, 1]

    # The same command again: it continues at epoch 2 with the weights epoch 1 ended with.
    second = subprocess.run(
        [sys.executable, "-c", RESUMABLE, out, dump2, "run"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "FIRST_EPOCH 2 RAN 2" in second.stdout
    assert sorted(p.name for p in dump2.glob("begin-*.npz")) == ["begin-2.npz", "begin-3.npz"]
    resumed, ended, initial = (
        np.load(p) for p in (dump2 / "begin-2.npz", dump1 / "end-1.npz", dump1 / "begin-0.npz")
    )
    for k in resumed.files:
        np.testing.assert_array_equal(resumed[k], ended[k], err_msg=k)
    assert any(not np.array_equal(resumed[k], initial[k]) for k in resumed.files)  # not a restart

    after = log_rows(out / "log.csv")
    assert [int(row["epoch"]) for row in after] == [0, 1, 2, 3]
    assert after[:2] == before  # the epochs before the kill are kept as they were
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert not (out / "backup").exists()

    # Nothing lost: the same weights as a run that was never killed.
    uninterrupted = train.fit(TINY, "digits", epochs=4, batch_size=32, learning_rate=3e-3, seed=0, verbose=0)
    final = ik.build_model(TINY)
    final.load_weights(out / "final.weights.h5")
    assert_same_training(
        final.get_weights(), uninterrupted.model.get_weights(), [initial[k] for k in initial.files]
    )


class Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("crash")


def test_run_folder_policy_resume_refuse_overwrite(tmp_path):
    out = tmp_path / "run"
    x, y = load_digits(return_X_y=True)
    data = ((x[:320].reshape(-1, 8, 8, 1) / 16.0).astype("float32"), y[:320])
    settings = dict(epochs=2, batch_size=64, seed=0, out=out, verbose=0)
    with pytest.raises(RuntimeError, match="crash"):
        train.fit(TINY, data, callbacks=[Crash()], **settings)
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    # An unfinished run resumes only with its own settings; the error names the others.
    with pytest.raises(ArgumentError) as err:
        train.fit(TINY, data, **{**settings, "seed": 1, "batch_size": 32})
    assert err.value.parameter == "out"
    assert "seed 1 where the run has 0" in str(err.value) and "batch_size 32 where the run has 64" in str(
        err.value
    )

    r = train.fit(TINY, data, **settings)
    assert (r.initial_epoch, len(r.history["loss"])) == (1, 1)
    assert [int(row["epoch"]) for row in log_rows(out / "log.csv")] == [0, 1]

    # A finished run is not replaced without overwrite, then it starts again from epoch 0.
    with pytest.raises(DestinationExists):
        train.fit(TINY, data, **settings)
    (out / "notes.txt").write_text("mine")
    r = train.fit(TINY, data, overwrite=True, **{**settings, "epochs": 1})
    assert r.initial_epoch == 0
    assert [int(row["epoch"]) for row in log_rows(out / "log.csv")] == [0]
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files go


# ---------------------------------------------------------------------------------------
# Image folders and errors (through the command line: exit code 2, one clear message)


def test_empty_image_folder_is_a_clear_error(tmp_path):
    (tmp_path / "images").mkdir()
    r = cli("train", TINY, "--data", tmp_path / "images", "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    assert "--data: expected a folder with one sub-folder per class; received an empty folder" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "layout, words",
    [
        ({"cats": 2}, "at least 2 class sub-folders; received"),
        ({"cats": 2, "dogs": 0}, "'dogs' has none"),
        (None, "which does not exist"),
    ],
    ids=["one-class", "class-without-images", "missing"],
)
def test_unusable_image_folders_are_clear_errors(tmp_path, layout, words):
    folder = tmp_path / "images"
    for c, n in (layout or {}).items():
        (folder / c).mkdir(parents=True)
        for i in range(n):
            (folder / c / f"{i}.png").write_bytes(b"")
    r = cli("train", TINY, "--data", folder, "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr


def test_class_count_mismatch_names_both_numbers(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    for c in ("ant", "bee", "cat"):
        (folder / c).mkdir(parents=True)
        for i in range(4):  # real images: a 0-byte one is refused first, naming the file
            Image.new("RGB", (8, 8)).save(folder / c / f"{i}.png")
    units = ik.load_spec(TINY).head[-1].args["units"]
    r = cli("train", TINY, "--data", folder, "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    assert f"expected 3 units, one per class in the folder {folder.resolve()} (ant, bee, cat)" in r.stderr
    assert f"received {units} units" in r.stderr and units == 10
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_training_on_an_image_folder(tmp_path):
    folder = tmp_path / "images"
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    write_pngs(folder, colours, per_class=8)
    spec = tmp_path / "rgb.yaml"
    data = ik.load_spec(TINY).to_data()
    data["input"] = [16, 16, 3]  # the 32x32 PNGs are resized to it
    data["head"][-1]["dense"]["units"] = 3
    spec.write_text(json.dumps(data))  # JSON is YAML
    out = tmp_path / "run"
    r = cli("train", spec, "--data", folder, "--epochs", "3", "--batch-size", "6", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    # Into a pipe, Keras writes a line per epoch (verbose=2): no progress bars, no ANSI codes.
    assert "\x1b[" not in r.stdout and "━" not in r.stdout
    assert [line for line in r.stdout.splitlines() if line.startswith("Epoch ")] == [
        "Epoch 1/3",
        "Epoch 2/3",
        "Epoch 3/3",
    ]
    run = json.loads((out / "run.json").read_text())
    n = 3 * 8
    assert run["classes"] == sorted(colours)  # Keras numbers class folders alphabetically
    assert (run["train_samples"], run["val_samples"]) == (n - int(0.2 * n), int(0.2 * n))
    assert [int(row["epoch"]) for row in log_rows(out / "log.csv")] == [0, 1, 2]
    assert "trained inception_3a_tiny: epochs 1-3 of 3" in r.stdout

    # Run again: refused (exit 2) without --overwrite.
    again = cli("train", spec, "--data", folder, "--epochs", "1", "--batch-size", "6", "--out", out)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_fit_reports_through_progress_and_writes_nothing_itself(capsys):
    # Before: fit wrote its announcement to sys.stderr (a `progress: TextIO`), whoever called it.
    x, y = load_digits(return_X_y=True)
    data = ((x[:320].reshape(-1, 8, 8, 1) / 16.0).astype("float32"), y[:320])
    calls = []
    r = train.fit(
        TINY, data, epochs=2, batch_size=64, seed=0, verbose=0, progress=lambda *call: calls.append(call)
    )
    assert capsys.readouterr() == ("", "")
    assert [(done, total) for done, total, _ in calls] == [(0, 2), (1, 2), (2, 2)]
    # 320 samples: int(0.2 * 320) = 64 held out, 256 to train in 4 whole batches of 64.
    assert calls[0][2] == (
        "training inception_3a_tiny on the arrays given: 256 training and 64 validation samples, "
        "10 classes; default strategy, 1 replica, global batch 64 (64 per replica), 4 steps per epoch"
    )
    for (_, _, what), row in zip(calls[1:], r.log):
        shown = ", ".join(f"{k} {row[k]:.4f}" for k in ("accuracy", "loss", "val_accuracy", "val_loss"))
        assert what == f"epoch {row['epoch'] + 1}/2: {shown}"
