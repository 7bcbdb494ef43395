"""The HTML views: the report page, the diff page and the inline notebook views.

`report_page(data)` draws one self-contained page (inline CSS, JS and SVG, nothing fetched)
from `report.report_data`'s dict, so its numbers are the JSON report's and cannot drift:
the model's totals, every block with its branches and bars of real against naive MACs and
params, the block diagram (Graphviz, or a note where `dot` is missing), sortable columns
and each block's layers in a `<details>`. `diff_page(data)` does the same for `Diff.data()`.

The `*_fragment` functions are the same views without the page around them: what
`_repr_html_` shows in Jupyter and VS Code, where scripts may not run, so everything but
sorting works without JavaScript. Plain Python: no TensorFlow, no network.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from ..kinds import fmt_shape

# Colours with a contrast of at least 4.5:1 on white (WCAG AA) for text; bars carry their
# numbers in text too, so colour is never the only signal.
CSS = """
.ik{font:13.5px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#fff;max-width:1200px}
.ik h1{font-size:1.5em;margin:.3em 0}.ik h2{font-size:1.2em;margin:1.2em 0 .4em}
.ik table{border-collapse:collapse;margin:.4em 0 1em;font-variant-numeric:tabular-nums}
.ik caption{text-align:left;font-weight:600;padding:.2em 0;color:#1b1b1b}
.ik th,.ik td{padding:.12em .6em;border-bottom:1px solid #d0d0d0;text-align:left;vertical-align:top}
.ik thead th{background:#eef2f7;white-space:nowrap}.ik tbody th{font-weight:500}
.ik .cols{display:flex;flex-wrap:wrap;gap:0 2.5em;align-items:flex-start}.ik td.n,.ik th.n{text-align:right;white-space:nowrap}
.ik tbody.block>tr:first-child>*{border-top:2px solid #8a9bb0}
.ik tr.branch>th{padding-left:1.6em;font-weight:normal}
.ik th button{font:inherit;font-weight:600;border:0;background:none;padding:0;cursor:pointer;color:#0b4a8b}
.ik th button:focus-visible,.ik summary:focus-visible{outline:2px solid #0b4a8b}
.ik th[aria-sort=ascending] button::after{content:" \\25B2"}.ik th[aria-sort=descending] button::after{content:" \\25BC"}
.ik summary{cursor:pointer;color:#0b4a8b}.ik .muted{color:#555}.ik .note{border-left:4px solid #b35c00;padding:.3em .8em;background:#fff6ec}
.ik svg.bar{display:block}.ik .legend span{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin:0 .3em 0 .8em}
.ik figure{margin:.5em 0;overflow-x:auto}.ik figure svg{max-width:100%;height:auto}
.ik .added{color:#1d6b2f}.ik .removed{color:#a3201d}.ik code{font-size:.95em}
@media print{.ik{max-width:none;font-size:10pt}.ik th button::after{content:none!important}
.ik figure{overflow:visible;break-inside:avoid}.ik tr{break-inside:avoid}.ik summary{color:#1b1b1b}
.ik *{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""

# Sorting: a click on a column's button orders the table's row groups (one <tbody> per block,
# so a block keeps its branches and layers) by that column's data-value; a second click
# reverses. Before printing, every <details> opens so the paper holds every layer.
SCRIPT = """
(function(){
function key(group,col){var c=group.rows[0].cells[col];var v=c&&c.getAttribute('data-value');
 return v===null||v===undefined?(c?c.textContent:''):(isNaN(+v)?v:+v);}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('thead th').forEach(function(th,col){var b=th.querySelector('button');if(!b)return;
  b.addEventListener('click',function(){var asc=th.getAttribute('aria-sort')!=='ascending';
   t.querySelectorAll('thead th').forEach(function(o){o.removeAttribute('aria-sort');});
   th.setAttribute('aria-sort',asc?'ascending':'descending');
   var groups=Array.prototype.slice.call(t.tBodies);
   groups.sort(function(a,b){var x=key(a,col),y=key(b,col);return (x<y?-1:x>y?1:0)*(asc?1:-1);});
   groups.forEach(function(g){t.appendChild(g);});});});});
window.addEventListener('beforeprint',function(){document.querySelectorAll('.ik details').forEach(function(d){d.open=true;});});
})();
"""

REAL_FILL = "#1f5f99"
NAIVE_FILL = "#c6cdd6"
B_FILL = "#b35c00"
BAR_WIDTH = 110


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def number(value: int | float) -> str:
    """An exact number as the page shows it: 128,049,152; 2.4075; -3,072."""
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _cell(value: int | float, field: str, suffix: str = "") -> str:
    """A numeric cell: `data-field` names the JSON key, `data-value` holds the raw number."""
    return f'<td class="n" data-field="{field}" data-value="{value}">{number(value)}{suffix}</td>'


def _text_cell(text: str, field: str, header: bool = False) -> str:
    tag = "th" if header else "td"
    scope = ' scope="row"' if header else ""
    return f'<{tag}{scope} data-field="{field}" data-value="{_e(text)}">{_e(text)}</{tag}>'


def _head(columns: Sequence[tuple[str, bool]], sortable: bool) -> str:
    """`<thead>`: (label, numeric) per column; labels become sort buttons when sortable."""
    cells = []
    for label, numeric in columns:
        # Bars have no one value to sort by; every other column does.
        body = (
            f'<button type="button">{_e(label)}</button>'
            if sortable and not label.startswith("bars")
            else _e(label)
        )
        cells.append(f'<th scope="col"{" class=n" if numeric else ""}>{body}</th>')
    return f"<thead><tr>{''.join(cells)}</tr></thead>"


def _bars(pairs: Iterable[tuple[str, int, int, str]], scale: int, label: str) -> str:
    """Horizontal bars (SVG), one pair per metric: the real figure over its naive one."""
    rows = list(pairs)
    h = 9
    parts = []
    for i, (name, real, naive, fill) in enumerate(rows):
        y = i * (2 * h + 4)
        w_real = BAR_WIDTH * real / scale if scale else 0
        w_naive = BAR_WIDTH * naive / scale if scale else 0
        parts.append(
            f'<rect x="0" y="{y}" width="{w_naive:.1f}" height="{h}" fill="{NAIVE_FILL}"><title>naive {name} {number(naive)}</title></rect>'
            f'<rect x="0" y="{y + h}" width="{w_real:.1f}" height="{h}" fill="{fill}"><title>{name} {number(real)}</title></rect>'
        )
    height = len(rows) * (2 * h + 4) - 4
    return (
        f'<svg class="bar" role="img" aria-label="{_e(label)}" width="{BAR_WIDTH}" height="{height}" '
        f'viewBox="0 0 {BAR_WIDTH} {height}">{"".join(parts)}</svg>'
    )


def _legend(real: str = "real", naive: str = "naive (no 1×1 reductions)", fill: str = REAL_FILL) -> str:
    return (
        f'<p class="legend muted">Bars, on one scale per column:<span style="background:{NAIVE_FILL}"></span>{_e(naive)}'
        f'<span style="background:{fill}"></span>{_e(real)}</p>'
    )


# ------------------------------------------------------------------------------- report


TOTALS = (  # (JSON key, label, unit)
    ("params", "parameters", "params"),
    ("trainable_params", "trainable parameters", "params"),
    ("non_trainable_params", "non-trainable parameters", "params"),
    ("macs", "multiply-accumulates", "MACs"),
    ("flops", "float ops (TensorFlow profiler)", "FLOPs"),
    ("naive_macs", "naive network's multiply-accumulates", "MACs"),
    ("naive_flops", "naive network's float ops", "FLOPs"),
    ("naive_params", "naive network's parameters", "params"),
    ("macs_saving_ratio", "MACs saved: naive / real", "×"),
    ("macs_saving_percent", "MACs saved", "%"),
    ("params_saving_ratio", "params saved: naive / real", "×"),
    ("params_saving_percent", "params saved", "%"),
    ("param_bytes", "parameter memory (float32)", "bytes"),
    ("peak_activation_bytes", "peak activation memory per sample (estimate)", "bytes"),
)

BLOCK_COLUMNS = (
    ("block / branch", False),
    ("output", False),
    ("params", True),
    ("naive params", True),
    ("params saving", True),
    ("MACs", True),
    ("naive MACs", True),
    ("MACs saving", True),
    ("FLOPs", True),
    ("bars: params", False),
    ("bars: MACs", False),
)

LAYER_COLUMNS = (
    ("layer", False),
    ("config (resolved)", False),
    ("output", False),
    ("params", True),
    ("MACs", True),
    ("naive MACs", True),
    ("FLOPs", True),
)


def _totals(model: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{_e(label)}</th>{_cell(model[key], key)}<td>{_e(unit)}</td></tr>'
        for key, label, unit in TOTALS
    )
    ops = "".join(
        f'<tr><th scope="row"><code>{_e(op)}</code></th>{_cell(v, op)}</tr>'
        for op, v in model["flops_by_op"].items()
    )
    shapes = f"{fmt_shape(model['input_shape'])} → {fmt_shape(model['output_shape'])}"
    return (
        '<div class="cols"><table class="totals" data-section="totals"><caption>Model totals (batch 1)</caption>'
        '<thead><tr><th scope="col">figure</th><th scope="col" class="n">value</th><th scope="col">unit</th></tr></thead>'
        f'<tbody><tr><th scope="row">input → output</th><td class="n" data-field="shapes">{_e(shapes)}</td><td>H×W×C</td></tr>{rows}</tbody></table>'
        '<table class="flops-by-op" data-section="flops_by_op"><caption>FLOPs by TensorFlow op</caption>'
        '<thead><tr><th scope="col">op</th><th scope="col" class="n">FLOPs</th></tr></thead>'
        f"<tbody>{ops}</tbody></table>"
    )


def _layer_row(layer: dict[str, Any], short: str | None = None) -> str:
    name = short if short is not None else layer["name"]
    mark = " (removed in naive)" if layer["removed_in_naive"] else ""
    return (
        f'<tbody><tr data-layer="{_e(layer["name"])}"><th scope="row" data-field="name" data-value="{_e(layer["name"])}">'
        f'{_e(name)}<span class="muted">{mark}</span></th>'
        f"{_text_cell(layer['config'], 'config')}{_text_cell(fmt_shape(layer['output_shape']), 'output_shape')}"
        f"{_cell(layer['params'], 'params')}{_cell(layer['macs'], 'macs')}{_cell(layer['naive_macs'], 'naive_macs')}"
        f"{_cell(layer['flops'], 'flops')}</tr></tbody>"
    )


def layer_table(layers: list[dict[str, Any]], caption: str, prefix: str = "", sortable: bool = True) -> str:
    """A table of layers (rows of `report_data(...)["layers"]`); `prefix` is cut from names."""
    body = "".join(
        _layer_row(l, l["name"][len(prefix) :] if prefix and l["name"].startswith(prefix) else None)
        for l in layers
    )
    cls = "layers sortable" if sortable else "layers"
    return (
        f'<table class="{cls}"><caption>{_e(caption)}</caption>{_head(LAYER_COLUMNS, sortable)}{body}</table>'
    )


def block_of(layer: dict[str, Any], blocks: Sequence[str]) -> str | None:
    """The top-level block a layer belongs to: its own block, or the block its nested block
    is named under (names come from spec paths: `mixed9_b3x3_block_1` is inside `mixed9`)."""
    inner = layer["block"]
    if inner is None:
        return None
    found = [b for b in blocks if inner == b or inner.startswith(b + "_")]
    return max(found, key=len) if found else None


def _block_group(block: dict[str, Any], layers: list[dict[str, Any]], scale_p: int, scale_m: int) -> str:
    def cells(entry: dict[str, Any]) -> str:
        return (
            f"{_text_cell(fmt_shape(entry['output_shape']), 'output_shape')}"
            f"{_cell(entry['params'], 'params')}{_cell(entry['naive_params'], 'naive_params')}"
            f"{_cell(entry['params_saving_ratio'], 'params_saving_ratio', '×')}"
            f"{_cell(entry['macs'], 'macs')}{_cell(entry['naive_macs'], 'naive_macs')}"
            f"{_cell(entry['macs_saving_ratio'], 'macs_saving_ratio', '×')}{_cell(entry['flops'], 'flops')}"
        )

    def bars(entry: dict[str, Any], what: str) -> str:
        # Params and MACs have their own scales: the page's largest block figure of each.
        out = []
        for metric, label, scale in (("params", "params", scale_p), ("macs", "MACs", scale_m)):
            real, naive = entry[metric], entry[f"naive_{metric}"]
            text = f"{what}: {number(real)} {label} against {number(naive)} naive"
            out.append(
                f'<td data-bar="{metric}">' + _bars([(label, real, naive, REAL_FILL)], scale, text) + "</td>"
            )
        return "".join(out)

    name = block["name"]
    rows = [
        f'<tr class="block" data-block="{_e(name)}"><th scope="row" data-field="name" data-value="{_e(name)}">{_e(name)}</th>'
        f"{cells(block)}{bars(block, 'block ' + name)}</tr>"
    ]
    for br in block["branches"]:
        rows.append(
            f'<tr class="branch" data-branch="{_e(br["name"])}"><th scope="row" data-field="name">{_e(br["name"])}</th>'
            f"{cells(br)}{bars(br, 'branch ' + br['name'])}</tr>"
        )
    inner = layer_table(layers, f"Layers of {name}", prefix=name + "_", sortable=False)
    rows.append(
        f'<tr class="layers-row"><td colspan="{len(BLOCK_COLUMNS)}"><details data-block="{_e(name)}">'
        f"<summary>{len(layers)} layers of {_e(name)}</summary>{inner}</details></td></tr>"
    )
    return f'<tbody class="block" data-block="{_e(name)}">{"".join(rows)}</tbody>'


def _blocks(data: dict[str, Any], sortable: bool = True) -> str:
    blocks = data["blocks"]
    if not blocks:
        return '<p class="muted">This model has no blocks.</p>'
    names = [b["name"] for b in blocks]
    by_block: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for l in data["layers"]:
        b = block_of(l, names)
        if b is not None:
            by_block[b].append(l)
    scale_p = max(max(b["naive_params"], b["params"]) for b in blocks)
    scale_m = max(max(b["naive_macs"], b["macs"]) for b in blocks)
    groups = "".join(_block_group(b, by_block[b["name"]], scale_p, scale_m) for b in blocks)
    how = "click a column to sort; open" if sortable else "open"
    return (
        _legend()
        + f'<table class="blocks{" sortable" if sortable else ""}"><caption>Blocks and their branches: real against naive '
        f"({how} a block's layers below its branches)</caption>"
        f"{_head(BLOCK_COLUMNS, sortable)}{groups}</table>"
    )


def _aux(data: dict[str, Any]) -> str:
    heads = data.get("aux")
    if not heads:
        return ""
    rows = "".join(
        f'<tr><th scope="row">{_e(h["name"])}</th><td>{_e(h["at"])}</td>{_cell(h["loss_weight"], "loss_weight")}'
        f"<td>{_e(fmt_shape(h['output_shape']))}</td>{_cell(h['params'], 'params')}{_cell(h['macs'], 'macs')}{_cell(h['flops'], 'flops')}</tr>"
        for h in heads
    )
    head = _head(
        (
            ("head", False),
            ("at", False),
            ("loss weight", True),
            ("output", False),
            ("params", True),
            ("MACs", True),
            ("FLOPs", True),
        ),
        False,
    )
    return f'<table class="aux" data-section="aux"><caption>Auxiliary heads: training only, not in the totals</caption>{head}<tbody>{rows}</tbody></table>'


def _conventions(data: dict[str, Any]) -> str:
    c = data["conventions"]
    return (
        '<dl class="muted">'
        f"<dt>MACs</dt><dd>{_e(c['macs'])}</dd><dt>FLOPs</dt><dd>{_e(c['flops'])}</dd>"
        f"<dt>naive</dt><dd>{_e(c['naive'])}</dd><dt>batch</dt><dd>{_e(c['batch'])}</dd></dl>"
    )


def _figure(svg: str | None, note: str | None) -> str:
    if svg is None:
        return f'<p class="note" role="note">{_e(note or "No diagram.")}</p>'
    start = svg.find("<svg")  # drop the XML declaration and DOCTYPE: inline SVG needs neither
    return f'<figure class="diagram">{svg[start:]}<figcaption class="muted">The model, block by block (Graphviz).</figcaption></figure>'


def report_fragment(
    data: dict[str, Any],
    svg: str | None = None,
    note: str | None = None,
    heading: int = 1,
    sortable: bool = True,
) -> str:
    """The report view without the page around it (a `<div class="ik">`).

    Args:
        data: `report_data(analysis)` (or the JSON report read back).
        svg: the model diagram as SVG text; None shows `note` instead, or no diagram at all
            where `note` is None too.
        note: why there is no diagram.
        heading: the level of the title (1 on a page, 3 inside a notebook).
        sortable: column headings are sort buttons (the page's script sorts; a notebook
            output may run no script, so its view has none).
    """
    m = data["model"]
    sub = min(heading + 1, 6)
    parts = [
        f'<div class="ik" data-model="{_e(m["name"])}">',
        f"<h{heading}>{_e(m['name'])}</h{heading}>",
        f"<p>{_e(fmt_shape(m['input_shape']))} → {_e(fmt_shape(m['output_shape']))}: "
        f"{number(m['macs'])} MACs and {number(m['params'])} params, against {number(m['naive_macs'])} MACs and "
        f"{number(m['naive_params'])} params for the naive network ({number(m['macs_saving_ratio'])}× fewer MACs).</p>",
        f"<h{sub}>Totals</h{sub}>",
        _totals(m),
        _aux(data),
        "</div>",
        f"<h{sub}>Blocks</h{sub}>",
        _blocks(data, sortable),
    ]
    if svg is not None or note is not None:
        parts += [f"<h{sub}>Diagram</h{sub}>", _figure(svg, note)]
    parts += [
        f"<h{sub}>All layers</h{sub}>",
        f'<details class="all-layers"><summary>{len(data["layers"])} layers, in build order</summary>'
        f"{layer_table(data['layers'], 'Every layer the builder creates', sortable=sortable)}</details>",
        f"<h{sub}>How the numbers are counted</h{sub}>",
        _conventions(data),
        "</div>",
    ]
    return "".join(parts)


def page(title: str, body: str) -> str:
    """A whole HTML document around `body`: inline style and script, nothing fetched."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No network: a policy that forbids every fetch, so the page reads the same offline.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body><main>{body}</main><script>{SCRIPT}</script></body></html>\n"
    )


def report_page(data: dict[str, Any], svg: str | None = None, note: str | None = None) -> str:
    """The report as one self-contained HTML page (see `report_fragment` for the arguments)."""
    return page(f"{data['model']['name']}: inception-kit report", report_fragment(data, svg, note))


def diagram_svg(analysis: Any) -> tuple[str | None, str | None]:
    """The model diagram as SVG text, or None and the reason where Graphviz is missing."""
    from .diagram import GraphvizMissing, svg

    try:
        return svg(analysis), None
    except GraphvizMissing as err:
        return None, f"No diagram: {err}."


def render_report(analysis: Any, diagram: bool = True) -> str:
    """The report page of an analysis, with its diagram where Graphviz can draw it."""
    from ..report import report_data

    svg, note = diagram_svg(analysis) if diagram else (None, None)
    return report_page(report_data(analysis), svg, note)


def analysis_html(analysis: Any) -> str:
    """The inline notebook view of an analysis (`Analysis._repr_html_`)."""
    from ..report import report_data

    return f"<style>{CSS}</style>" + report_fragment(report_data(analysis), heading=3, sortable=False)


# ------------------------------------------------------------------------------- plan


def plan_rows(plan: Any) -> list[tuple[str | None, str, str, str, str]]:
    """(top-level block or None, layer name, kind, config, output shape) for every layer the
    builder creates, in build order."""
    from ..kinds import kind_of
    from ..planner import BlockPlan, walk

    rows = []
    for step in plan.steps:
        block = step.name if isinstance(step, BlockPlan) else None
        for op in walk([step]):
            rows.append((block, op.name, op.kind, kind_of(op.kind).text(op.args), fmt_shape(op.output_shape)))
    return rows


def plan_text(plan: Any) -> str:
    """The plan as plain text: every layer with its config and output shape."""
    from ..tables import text_table

    m = plan.model
    head = f"{m.name}: {fmt_shape(plan.input_shape)} → {fmt_shape(plan.output_shape)}"
    rows = [[name, config, shape] for _, name, _, config, shape in plan_rows(plan)]
    return head + "\n" + text_table(["layer", "config (resolved)", "output"], rows, set())


def plan_html(plan: Any) -> str:
    """The inline notebook view of a plan (`Plan._repr_html_`): layers, each block folded."""
    rows = plan_rows(plan)
    columns = (("layer", False), ("config (resolved)", False), ("output", False))
    groups: list[tuple[str | None, list[tuple[str | None, str, str, str, str]]]] = []
    for r in rows:
        if groups and groups[-1][0] == r[0] and r[0] is not None:
            groups[-1][1].append(r)
        else:
            groups.append((r[0], [r]))

    def tr(r: tuple[str | None, str, str, str, str]) -> str:
        return f'<tr><th scope="row">{_e(r[1])}</th><td>{_e(r[3])}</td><td>{_e(r[4])}</td></tr>'

    body = []
    for block, members in groups:
        if block is None:
            body.append(f"<tbody>{tr(members[0])}</tbody>")
        else:
            inner = f"<table><caption>Layers of {_e(block)}</caption>{_head(columns, False)}<tbody>{''.join(tr(r) for r in members)}</tbody></table>"
            body.append(
                f'<tbody class="block"><tr><th scope="row">{_e(block)}</th><td>block</td><td>{_e(members[-1][4])}</td></tr>'
                f'<tr><td colspan="3"><details><summary>{len(members)} layers of {_e(block)}</summary>{inner}</details></td></tr></tbody>'
            )
    m = plan.model
    return (
        f'<style>{CSS}</style><div class="ik" data-model="{_e(m.name)}"><h3>{_e(m.name)}: plan</h3>'
        f"<p>{_e(fmt_shape(plan.input_shape))} → {_e(fmt_shape(plan.output_shape))}, {len(rows)} layers</p>"
        f'<table class="plan"><caption>Every layer the builder creates, in order</caption>{_head(columns, False)}{"".join(body)}</table></div>'
    )


# ------------------------------------------------------------------------------- diff


DIFF_LABELS = {
    "macs": ("MACs", "MACs"),
    "flops": ("FLOPs (TensorFlow profiler)", "FLOPs"),
    "params": ("parameters", "params"),
    "naive_macs": ("naive network's MACs", "MACs"),
    "naive_params": ("naive network's parameters", "params"),
    "macs_saving_ratio": ("MACs saved: naive / real", "×"),
    "params_saving_ratio": ("params saved: naive / real", "×"),
    "peak_activation_bytes": ("peak activation memory per sample", "bytes"),
}

DIFF_COLUMNS = (
    ("block / branch", False),
    ("status", False),
    ("MACs A", True),
    ("MACs B", True),
    ("Δ MACs", True),
    ("params A", True),
    ("params B", True),
    ("Δ params", True),
    ("saving A", True),
    ("saving B", True),
    ("bars: MACs A, B", False),
)


def _signed(value: int | float) -> str:
    return ("+" if value > 0 else "") + number(value)


def _maybe(side: dict[str, Any] | None, key: str, field: str, suffix: str = "") -> str:
    if side is None:
        return f'<td class="n" data-field="{field}" data-value="">–</td>'
    return _cell(side[key], field, suffix)


def diff_fragment(data: dict[str, Any], heading: int = 1, sortable: bool = True) -> str:
    """The diff view without the page around it.

    Args:
        data: `Diff.data()` (or the JSON diff read back).
        heading: the level of the title.
        sortable: column headings are sort buttons (see `report_fragment`).
    """
    sub = min(heading + 1, 6)
    model, entries = data["rows"][0], data["rows"][1:]

    def side(s: dict[str, Any]) -> str:
        return _e(s["name"]) + (f' <span class="muted">({_e(s["source"])})</span>' if s.get("source") else "")

    rows = []
    for key, (label, unit) in DIFF_LABELS.items():
        a, b, d = model["a"][key], model["b"][key], model["delta"][key]
        rows.append(
            f'<tr data-metric="{key}"><th scope="row">{_e(label)}</th>{_cell(a, "a." + key)}{_cell(b, "b." + key)}'
            f'<td class="n" data-field="delta.{key}" data-value="{d}">{_signed(d)}</td><td>{_e(unit)}</td></tr>'
        )
    totals = (
        '<table class="totals" data-section="model"><caption>Model: A, B and B − A (batch 1)</caption>'
        + _head((("figure", False), ("A", True), ("B", True), ("Δ (B − A)", True), ("unit", False)), False)
        + f"<tbody>{''.join(rows)}</tbody></table>"
    )
    scale = max([max((r["a"] or {}).get("macs", 0), (r["b"] or {}).get("macs", 0)) for r in entries] or [0])
    groups: list[list[str]] = []
    for r in entries:
        a, b = r["a"], r["b"]
        cls = "branch" if r["level"] == "branch" else "block"
        name = r["name"].split("/", 1)[1] if r["level"] == "branch" else r["name"]
        bar = _bars(
            [("MACs", (b or {}).get("macs", 0), (a or {}).get("macs", 0), B_FILL)],
            scale,
            f"{r['name']}: MACs A {number((a or {}).get('macs', 0))}, B {number((b or {}).get('macs', 0))}",
        )
        # One <tbody> per block, its branches in it, so sorting moves a block with them.
        if r["level"] != "branch" or not groups:
            groups.append([])
        groups[-1].append(
            f'<tr class="{cls}" data-name="{_e(r["name"])}"><th scope="row" data-field="name" data-value="{_e(r["name"])}">{_e(name)}</th>'
            f'<td class="{r["status"]}" data-field="status" data-value="{r["status"]}">{r["status"]}</td>'
            f"{_maybe(a, 'macs', 'a.macs')}{_maybe(b, 'macs', 'b.macs')}"
            f'<td class="n" data-field="delta.macs" data-value="{r["delta"]["macs"]}">{_signed(r["delta"]["macs"])}</td>'
            f"{_maybe(a, 'params', 'a.params')}{_maybe(b, 'params', 'b.params')}"
            f'<td class="n" data-field="delta.params" data-value="{r["delta"]["params"]}">{_signed(r["delta"]["params"])}</td>'
            f"{_maybe(a, 'macs_saving_ratio', 'a.macs_saving_ratio', '×')}{_maybe(b, 'macs_saving_ratio', 'b.macs_saving_ratio', '×')}"
            f"<td>{bar}</td></tr>"
        )
    blocks = (
        _legend("B", "A", B_FILL)
        + f'<table class="entries{" sortable" if sortable else ""}"><caption>Blocks and branches, matched by name'
        + (" (click a column to sort)" if sortable else "")
        + "</caption>"
        + _head(DIFF_COLUMNS, sortable)
        + "".join(f'<tbody class="block">{"".join(rows)}</tbody>' for rows in groups)
        + "</table>"
        if entries
        else '<p class="muted">Neither model has blocks.</p>'
    )
    return (
        f'<div class="ik diff"><h{heading}>diff: {_e(data["a"]["name"])} → {_e(data["b"]["name"])}</h{heading}>'
        f"<p>A: {side(data['a'])}<br>B: {side(data['b'])}<br>Deltas are {_e(data['delta'])}.</p>"
        f"<h{sub}>Model</h{sub}>{totals}<h{sub}>Blocks and branches</h{sub}>{blocks}</div>"
    )


def diff_page(data: dict[str, Any]) -> str:
    """The diff as one self-contained HTML page."""
    return page(f"diff {data['a']['name']} → {data['b']['name']}: inception-kit", diff_fragment(data))


def diff_html(d: Any) -> str:
    """The inline notebook view of a diff (`Diff._repr_html_`)."""
    return f"<style>{CSS}</style>" + diff_fragment(d.data(), heading=3, sortable=False)
