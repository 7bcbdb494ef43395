"""The analytic counts equal Keras' parameter count and TensorFlow's profiler, exactly.

The profiler is the independent measurement: it walks the frozen inference graph of the
built model. One documented difference is pinned below: grouped convolutions run in an
XLA function the profiler cannot see into (see inception_kit.keras.verify).
"""

import os
import subprocess

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inception_kit as ik
from conftest import CLI, ROOT, SHIPPED, SPECS, TEST_SPECS
from inception_kit.keras.profiler import profile_flops
from inception_kit.keras.verify import compare

pytestmark = pytest.mark.slow  # every test here starts TensorFlow (make check leaves them out)

BIG = ("inception_v3", "inception_resnet_v2", "xception")


def assert_exact(spec):
    a = ik.analyse(spec)
    checks = compare(a, ik.build_model(a.plan))
    bad = [(c.what, c.analytic, c.measured) for c in checks if not c.ok]
    assert not bad
    return checks


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.stem in BIG else p for p in SHIPPED]
    + sorted((TEST_SPECS / "valid").glob("*.yaml")),
    ids=lambda p: p.stem,
)
def test_analytic_equals_profiler_and_keras(path):
    checks = {c.what: c for c in assert_exact(path)}
    assert checks["FLOPs Conv2D"].measured > 0 or checks["FLOPs MatMul"].measured > 0


def test_conv_flops_are_twice_the_macs_on_googlenet():
    a = ik.analyse(SPECS / "googlenet.yaml")
    measured = profile_flops(ik.build_model(a.plan))
    conv_macs = sum(r.cost.macs for r in a.rows if r.kind == "conv")
    assert measured["Conv2D"] == 2 * conv_macs
    assert measured["MatMul"] == 2 * 1024 * 1000


def test_grouped_conv_is_invisible_to_the_profiler():
    # Pinned: Keras (TF backend, CPU) runs groups > 1 through an XLA-compiled function.
    spec = ik.Model("g", (8, 8, 8), [ik.Layer("conv", filters=8, kernel=3, groups=2)])
    measured = profile_flops(ik.build_model(spec))
    a = ik.analyse(spec)
    assert a.total.flops_by_op["Conv2D"] == 2 * 8 * 8 * 8 * 3 * 3 * 4
    assert measured["Conv2D"] == 0
    assert measured["BiasAdd"] == a.total.flops_by_op["BiasAdd"] == 8 * 8 * 8


def test_report_verify_prints_both_columns():
    r = subprocess.run(
        [*CLI, "report", SPECS / "inception_3a.yaml", "--verify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "analytic" in r.stderr and "measured" in r.stderr and " NO" not in r.stderr
    assert "deprecated" not in r.stderr  # TensorFlow's warnings about its own profiler stay quiet


# ---------------------------------------------------------------------------------------
# Property: random small valid specs are exact too.

EXAMPLES = int(os.environ.get("IK_HYPOTHESIS_EXAMPLES", "12"))


@st.composite
def conv_layer(draw, filters=None):
    """A same-padded stride-1 conv or sepconv (so branches keep their spatial size)."""
    kind = draw(st.sampled_from(["conv", "sepconv"]))
    args = dict(
        filters=filters or draw(st.integers(1, 12)),
        kernel=draw(st.sampled_from([1, 2, 3, [1, 3], [3, 1], 5])),
        padding="same",
        batchnorm=draw(st.sampled_from([False, True, {"scale": False}])),
        bias=draw(st.booleans()),
        activation=draw(st.sampled_from(["relu", None, "relu6", "sigmoid", "tanh"])),
    )
    if kind == "sepconv":
        args["depth_multiplier"] = draw(st.integers(1, 2))
    return ik.Layer(kind, **args)


@st.composite
def small_model(draw):
    """A valid random model: stem conv, then convs, pools, concat and residual blocks."""
    size, channels = draw(st.integers(7, 14)), draw(st.integers(1, 6))
    width = draw(st.integers(2, 8))
    layers = [
        ik.Layer(
            "conv",
            filters=width,
            kernel=draw(st.sampled_from([1, 3])),
            strides=draw(st.sampled_from([1, 2])),
            padding=draw(st.sampled_from(["same", "valid"])),
        )
    ]
    for _ in range(draw(st.integers(1, 3))):
        choice = draw(st.sampled_from(["conv", "pool", "concat", "add"]))
        if choice == "conv":
            layers.append(draw(conv_layer()))
            width = layers[-1].args["filters"]
        elif choice == "pool":
            layers.append(
                ik.Layer(
                    draw(st.sampled_from(["maxpool", "avgpool"])),
                    pool=draw(st.sampled_from([2, 3])),
                    strides=1,
                    padding="same",
                )
            )
        elif choice == "concat":
            branches = {
                f"b{i}": draw(st.lists(conv_layer(), min_size=1, max_size=2))
                for i in range(draw(st.integers(1, 3)))
            }
            branches["pool"] = [ik.Layer("maxpool", pool=3, strides=1)]
            width = width + sum(b[-1].args["filters"] for k, b in branches.items() if k != "pool")
            layers.append(ik.Block(None, branches, activation=draw(st.sampled_from([None, "relu"]))))
        else:  # residual: every non-empty branch ends at the block's input width
            branches = {"shortcut": []}
            for i in range(draw(st.integers(1, 2))):
                body = draw(st.lists(conv_layer(), min_size=0, max_size=1))
                branches[f"r{i}"] = [*body, draw(conv_layer(filters=width))]
            layers.append(
                ik.Block(
                    None,
                    branches,
                    merge="add",
                    scale=draw(st.sampled_from([None, 0.2])),
                    activation=draw(st.sampled_from([None, "relu"])),
                )
            )
    head = draw(st.sampled_from(["none", "gap", "flatten"]))
    head_layers = (
        []
        if head == "none"
        else [
            ik.Layer(head),
            ik.Layer(
                "dense", units=draw(st.integers(1, 5)), activation=draw(st.sampled_from([None, "softmax"]))
            ),
        ]
    )
    return ik.Model("random", (size, size, channels), layers, head_layers)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_model())
def test_random_specs_are_exact(model):
    assert_exact(model)  # valid by construction: a SpecError here is a failure too
    keras.backend.clear_session()
