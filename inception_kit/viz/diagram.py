"""Pictures of specs: one block with its branches side by side, or a whole model.

`inception-kit diagram SPEC [--block NAME] -o out.svg` (or `.png`) draws, with Graphviz:

* with `--block`: the block's input, each branch from left to right as a box of its
  layers (kind, kernel, output shape and MACs of every layer; each branch's MACs beside
  its naive MACs), and the merge. The 1×1 bottlenecks, the convolutions the naive
  counterpart removes (`removed_in_naive` in the report), are filled orange.
* without it: the model as its sequence of layers and blocks, each block one box with
  its MACs, naive MACs and the same two numbers per branch.

Every number comes from the analysis (`inception_kit.analysis`), so the picture and the
report agree. Graphviz's `dot` program does the layout: `apt-get install graphviz` (Debian,
Ubuntu), `brew install graphviz` (macOS) or `conda install graphviz`; the Python side is
the `graphviz` package. Both are imported only when a picture is drawn.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..analysis import Analysis, Row, saving
from ..errors import ArgumentError, did_you_mean
from ..kinds import Cost, fmt_shape, kind_of
from ..planner import BlockPlan, Op, Step, iter_block_plans, iter_ops, walk

FORMATS = ("svg", "png")

# Colours: bottlenecks stand out; everything else stays quiet.
BOTTLENECK_FILL = "#ffb347"
BOTTLENECK_EDGE = "#c05800"
CONV_FILL = "#dbe9f6"
OTHER_FILL = "#eeeeee"
MERGE_FILL = "#d5efcf"
BLOCK_FILL = "#f4f8fc"
IO_FILL = "#ffffff"
FONT = "Helvetica"


class GraphvizMissing(RuntimeError):
    """Graphviz (the `dot` program, or its Python package) is not installed."""


# ------------------------------------------------------------------------------- text


def _n(value: int) -> str:
    return f"{value:,}"


def _ratio(real: int, naive: int) -> str:
    return f"{saving(real, naive)[0]:.2f}×"


def layer_text(op: Op) -> str:
    """What a layer does, in a few words: 'conv 3×3 /2, bn, relu', 'maxpool 3×3 /1'."""
    return kind_of(op.kind).caption_of(op.args)


def _font(text: str, size: int | None = None, bold: bool = False, color: str | None = None) -> str:
    attrs = (f' POINT-SIZE="{size}"' if size else "") + (f' COLOR="{color}"' if color else "")
    body = html.escape(text)
    if bold:
        body = f"<B>{body}</B>"
    return f"<FONT{attrs}>{body}</FONT>" if attrs else body


def _table(lines: Iterable[str], fill: str, border: int = 0, color: str | None = None) -> str:
    """An HTML-like Graphviz label: one cell per line (lines already escaped)."""
    rows = "".join(f"<TR><TD>{line}</TD></TR>" for line in lines)
    extra = f' COLOR="{color}"' if color else ""
    return f'<<TABLE BORDER="{border}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1" BGCOLOR="{fill}"{extra}>{rows}</TABLE>>'


# ------------------------------------------------------------------------------- costs


def _rows_by_name(analysis: Analysis) -> dict[str, Row]:
    return {r.name: r for r in analysis.rows}


def _steps_cost(steps: list[Step], rows: dict[str, Row]) -> tuple[Cost, Cost]:
    """Real and naive cost of a sequence, summed from the analysis rows."""
    real, naive = Cost(), Cost()
    for row in _step_rows(steps, rows):
        real, naive = real + row.cost, naive + row.naive
    return real, naive


def _step_rows(steps: list[Step], rows: dict[str, Row]) -> Iterable[Row]:
    return (rows[op.name] for op in walk(steps))


def block_names(analysis: Analysis) -> list[str]:
    """Every block that `--block` accepts: top-level blocks, then nested ones, in order."""
    return [b.name for b in iter_block_plans(analysis.plan.steps)]


def find_block(analysis: Analysis, name: str) -> BlockPlan:
    """The block called `name`, or an ArgumentError listing the blocks (with a did-you-mean)."""
    blocks = {b.name: b for b in iter_block_plans(analysis.plan.steps)}
    if name in blocks:
        return blocks[name]
    listed = ", ".join(blocks) if blocks else "(this spec has none)"
    raise ArgumentError("block", f"one of the blocks: {listed}", name, hint=did_you_mean(name, blocks))


# ------------------------------------------------------------------------------- graphs


class _Drawer:
    def __init__(self, analysis: Analysis, title: str):
        try:
            import graphviz
        except ImportError as err:
            raise GraphvizMissing(
                "drawing needs the 'graphviz' Python package (pip install graphviz) and Graphviz's "
                "'dot' program (apt-get install graphviz)"
            ) from err
        self.rows = _rows_by_name(analysis)
        self.count = 0
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.graph = graphviz.Digraph(
            analysis.plan.model.name,
            graph_attr={
                "rankdir": "TB",
                "ordering": "out",
                "fontname": FONT,
                "fontsize": "12",
                "label": title,
                "labelloc": "b",
                "nodesep": "0.25",
                "ranksep": "0.35",
            },
            node_attr={
                "shape": "box",
                "style": "rounded,filled",
                "fontname": FONT,
                "fontsize": "10",
                "margin": "0.08,0.04",
            },
            edge_attr={"fontname": FONT, "fontsize": "9", "arrowsize": "0.6", "color": "#555555"},
        )

    def edge(self, tail: str, head: str, **attrs: str) -> None:
        # Edges go last, at the top level: an edge written inside a cluster would pull its
        # ends into that cluster, and nodes declared before edges keep the branch order.
        self.edges.append((tail, head, attrs))

    def finish(self) -> Any:
        for tail, head, attrs in self.edges:
            self.graph.edge(tail, head, **attrs)
        self.edges = []
        return self.graph

    def node_id(self) -> str:
        self.count += 1
        return f"n{self.count}"

    def io(self, g: Any, title: str, shape: tuple[int, ...]) -> str:
        nid = self.node_id()
        g.node(
            nid,
            _table([_font(title, bold=True), _font(fmt_shape(shape))], IO_FILL),
            shape="box",
            style="rounded",
            color="#888888",
        )
        return nid

    def layer(self, g: Any, op: Op) -> str:
        row = self.rows[op.name]
        nid = self.node_id()
        lines = [
            _font(op.name, 8, color="#444444"),
            _font(layer_text(op), bold=True),
            _font(f"→ {fmt_shape(op.output_shape)}"),
        ]
        if row.cost.macs or row.naive.macs:
            lines.append(_font(f"{_n(row.cost.macs)} MACs"))
        if row.removed_in_naive:
            lines.append(_font("1×1 bottleneck: removed in naive", 8, bold=True, color=BOTTLENECK_EDGE))
            g.node(
                nid,
                _table(lines, BOTTLENECK_FILL),
                fillcolor=BOTTLENECK_FILL,
                color=BOTTLENECK_EDGE,
                penwidth="2.5",
                tooltip=f"{op.name}: bottleneck, removed in the naive counterpart",
                id=f"layer-{op.name}",
                **{"class": "layer bottleneck"},
            )
            return nid
        if row.naive.macs != row.cost.macs:
            lines.append(_font(f"naive: {_n(row.naive.macs)} MACs", 8, color="#666666"))
        fill = CONV_FILL if row.cost.macs else OTHER_FILL
        g.node(
            nid,
            _table(lines, fill),
            fillcolor=fill,
            tooltip=op.name,
            id=f"layer-{op.name}",
            **{"class": "layer"},
        )
        return nid

    # A block expanded: its branches side by side, each in its own cluster. (No cluster
    # around the whole block: dot then keeps the branches in order, left to right.)
    def expanded(self, g: Any, block: BlockPlan, source: str) -> str:
        ends: list[tuple[str, str | None, bool]] = []  # (last node, edge label, identity)
        for bname, steps in block.branches.items():
            real, naive = _steps_cost(steps, self.rows)
            with g.subgraph(name=f"cluster_{self.node_id()}") as c:
                # The branch's costs head its column as a node that the data flows
                # through, not as a cluster label: dot keeps the columns in order only so.
                c.attr(label="", style="rounded,filled", fillcolor=BLOCK_FILL, color="#7a9cc6")
                head = self.node_id()
                label = [
                    _font(bname, 11, bold=True),
                    _font(f"{_n(real.macs)} MACs"),
                    _font(f"naive {_n(naive.macs)} ({_ratio(real.macs, naive.macs)})", 9, color="#666666"),
                ]
                c.node(
                    head,
                    _table(label, BLOCK_FILL),
                    shape="plaintext",
                    style="",
                    tooltip=f"{block.name}, branch {bname}",
                    id=f"branch-{block.name}-{bname}",
                    **{"class": "branch"},
                )
                self.edge(source, head)
                last = self.sequence(c, steps, head)
            scale = f"×{block.scale:g}" if block.scale is not None and steps else None
            ends.append((last, scale, not steps))
        merge = self.node_id()
        real, naive = _steps_cost([block], self.rows)
        title = (block.merge if len(block.branches) > 1 else "output") + (
            f", then {block.activation}" if block.activation else ""
        )
        lines = [
            _font(block.merge_op.name if block.merge_op else block.name, 8, color="#444444"),
            _font(title, bold=True),
            _font(f"→ {fmt_shape(block.output_shape)}"),
            _font(
                f"{block.name}: {_n(real.macs)} MACs, naive {_n(naive.macs)} ({_ratio(real.macs, naive.macs)})",
                9,
            ),
        ]
        g.node(
            merge,
            _table(lines, MERGE_FILL),
            fillcolor=MERGE_FILL,
            tooltip=block.name,
            id=f"merge-{block.name}",
            **{"class": "merge"},
        )
        for last, scale, identity in ends:
            if identity:  # an empty branch: the identity (a residual shortcut)
                self.edge(last, merge, label="identity", style="dashed")
            else:
                self.edge(last, merge, label=scale or "")
        return merge

    def sequence(self, g: Any, steps: list[Step], source: str) -> str:
        prev = source
        for step in steps:
            if isinstance(step, Op):
                nid = self.layer(g, step)
                self.edge(prev, nid)
                prev = nid
            else:
                prev = self.expanded(g, step, prev)
        return prev

    # A block collapsed into one box (the whole-model view).
    def collapsed(self, g: Any, block: BlockPlan) -> str:
        real, naive = _steps_cost([block], self.rows)
        n_bottlenecks = sum(1 for op in iter_ops([block]) if self.rows[op.name].removed_in_naive)
        head = f"{block.merge} of {len(block.branches)} branches" if len(block.branches) > 1 else "one branch"
        if block.scale is not None:
            head += f", scale {block.scale:g}"
        if block.activation:
            head += f", then {block.activation}"
        cells = [
            f'<TR><TD COLSPAN="3">{_font(block.name, 11, bold=True)}</TD></TR>',
            f'<TR><TD COLSPAN="3">{_font(head)} {_font("→ " + fmt_shape(block.output_shape))}</TD></TR>',
            f'<TR><TD COLSPAN="3">{_font(f"{_n(real.macs)} MACs, naive {_n(naive.macs)} ({_ratio(real.macs, naive.macs)})", bold=True)}</TD></TR>',
        ]
        if n_bottlenecks:
            note = f"{n_bottlenecks} 1×1 bottleneck{'s' if n_bottlenecks != 1 else ''}"
            cells.append(
                f'<TR><TD COLSPAN="3" BGCOLOR="{BOTTLENECK_FILL}">{_font(note, 9, bold=True, color="#5a2a00")}</TD></TR>'
            )
        for bname, steps in block.branches.items():
            br, bn = _steps_cost(steps, self.rows)
            cells.append(
                f'<TR><TD ALIGN="LEFT">{_font(bname, 9)}</TD>'
                f'<TD ALIGN="RIGHT">{_font(f"{_n(br.macs)} MACs", 9)}</TD>'
                f'<TD ALIGN="RIGHT">{_font(f"naive {_n(bn.macs)}", 9, color="#666666")}</TD></TR>'
            )
        label = f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{"".join(cells)}</TABLE>>'
        nid = self.node_id()
        g.node(
            nid,
            label,
            fillcolor=BLOCK_FILL,
            color="#7a9cc6",
            penwidth="1.5",
            tooltip=block.name,
            id=f"block-{block.name}",
            **{"class": "block"},
        )
        return nid


def graph(analysis: Analysis, block: str | None = None) -> Any:
    """The `graphviz.Digraph` of one block (by name) or of the whole model.

    In Jupyter the returned object displays itself as SVG (with `dot` installed)."""
    model = analysis.plan.model.name
    if block is not None:
        bp = find_block(analysis, block)
        real, naive = _steps_cost([bp], _rows_by_name(analysis))
        title = (
            f"{model}: block {bp.name}, {_n(real.macs)} MACs against {_n(naive.macs)} naive "
            f"({_ratio(real.macs, naive.macs)} fewer). Orange: 1×1 bottlenecks, removed in the naive counterpart."
        )
        d = _Drawer(analysis, title)
        source = d.io(d.graph, f"input to {bp.name}", bp.input_shape)
        d.expanded(d.graph, bp, source)
        return d.finish()
    a = analysis
    title = (
        f"{model}: {_n(a.total.macs)} MACs, {_n(a.total.params)} params; naive {_n(a.naive.macs)} MACs, "
        f"{_n(a.naive.params)} params ({_ratio(a.total.macs, a.naive.macs)} fewer MACs)"
    )
    d = _Drawer(analysis, title)
    prev = d.io(d.graph, "input", tuple(a.plan.model.input_shape))
    for step in a.plan.steps:
        nid = d.layer(d.graph, step) if isinstance(step, Op) else d.collapsed(d.graph, step)
        d.edge(prev, nid)
        prev = nid
    d.edge(prev, d.io(d.graph, "output", a.plan.output_shape))
    return d.finish()


def render_bytes(analysis: Analysis, block: str | None = None, format: str = "svg") -> bytes:
    """The picture as SVG or PNG bytes."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; received {format!r}")
    g = graph(analysis, block)
    import graphviz

    try:
        picture: bytes = g.pipe(format=format)
        return picture
    except graphviz.ExecutableNotFound as err:
        raise GraphvizMissing(
            "Graphviz's 'dot' program was not found on PATH; install it with "
            "'apt-get install graphviz' (Debian, Ubuntu), 'brew install graphviz' (macOS) "
            "or 'conda install graphviz'"
        ) from err


def svg(analysis: Analysis, block: str | None = None) -> str:
    """The picture as SVG text (for `IPython.display.SVG`)."""
    return render_bytes(analysis, block, "svg").decode("utf-8")


def save(
    analysis: Analysis,
    path: str | os.PathLike[str],
    block: str | None = None,
    format: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Draws and writes atomically; the format is `format` or the file's suffix."""
    from ..files import staged_file

    path = Path(path)
    fmt = format or path.suffix.lstrip(".").lower()
    data = render_bytes(analysis, block, fmt)  # draw first: a failure leaves nothing behind
    with staged_file(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return path
