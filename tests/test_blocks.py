"""Blocks taken from a spec as Keras building blocks: spec.block, apply_block(name=...)."""

import keras
import numpy as np
import pytest

import inception_kit as ik


def _report_blocks(preset):
    return {row["name"]: row for row in ik.report_data(ik.analyse(ik.load(preset)))["blocks"]}


@pytest.mark.parametrize(
    "preset,name",
    [
        ("googlenet", "inc4a"),
        ("googlenet", "inc5b"),
        ("inception_v3", "mixed0"),
        ("inception_v3", "mixed9"),
        ("xception", "block4"),
    ],
)
def test_a_block_from_a_spec_counts_what_the_report_counts(preset, name):
    spec = ik.load(preset).model
    row = _report_blocks(preset)[name]
    a = ik.analyse(ik.load(preset))
    (step,) = [s for s in a.plan.layers if getattr(s, "name", None) == name]
    x = keras.Input(step.input_shape)
    model = keras.Model(x, ik.apply_block(spec.block(name), x))
    assert model.count_params() == row["params"]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == row["trainable_params"]
    assert tuple(model.output.shape[1:]) == tuple(row["output_shape"])


def test_googlenet_inc4a_has_biases_and_no_batch_norm_from_the_defaults():
    block = ik.load("googlenet").model.block("inc4a")
    x = keras.Input((14, 14, 480))
    model = keras.Model(x, ik.apply_block(block, x))
    # inc4a from 480 channels: 1x1 192; 1x1 96 -> 3x3 208; 1x1 16 -> 5x5 48; pool -> 1x1 64; all with biases
    convs = [(480, 192, 1), (480, 96, 1), (96, 208, 3), (480, 16, 1), (16, 48, 5), (480, 64, 1)]
    assert model.count_params() == sum(k * k * cin * cout + cout for cin, cout, k in convs)
    assert not [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]


def test_one_block_applied_twice_under_two_names():
    block = ik.load("inception_3a").model.block("inc3a")
    x = keras.Input((28, 28, 192))
    y = ik.apply_block(block, x)  # (B, 28, 28, 256)
    with pytest.raises(
        ik.SpecError,
        match=r"^name: expected layer names not already in the graph of x "
        r"\(applying 'inc3a' twice\? pass name=\); received inc3a_b1",
    ):
        ik.apply_block(block, y)
    z = ik.apply_block(block, y, name="inc3a_again")
    model = keras.Model(x, z)
    assert model.get_layer("inc3a_again_concat").output.shape[1:] == (28, 28, 256)
    once = ik.analyse(ik.load(ik.ModelSpec("b", (28, 28, 192), [block]))).total.params
    again = ik.analyse(ik.load(ik.ModelSpec("b", (28, 28, 256), [block]))).total.params
    assert model.count_params() == once + again


def test_a_wrong_rank_speaks_of_the_tensor():
    block = ik.load("googlenet").model.block("inc4a")
    flat = keras.layers.Flatten()(keras.Input((14, 14, 480)))
    with pytest.raises(ik.SpecError) as err:
        ik.apply_block(block, flat)
    assert str(err.value) == (
        "x: expected a rank-4 tensor (batch, height, width, channels) for block 'inc4a'; "
        "received a rank-2 tensor of shape (None, 94080)"
    )


def test_an_unknown_block_name_gets_a_did_you_mean():
    with pytest.raises(
        ik.SpecError,
        match=r"^block: expected the name of a block in model 'googlenet'; "
        r"received 'inc4' \(did you mean 'inc4",
    ):
        ik.load("googlenet").model.block("inc4")


def test_name_renames_only_one_node():
    with pytest.raises(
        ik.SpecError, match="name: expected a single Block or Layer to rename; received 2 nodes"
    ):
        ik.apply_block([ik.LayerSpec("conv", filters=2, kernel=1)] * 2, keras.Input((4, 4, 3)), name="x")
