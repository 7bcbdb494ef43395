"""The JSON Schema is derived from the registry and accepts every valid spec."""

import json

import jsonschema
import pytest
import yaml

from conftest import CLI, SHIPPED, TEST_SPECS
from inception_kit.spec.schema import SCHEMA_FILE, spec_schema

VALID = sorted((TEST_SPECS / "valid").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_packaged_schema_is_the_generated_one():
    assert json.loads(SCHEMA_FILE.read_text()) == spec_schema()


@pytest.mark.parametrize("path", SHIPPED + VALID, ids=lambda p: p.name)
def test_every_valid_spec_passes_the_schema(validator, path):
    validator.validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(
    "doc,where",
    [
        ({"input": [8, 8, 3], "layers": [{"conv": {"filters": 8, "kernel": 3, "kernal": 3}}]}, "kernal"),
        ({"input": [8, 8, 3], "layers": [{"conv": {"filters": 0, "kernel": 3}}]}, "0"),
        ({"input": [8, 8], "layers": []}, "input"),
        ({"input": [8, 8, 3], "layers": [{"maxpool": {"pool": 2, "padding": "full"}}]}, "full"),
    ],
)
def test_schema_rejects_structural_mistakes(validator, doc, where):
    errors = list(validator.iter_errors(doc))
    assert errors, f"schema accepted {doc}"


def test_every_registered_kind_is_in_the_schema():
    from inception_kit import get_kind, list_kinds

    props = spec_schema()["$defs"]["node"]["oneOf"][1]["properties"]
    assert set(list_kinds()) <= set(props)
    for name, kind in ((n, get_kind(n)) for n in list_kinds()):
        text = json.dumps(props[name])
        assert all(f'"{field}"' in text for field in kind.fields), name


def test_cli_prints_the_schema():
    import subprocess

    r = subprocess.run([*CLI, "schema"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout) == spec_schema()
