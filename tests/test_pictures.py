"""Pictures: `inception-kit diagram` (Graphviz), the savings chart, scripts/make_figures.py."""

import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import inception_kit as ik
from conftest import ROOT, SPECS, needs_dot, run
from inception_kit.viz import diagram, plots

SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path):
    root = ET.parse(path).getroot()  # parses as XML, or fails the test
    assert root.tag == f"{SVG}svg"
    return root, [t.text or "" for t in root.iter(f"{SVG}text")]


def node_groups(root, cls):
    return {g.get("id"): g for g in root.iter(f"{SVG}g") if cls in (g.get("class") or "").split()}


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@needs_dot
def test_block_diagram_of_3a_shows_every_layer_its_macs_and_the_bottlenecks(tmp_path):
    out = tmp_path / "3a.svg"
    r = run("diagram", SPECS / "inception_3a.yaml", "--block", "inc3a", "-o", out)
    assert r.returncode == 0, r.stderr
    root, texts = svg_texts(out)
    a = ik.analyse(ik.load(SPECS / "inception_3a.yaml"))
    rows = [row for row in a.rows if row.block == "inc3a"]
    layers = node_groups(root, "layer")
    for row in rows:
        if row.kind == "concat":
            assert row.name in texts
            continue
        assert f"layer-{row.name}" in layers, row.name
        node_text = [t.text for t in layers[f"layer-{row.name}"].iter(f"{SVG}text")]
        assert row.name in node_text
        if row.cost.macs:  # every layer's MACs, exactly as the cost model counts them
            assert f"{row.cost.macs:,} MACs" in node_text, row.name
    # The bottlenecks are exactly the rows the naive counterpart removes, drawn highlighted.
    bottlenecks = node_groups(root, "bottleneck")
    assert (
        set(bottlenecks)
        == {f"layer-{r.name}" for r in rows if r.removed_in_naive}
        == {
            "layer-inc3a_b2_conv1x1",
            "layer-inc3a_b3_conv1x1",
        }
    )
    for g in bottlenecks.values():
        assert any(
            p.get("fill") == diagram.BOTTLENECK_FILL
            for p in g.iter()
            if p.tag in (f"{SVG}path", f"{SVG}polygon")
        )
    assert not any(
        p.get("fill") == diagram.BOTTLENECK_FILL
        for gid, g in layers.items()
        if gid not in bottlenecks
        for p in g.iter()
    )
    # Each branch's MACs beside its naive MACs; the block's totals.
    block = a.blocks[0]
    branches = node_groups(root, "branch")
    for br in block.branches:
        text = [t.text for t in branches[f"branch-inc3a-{br.name}"].iter(f"{SVG}text")]
        assert f"{br.cost.macs:,} MACs" in text
        assert any(t.startswith(f"naive {br.naive.macs:,} ") for t in text)
    assert (block.cost.macs, block.naive.macs) == (128_049_152, 308_281_344)
    assert any(f"{block.cost.macs:,} MACs, naive {block.naive.macs:,}" in t for t in texts)


@needs_dot
def test_whole_googlenet_diagram_has_every_block_and_top_layer_with_its_macs(tmp_path):
    out = tmp_path / "g.svg"
    r = run("diagram", SPECS / "googlenet.yaml", "-o", out)
    assert r.returncode == 0, r.stderr
    root, texts = svg_texts(out)
    a = ik.analyse(ik.load(SPECS / "googlenet.yaml"))
    blocks = node_groups(root, "block")
    assert list(blocks) == [f"block-{b.name}" for b in a.blocks]
    for b in a.blocks:
        text = [t.text for t in blocks[f"block-{b.name}"].iter(f"{SVG}text")]
        assert f"{b.cost.macs:,} MACs, naive {b.naive.macs:,} ({b.naive.macs / b.cost.macs:.2f}×)" in text
        for br in b.branches:
            assert f"{br.cost.macs:,} MACs" in text and f"naive {br.naive.macs:,}" in text
        assert "2 1×1 bottlenecks" in text
    layers = node_groups(root, "layer")
    top = [row for row in a.rows if row.block is None]
    assert set(layers) == {f"layer-{row.name}" for row in top}
    for row in top:
        if row.cost.macs:
            assert f"{row.cost.macs:,} MACs" in [
                t.text for t in layers[f"layer-{row.name}"].iter(f"{SVG}text")
            ]
    assert any(f"{a.total.macs:,} MACs" in t for t in texts)


@needs_dot
@pytest.mark.parametrize(
    "spec,block",
    [("inception_v3.yaml", "mixed9"), ("inception_resnet_v2.yaml", "block35_1"), ("xception.yaml", None)],
)
def test_nested_residual_and_other_specs_draw(spec, block, tmp_path):
    a = ik.analyse(ik.load(SPECS / spec))
    root = ET.fromstring(diagram.svg(a, block))
    names = {g.get("id") for g in root.iter(f"{SVG}g")}
    if block:  # nested blocks are drawn inside their branch, with all their layers
        bp = diagram.find_block(a, block)
        from inception_kit.planner import iter_ops

        assert {f"layer-{op.name}" for op in iter_ops([bp])} <= names


@needs_dot
def test_png_is_written(tmp_path):
    out = tmp_path / "3a.png"
    r = run("diagram", SPECS / "inception_3a.yaml", "--block", "inc3a", "-o", out)
    assert r.returncode == 0, r.stderr
    w, h = png_size(out)
    assert w > 300 and h > 200


def test_unknown_block_exits_2_with_the_choices_and_a_suggestion(tmp_path):
    out = tmp_path / "x.svg"
    r = run("diagram", SPECS / "googlenet.yaml", "--block", "inc3x", "-o", out)
    assert r.returncode == 2
    assert "--block: expected one of the blocks: inc3a, inc3b, inc4a" in r.stderr
    assert "received 'inc3x' (did you mean 'inc3b'?)" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
    with pytest.raises(ik.ArgumentError) as err:
        diagram.find_block(ik.analyse(ik.load(SPECS / "one_by_one.yaml")), "b")
    assert "(this spec has none)" in str(err.value)


@needs_dot
def test_existing_output_is_kept_unless_overwrite_and_bad_suffix_exits_2(tmp_path):
    out = tmp_path / "d.svg"
    out.write_text("precious")
    r = run("diagram", SPECS / "inception_3a.yaml", "-o", out)
    assert r.returncode == 2 and "already exists" in r.stderr and out.read_text() == "precious"
    r = run("diagram", SPECS / "inception_3a.yaml", "-o", out, "--overwrite")
    assert r.returncode == 0 and out.read_text().lstrip().startswith("<?xml")
    r = run("diagram", SPECS / "inception_3a.yaml", "-o", tmp_path / "d.gif")
    assert r.returncode == 2 and ".svg or .png" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.svg"]  # no temporary left behind


def test_missing_dot_is_a_clear_error_exit_1(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no dot on it
    r = run("diagram", SPECS / "inception_3a.yaml", "-o", tmp_path / "x.svg", env=env)
    assert r.returncode == 1
    assert "GraphvizMissing" in r.stderr and "apt-get install graphviz" in r.stderr


def test_savings_chart_via_report_plot(tmp_path):
    out = tmp_path / "s.png"
    r = run("report", SPECS / "googlenet.yaml", "--plot", out)
    assert r.returncode == 0, r.stderr
    assert png_size(out) == plots.chart_size(9) == (1200, 518)
    r = run("report", SPECS / "googlenet.yaml", "--plot", out)
    assert r.returncode == 2 and "already exists" in r.stderr


def test_savings_chart_python_api_sizes(tmp_path):
    for spec in ("inception_v3.yaml", "one_by_one.yaml"):
        a = ik.analyse(ik.load(SPECS / spec))
        out = plots.savings_chart(a, tmp_path / f"{spec}.png")
        assert png_size(out) == plots.chart_size(max(len(a.blocks), 1))


def test_savings_chart_labels_each_bar_with_its_saving():
    a = ik.analyse(ik.load(SPECS / "googlenet.yaml"))
    fig = plots.savings_figure(a)
    macs, params = fig.axes
    texts = [t.get_text() for t in macs.texts]
    assert texts == [f"{b.naive.macs / b.cost.macs:.1f}x" for b in a.blocks]
    assert [t.get_text() for t in params.texts] == [
        f"{b.naive.params / b.cost.params:.1f}x" for b in a.blocks
    ]
    bars = sorted(p.get_width() for p in macs.patches)
    assert bars == sorted([b.cost.macs for b in a.blocks] + [b.naive.macs for b in a.blocks])


@pytest.mark.parametrize("spec", ["googlenet.yaml", "inception_v3.yaml", "one_by_one.yaml"])
def test_savings_chart_legend_covers_no_bar_and_no_label(spec):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plots.savings_figure(ik.analyse(ik.load(SPECS / spec)))
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    (legend,) = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    box = legend.get_window_extent(renderer)
    drawn = [a for ax in fig.axes for a in (*ax.patches, *ax.texts)]
    assert len(drawn) >= 4
    covered = [a for a in drawn if box.overlaps(a.get_window_extent(renderer))]
    assert covered == []


@needs_dot
def test_make_figures_script_writes_both_figures(tmp_path):
    r = subprocess.run(
        [sys.executable, ROOT / "scripts" / "make_figures.py", "--out-dir", tmp_path],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    _, texts = svg_texts(tmp_path / "inception_3a.svg")
    assert "inc3a_b3_conv1x1" in texts
    assert png_size(tmp_path / "googlenet_savings.png") == plots.chart_size(9)
    # The committed figures say what the script draws now (the words and numbers; the
    # layout may differ between Graphviz and matplotlib versions).
    stale = "is stale: run scripts/make_figures.py"
    assert svg_texts(ROOT / "docs" / "inception_3a.svg")[1] == texts, f"docs/inception_3a.svg {stale}"
    assert png_size(ROOT / "docs" / "googlenet_savings.png") == plots.chart_size(9), (
        f"docs/googlenet_savings.png {stale}"
    )
