"""Every registered layer kind, and every merge, against Keras and TensorFlow's profiler.

Parametrised over the registry itself: a new kind fails `test_every_kind_has_an_example`
until it gets an example here, and is then checked like the others.
"""

import pytest

import inception_kit as ik
from inception_kit.keras.verify import compare
from inception_kit.kinds import get_merge, list_kinds, list_merges

INPUT = (9, 9, 4)
EXAMPLES = {  # kind -> (layers before it, its arguments)
    "conv": ([], {"filters": 6, "kernel": [2, 3], "strides": 2, "batchnorm": True, "activation": "relu6"}),
    "sepconv": (
        [],
        {"filters": 5, "kernel": 3, "depth_multiplier": 2, "batchnorm": {"scale": False}, "padding": "valid"},
    ),
    "maxpool": ([], {"pool": 3, "strides": 2, "padding": "valid"}),
    "avgpool": ([], {"pool": [2, 3]}),
    "gap": ([], {}),
    "gmaxpool": ([], {}),
    "flatten": ([], {}),
    "dropout": ([], {"rate": 0.3}),
    "activation": ([], {"activation": "softmax"}),
    "batchnorm": ([], {"scale": False}),
    "dense": ([ik.Layer("flatten")], {"units": 7, "activation": "tanh"}),
}


def test_every_kind_has_an_example():
    assert set(EXAMPLES) == set(list_kinds())


@pytest.mark.parametrize("kind", sorted(list_kinds()))
def test_kind_shape_params_and_flops_equal_keras(kind):
    before, args = EXAMPLES[kind]
    spec = ik.Model(kind, INPUT, [*before, ik.Layer(kind, **args)])
    a = ik.analyse(spec)
    model = ik.build_model(a.plan)
    assert tuple(model.output.shape[1:]) == a.plan.output_shape
    bad = [(c.what, c.analytic, c.measured) for c in compare(a, model) if not c.ok]
    assert not bad


@pytest.mark.parametrize("merge", sorted(list_merges()))
def test_merge_shape_params_and_flops_equal_keras(merge):
    branches = {
        "a": [ik.Layer("conv", filters=4, kernel=1)],
        "b": [ik.Layer("conv", filters=4, kernel=3)],
        "c": [],
    }
    block = ik.Block(
        "m", branches, merge=merge, scale=0.5 if get_merge(merge).residual else None, activation="relu"
    )
    a = ik.analyse(ik.Model(merge, INPUT, [block]))
    model = ik.build_model(a.plan)
    assert tuple(model.output.shape[1:]) == a.plan.output_shape
    assert not [(c.what, c.analytic, c.measured) for c in compare(a, model) if not c.ok]
