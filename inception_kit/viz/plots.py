"""Charts of the cost model: what the 1×1 bottlenecks save, block by block.

`savings_chart(analysis, "out.png")` (also `inception-kit report SPEC --plot out.png`)
draws two panels side by side: MACs per block, naive against bottleneck, with the saving
("2.4x") written by each pair of bars; and parameters likewise. A spec without blocks is
drawn as one pair of bars for the whole model.

matplotlib is imported only when a chart is drawn, with the Agg canvas (no display, no
pyplot state), and the file is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..analysis import Analysis, saving
from ..kinds import Cost

WIDTH_IN = 12.0
DPI = 100
NAIVE_COLOR = "#b8b8b8"
REAL_COLOR = "#2f6db5"


def chart_size(n_bars: int) -> tuple[int, int]:
    """Width and height in pixels of a chart of `n_bars` blocks (one bar pair each)."""
    return int(WIDTH_IN * DPI), round(_height_in(n_bars) * DPI)


def _height_in(n_bars: int) -> float:
    return max(3.5, 1.4 + 0.42 * max(n_bars, 1))


def human(n: float) -> str:
    """1234567 -> '1.23M'; the units of the chart's axes and labels."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}"


def _entries(analysis: Analysis) -> list[tuple[str, Any, Any]]:
    if analysis.blocks:
        return [(b.name, b.cost, b.naive) for b in analysis.blocks]
    return [(analysis.plan.model.name + " (no blocks)", analysis.total, analysis.naive)]


def _style_bars(ax: Any, what: str, title: str, top: float) -> None:
    """The look both bar charts share: room for the ratio labels, human-readable ticks."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xlim(0, top * 1.14)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human(v)))
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(what)
    ax.grid(axis="x", color="#e4e4e4")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def savings_figure(analysis: Analysis) -> Any:
    """The chart as a `matplotlib.figure.Figure` (not attached to pyplot)."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):  # a name like "$x$" is text, not TeX
        return _savings_figure(analysis)


def _savings_figure(analysis: Analysis) -> Any:
    from matplotlib.figure import Figure

    entries = _entries(analysis)
    n = len(entries)
    fig = Figure(figsize=(WIDTH_IN, _height_in(n)), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    ys = list(range(n))
    h = 0.38
    metrics: tuple[tuple[Any, str, Callable[[Cost], int]], ...] = (
        (axes[0], "MACs (multiply-adds)", lambda c: c.macs),
        (axes[1], "parameters", lambda c: c.params),
    )
    for ax, what, get in metrics:
        real = [get(c) for _, c, _ in entries]
        naive = [get(nv) for _, _, nv in entries]
        ax.barh([y - h / 2 for y in ys], naive, h, color=NAIVE_COLOR, label="naive (1×1 reductions removed)")
        ax.barh([y + h / 2 for y in ys], real, h, color=REAL_COLOR, label="with 1×1 bottlenecks")
        top = max([*naive, *real, 1])
        for y, r, nv in zip(ys, real, naive):
            ratio = saving(r, nv)[0]
            ax.text(
                max(r, nv) + top * 0.01,
                y,
                f"{ratio:.1f}x",
                va="center",
                ha="left",
                fontsize=9,
                fontweight="bold" if ratio > 1.005 else "normal",
                color="#1d3f6b" if ratio > 1.005 else "#666666",
            )
        _style_bars(ax, what, f"{what} per block: naive against bottleneck", top)
    axes[0].set_yticks(ys, [name for name, _, _ in entries])
    axes[0].invert_yaxis()  # first block on top
    # Below both panels, outside the axes: inside one it would cover the longest bars.
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=9, frameon=False
    )
    a = analysis
    mr, pr = saving(a.total.macs, a.naive.macs)[0], saving(a.total.params, a.naive.params)[0]
    fig.suptitle(
        f"{a.plan.model.name}: {human(a.total.macs)} MACs against {human(a.naive.macs)} naive ({mr:.1f}x); "
        f"{human(a.total.params)} parameters against {human(a.naive.params)} ({pr:.1f}x)",
        fontsize=12,
    )
    return fig


def savings_chart(analysis: Analysis, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Writes the savings chart as a PNG of `chart_size(len(blocks))` pixels; returns its path.

    Raises:
        DestinationExists: `path` exists and overwrite is False (checked before drawing).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ..files import DestinationExists, staged_file

    path = Path(path)
    if path.exists() and not overwrite:
        raise DestinationExists(path)
    fig = savings_figure(analysis)
    FigureCanvasAgg(fig)
    with staged_file(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})  # reproducible bytes
    return path


A_COLOR = "#b8b8b8"  # the first design of a diff, drawn like the naive bars
B_COLOR = REAL_COLOR


def _write_png(fig: Any, path: str | os.PathLike[str], overwrite: bool) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ..files import staged_file

    FigureCanvasAgg(fig)
    with staged_file(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})  # reproducible bytes
    return Path(path)


def _refuse_existing(path: str | os.PathLike[str], overwrite: bool) -> None:
    from ..files import DestinationExists

    if Path(path).exists() and not overwrite:
        raise DestinationExists(Path(path))  # before drawing: nothing is wasted


def diff_chart(d: Any, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Writes MACs and params per block of two designs (a `diff.Diff`) as a PNG bar chart."""
    from matplotlib.figure import Figure

    _refuse_existing(path, overwrite)
    entries = [e for e in d.entries if e.level == "block"] or [d.model]
    names = [e.name for e in entries]
    n = len(entries)
    fig = Figure(figsize=(WIDTH_IN, _height_in(n)), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    ys = list(range(n))
    h = 0.38
    an, bn = d.a.plan.model.name, d.b.plan.model.name
    for ax, what, key in ((axes[0], "MACs (multiply-adds)", "macs"), (axes[1], "parameters", "params")):
        a = [(e.a or {}).get(key, 0) for e in entries]
        b = [(e.b or {}).get(key, 0) for e in entries]
        ax.barh([y - h / 2 for y in ys], a, h, color=A_COLOR, label=f"A: {an}")
        ax.barh([y + h / 2 for y in ys], b, h, color=B_COLOR, label=f"B: {bn}")
        top = max([*a, *b, 1])
        for y, va, vb, e in zip(ys, a, b, entries):
            text = e.status if e.status in ("added", "removed") else f"{vb / va:.2f}x" if va else "-"
            ax.text(max(va, vb) + top * 0.01, y, text, va="center", ha="left", fontsize=9)
        _style_bars(ax, what, f"{what} per block: B / A written by each pair", top)
    axes[0].set_yticks(ys, names)
    axes[0].invert_yaxis()
    axes[0].legend(loc="lower right", fontsize=9, frameon=False)
    m = d.model
    fig.suptitle(
        f"{an} → {bn}: {human(m.a['macs'])} → {human(m.b['macs'])} MACs; "
        f"{human(m.a['params'])} → {human(m.b['params'])} parameters",
        fontsize=12,
    )
    return _write_png(fig, path, overwrite)


def sweep_chart(
    points: list[Any],
    title: str,
    path: str | os.PathLike[str],
    overwrite: bool = False,
    budget: tuple[int | None, int | None] = (None, None),
) -> Path:
    """Writes MACs and params over the fit's scale factor (`fit.SweepPoint`s) as a PNG."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    _refuse_existing(path, overwrite)
    fig = Figure(figsize=(WIDTH_IN, 4.0), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2)
    xs = [p.scale for p in points]
    for ax, what, key, limit in (
        (axes[0], "MACs (multiply-adds)", "macs", budget[0]),
        (axes[1], "parameters", "params", budget[1]),
    ):
        ax.plot(xs, [getattr(p, key) for p in points], marker="o", color=REAL_COLOR)
        if limit is not None:
            ax.axhline(limit, color="#c0392b", linestyle="--", label=f"budget {human(limit)}")
            ax.legend(loc="lower right", fontsize=9, frameon=False)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: human(v)))
        ax.set_xlabel("scale factor on the 1×1 reduction widths")
        ax.set_title(what, fontsize=11)
        ax.grid(color="#e4e4e4")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle(title, fontsize=12)
    return _write_png(fig, path, overwrite)
