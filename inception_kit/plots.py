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
from pathlib import Path
from typing import Any

from .cost import Analysis, saving

WIDTH_IN = 12.0
DPI = 100
NAIVE_COLOR = "#b8b8b8"
REAL_COLOR = "#2f6db5"


def chart_size(n_bars: int) -> tuple[int, int]:
    """Width and height in pixels of a chart of `n_bars` blocks (one bar pair each)."""
    return int(WIDTH_IN * DPI), int(round(_height_in(n_bars) * DPI))


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


def savings_figure(analysis: Analysis) -> Any:
    """The chart as a `matplotlib.figure.Figure` (not attached to pyplot)."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):  # a name like "$x$" is text, not TeX
        return _savings_figure(analysis)


def _savings_figure(analysis: Analysis) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    entries = _entries(analysis)
    n = len(entries)
    fig = Figure(figsize=(WIDTH_IN, _height_in(n)), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    ys = list(range(n))
    h = 0.38
    for ax, what, get in (
        (axes[0], "MACs (multiply-adds)", lambda c: c.macs),
        (axes[1], "parameters", lambda c: c.params),
    ):
        real = [get(c) for _, c, _ in entries]
        naive = [get(nv) for _, _, nv in entries]
        ax.barh([y - h / 2 for y in ys], naive, h, color=NAIVE_COLOR, label="naive (1×1 reductions removed)")
        ax.barh([y + h / 2 for y in ys], real, h, color=REAL_COLOR, label="with 1×1 bottlenecks")
        top = max([*naive, *real, 1])
        for y, r, nv in zip(ys, real, naive):
            ratio = saving(r, nv)[0]
            ax.text(max(r, nv) + top * 0.01, y, f"{ratio:.1f}x", va="center", ha="left", fontsize=9,
                    fontweight="bold" if ratio > 1.005 else "normal", color="#1d3f6b" if ratio > 1.005 else "#666666")
        ax.set_xlim(0, top * 1.14)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human(v)))
        ax.set_title(f"{what} per block: naive against bottleneck", fontsize=11)
        ax.set_xlabel(what)
        ax.grid(axis="x", color="#e4e4e4")
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0].set_yticks(ys, [name for name, _, _ in entries])
    axes[0].invert_yaxis()  # first block on top
    axes[0].legend(loc="lower right", fontsize=9, frameon=False)
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

    from .files import DestinationExists, staged_file

    path = Path(path)
    if path.exists() and not overwrite:
        raise DestinationExists(path)
    fig = savings_figure(analysis)
    FigureCanvasAgg(fig)
    with staged_file(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})  # reproducible bytes
    return path
