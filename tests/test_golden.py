"""Every shipped spec's JSON report equals the golden copy taken before the redesign (issue 12).

The golden files in tests/golden/ were written by `inception-kit report SPEC --format json` on
the first version. Later versions may ADD fields (a new column, aux heads); every golden field
must still be there with the same value. Regenerate only on purpose (see README, Development).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import SHIPPED
from inception_kit import analyse, load, render

GOLDEN = Path(__file__).resolve().parent / "golden"


def differences(golden: Any, current: Any, path: str = "$") -> list[str]:
    """Where `current` lacks or changes a value of `golden` (extra fields in current are fine)."""
    if isinstance(golden, dict):
        if not isinstance(current, dict):
            return [f"{path}: expected an object, got {type(current).__name__}"]
        out = []
        for key, value in golden.items():
            if key not in current:
                out.append(f"{path}.{key}: missing")
            else:
                out += differences(value, current[key], f"{path}.{key}")
        return out
    if isinstance(golden, list):
        if not isinstance(current, list) or len(current) != len(golden):
            return [f"{path}: expected a list of {len(golden)}, got {current!r:.80}"]
        return [d for i, (g, c) in enumerate(zip(golden, current)) for d in differences(g, c, f"{path}[{i}]")]
    return [] if golden == current else [f"{path}: expected {golden!r}, got {current!r}"]


def test_every_shipped_spec_has_a_golden_report():
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(p.stem for p in SHIPPED)


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.stem)
def test_report_json_equals_the_golden_copy(spec):
    golden = json.loads((GOLDEN / f"{spec.stem}.json").read_text())
    current = json.loads(render(analyse(load(load(spec).model)), "json"))
    assert differences(golden, current) == []


def test_the_comparison_catches_a_changed_or_missing_value():
    golden = {"model": {"macs": 1, "rows": [{"name": "a"}]}}
    assert differences(golden, {"model": {"macs": 2, "rows": [{"name": "a"}], "new": 0}}) == [
        "$.model.macs: expected 1, got 2"
    ]
    assert differences(golden, {"model": {"rows": []}}) == [
        "$.model.macs: missing",
        "$.model.rows: expected a list of 1, got []",
    ]
