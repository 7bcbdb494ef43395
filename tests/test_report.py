"""The report formats, and the docs' description of the JSON format (docs/reference/report-json.md)."""

import csv
import io
import json
import re

import inception_kit as ik
from conftest import ROOT, SPECS


def readme_json():
    text = (ROOT / "docs" / "reference" / "report-json.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)```", text, re.S).group(1)
    return json.loads(block)


def assert_documented(doc, actual, where):
    """Every key the README shows exists, with the value shown (placeholders '...' aside)."""
    for key, value in doc.items():
        if key == "..." or value == "...":
            continue
        assert key in actual, f"{where}.{key} is documented but not reported"
        if isinstance(value, dict):
            assert_documented(value, actual[key], f"{where}.{key}")
        elif not isinstance(value, list) or not value or not isinstance(value[0], dict):
            assert actual[key] == value, f"{where}.{key}"


def test_readme_json_matches_the_googlenet_report():
    doc, actual = readme_json(), ik.report_data(ik.analyse(ik.load(SPECS / "googlenet.yaml")))
    assert set(doc) == set(actual)
    assert_documented(doc["model"], actual["model"], "model")
    block = next(b for b in actual["blocks"] if b["name"] == doc["blocks"][0]["name"])
    assert_documented({k: v for k, v in doc["blocks"][0].items() if k != "branches"}, block, "blocks[0]")
    branch_doc = doc["blocks"][0]["branches"][0]
    assert_documented(
        branch_doc, next(b for b in block["branches"] if b["name"] == branch_doc["name"]), "branch"
    )
    layer_doc = doc["layers"][0]
    assert_documented(layer_doc, next(l for l in actual["layers"] if l["name"] == layer_doc["name"]), "layer")
    aux_doc = doc["aux"][0]
    assert_documented(aux_doc, next(h for h in actual["aux"] if h["name"] == aux_doc["name"]), "aux")


def test_layers_add_up_to_the_model():
    data = ik.report_data(ik.analyse(ik.load(ROOT / "tests/specs/valid/residual_and_nested.yaml")))
    for key in ("params", "macs", "flops"):
        assert sum(l[key] for l in data["layers"]) == data["model"][key]
    for block in data["blocks"]:
        rows = [l for l in data["layers"] if l["name"].startswith(block["name"] + "_")]
        assert sum(l["macs"] for l in rows) == block["macs"] == sum(b["macs"] for b in block["branches"])


def test_csv_and_markdown_carry_every_layer():
    a = ik.analyse(ik.load(SPECS / "inception_3a.yaml"))
    rows = list(csv.DictReader(io.StringIO(ik.render(a, "csv"))))
    assert [r["name"] for r in rows] == [r.name for r in a.rows]
    assert int(rows[4]["macs"]) == 28 * 28 * 32 * 5 * 5 * 16  # inc3a_b3_conv5x5
    md = ik.render(a, "markdown")
    assert all(f"| {r.name} |" in md for r in a.rows)
    b = a.blocks[0]  # the costs themselves are checked against formulas in test_cost
    ratio = b.naive.macs / b.cost.macs
    assert (
        f"| inc3a | 28×28×256 | {b.cost.params:,} | {b.cost.macs:,} | {b.naive.macs:,} | {ratio:.2f}x |" in md
    )
