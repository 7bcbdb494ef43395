"""Mutated specs either validate (and then build exactly as planned) or raise SpecError
with a path. Any other exception, or a traceback from Keras, is a failure.

Examples per run: IK_MUTATION_EXAMPLES (default 40); set it high for a long soak.
"""

import copy
import json
import os

import keras
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inception_kit as ik
from conftest import SPECS, TEST_SPECS
from inception_kit.planner import iter_ops

EXAMPLES = int(os.environ.get("IK_MUTATION_EXAMPLES", "40"))
BASES = [
    SPECS / "inception_3a.yaml",
    TEST_SPECS / "valid" / "residual_and_nested.yaml",
    TEST_SPECS / "valid" / "anchors.yaml",
    SPECS / "five_by_five_bottleneck.yaml",
]
ODD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    3,
    2.5,
    float("nan"),
    float("inf"),
    10**12,
    "",
    "relu",
    "same",
    "$x",
    [],
    [1],
    [3, 3],
    [0, 3],
    [1, 2, 3],
    {},
    {"a": 1},
    "1e-5",
]


def paths(node, prefix=()):
    """Every (path, value) in a plain YAML tree."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def parent_of(tree, path):
    for key in path[:-1]:
        tree = tree[key]
    return tree


@st.composite
def mutated(draw):
    base = draw(st.sampled_from(BASES))
    tree = json.loads(json.dumps(yaml.safe_load(base.read_text())))  # unshare anchored nodes
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p, _ in paths(tree) if p]
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent, key = parent_of(tree, path), path[-1]
        action = draw(st.sampled_from(["drop", "duplicate", "retype", "perturb", "rename"]))
        if action == "drop":
            del parent[key]
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif action == "rename" and isinstance(parent, dict):
            parent[str(key) + draw(st.sampled_from(["s", "_", "x"]))] = parent.pop(key)
        elif action == "perturb" and isinstance(parent[key], int) and not isinstance(parent[key], bool):
            parent[key] = parent[key] + draw(st.sampled_from([-parent[key], -1, 1, 7, 10**6]))
        else:
            parent[key] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
    return yaml.safe_dump(tree, sort_keys=False)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutants_validate_or_raise_spec_error(text):
    try:
        analysis = ik.analyse(ik.loads_spec(text, file="mutant.yaml"))
    except ik.SpecError as err:
        assert err.problems
        for problem in err.problems:
            assert problem.path, str(problem)
            assert str(problem).startswith(("mutant.yaml:", problem.path))
        return
    # Valid: then it builds, with the planned shapes and the analytic parameter count.
    model = ik.build_model(analysis.plan)
    layers = {layer.name: layer for layer in model.layers}
    for op in iter_ops(analysis.plan.steps):
        assert op.name in layers
    assert model.count_params() == analysis.total.params
    assert tuple(model.output.shape[1:]) == analysis.plan.output_shape
    keras.backend.clear_session()
