"""Reports drawn from the cost model: JSON data, terminal table, Markdown and CSV.

`report_data` is the one source; every format renders it. MACs and FLOPs are labelled
everywhere; FLOPs follow TensorFlow's profiler (see `kinds`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .analysis import Analysis, analyse, aux_analyses, saving
from .kinds import Cost, fmt_shape, kind_of
from .planner import Budget, Plan
from .spec.yaml_io import plain
from .tables import human, markdown_table, ms, ratio, render_as, text_table

if TYPE_CHECKING:
    from .latency.predict import LatencyPrediction


def _costs(cost: Cost, prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}params": cost.params,
        f"{prefix}trainable_params": cost.trainable,
        f"{prefix}macs": cost.macs,
        f"{prefix}flops": cost.flops,
    }


def _saving(cost: Cost, naive: Cost) -> dict[str, Any]:
    ratio, pct = saving(cost.macs, naive.macs)
    pratio, ppct = saving(cost.params, naive.params)
    return {
        "naive_macs": naive.macs,
        "naive_flops": naive.flops,
        "naive_params": naive.params,
        "macs_saving_ratio": round(ratio, 4),
        "macs_saving_percent": round(pct, 2),
        "params_saving_ratio": round(pratio, 4),
        "params_saving_percent": round(ppct, 2),
    }


def _times(real: float, naive: float) -> dict[str, Any]:
    return {
        "predicted_ms": round(real * 1e3, 4),
        "naive_predicted_ms": round(naive * 1e3, 4),
        "time_saving_ratio": round(naive / real, 4) if real > 0 else None,
    }


def _add_latency(data: dict[str, Any], p: LatencyPrediction) -> None:
    """Predicted times beside every count (only when a prediction is given: the report
    without one is unchanged)."""
    data["conventions"]["latency"] = {
        "predicted_ms": "the latency profile's per-call overhead plus the sum of every op's predicted kernel "
        "time (a block or branch: the sum of its ops)",
        "runtime": p.runtime,
        "batch": p.batch,
        "threads": p.threads,
        "profile": p.source,
    }
    data["model"].update(_times(p.plan.total, p.naive.total))
    naive_by_path = {path: name for path, name in p.naive.paths.items()}
    for b in data["blocks"]:
        twin = naive_by_path[b["path"]]
        b.update(_times(p.plan.blocks[b["name"]], p.naive.blocks[twin]))
        for br in b["branches"]:
            br.update(_times(p.plan.branches[b["name"]][br["name"]], p.naive.branches[twin][br["name"]]))
    for layer in data["layers"]:
        layer["predicted_ms"] = round(p.plan.layers[layer["name"]] * 1e3, 4)
        layer["naive_predicted_ms"] = round(p.naive.layers.get(layer["name"], 0.0) * 1e3, 4)


def report_data(analysis: Analysis, latency: LatencyPrediction | None = None) -> dict[str, Any]:
    """The report as plain data (the JSON format, documented in the README); with `latency`
    (`ik.predict_latency`), predicted milliseconds beside the counts."""
    plan = analysis.plan
    model = {
        "name": plan.model.name,
        "input_shape": list(plan.model.input_shape),
        "output_shape": list(plan.output_shape),
        **_costs(analysis.total),
        "non_trainable_params": analysis.total.non_trainable,
        "flops_by_op": dict(sorted(analysis.total.flops_by_op.items())),
        **_saving(analysis.total, analysis.naive),
        "param_bytes": analysis.memory.param_bytes,
        "peak_activation_bytes": analysis.memory.peak_activation_bytes,
    }
    blocks = [
        {
            "name": b.name,
            "path": b.path,
            "output_shape": list(b.output_shape),
            **_costs(b.cost),
            **_saving(b.cost, b.naive),
            "branches": [
                {
                    "name": br.name,
                    "output_shape": list(br.output_shape),
                    **_costs(br.cost),
                    **_saving(br.cost, br.naive),
                }
                for br in b.branches
            ],
        }
        for b in analysis.blocks
    ]
    layers = [
        {
            "name": r.name,
            "kind": r.kind,
            "path": r.path,
            "block": r.block,
            "branch": r.branch,
            "config": config_text(r.kind, r.args),
            "args": plain(r.args),
            "output_shape": list(r.output_shape),
            **_costs(r.cost),
            "naive_macs": r.naive.macs,
            "naive_params": r.naive.params,
            "removed_in_naive": r.removed_in_naive,
        }
        for r in analysis.rows
    ]
    data: dict[str, Any] = {
        "conventions": {
            "macs": "multiply-accumulates of conv, depthwise, pointwise and dense layers",
            "flops": "TensorFlow profiler float ops of the frozen inference graph (2 per MAC, "
            "plus bias adds, batch norm, pooling, softmax)",
            "naive": "each 1x1 conv that only reduces channels before a kxk conv removed",
            "batch": 1,
        },
        "model": model,
        "blocks": blocks,
        "layers": layers,
    }
    if plan.model.aux:  # training-only cost, apart from the model's totals
        data["aux"] = [
            {
                "name": name,
                "at": plan.model.aux[name].at,
                "loss_weight": plan.model.aux[name].weight,
                "output_shape": list(a.plan.output_shape),
                **_costs(a.total),
            }
            for name, a in aux_analyses(plan).items()
        ]
    if latency is not None:
        _add_latency(data, latency)
    return data


def config_text(kind: str, args: dict[str, Any]) -> str:
    """The resolved arguments in a few words: `conv 3x3/2 valid bn relu` (the kind says how)."""
    return kind_of(kind).text(args)


def _layer_rows(data: dict[str, Any], short: bool) -> list[list[str]]:
    """Layers grouped under their block: a block's rows show the name inside the block."""
    n = human if short else (lambda v: f"{v:,}")
    blocks = [b["name"] for b in data["blocks"]]
    timed = _timed(data)
    rows, current = [], None
    for l in data["layers"]:
        block = next((b for b in blocks if l["name"].startswith(b + "_")), None) if short else None
        if block != current and block is not None:
            rows.append([f"{block}:", "", "", "", "", ""] + [""] * timed)
        current = block
        name = "  " + l["name"][len(block) + 1 :] if block else l["name"]
        rows.append(
            [
                name,
                l.get("config", l["kind"]),
                fmt_shape(l["output_shape"]),
                n(l["params"]),
                n(l["macs"]),
                n(l["flops"]),
            ]
            + ([ms(l["predicted_ms"] / 1e3)] if timed else [])
        )
    return rows


def _timed(data: dict[str, Any]) -> int:
    """1 when the report holds predicted times (`report_data(..., latency=...)`), else 0."""
    return int("latency" in data["conventions"])


def _time_cells(d: dict[str, Any]) -> list[str]:
    return [ms(d["predicted_ms"] / 1e3), ms(d["naive_predicted_ms"] / 1e3), ratio(d["time_saving_ratio"])]


def _block_rows(data: dict[str, Any], short: bool) -> list[list[str]]:
    n = human if short else (lambda v: f"{v:,}")
    rows = []
    timed = _timed(data)
    for b in data["blocks"]:
        rows.append(
            [
                b["name"],
                fmt_shape(b["output_shape"]),
                n(b["params"]),
                n(b["macs"]),
                n(b["naive_macs"]),
                ratio(b["macs_saving_ratio"]),
            ]
            + (_time_cells(b) if timed else [])
        )
        for br in b["branches"]:
            rows.append(
                [
                    f"  {br['name']}",
                    fmt_shape(br["output_shape"]),
                    n(br["params"]),
                    n(br["macs"]),
                    n(br["naive_macs"]),
                    ratio(br["macs_saving_ratio"]),
                ]
                + (_time_cells(br) if timed else [])
            )
    return rows


def _summary(
    m: dict[str, Any], short: bool, conventions: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    n = human if short else (lambda v: f"{v:,}")
    return [
        ("input → output", f"{fmt_shape(m['input_shape'])} → {fmt_shape(m['output_shape'])}"),
        (
            "params (trainable / non-trainable)",
            f"{m['params']:,} ({m['trainable_params']:,} / {m['non_trainable_params']:,})",
        ),
        ("MACs (multiply-adds)", f"{m['macs']:,}"),
        ("FLOPs (TF profiler)", f"{m['flops']:,}"),
        (
            "naive MACs (no 1x1 reductions)",
            f"{m['naive_macs']:,}  → saving {m['macs_saving_ratio']:.2f}x, {m['macs_saving_percent']:.1f}%",
        ),
        (
            "naive params",
            f"{m['naive_params']:,}  → saving {m['params_saving_ratio']:.2f}x, {m['params_saving_percent']:.1f}%",
        ),
        (
            "param bytes / peak activation bytes",
            f"{n(m['param_bytes'])}B / {n(m['peak_activation_bytes'])}B per sample",
        ),
        *_time_summary(m, conventions or {}),
    ]


def _time_summary(m: dict[str, Any], conventions: dict[str, Any]) -> list[tuple[str, str]]:
    if "latency" not in conventions:
        return []
    c = conventions["latency"]
    return [
        (
            f"predicted time ({c['runtime']}, batch {c['batch']})",
            f"{ms(m['predicted_ms'] / 1e3)} ms; naive {ms(m['naive_predicted_ms'] / 1e3)} ms "
            f"→ saving {ratio(m['time_saving_ratio'])}",
        )
    ]


AUX_HEADER = ["auxiliary head (training only)", "at", "output", "params", "MACs", "FLOPs"]


def _aux_rows(data: dict[str, Any], short: bool) -> list[list[str]]:
    n = human if short else (lambda v: f"{v:,}")
    return [
        [h["name"], h["at"], fmt_shape(h["output_shape"]), n(h["params"]), n(h["macs"]), n(h["flops"])]
        for h in data.get("aux", [])
    ]


BLOCK_HEADER = ["block / branch", "output", "params", "MACs", "naive MACs", "saving"]
LAYER_HEADER = ["layer", "config (resolved)", "output", "params", "MACs", "FLOPs"]
TIME_HEADER = ["ms (pred.)", "naive ms", "time saving"]


def _headers(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The block and layer table headers, with predicted times where the report has them."""
    if not _timed(data):
        return BLOCK_HEADER, LAYER_HEADER
    return BLOCK_HEADER + TIME_HEADER, LAYER_HEADER + TIME_HEADER[:1]


def report(plan: Plan, fmt: str = "table", budget: Budget | None = None, **knobs: Any) -> str:
    """The cost report of a plan as text.

    Args:
        plan: what `ik.load` returns (a spec in its place, `budget` and `knobs` are
            deprecated, as for `analyse`).
        fmt: one of FORMATS: 'table', 'markdown', 'csv' or 'json'.

    Example:
        >>> import inception_kit as ik
        >>> ik.report(ik.load("five_by_five_bottleneck"), "csv").splitlines()[0]
        'name,kind,config,block,branch,output_shape,params,trainable_params,macs,flops,naive_macs,naive_params'
    """
    return render(analyse(plan, budget, **knobs), fmt)


def render(analysis: Analysis, fmt: str = "table", latency: LatencyPrediction | None = None) -> str:
    """The report in one of FORMATS; with `latency`, predicted times beside the counts."""
    return render_data(report_data(analysis, latency), fmt)


def render_data(data: dict[str, Any], fmt: str = "table") -> str:
    """Renders report data (as `report_data` returns it, or read back from JSON)."""
    return render_as(
        fmt,
        data,
        table=lambda: _table(data),
        markdown=lambda: _markdown(data),
        csv_rows=lambda: _csv_rows(data),
    )


CSV_COLUMNS = [
    "name",
    "kind",
    "config",
    "block",
    "branch",
    "output_shape",
    "params",
    "trainable_params",
    "macs",
    "flops",
    "naive_macs",
    "naive_params",
]


def _csv_rows(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    columns = CSV_COLUMNS + (["predicted_ms", "naive_predicted_ms"] if _timed(data) else [])
    return columns, [
        [fmt_shape(l[c]) if c == "output_shape" else l[c] for c in columns] for l in data["layers"]
    ]


def _markdown(data: dict[str, Any]) -> str:
    m = data["model"]
    md = markdown_table
    block_header, layer_header = _headers(data)
    parts = [
        f"# {m['name']}",
        "",
        md(["", "value"], [[k, v] for k, v in _summary(m, False, data["conventions"])]),
    ]
    if data.get("aux"):
        parts += [
            "",
            "## Auxiliary heads (training only, not in the totals)",
            "",
            md(AUX_HEADER, _aux_rows(data, False)),
        ]
    if data["blocks"]:
        parts += ["", "## Blocks", "", md(block_header, _block_rows(data, False))]
    parts += ["", "## Layers", "", md(layer_header, _layer_rows(data, False)), ""]
    return "\n".join(parts)


def _table(data: dict[str, Any]) -> str:
    m = data["model"]
    block_header, layer_header = _headers(data)
    summary = _summary(m, True, data["conventions"])
    parts = [f"{m['name']}"]
    width = max(len(k) for k, _ in summary)
    parts += [f"  {k.ljust(width)}  {v}" for k, v in summary]
    if data.get("aux"):  # not in the totals above
        parts += ["", text_table(AUX_HEADER, _aux_rows(data, True), {3, 4, 5})]
    if data["blocks"]:
        parts += ["", text_table(block_header, _block_rows(data, True), {2, 3, 4, 5, 6, 7, 8})]
    parts += ["", text_table(layer_header, _layer_rows(data, True), {3, 4, 5, 6}), ""]
    return "\n".join(parts)
