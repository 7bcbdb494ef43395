"""keras.applications' knobs (input_shape, include_top, pooling, classes, classifier_activation)."""

import json
import subprocess

import pytest

import inception_kit as ik
from conftest import CLI, ROOT
from inception_kit.errors import SpecError
from inception_kit.spec.knobs import apply_knobs

GOOGLENET_PARAMS = ik.analyse(ik.load("googlenet")).total.params


def test_classes_resizes_the_classifier():
    # GoogLeNet's classifier is dense 1024 -> 1000 with biases; with 10 classes, 1024 -> 10.
    a = ik.analyse(ik.load("googlenet", classes=10))
    assert a.total.params == GOOGLENET_PARAMS - (1024 * 1000 + 1000) + (1024 * 10 + 10)
    assert a.plan.output_shape == (10,)


@pytest.mark.parametrize(
    "pooling,kind,shape", [(None, None, (7, 7, 1024)), ("avg", "gap", (1024,)), ("max", "gmaxpool", (1024,))]
)
def test_no_top_drops_the_head_and_pooling_ends_the_model(pooling, kind, shape):
    spec = ik.load("googlenet", include_top=False, pooling=pooling).model
    assert [layer.kind for layer in spec.head] == ([kind] if kind else [])
    a = ik.analyse(ik.load(spec))
    assert a.plan.output_shape == shape
    assert a.total.params == GOOGLENET_PARAMS - (1024 * 1000 + 1000)  # dropout and pooling hold none


def test_input_shape_changes_every_shape_not_the_params():
    a = ik.analyse(ik.load("googlenet", input_shape=(96, 96, 3), include_top=False))
    # 96 -> conv /2 48 -> pool /2 24 -> pool /2 12 -> pool /2 6 -> pool /2 3 (same padding rounds up)
    assert a.plan.output_shape == (3, 3, 1024)
    assert a.total.params == GOOGLENET_PARAMS - (1024 * 1000 + 1000)


def test_classifier_activation_and_the_spec_left_as_it_was():
    spec = ik.load("googlenet").model
    changed = apply_knobs(spec, classes=5, classifier_activation=None)
    assert changed.head[-1].args == {"units": 5, "activation": None}
    assert spec.head[-1].args == {"units": 1000, "activation": "softmax"}
    assert spec == ik.load("googlenet").model


def test_too_small_an_input_names_the_first_layer_it_vanishes_at():
    # InceptionV3 at 74x74: 74 -> 36 -> 34 -> 34 -> pool 16 -> 16 -> 14 -> pool 6 -> mixed3 (/2, valid) 2
    # -> mixed8's strided valid 3x3 (layers[14], its branch b3x3, second conv) has a 2x2 input.
    with pytest.raises(SpecError) as err:
        ik.analyse(ik.load("inception_v3", input_shape=(74, 74, 3), include_top=False))
    assert len(err.value.problems) == 1
    text = str(err.value)
    assert text.startswith("input_shape: expected an input large enough for every layer; received 74×74×3")
    assert "inception_v3.yaml:75:42: layers[14].branches.b3x3[1].kernel" in text
    assert ik.analyse(
        ik.load("inception_v3", input_shape=(75, 75, 3), include_top=False)
    ).plan.output_shape == (
        1,
        1,
        2048,
    )


@pytest.mark.parametrize(
    "knobs,message",
    [
        (
            {"pooling": "avg"},
            "pooling: expected no pooling with include_top (the top pools already); received 'avg'",
        ),
        (
            {"include_top": False, "pooling": "mean"},
            "pooling: expected one of avg, max or None; received 'mean'",
        ),
        ({"include_top": False, "classes": 3}, "classes: expected no classes with include_top=False"),
        ({"classes": 0}, "classes: expected a positive whole number; received 0"),
        ({"classifier_activation": "softmaxx"}, "classifier_activation: expected one of relu"),
        (
            {"input_shape": (3, 3)},
            "input_shape: expected (height, width, channels) as positive integers; received (3, 3)",
        ),
        ({"include_top": "no"}, "include_top: expected true or false; received 'no'"),
    ],
)
def test_bad_knobs_are_spec_errors(knobs, message):
    with pytest.raises(SpecError) as err:
        ik.load("googlenet", **knobs)
    assert str(err.value).startswith(message)


def test_classes_needs_a_classifier():
    with pytest.raises(SpecError, match="classes: expected a spec whose head has a dense layer"):
        ik.load("inception_3a", classes=3)


def test_an_unknown_knob_is_a_type_error():
    with pytest.raises(TypeError, match="unknown knob 'top'"):
        ik.load("googlenet", top=False)


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cli_flags_equal_the_python_knobs():
    r = run("report", "googlenet", "--input", "96x96x1", "--no-top", "--pooling", "max", "--format", "json")
    assert r.returncode == 0, r.stderr
    expected = ik.report(
        ik.load("googlenet", input_shape=(96, 96, 1), include_top=False, pooling="max"), "json"
    )
    assert json.loads(r.stdout) == json.loads(expected)
    r = run("validate", "googlenet", "--classes", "10", "--classifier-activation", "none")
    assert r.returncode == 0, r.stderr
    assert f"{GOOGLENET_PARAMS - 1024 * 990 - 990:,} params" in r.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--input", "96x96"], "argument --input: expected HEIGHTxWIDTHxCHANNELS"),
        (["--no-top", "--classes", "3"], "classes: expected no classes with include_top=False"),
        (["--input", "8x8x3", "--no-top"], None),  # same padding everywhere: GoogLeNet never vanishes
    ],
)
def test_cli_knob_errors_exit_2(args, message):
    r = run("validate", "googlenet", *args)
    if message is None:
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


KERAS_APPS = {
    "inception_v3": "InceptionV3",
    "inception_resnet_v2": "InceptionResNetV2",
    "xception": "Xception",
}
COMBOS = [
    {"classes": 10},
    {"include_top": True, "input_shape": (150, 150, 3), "classes": 7, "classifier_activation": None},
    {"include_top": False, "input_shape": (150, 150, 3), "pooling": "avg"},
    {"include_top": False, "input_shape": (96, 128, 1), "pooling": "max"},
    {"include_top": False, "input_shape": (80, 80, 3), "pooling": None},
]


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(KERAS_APPS))
@pytest.mark.parametrize("knobs", COMBOS, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()))
def test_knobs_give_keras_applications_param_counts(preset, knobs):
    import keras

    theirs = getattr(keras.applications, KERAS_APPS[preset])(weights=None, **knobs)
    # keras.applications has no auxiliary heads (InceptionV3's sits on mixed7): compare without.
    ours = ik.build_model(preset, include_aux=False, **knobs)
    a = ik.analyse(ik.load(preset, include_aux=False, **knobs))
    assert ours.count_params() == theirs.count_params() == a.total.params
    trainable = sum(int(w.numpy().size) for w in theirs.trainable_weights)
    assert a.total.params - a.total.non_trainable == trainable
    assert ours.output.shape[1:] == theirs.output.shape[1:]
    if knobs.get("include_top", True):
        wanted = knobs.get("classifier_activation", "softmax")
        assert (
            ours.layers[-1].get_config()["activation"]
            == theirs.layers[-1].get_config()["activation"]
            == (wanted or "linear")
        )
