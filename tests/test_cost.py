"""Exact costs against closed-form arithmetic written out in the tests."""

import math

import pytest

import inception_kit as ik
from conftest import ROOT, SPECS


def test_one_by_one_example_counts_every_channel_at_every_position():
    a = ik.analyse(ik.load(SPECS / "one_by_one.yaml"))
    assert a.plan.output_shape == (28, 28, 32)
    assert a.total.macs == 28 * 28 * 192 * 32
    assert a.total.params == 192 * 32 + 32
    # FLOPs: 2 per MAC for Conv2D, one per output element for the bias add, ReLU free.
    assert a.total.flops_by_op == {"Conv2D": 2 * 28 * 28 * 192 * 32, "BiasAdd": 28 * 28 * 32}


def test_five_by_five_naive_and_bottleneck_match_the_lecture():
    naive = ik.analyse(ik.load(SPECS / "five_by_five_naive.yaml"))
    bottleneck = ik.analyse(ik.load(SPECS / "five_by_five_bottleneck.yaml"))
    assert naive.total.macs == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400
    assert bottleneck.total.macs == 28 * 28 * 16 * 192 + 28 * 28 * 32 * 5 * 5 * 16 == 12_443_648
    # The naive counterpart of the bottleneck spec is exactly the naive spec.
    assert bottleneck.naive.macs == naive.total.macs
    assert bottleneck.naive.params == naive.total.params == 5 * 5 * 192 * 32 + 32
    assert bottleneck.total.params == (192 * 16 + 16) + (5 * 5 * 16 * 32 + 32)


def conv(h, w, cin, cout, k):
    """(MACs, params) of a same-padded stride-1 k×k conv with bias."""
    return h * w * cout * k * k * cin, k * k * cin * cout + cout


def inception_row(h, w, cin, c1, r3, c3, r5, c5, pp):
    """Closed-form per-branch (MACs, params, naive MACs, naive params) of a GoogLeNet row."""
    b1 = conv(h, w, cin, c1, 1)
    b2 = [a + b for a, b in zip(conv(h, w, cin, r3, 1), conv(h, w, r3, c3, 3))]
    b3 = [a + b for a, b in zip(conv(h, w, cin, r5, 1), conv(h, w, r5, c5, 5))]
    b4 = conv(h, w, cin, pp, 1)
    naive = {"b1": b1, "b2": conv(h, w, cin, c3, 3), "b3": conv(h, w, cin, c5, 5), "b4": b4}
    real = {"b1": b1, "b2": b2, "b3": b3, "b4": b4}
    return real, naive


def test_inception_3a_block_and_branches():
    a = ik.analyse(ik.load(SPECS / "inception_3a.yaml"))
    (block,) = a.blocks
    real, naive = inception_row(28, 28, 192, 64, 96, 128, 16, 32, 32)
    assert block.output_shape == (28, 28, 64 + 128 + 32 + 32)
    for branch in block.branches:
        assert (branch.cost.macs, branch.cost.params) == tuple(real[branch.name])
        assert (branch.naive.macs, branch.naive.params) == tuple(naive[branch.name])
    assert block.cost.macs == sum(v[0] for v in real.values())
    assert block.naive.macs == sum(v[0] for v in naive.values())
    # max pool 3×3 stride 1: 9 comparisons per output element, counted as FLOPs only.
    assert a.total.flops_by_op["MaxPool"] == 28 * 28 * 192 * 9


GOOGLENET_TABLE = {  # Szegedy et al. 2014, Table 1: #1x1, #3x3r, #3x3, #5x5r, #5x5, pool proj
    "inc3a": (28, 64, 96, 128, 16, 32, 32),
    "inc3b": (28, 128, 128, 192, 32, 96, 64),
    "inc4a": (14, 192, 96, 208, 16, 48, 64),
    "inc4b": (14, 160, 112, 224, 24, 64, 64),
    "inc4c": (14, 128, 128, 256, 24, 64, 64),
    "inc4d": (14, 112, 144, 288, 32, 64, 64),
    "inc4e": (14, 256, 160, 320, 32, 128, 128),
    "inc5a": (7, 256, 160, 320, 32, 128, 128),
    "inc5b": (7, 384, 192, 384, 48, 128, 128),
}


def test_googlenet_totals_from_the_paper_table():
    a = ik.analyse(ik.load(SPECS / "googlenet.yaml"))
    macs = params = naive_macs = 0
    stem = [conv(112, 112, 3, 64, 7), conv(56, 56, 64, 64, 1), conv(56, 56, 64, 192, 3)]
    macs += sum(m for m, _ in stem)
    params += sum(p for _, p in stem)
    naive_macs += sum(m for m, _ in stem)
    cin = 192
    blocks = {b.name: b for b in a.blocks}
    for name, (size, *row) in GOOGLENET_TABLE.items():
        real, naive = inception_row(size, size, cin, *row)
        bm, bp = sum(v[0] for v in real.values()), sum(v[1] for v in real.values())
        assert (blocks[name].cost.macs, blocks[name].cost.params) == (bm, bp), name
        assert blocks[name].naive.macs == sum(v[0] for v in naive.values()), name
        macs, params, naive_macs = macs + bm, params + bp, naive_macs + sum(v[0] for v in naive.values())
        cin = row[0] + row[2] + row[4] + row[5]
    macs += cin * 1000
    params += cin * 1000 + 1000
    naive_macs += cin * 1000
    assert cin == 1024
    assert (a.total.macs, a.total.params, a.naive.macs) == (macs, params, naive_macs)


def test_naive_keeps_one_by_ones_that_do_not_reduce():
    # 64 -> 64 then 3×3 (GoogLeNet's stem) is not a reduction; 32 -> 64 is an expansion.
    spec = ik.ModelSpec(
        "m",
        (8, 8, 64),
        [
            ik.LayerSpec("conv", filters=64, kernel=1),
            ik.LayerSpec("conv", filters=8, kernel=3),
            ik.LayerSpec("conv", filters=128, kernel=1),
            ik.LayerSpec("conv", filters=8, kernel=3),
        ],
    )
    a = ik.analyse(ik.load(spec))
    assert a.naive.macs == a.total.macs
    assert [r.removed_in_naive for r in a.rows] == [False] * 4


def test_naive_rule_covers_any_kernel_but_1x1_as_the_readme_states():
    # A 1×1 reduction before a factorised 7×1 goes (InceptionV3's 17×17 blocks); before a 1×1 it stays.
    spec = ik.ModelSpec(
        "m",
        (17, 17, 192),
        [
            ik.LayerSpec("conv", filters=64, kernel=1),
            ik.LayerSpec("conv", filters=96, kernel=[7, 1], padding="same"),
            ik.LayerSpec("conv", filters=32, kernel=1),
            ik.LayerSpec("conv", filters=16, kernel=1),
        ],
    )
    a = ik.analyse(ik.load(spec))
    assert [r.removed_in_naive for r in a.rows] == [True, False, False, False]
    hw = 17 * 17
    assert a.total.macs == hw * (192 * 64 + 7 * 64 * 96 + 96 * 32 + 32 * 16)
    assert a.naive.macs == hw * (7 * 192 * 96 + 96 * 32 + 32 * 16)
    readme = " ".join((ROOT / "docs" / "explanation" / "naive.md").read_text(encoding="utf-8").split())
    assert "any kernel other than 1×1 (3×3 and 5×5, and the factorised 1×7 and 7×1 alike)" in readme


def test_naive_needs_a_following_kxk_conv():
    # A 1×1 reduction feeding a pool, or ending the branch, stays.
    spec = ik.ModelSpec(
        "m",
        (8, 8, 64),
        [
            ik.LayerSpec("conv", filters=16, kernel=1),
            ik.LayerSpec("maxpool", pool=2),
            ik.LayerSpec("conv", filters=8, kernel=1),
        ],
    )
    a = ik.analyse(ik.load(spec))
    assert a.naive.macs == a.total.macs


@pytest.mark.parametrize(
    "kernel,strides,padding,size,expected",
    [
        (3, 1, "same", 28, 28),
        (3, 2, "same", 28, 14),
        (3, 2, "same", 29, 15),
        (3, 2, "valid", 29, 14),
        (7, 2, "valid", 299, 147),
        ([1, 7], 1, "valid", 17, 17),
    ],
)
def test_conv_output_size_rule(kernel, strides, padding, size, expected):
    a = ik.analyse(
        ik.load(
            ik.ModelSpec(
                "m",
                (size, size, 3),
                [ik.LayerSpec("conv", filters=4, kernel=kernel, strides=strides, padding=padding)],
            )
        )
    )
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    want_h = math.ceil(size / strides) if padding == "same" else (size - kh) // strides + 1
    want_w = math.ceil(size / strides) if padding == "same" else (size - kw) // strides + 1
    assert want_h == expected
    assert a.plan.output_shape == (want_h, want_w, 4)


def test_grouped_and_separable_conv_costs():
    grouped = ik.analyse(
        ik.load(
            ik.ModelSpec(
                "g", (10, 10, 32), [ik.LayerSpec("conv", filters=64, kernel=3, groups=4, bias=False)]
            )
        )
    )
    assert grouped.total.macs == 10 * 10 * 64 * 3 * 3 * (32 // 4)
    assert grouped.total.params == 3 * 3 * (32 // 4) * 64
    sep = ik.analyse(
        ik.load(
            ik.ModelSpec(
                "s",
                (10, 10, 32),
                [ik.LayerSpec("sepconv", filters=64, kernel=3, bias=False, depth_multiplier=2)],
            )
        )
    )
    assert sep.total.params == 3 * 3 * 32 * 2 + 32 * 2 * 64
    assert sep.total.macs == 10 * 10 * (3 * 3 * 32 * 2 + 32 * 2 * 64)
    assert sep.total.flops_by_op == {
        "DepthwiseConv2dNative": 2 * 10 * 10 * 3 * 3 * 64,
        "Conv2D": 2 * 10 * 10 * 64 * 64,
    }


def test_batchnorm_params_follow_keras():
    # scale=False: beta trainable, moving mean/var not; scale=True adds gamma.
    plain = ik.analyse(
        ik.load(
            ik.ModelSpec(
                "b",
                (4, 4, 8),
                [ik.LayerSpec("conv", filters=16, kernel=1, bias=False, batchnorm={"scale": False})],
            )
        )
    )
    assert (plain.total.params, plain.total.trainable) == (8 * 16 + 3 * 16, 8 * 16 + 16)
    scaled = ik.analyse(
        ik.load(
            ik.ModelSpec(
                "b", (4, 4, 8), [ik.LayerSpec("conv", filters=16, kernel=1, bias=False, batchnorm=True)]
            )
        )
    )
    assert (scaled.total.params, scaled.total.trainable) == (8 * 16 + 4 * 16, 8 * 16 + 2 * 16)


def test_residual_add_and_scale_flops():
    block = ik.BlockSpec(
        "r",
        {"shortcut": [], "res": [ik.LayerSpec("conv", filters=8, kernel=1, activation=None, bias=False)]},
        merge="add",
        scale=0.2,
        activation="relu",
    )
    a = ik.analyse(ik.load(ik.ModelSpec("r", (5, 5, 8), [block])))
    n = 5 * 5 * 8
    # Rescaling is x*scale + 0 (Mul, AddV2); the add is one AddV2 per element.
    assert a.total.flops_by_op == {"Conv2D": 2 * n * 8, "Mul": n, "AddV2": 2 * n}
