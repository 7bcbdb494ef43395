"""The HTML report in a real browser: headless Chromium (Debian's `chromium`) driven by
Playwright, one browser for the whole module.

For every shipped spec the page is opened from a file, its numbers are read from the DOM and
compared with the JSON report; a sort and an expand are clicked; nothing is fetched and no
script fails. `.ci/run` installs chromium and `make` the `browser` extra, so CI never skips.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
from pathlib import Path

import pytest

import inception_kit as ik
from inception_kit.viz import html as view

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[browser]')"
)

# What the DOM shows: every [data-field] cell with its owner (the closest layer, block, diff
# row or section around it), its raw data-value and its visible text, in document order.
READ_CELLS = """() => Array.from(document.querySelectorAll('[data-field]')).map(e => {
  const o = e.closest('[data-layer],[data-block],[data-name],[data-section]');
  const owner = o && (o.dataset.layer || o.dataset.block || o.dataset.name || o.dataset.section);
  return [owner || null, e.dataset.field, e.dataset.value, e.textContent];
})"""
SHOWN = ("params", "naive_params", "params_saving_ratio", "macs", "naive_macs", "macs_saving_ratio", "flops")
LAYER_SHOWN = ("params", "macs", "naive_macs", "flops")


def numbers_of(cells: list, owner: str) -> list[tuple[str, int | float]]:
    """The numeric cells of one owner, as (field, number shown)."""
    return [
        (f, shown(t))
        for o, f, _, t in cells
        if o == owner and f not in ("name", "output_shape", "config", "shapes", "status")
    ]


def shown(text: str) -> int | float:
    """The number a reader sees: '128,049,152' -> 128049152, '2.4075×' -> 2.4075, '+3' -> 3."""
    t = text.replace(",", "").rstrip("×%").strip()
    return float(t) if "." in t else int(t)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        # No browser download: Debian's build, which Playwright drives over CDP.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def tab(browser):
    """A page that records every request and every console error or page error."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.requests, page.errors = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    page.close()


def open_page(tab, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    tab.goto(path.as_uri())


def test_every_preset_shows_the_json_numbers_and_sorts_and_expands(tab, tmp_path):
    for preset in ik.list_presets():
        analysis = ik.analyse(preset)
        data = json.loads(ik.render(analysis, "json"))  # what `report --format json` prints
        open_page(tab, tmp_path / f"{preset}.html", view.render_report(analysis))
        cells = tab.evaluate(READ_CELLS)
        numbers = functools.partial(numbers_of, cells)
        model = data["model"]
        assert dict(numbers("totals")) == {k: v for k, v in model.items() if type(v) in (int, float)}, preset
        assert numbers("flops_by_op") == list(model["flops_by_op"].items())
        for block in data["blocks"]:
            assert numbers(block["name"]) == [
                (k, e[k]) for e in (block, *block["branches"]) for k in SHOWN
            ], preset
        for layer in data["layers"]:
            copies = 2 if layer["block"] is not None else 1
            assert numbers(layer["name"]) == [(k, layer[k]) for k in LAYER_SHOWN] * copies, (
                preset,
                layer["name"],
            )

        if data["blocks"]:
            blocks_in_order = "() => Array.from(document.querySelectorAll('table.blocks > tbody')).map(t => t.dataset.block)"
            macs = tab.locator("table.blocks > thead th", has_text="naive MACs").get_by_role("button")
            macs.click()  # ascending
            by_naive = [b["name"] for b in sorted(data["blocks"], key=lambda b: b["naive_macs"])]
            assert tab.evaluate(blocks_in_order) == by_naive, preset
            assert (
                tab.locator("table.blocks > thead th", has_text="naive MACs").get_attribute("aria-sort")
                == "ascending"
            )
            macs.click()  # descending (a stable sort keeps ties in page order)
            down = [b["name"] for b in sorted(data["blocks"], key=lambda b: -b["naive_macs"])]
            assert tab.evaluate(blocks_in_order) == down, preset

            first = data["blocks"][0]["name"]
            fold = tab.locator(f'details[data-block="{first}"]')
            rows = fold.locator("tbody tr")
            assert not rows.first.is_visible()
            fold.locator("summary").click()
            assert fold.evaluate("d => d.open") and rows.first.is_visible()
            expected = [l["name"] for l in data["layers"] if view.block_of(l, [first]) == first]
            assert rows.evaluate_all("rs => rs.map(r => r.dataset.layer)") == expected

    assert tab.errors == []  # no script error, no blocked fetch
    assert all(url.startswith(("file:", "data:")) for url in tab.requests), tab.requests


def test_printing_opens_every_fold(tab, tmp_path):
    open_page(tab, tmp_path / "googlenet.html", view.render_report(ik.analyse("googlenet")))
    assert tab.evaluate("() => document.querySelectorAll('details[open]').length") == 0
    pdf = tab.pdf()  # printing fires beforeprint
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert tab.evaluate("() => Array.from(document.querySelectorAll('details')).every(d => d.open)")


def test_googlenet_screenshot_is_not_blank(tab, tmp_path):
    from PIL import Image, ImageStat

    open_page(tab, tmp_path / "googlenet.html", view.render_report(ik.analyse("googlenet")))
    shot = tab.screenshot(path=str(tmp_path / "googlenet.png"), full_page=False)
    image = Image.open(io.BytesIO(shot)).convert("L")
    assert image.size == (1280, 900)
    stat = ImageStat.Stat(image)
    assert stat.var[0] > 500  # a white page has 0; text, tables and bars give thousands
    colours = Image.open(io.BytesIO(shot)).convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours and any(c == (0x1F, 0x5F, 0x99) for _, c in colours)  # the bars are drawn


def test_diff_page_in_the_browser(tab, tmp_path):
    # GoogLeNet at half the input size: every block matched, each with its own Δ MACs.
    d = ik.diff(ik.analyse("googlenet"), ik.analyse("googlenet", input_shape=(112, 112, 3)))
    data = json.loads(d.render("json"))
    open_page(tab, tmp_path / "diff.html", view.diff_page(data))
    cells = tab.evaluate(READ_CELLS)
    first = data["rows"][0]
    got = {f: shown(t) for o, f, _, t in cells if o == "model"}
    assert got == {
        f"{s}.{m}": (first["delta"] if s == "delta" else first[s])[m]
        for m in first["delta"]
        for s in ("a", "b", "delta")
    }
    for row in data["rows"][1:]:
        mine = {f: t for o, f, _, t in cells if o == row["name"]}
        assert mine["status"] == row["status"] and shown(mine["delta.macs"]) == row["delta"]["macs"]
    button = tab.locator("table.entries > thead th", has_text="Δ MACs").get_by_role("button")
    button.click()
    names = tab.evaluate(
        "() => Array.from(document.querySelectorAll('table.entries > tbody > tr')).map(r => r.dataset.name)"
    )
    blocks = [r for r in data["rows"][1:] if r["level"] == "block"]
    # Blocks in order of their Δ MACs, each followed by its own branches.
    assert names == [
        n
        for b in sorted(blocks, key=lambda r: r["delta"]["macs"])
        for n in [b["name"], *(r["name"] for r in data["rows"] if r["name"].startswith(b["name"] + "/"))]
    ]
    assert len(blocks) == 9 and len(names) == 9 + 4 * 9
    assert tab.errors == []


def test_the_notebook_view_reads_without_scripts(browser):
    # Jupyter may show untrusted output with scripts off: the inline view must still fold.
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    analysis = ik.analyse("inception_3a")
    page.set_content(analysis._repr_html_())
    cell = page.locator('[data-section="totals"] [data-field="macs"]')
    assert shown(cell.inner_text()) == analysis.total.macs
    fold = page.locator('details[data-block="inc3a"]')
    fold.locator("summary").click()
    assert fold.locator('tr[data-layer="inc3a_b3_conv5x5"]').is_visible()
    context.close()
