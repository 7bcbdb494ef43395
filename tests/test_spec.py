"""The spec language: table rows, templates, repeats, defaults, anchors, round trips."""

import pytest

import inception_kit as ik
from conftest import SHIPPED, TEST_SPECS
from inception_kit.planner import iter_ops

VALID = sorted((TEST_SPECS / "valid").glob("*.yaml"))


def test_table_row_expands_to_the_general_form():
    row = ik.loads("""
input: [28, 28, 192]
layers:
  - inception: {name: inc3a, 1x1: 64, 3x3_reduce: 96, 3x3: 128, 5x5_reduce: 16, 5x5: 32, pool_proj: 32}
""").model
    general = ik.loads("""
input: [28, 28, 192]
layers:
  - block:
      name: inc3a
      branches:
        b1: [{conv: {filters: 64, kernel: 1}}]
        b2: [{conv: {filters: 96, kernel: 1}}, {conv: {filters: 128, kernel: 3}}]
        b3: [{conv: {filters: 16, kernel: 1}}, {conv: {filters: 32, kernel: 5}}]
        b4: [{maxpool: {pool: 3, strides: 1}}, {conv: {filters: 32, kernel: 1}}]
""").model
    assert row.layers == general.layers


def test_python_objects_equal_the_yaml_spec():
    from_yaml = ik.load(TEST_SPECS.parent.parent / "specs" / "five_by_five_bottleneck.yaml").model
    in_python = ik.ModelSpec(
        "five_by_five_bottleneck",
        (28, 28, 192),
        [ik.LayerSpec("conv", filters=16, kernel=1), ik.LayerSpec("conv", filters=32, kernel=5)],
    )
    assert in_python == from_yaml
    assert ik.analyse(ik.load(in_python)).total.macs == ik.analyse(ik.load(from_yaml)).total.macs


TEMPLATED = """
name: t
input: [16, 16, 32]
templates:
  res:
    args: [width, {scale: 0.1}, {act: relu}]
    merge: add
    scale: $scale
    activation: $act
    branches:
      shortcut: []
      residual: [{conv: {filters: $width, kernel: 1}}, {conv: {filters: 32, kernel: [1, 3], activation: null}}]
layers:
  - res: {width: 8, repeat: 3}
  - res: {name: last, width: 4, scale: 1.0, act: null}
"""


def test_templates_substitute_arguments_and_defaults():
    m = ik.loads(TEMPLATED).model
    names = [b.name for b in m.layers]
    assert names == ["res_1", "res_2", "res_3", "last"]
    first, last = m.layers[0], m.layers[-1]
    assert (first.merge, first.scale, first.activation) == ("add", 0.1, "relu")
    assert (last.scale, last.activation) == (1.0, None)
    assert first.branches["residual"][0].args == {"filters": 8, "kernel": 1}
    assert last.branches["residual"][0].args == {"filters": 4, "kernel": 1}
    ops = [op.name for op in iter_ops(ik.load(m).steps)]
    assert ops[:2] == ["res_1_residual_conv1x1", "res_1_residual_conv1x3"]


def test_defaults_apply_and_layers_override_them():
    m = ik.loads("""
input: [8, 8, 3]
defaults:
  conv: {activation: null, bias: false, batchnorm: {scale: false}, padding: valid}
layers:
  - conv: {filters: 4, kernel: 3}
  - conv: {filters: 4, kernel: 3, activation: relu, padding: same}
""").model
    a, b = ik.load(m).layers
    assert (a.args["activation"], a.args["bias"], a.args["padding"]) == (None, False, "valid")
    assert a.args["batchnorm"] == {"scale": False, "epsilon": 1e-3, "momentum": 0.99}
    assert (b.args["activation"], b.args["padding"]) == ("relu", "same")
    assert (a.output_shape, b.output_shape) == ((6, 6, 4), (6, 6, 4))


def test_anchors_and_merge_keys_work_with_templates():
    m = ik.loads("""
input: [8, 8, 16]
templates:
  two:
    args: [w]
    branches:
      a: [{conv: &reduce {kernel: 1, activation: relu, filters: $w}}]
      b: [{conv: {<<: *reduce, filters: 4, kernel: 3}}]
layers:
  - two: {w: 6}
""").model
    a, b = m.layers[0].branches["a"][0], m.layers[0].branches["b"][0]
    assert a.args == {"kernel": 1, "activation": "relu", "filters": 6}
    assert b.args == {"kernel": 3, "activation": "relu", "filters": 4}


def test_shorthands_and_bare_kinds():
    m = ik.loads("""
input: [8, 8, 3]
layers: [{maxpool: 2}, {activation: relu}, batchnorm]
head: [gap, {dropout: 0.5}, {dense: 10}, flatten]
""").model
    p = ik.load(m)
    assert [op.kind for op in iter_ops(p.steps)] == [
        "maxpool",
        "activation",
        "batchnorm",
        "gap",
        "dropout",
        "dense",
        "flatten",
    ]
    assert p.layers[0].output_shape == (4, 4, 3)  # strides default to the pool size
    assert p.output_shape == (10,)


def test_layer_names_are_truthful_unique_and_stable():
    m = ik.loads("""
input: [32, 32, 3]
layers:
  - conv: {filters: 8, kernel: 3}
  - conv: {filters: 8, kernel: 3}
  - conv: {filters: 8, kernel: [1, 7], name: wide}
  - block: {name: mix, branches: {x: [{conv: {filters: 4, kernel: 5}}, {conv: {filters: 4, kernel: 5}}], y: [{block: {branches: {p: [{maxpool: {pool: 3, strides: 1}}]}}}]}}
""").model
    names = [op.name for op in iter_ops(ik.load(m).steps)]
    assert names == [
        "conv3x3",
        "conv3x3_2",
        "wide",
        "mix_x_conv5x5",
        "mix_x_conv5x5_2",
        "mix_y_block_1_p_maxpool3x3",
    ]
    assert names == [op.name for op in iter_ops(ik.load(ik.loads(m.to_yaml()).model).steps)]


@pytest.mark.parametrize("path", SHIPPED + VALID, ids=lambda p: p.name)
def test_yaml_spec_yaml_round_trip(path):
    first = ik.load(path).model
    text = first.to_yaml()
    second = ik.loads(text).model
    assert second == first
    assert second.to_yaml() == text
    assert ik.load(first.to_data()).model == first


def test_generated_names_skip_names_the_user_took():
    p = ik.load(ik.load(TEST_SPECS / "valid" / "auto_name_collision.yaml").model)
    assert [op.name for op in iter_ops(p.steps)] == ["conv3x3", "conv3x3_2"]


def test_repeat_numbering_can_start_anywhere_and_sit_inside_the_name():
    m = ik.loads("""
input: [8, 8, 16]
templates:
  t: {args: [w], branches: {a: [{conv: {filters: $w, kernel: 1}}], b: []}}
layers:
  - t: {w: 2, repeat: 2}                                   # t_1, t_2
  - t: {w: 2}                                              # t_3
  - t: {name: "block{i}", w: 2, repeat: {times: 3, first: 5}}
  - conv: {name: c, filters: 4, kernel: 1, repeat: {times: 2, first: 0}}
""").model
    assert [n.name for n in m.layers] == ["t_1", "t_2", "t_3", "block5", "block6", "block7", "c_0", "c_1"]
    assert ik.loads(m.to_yaml()).model == m
