"""What a design change buys: the costs of two specs side by side.

`diff(a, b)` analyses both specs (paths, `Model` objects or analyses) and matches the
model, then every top-level block by name and every branch by block and branch name
(names come from spec paths, so they are the paths a reader sees). Each entry is
`added` (only in B), `removed` (only in A), `changed` or `same`, with MACs, FLOPs,
params, each one's saving against its naive network and, for the model, peak activation
bytes. Deltas are B − A. Plain Python: the numbers are the analysis's, never a profiler's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from ..analysis import Analysis
from ..kinds import fmt_shape
from ..report import report_data
from ..spec.types import ModelSpec
from ..tables import human, markdown_table, render_as, text_table

if TYPE_CHECKING:
    from ..latency.predict import LatencyPrediction

Source = Union[Analysis, ModelSpec, str, "os.PathLike[str]"]
TIME = "predicted_ms"  # compared only when both sides have a latency prediction

# The figures compared, in the order the formats show them.
METRICS = (
    "macs",
    "flops",
    "params",
    "naive_macs",
    "naive_params",
    "macs_saving_ratio",
    "params_saving_ratio",
)
MODEL_METRICS = (*METRICS, "peak_activation_bytes")
STATUSES = ("same", "changed", "added", "removed")


@dataclass
class Entry:
    """One matched thing: the model, a block or a branch (`block/branch`)."""

    level: str  # "model", "block" or "branch"
    name: str
    a: dict[str, Any] | None  # its figures in A; None when added
    b: dict[str, Any] | None  # its figures in B; None when removed

    @property
    def status(self) -> str:
        if self.a is None:
            return "added"
        if self.b is None:
            return "removed"
        return "same" if self.a == self.b else "changed"

    def delta(self, metric: str) -> int | float:
        """B − A; a missing side counts as 0 (ratios: 1, nothing saved)."""
        zero = 1.0 if metric.endswith("_ratio") else 0
        a = zero if self.a is None else self.a[metric]
        b = zero if self.b is None else self.b[metric]
        return round(b - a, 4) if isinstance(a, float) or isinstance(b, float) else b - a


@dataclass
class Diff:
    """The comparison of two analyses; `data()` is the JSON format, `render()` every format."""

    a: Analysis
    b: Analysis
    entries: list[Entry]
    latency: dict[str, Any] | None = None  # what the predicted times hold for (runtime, batch, profile)

    @property
    def model(self) -> Entry:
        return self.entries[0]

    def data(self) -> dict[str, Any]:
        """Plain data (the JSON format)."""

        def side(analysis: Analysis) -> dict[str, Any]:
            return {"name": analysis.plan.model.name, "source": analysis.plan.model.source}

        rows = []
        timed = (TIME,) if self.latency else ()
        for e in self.entries:
            metrics = (*(MODEL_METRICS if e.level == "model" else METRICS), *timed)
            rows.append(
                {
                    "level": e.level,
                    "name": e.name,
                    "status": e.status,
                    "a": e.a,
                    "b": e.b,
                    "delta": {m: e.delta(m) for m in metrics},
                }
            )
        data = {"a": side(self.a), "b": side(self.b), "delta": "b - a", "rows": rows}
        if self.latency:
            data["latency"] = self.latency
        return data

    def render(self, fmt: str = "table") -> str:
        """The diff as 'table', 'markdown', 'csv' or 'json'."""
        return render_data(self.data(), fmt)

    def _repr_html_(self) -> str:
        """Jupyter and VS Code show the diff inline (see `viz.html`)."""
        from ..viz.html import diff_html

        return diff_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's plain-text view: the terminal table."""
        p.text("Diff(...)" if cycle else self.render("table"))


def _figures(entry: dict[str, Any], metrics: tuple[str, ...]) -> dict[str, Any]:
    out = {m: entry[m] for m in metrics}
    out["output_shape"] = list(entry["output_shape"])
    return out


def _keyed(data: dict[str, Any], metrics: tuple[str, ...] = METRICS) -> dict[str, tuple[str, dict[str, Any]]]:
    """Blocks and branches of report data by name, in their order."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for block in data["blocks"]:
        out[block["name"]] = ("block", _figures(block, metrics))
        for branch in block["branches"]:
            out[f"{block['name']}/{branch['name']}"] = ("branch", _figures(branch, metrics))
    return out


def _analysis(source: Source) -> Analysis:
    if isinstance(source, Analysis):
        return source
    from ..analysis import analyse
    from ..loading import load

    return analyse(load(source))


def diff(a: Source, b: Source, latency: tuple[LatencyPrediction, LatencyPrediction] | None = None) -> Diff:
    """Compares two specs (paths, Models or Analyses); with `latency` (the predictions of A
    and B, `ik.predict_latency`), their predicted times too.

    Raises:
        SpecError: either spec is invalid.
    """
    aa, ab = _analysis(a), _analysis(b)
    da, db = (
        report_data(aa, latency[0] if latency else None),
        report_data(ab, latency[1] if latency else None),
    )
    timed = (TIME,) if latency else ()
    ma = _figures(da["model"], (*MODEL_METRICS, *timed))
    mb = _figures(db["model"], (*MODEL_METRICS, *timed))
    entries = [Entry("model", "model", ma, mb)]
    ka, kb = _keyed(da, (*METRICS, *timed)), _keyed(db, (*METRICS, *timed))
    # A's order, with B's additions placed after the entry they follow in B.
    order = list(ka)
    last = None
    for key in kb:
        if key in ka:
            last = key
        else:
            order.insert(order.index(last) + 1 if last is not None else len(order), key)
            last = key
    for key in order:
        level = (ka.get(key) or kb[key])[0]
        entries.append(
            Entry(level, key, ka[key][1] if key in ka else None, kb[key][1] if key in kb else None)
        )
    return Diff(aa, ab, entries, da["conventions"].get("latency"))


# ---------------------------------------------------------------------------------------
# Formats (the report's helpers: same tables, same number style)

_LABELS = {
    "macs": "MACs (multiply-adds)",
    "flops": "FLOPs (TF profiler)",
    "params": "params",
    "naive_macs": "naive MACs (no 1x1 reductions)",
    "naive_params": "naive params",
    "macs_saving_ratio": "MACs saving vs naive",
    "params_saving_ratio": "params saving vs naive",
    "peak_activation_bytes": "peak activation bytes",
    TIME: "predicted ms",
}
TIME_HEADER = ["ms A", "ms B", "Δ ms"]
ROW_HEADER = [
    "block / branch",
    "status",
    "MACs A",
    "MACs B",
    "Δ MACs",
    "params A",
    "params B",
    "Δ params",
    "saving A",
    "saving B",
]


def _num(v: int | float | None, short: bool, signed: bool = False) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:+.2f}x" if signed else f"{v:.2f}x"
    text = human(abs(v)) if short else f"{abs(v):,}"
    sign = "+" if signed and v > 0 else "-" if v < 0 else ""
    return sign + text


def _pct(delta: int | float, a: int | float | None) -> str:
    if not a or isinstance(delta, float):
        return ""
    return f"{100.0 * delta / a:+.1f}%"


def _ms(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return (f"{v:+.3f}" if signed else f"{v:.3f}") if abs(v) < 10 else (f"{v:+.1f}" if signed else f"{v:.1f}")


def _time_cells(a: dict[str, Any], b: dict[str, Any], d: dict[str, Any]) -> list[str]:
    return [_ms(a.get(TIME)), _ms(b.get(TIME)), _ms(d[TIME], True)]


def _summary_rows(model: dict[str, Any], short: bool) -> list[list[str]]:
    rows = []
    for m in MODEL_METRICS:
        a, b, d = model["a"][m], model["b"][m], model["delta"][m]
        rows.append([_LABELS[m], _num(a, short), _num(b, short), _num(d, short, True), _pct(d, a)])
    if TIME in model["delta"]:
        a, b, d = model["a"][TIME], model["b"][TIME], model["delta"][TIME]
        rows.append(
            [
                _LABELS[TIME],
                *_time_cells(model["a"], model["b"], model["delta"]),
                f"{100.0 * d / a:+.1f}%" if a else "",
            ]
        )
    return rows


def _entry_rows(data: dict[str, Any], short: bool) -> list[list[str]]:
    rows = []
    for r in data["rows"][1:]:
        a, b, d = r["a"] or {}, r["b"] or {}, r["delta"]
        name = f"  {r['name'].split('/', 1)[1]}" if r["level"] == "branch" else r["name"]
        rows.append(
            [
                name,
                r["status"],
                _num(a.get("macs"), short),
                _num(b.get("macs"), short),
                _num(d["macs"], short, True),
                _num(a.get("params"), short),
                _num(b.get("params"), short),
                _num(d["params"], short, True),
                _num(a.get("macs_saving_ratio"), short),
                _num(b.get("macs_saving_ratio"), short),
                *(_time_cells(a, b, d) if TIME in d else []),
            ]
        )
    return rows


def _row_header(data: dict[str, Any]) -> list[str]:
    return ROW_HEADER + (TIME_HEADER if "latency" in data else [])


def _title(data: dict[str, Any]) -> str:
    def one(side: dict[str, Any]) -> str:
        return str(side["name"]) + (f" ({side['source']})" if side["source"] else "")

    title = f"A: {one(data['a'])}\nB: {one(data['b'])}"
    if "latency" in data:
        c = data["latency"]
        title += f"\npredicted times: {c['runtime']}, batch {c['batch']}, profile {c['profile']}"
    return title


def render_data(data: dict[str, Any], fmt: str = "table") -> str:
    """Renders diff data (as `Diff.data()` returns it, or read back from JSON)."""
    return render_as(
        fmt,
        data,
        table=lambda: _table(data),
        markdown=lambda: _markdown(data),
        csv_rows=lambda: _csv_rows(data),
    )


SUMMARY_HEADER = ["model", "A", "B", "Δ (B − A)", "Δ %"]


def _csv_rows(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    metrics = (*MODEL_METRICS, *((TIME,) if "latency" in data else ()))
    header = ["level", "name", "status", *(f"{s}_{m}" for m in metrics for s in ("a", "b", "delta"))]
    rows = []
    for r in data["rows"]:
        cells = []
        for m in metrics:
            for side in (r["a"], r["b"]):
                cells.append("" if side is None or m not in side else side[m])
            cells.append(r["delta"].get(m, ""))
        rows.append([r["level"], r["name"], r["status"], *cells])
    return header, rows


def _markdown(data: dict[str, Any]) -> str:
    model = data["rows"][0]
    parts = [
        f"# diff: {data['a']['name']} → {data['b']['name']}",
        "",
        *_title(data).splitlines(),
        "",
        markdown_table(SUMMARY_HEADER, _summary_rows(model, False)),
    ]
    if len(data["rows"]) > 1:
        parts += [
            "",
            "## Blocks and branches",
            "",
            markdown_table(_row_header(data), _entry_rows(data, False)),
        ]
    return "\n".join([*parts, ""])


def _table(data: dict[str, Any]) -> str:
    model = data["rows"][0]
    parts = [_title(data), "", text_table(SUMMARY_HEADER, _summary_rows(model, True), {1, 2, 3, 4})]
    shapes = (model["a"]["output_shape"], model["b"]["output_shape"])
    if shapes[0] != shapes[1]:
        parts.append(f"output shapes differ: {fmt_shape(shapes[0])} → {fmt_shape(shapes[1])}")
    if len(data["rows"]) > 1:
        parts += ["", text_table(_row_header(data), _entry_rows(data, True), set(range(2, 13)))]
    return "\n".join([*parts, ""])
