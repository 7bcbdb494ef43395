"""The HTML report, diff page and inline views, read back with the standard library's parser.

The browser test (tests/test_browser.py) reads the same pages from a real DOM; these run
everywhere, in milliseconds, and check what a parser can: every number the JSON report
holds is on the page as the reader sees it, nothing is fetched, the tables are real tables.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

import inception_kit as ik
from conftest import ROOT, needs_dot, run
from inception_kit.viz import html as view

VOID = {"br", "meta", "img", "input", "hr", "wbr", "link"}
OWNERS = ("data-layer", "data-block", "data-name", "data-section")


class Cells(HTMLParser):
    """Collects every element with a data-field: (owner, field, data-value, visible text); the
    owner is the closest enclosing element's layer, block, diff row or section."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.cells: list[tuple[str | None, str, str | None, str]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in VOID:  # no end tag follows
            return
        self.stack.append((tag, a, []))

    def handle_endtag(self, tag):
        while self.stack:
            t, a, text = self.stack.pop()
            body = "".join(text)
            if self.stack:
                self.stack[-1][2].append(body)
            if "data-field" in a:
                owner = next((x[1][k] for x in reversed(self.stack) for k in OWNERS if x[1].get(k)), None)
                self.cells.append((owner, a["data-field"], a.get("data-value"), body))
            if t == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)


def parse(text: str) -> Cells:
    p = Cells()
    p.feed(text)
    p.close()
    return p


def shown(text: str) -> int | float:
    """The number a reader sees: '128,049,152' -> 128049152, '2.4075×' -> 2.4075."""
    t = text.replace(",", "").rstrip("×%").strip()
    return float(t) if "." in t else int(t)


def test_inception_3a_page_shows_the_lessons_numbers_worked_out_here():
    # The 5x5 branch of the lesson: 28x28x192 -> 1x1 to 16 -> 5x5 to 32; naive: 5x5 from 192.
    bottleneck = 28 * 28 * 16 * 192 + 28 * 28 * 32 * 5 * 5 * 16
    naive = 28 * 28 * 32 * 5 * 5 * 192
    page = view.report_page(ik.report_data(ik.analyse("inception_3a")))
    b3 = re.search(r'<tr class="branch" data-branch="b3">(.*?)</tr>', page, re.S).group(1)
    assert f"{bottleneck:,}" in b3 and f"{naive:,}" in b3
    assert (bottleneck, naive) == (12_443_648, 120_422_400)


SHOWN = ("params", "naive_params", "params_saving_ratio", "macs", "naive_macs", "macs_saving_ratio", "flops")
LAYER_SHOWN = ("params", "macs", "naive_macs", "flops")


@pytest.mark.parametrize("preset", ik.list_presets())
def test_every_number_of_the_json_report_is_on_the_page(preset):
    data = json.loads(ik.render(ik.analyse(preset), "json"))  # what `report --format json` prints
    cells = parse(view.report_page(data)).cells
    assert all(
        shown(t) == float(v) for _, f, v, t in cells if f in (*SHOWN, "params")
    )  # sorting reads data-value

    def numbers(owner):
        return [
            (f, shown(t))
            for o, f, _, t in cells
            if o == owner and f not in ("name", "output_shape", "config", "shapes")
        ]

    model = data["model"]
    assert dict(numbers("totals")) == {k: v for k, v in model.items() if type(v) in (int, float)}
    assert numbers("flops_by_op") == list(model["flops_by_op"].items())
    assert numbers("aux") == [
        (k, h[k]) for h in data.get("aux", []) for k in ("loss_weight", "params", "macs", "flops")
    ]
    for block in data["blocks"]:  # the block's row, then its branches'
        assert numbers(block["name"]) == [(k, e[k]) for e in (block, *block["branches"]) for k in SHOWN]
    for layer in data["layers"]:  # folded under its block (if in one) and in the table of all layers
        copies = 2 if layer["block"] is not None else 1
        assert numbers(layer["name"]) == [(k, layer[k]) for k in LAYER_SHOWN] * copies, layer["name"]


def test_each_block_folds_exactly_its_layers():
    data = ik.report_data(ik.analyse("inception_v3"))
    page = view.report_page(data)
    for block in data["blocks"]:
        inside = re.search(rf'<details data-block="{block["name"]}"><summary>(\d+) layers', page).group(1)
        # Nested blocks (mixed9's 1x3/3x1 splits) fold into the block they are written in.
        mine = [l for l in data["layers"] if l["name"].startswith(block["name"] + "_")]
        assert int(inside) == len(mine) > 0
    assert sum(1 for l in data["layers"] if l["block"] is not None) == sum(
        int(n) for n in re.findall(r'<details data-block="[^"]+"><summary>(\d+) layers', page)
    )


def test_the_page_fetches_nothing_and_uses_real_tables():
    page = view.render_report(ik.analyse("googlenet"))
    p = parse(page)
    for tag, attrs in p.tags:
        for key in ("src", "href", "xlink:href", "action"):
            value = attrs.get(key) or ""
            assert not re.match(r"\s*(https?:|//|ftp:)", value), (tag, key, value)
        assert tag not in ("link", "iframe", "img", "object", "embed") or (
            tag == "img" and attrs.get("src", "").startswith("data:")
        )
    assert "default-src 'none'" in page  # and the page forbids any fetch it might still try
    tables = [a for t, a in p.tags if t == "table"]
    captions = [t for t, _ in p.tags if t == "caption"]
    assert len(tables) == len(captions) > 3
    heads = [a.get("scope") for t, a in p.tags if t == "th"]
    assert heads and all(s in ("col", "row") for s in heads)
    assert "@media print" in page and "<svg" in page


@needs_dot
def test_the_page_carries_the_diagram_inline():
    analysis = ik.analyse("inception_3a")
    page = view.render_report(analysis)
    from inception_kit.viz.diagram import svg

    drawn = svg(analysis)
    assert drawn[drawn.index("<svg") :] in page and "<?xml" not in page


def test_without_dot_the_page_says_so_instead_of_a_diagram(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # graphviz finds no dot
    page = view.render_report(ik.analyse("inception_3a"))
    assert (
        'class="note"' in page
        and "No diagram: " in page
        and "dot&#x27; program was not found on PATH" in page
    )
    assert '<figure class="diagram">' not in page


def test_cli_writes_the_page_and_it_holds_the_json_figures(tmp_path):
    out = tmp_path / "report.html"
    r = run("report", "inception_3a", "--format", "html", "--out", out)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    data = json.loads(run("report", "inception_3a", "--format", "json").stdout)
    text = out.read_text(encoding="utf-8")
    assert (
        text.startswith("<!DOCTYPE html>")
        and f'data-value="{data["model"]["macs"]}">{data["model"]["macs"]:,}<' in text
    )
    again = run("report", "inception_3a", "--format", "html", "--out", out)
    assert again.returncode == 2 and "exists" in again.stderr  # never overwritten unasked


def test_cli_diff_page_shows_the_json_deltas(tmp_path):
    out = tmp_path / "diff.html"
    r = run("diff", "inception_3a", "inception_3a_tiny", "--format", "html", "-o", out)
    assert r.returncode == 0, r.stderr
    data = json.loads(run("diff", "inception_3a", "inception_3a_tiny", "--format", "json").stdout)
    cells = parse(out.read_text(encoding="utf-8")).cells
    model = {f: shown(t) for _, f, _, t in cells if f.startswith(("a.", "b.", "delta.")) and "." in f}
    first = data["rows"][0]
    for m, d in first["delta"].items():
        assert shown(next(t for _, f, _, t in cells if f == f"delta.{m}")) == d
        assert shown(next(t for _, f, _, t in cells if f == f"a.{m}")) == first["a"][m]
    for row in data["rows"][1:]:
        got = [(f, t) for owner, f, _, t in cells if owner == row["name"]]
        assert dict(got)["status"] == row["status"]
        assert shown(dict(got)["delta.macs"]) == row["delta"]["macs"]
        for side in ("a", "b"):
            value = dict(got)[f"{side}.macs"]
            assert (value == "–") if row[side] is None else shown(value) == row[side]["macs"]
    assert model


def test_the_inline_views_are_the_reports():
    analysis = ik.analyse("inception_3a")
    inline = analysis._repr_html_()
    assert inline.startswith("<style>") and "<html" not in inline and "<h3>inception_3a</h3>" in inline
    assert (
        "<button" not in inline and "<script" not in inline
    )  # a notebook may run no script: nothing to click in vain
    assert f'data-value="{analysis.total.macs}">{analysis.total.macs:,}<' in inline

    class Printer:  # IPython's pretty printer, as far as _repr_pretty_ uses it
        def __init__(self):
            self.out = []

        def text(self, s):
            self.out.append(s)

    p = Printer()
    analysis._repr_pretty_(p, False)
    assert p.out == [ik.render(analysis, "table")]

    plan = analysis.plan
    p = Printer()
    plan._repr_pretty_(p, False)
    lines = p.out[0].splitlines()
    assert lines[0] == "inception_3a: 28×28×192 → 28×28×256"
    assert [l.split()[0] for l in lines[3:]] == [op.name for op in plan.ops()]
    assert "28×28×32" in next(l for l in lines if l.startswith("inc3a_b3_conv5x5"))
    html_plan = plan._repr_html_()
    assert html_plan.count('<tr><th scope="row">inc3a_') == len(list(plan.ops()))
    assert "8 layers of inc3a" in html_plan

    d = ik.diff("inception_3a", "inception_3a_tiny")
    p = Printer()
    d._repr_pretty_(p, False)
    assert p.out == [d.render("table")]
    assert "diff: inception_3a → inception_3a_tiny" in d._repr_html_()


def test_ipython_picks_the_views_up():
    IPython = pytest.importorskip("IPython")
    from IPython.core.formatters import DisplayFormatter

    analysis = ik.analyse("one_by_one")
    shown_as, _ = DisplayFormatter().format(analysis)
    assert shown_as["text/html"] == analysis._repr_html_()
    assert shown_as["text/plain"] == ik.render(analysis, "table")
    assert IPython


def test_making_a_page_loads_no_tensorflow():
    code = (
        "import sys, inception_kit as ik; from inception_kit.viz import html;"
        "a = ik.analyse('googlenet'); html.render_report(a); a._repr_html_(); a.plan._repr_html_();"
        "ik.diff('googlenet', 'inception_v3')._repr_html_();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
