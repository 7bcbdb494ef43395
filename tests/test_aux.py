"""Auxiliary heads: GoogLeNet's two side classifiers, training only."""

import csv
import json
import os
import subprocess

import numpy as np
import pytest

import inception_kit as ik
from conftest import CLI, ROOT, write_pngs
from inception_kit.errors import SpecError

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))


def aux_params(channels, side, classes):
    """Paper, section 5: avg pool 5x5/3 (valid) -> 1x1 conv 128 + ReLU -> dense 1024 + ReLU ->
    dropout -> dense classes; every layer with biases."""
    pooled = (side - 5) // 3 + 1
    return (channels * 128 + 128) + (pooled * pooled * 128 * 1024 + 1024) + (1024 * classes + classes)


def test_googlenet_aux_heads_cost_what_the_paper_says():
    data = ik.report_data(ik.analyse("googlenet"))
    heads = {h["name"]: h for h in data["aux"]}
    # inc4a gives 14x14x512, inc4d 14x14x528 (table 1); 14x14 pools to 4x4.
    assert heads["aux1"]["params"] == aux_params(512, 14, 1000) == 3_188_840
    assert heads["aux2"]["params"] == aux_params(528, 14, 1000) == 3_190_888
    assert (heads["aux1"]["at"], heads["aux2"]["at"]) == ("inc4a", "inc4d")
    assert heads["aux1"]["loss_weight"] == heads["aux2"]["loss_weight"] == 0.3
    # MACs: the 1x1 conv on 4x4, then the two dense layers.
    assert heads["aux1"]["macs"] == 4 * 4 * 128 * 512 + 2048 * 1024 + 1024 * 1000
    # Training-only: the model's totals leave them out (GoogLeNet's 6,998,552, tests/test_cost.py).
    assert (
        data["model"]["params"]
        == ik.analyse("googlenet", include_top=False).total.params + 1024 * 1000 + 1000
    )


def test_the_table_shows_them_apart():
    text = ik.report("googlenet")
    assert "auxiliary head (training only)" in text
    assert "aux1                            inc4a  1000" in text


def test_knobs_carry_to_the_aux_heads():
    a = ik.report_data(ik.analyse("googlenet", input_shape=(96, 96, 3), classes=10))
    # at 96x96, inc4a and inc4d are 6x6: the 5x5/3 pool gives 1x1
    assert [h["params"] for h in a["aux"]] == [aux_params(512, 6, 10), aux_params(528, 6, 10)]
    assert "aux" not in ik.report_data(ik.analyse("googlenet", include_top=False))


def test_aux_round_trips_through_yaml():
    spec = ik.load_spec("googlenet")
    assert ik.loads_spec(spec.to_yaml()) == spec
    assert list(spec.aux) == ["aux1", "aux2"]


@pytest.mark.parametrize(
    "aux,message",
    [
        (
            "a1: {at: inc9, layers: [gap]}",
            "aux.a1.at: expected the name of a top-level layer or block; received 'inc9'",
        ),
        (
            "a1: {at: inc3a, layer: [gap]}",
            "aux.a1.layer: expected one of the auxiliary head keys: at, layers, weight",
        ),
        (
            "a1: {at: inc3a, layers: [{dense: 3}]}",
            "aux.a1.layers[0]: expected a flat (features,) input for 'dense'",
        ),
        (
            "a1: {at: inc3a, layers: [gap], weight: -1}",
            "aux.a1.weight: expected a loss weight, a number from 0",
        ),
    ],
)
def test_bad_aux_heads_are_spec_errors(aux, message):
    text = (
        "name: t\ninput: [28, 28, 192]\nlayers:\n"
        "  - inception: {name: inc3a, 1x1: 8, 3x3_reduce: 4, 3x3: 8, 5x5_reduce: 2, 5x5: 4, pool_proj: 4}\n"
        f"aux:\n  {aux}\n"
    )
    with pytest.raises(SpecError) as err:
        ik.loads_spec(text)
    assert message in str(err.value)


def test_build_with_aux_gives_one_output_per_head():
    model = ik.build_model("googlenet", aux=True, input_shape=(96, 96, 3), classes=10)
    assert {k: tuple(v.shape) for k, v in model.output.items()} == {
        "output": (None, 10),
        "aux1": (None, 10),
        "aux2": (None, 10),
    }
    main = ik.analyse("googlenet", input_shape=(96, 96, 3), classes=10).total.params
    assert model.count_params() == main + aux_params(512, 6, 10) + aux_params(528, 6, 10)
    assert ik.build_model("googlenet", input_shape=(96, 96, 3), classes=10).count_params() == main


@pytest.mark.slow
def test_googlenet_trains_with_weighted_aux_losses_and_exports_without_them(tmp_path):
    folder = tmp_path / "images"
    write_pngs(folder, {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}, 6, (96, 96))
    out = tmp_path / "run"
    common = ["googlenet", "--input", "96x96x3", "--classes", "3"]
    r = subprocess.run(
        [
            *CLI,
            "train",
            *common,
            "--data",
            folder,
            "--epochs",
            "1",
            "--batch-size",
            "6",
            "--aux",
            "--aux-weight",
            "0.25",
            "--out",
            out,
            "--verbose",
            "2",
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["aux_loss_weights"] == {"aux1": 0.25, "aux2": 0.25}
    assert "accuracy" in run["final"] and "val_accuracy" in run["final"]
    # The total loss is the main loss plus 0.25 times each head's.
    final = run["final"]
    assert final["loss"] == pytest.approx(
        final["output_loss"] + 0.25 * (final["aux1_loss"] + final["aux2_loss"]), rel=1e-4
    )
    # The saved weights are the inference graph's: export takes them, one output.
    saved = tmp_path / "gn"
    e = subprocess.run(
        [*CLI, "export", *common, "--weights", out / "final.weights.h5", "--out", saved],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert e.returncode == 0, e.stderr[-3000:]
    import tensorflow as tf

    served = tf.saved_model.load(str(saved)).signatures["serving_default"]
    assert list(served.structured_outputs) == ["output"]
    assert served.structured_outputs["output"].shape.as_list() == [None, 3]


def test_an_input_too_small_for_an_aux_head_says_how_to_drop_them():
    # 32 -> 16 -> 8 -> 8 -> 4 -> inc3 4 -> pool 2: inc4a is 2x2, too small for the 5x5 pool
    with pytest.raises(SpecError) as err:
        ik.analyse("googlenet", input_shape=(32, 32, 3))
    text = str(err.value)
    assert "aux.aux1.layers[0].pool: a pool no larger than the input height (2) with padding valid" in text
    assert text.endswith("include_aux=False drops the auxiliary heads)")
    spec = ik.load_spec("googlenet", input_shape=(32, 32, 3), include_aux=False)
    assert spec.aux == {}
    assert ik.analyse(spec).total.params == ik.analyse("googlenet").total.params


# ---------------------------------------------------------------------------------------
# InceptionV3's auxiliary classifier (torchvision's Inception3.AuxLogits, TF-slim's AuxLogits)


def torchvision_aux_logits(channels, classes):
    """torchvision's InceptionAux as its code adds it up: conv0 = BasicConv2d(channels, 128, 1),
    conv1 = BasicConv2d(128, 768, 5), fc = Linear(768, classes); a BasicConv2d is a conv without
    bias and a BatchNorm2d with weight and bias (2 per channel) and two running buffers.
    Returns (learnable parameters, batch-norm channels)."""
    convs = channels * 128 * 1 * 1 + 128 * 768 * 5 * 5
    bn_channels = 128 + 768
    return convs + 2 * bn_channels + 768 * classes + classes, bn_channels


def test_inception_v3_aux_head_is_torchvisions_aux_logits_on_mixed7():
    a = ik.analyse(ik.load("inception_v3"))
    mixed7 = next(b for b in a.blocks if b.name == "mixed7")
    assert mixed7.output_shape == (17, 17, 768)  # slim's Mixed_6e: the last 17x17 module
    head = a.plan.aux["aux"]
    # avg pool 5x5/3 valid: (17 - 5) // 3 + 1 = 5; the valid 5x5 conv covers that grid.
    pooled = (17 - 5) // 3 + 1
    assert [s.output_shape for s in head.steps] == [
        (pooled, pooled, 768),
        (pooled, pooled, 128),
        (pooled - 5 + 1, pooled - 5 + 1, 768),
        (768,),
        (1000,),
    ]
    row = ik.report_data(a)["aux"][0]
    assert (row["name"], row["at"], row["loss_weight"]) == ("aux", "mixed7", 0.4)
    learnable, bn = torchvision_aux_logits(768, 1000)
    # The spec's convs are Keras InceptionV3's: batch norm without scale (no gamma), and Keras
    # counts the moving mean and variance among the parameters (non-trainable).
    assert row["trainable_params"] == learnable - bn == 3_325_800
    assert row["params"] == learnable - bn + 2 * bn
    # MACs: the 1x1 conv on 5x5, the 5x5 conv at one position, the dense layer.
    assert row["macs"] == pooled * pooled * 768 * 128 + 5 * 5 * 128 * 768 + 768 * 1000
    # Training only: the model's totals are the main network's, with the head or without it.
    without = ik.analyse(ik.load("inception_v3", include_aux=False))
    assert without.plan.aux == {} and "aux" not in ik.report_data(without)
    assert (a.total.params, a.total.macs, a.total.flops) == (
        without.total.params,
        without.total.macs,
        without.total.flops,
    )


def test_no_aux_drops_the_inception_v3_head_on_the_command_line():
    kept = subprocess.run(
        [*CLI, "report", "inception_v3", "--format", "json"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    dropped = subprocess.run(
        [*CLI, "report", "inception_v3", "--no-aux", "--format", "json"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert kept.returncode == dropped.returncode == 0, kept.stderr + dropped.stderr
    kept, dropped = json.loads(kept.stdout), json.loads(dropped.stdout)
    assert [h["at"] for h in kept["aux"]] == ["mixed7"] and "aux" not in dropped
    assert kept["model"] == dropped["model"]


def test_an_input_too_small_for_inception_v3s_aux_head_names_it_and_no_aux():
    # 150x150: mixed7 is 7x7, pooled 5x5/3 to 1x1, too small for the valid 5x5 conv
    # (torchvision's AuxLogits fails there too; slim shrinks the kernel, which a spec cannot).
    with pytest.raises(SpecError) as err:
        ik.load("inception_v3", input_shape=(150, 150, 3))
    assert "aux.aux.layers[2].kernel: a kernel no larger than the input height (1) with padding valid" in str(
        err.value
    )
    assert str(err.value).endswith("include_aux=False drops the auxiliary heads)")
    assert ik.load("inception_v3", input_shape=(150, 150, 3), include_aux=False).aux == {}


@pytest.mark.slow
def test_inception_v3_builds_with_its_aux_head_and_the_main_network_is_keras():
    import keras

    reference = keras.applications.InceptionV3(weights=None)
    trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
    keras.backend.clear_session()
    model = ik.build_model("inception_v3", aux=True, classes=10)
    assert {k: tuple(v.shape) for k, v in model.output.items()} == {"output": (None, 10), "aux": (None, 10)}
    learnable, bn = torchvision_aux_logits(768, 10)
    main = ik.analyse(ik.load("inception_v3", classes=10)).total.params
    assert model.count_params() == main + learnable - bn + 2 * bn
    # Without aux the built model is Keras' InceptionV3, parameter for parameter.
    keras.backend.clear_session()
    plain = ik.build_model("inception_v3")
    assert plain.count_params() == reference.count_params()
    assert sum(int(np.prod(w.shape)) for w in plain.trainable_weights) == trainable


# ---------------------------------------------------------------------------------------
# --aux on every Keras backend

AUX_TINY = """\
name: aux_tiny
input: [8, 8, 1]
layers:
  - conv: {filters: 16, kernel: 3}
  - inception: {name: inc3a, 1x1: 8, 3x3_reduce: 12, 3x3: 16, 5x5_reduce: 2, 5x5: 4, pool_proj: 4}
  - maxpool: {pool: 2}
head: [flatten, {dense: {units: 10, activation: softmax}}]
aux:
  side: {at: inc3a, weight: 0.3, layers: [gap, {dense: {units: 10}}]}   # logits
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_aux_training_runs_under_jax_and_torch(tmp_path, backend):
    # Before: the labels were copied per output with tf.data's `map`, which the numpy batches
    # these backends train on do not have (AttributeError: 'Batches' object has no attribute 'map').
    spec = tmp_path / "aux_tiny.yaml"
    spec.write_text(AUX_TINY)
    out = tmp_path / "run"
    r = subprocess.run(
        [*CLI, "train", spec, "--data", "digits", "--epochs", "1", "--aux", "--out", out, "--verbose", "0"],
        cwd=ROOT,
        env=dict(ENV, KERAS_BACKEND=backend),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert (run["status"], run["aux_loss_weights"]) == ("finished", {"side": 0.3})
    final = run["final"]
    # Keras' total: the main loss plus 0.3 times the side head's (softmax main, logits side).
    assert final["loss"] == pytest.approx(final["output_loss"] + 0.3 * final["side_loss"], rel=1e-4)
    assert (
        final["accuracy"] == final["output_accuracy"]
        and final["val_accuracy"] == final["val_output_accuracy"]
    )
    # 1,797 digits: 1,438 to train, 22 whole batches of 64; every epoch logged once.
    assert (run["train_samples"], run["val_samples"]) == (1438, 359)
    assert [int(row["epoch"]) for row in csv.DictReader((out / "log.csv").read_text().splitlines())] == [0]
    # The saved weights are the inference graph's (no side head): they load into the plain model.
    import keras

    model = ik.build_model(spec)
    model.load_weights(out / "final.weights.h5")
    assert len(model.weights) == len(ik.build_model(spec).weights)
    # ... and they are trained: the first conv moved from its (seed 0) initial value.
    keras.utils.set_random_seed(0)
    initial = ik.build_model(spec).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(initial, model.get_weights()))
