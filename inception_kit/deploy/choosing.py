"""The choice among measured paths: the tolerance, each path's figures (`Candidate`), the rule
(`choose`) and the table of every path's figures (`render_table`). Plain Python.

The rule: among the paths that were measured and verified, those within tolerance; of them
the one with the lowest median latency at the largest batch size. The tolerance is
``deviation:T`` (centred relative L2 <= T) or ``accuracy:D`` (top-1 accuracy at most D below
the Keras model's); a bare number means ``deviation:``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import ArgumentError

BASELINE = "savedmodel"  # the path every other is compared with
MAX_BATCH = 4096  # a larger batch is a typo (10^12 would fail allocating its input, not here)


@dataclass(frozen=True)
class Tolerance:
    """How far a path may be from the Keras float32 model and still be chosen."""

    kind: str  # "deviation" (centred relative L2) or "accuracy" (top-1 points lost, as a fraction)
    limit: float

    def __str__(self) -> str:
        if self.kind == "accuracy":
            return f"top-1 accuracy at most {self.limit:g} below the Keras model's"
        return f"centred relative L2 deviation <= {self.limit:g}"


def parse_tolerance(text: str) -> Tolerance:
    """``1e-4``, ``deviation:1e-4`` or ``accuracy:0.01``; raises ArgumentError otherwise."""
    kind, _, value = text.rpartition(":")
    kind = kind or "deviation"
    try:
        limit = float(value)
    except ValueError:
        limit = math.nan
    if kind not in ("deviation", "accuracy") or not (limit >= 0 and math.isfinite(limit)):
        raise ArgumentError(
            "tolerance", "deviation:T or accuracy:D with a number >= 0 (e.g. 1e-4, accuracy:0.01)", text
        )
    return Tolerance(kind, limit)


def parse_batches(text: str) -> tuple[int, ...]:
    """``1,8`` -> (1, 8): whole numbers from 1 to `MAX_BATCH`, each once; raises ArgumentError otherwise."""
    parts = [p.strip() for p in text.split(",")]
    if (
        not parts
        or any(not (p.isascii() and p.isdigit()) or not 1 <= int(p) <= MAX_BATCH for p in parts)
        or len(set(map(int, parts))) != len(parts)
    ):
        raise ArgumentError(
            "batches", f"batch sizes from 1 to {MAX_BATCH} separated by commas, each once (e.g. 1,8)", text
        )
    return tuple(int(p) for p in parts)


@dataclass
class Candidate:
    """One deployment path and what was measured of it."""

    name: str
    label: str
    status: str = "measured"  # "measured", "skipped" or "failed"
    reason: str = ""  # why skipped or failed; how int8 was made
    runtime: str = ""
    artifact: str | None = None
    bytes: int | None = None
    verified: bool = False
    verification: str = ""
    deviation: float | None = None  # centred relative L2, the largest over the batch
    max_abs: float | None = None
    accuracy: float | None = None
    times: dict[int, list[float]] = field(default_factory=dict)  # batch -> seconds per call

    def median(self, batch: int) -> float | None:
        t = self.times.get(batch)
        return statistics.median(t) if t else None

    def spread(self, batch: int) -> dict[str, float]:
        """Min, first quartile, third quartile and max of the timed rounds (seconds)."""
        t = sorted(self.times.get(batch) or [])
        if not t:
            return {}
        q1, _, q3 = statistics.quantiles(t, n=4, method="inclusive") if len(t) > 1 else (t[0], t[0], t[0])
        return {"min": t[0], "q1": q1, "q3": q3, "max": t[-1]}

    def speedup(self, base: Candidate | None, batch: int) -> float | None:
        """`base`'s median latency over this path's at `batch` (2.0: twice as fast)."""
        mine, theirs = self.median(batch), base.median(batch) if base is not None else None
        return theirs / mine if mine and theirs else None

    def within(self, tolerance: Tolerance, reference_accuracy: float | None) -> bool:
        if tolerance.kind == "accuracy":
            if self.accuracy is None or reference_accuracy is None:
                return False
            return reference_accuracy - self.accuracy <= tolerance.limit + 1e-12
        return self.deviation is not None and self.deviation <= tolerance.limit


def choose(
    candidates: Sequence[Candidate], tolerance: Tolerance, batch: int, reference_accuracy: float | None = None
) -> tuple[Candidate | None, str]:
    """The fastest measured, verified path within tolerance at `batch`, and why (in words)."""
    timed = [c for c in candidates if c.status == "measured" and c.median(batch) is not None]
    ok = sorted(
        (c for c in timed if c.verified and c.within(tolerance, reference_accuracy)),
        key=lambda c: c.median(batch) or 0.0,  # every timed path has a median
    )
    if not ok:
        return None, f"no measured path is within tolerance ({tolerance})"
    win = ok[0]
    base = next((c for c in timed if c.name == BASELINE), None)
    why = f"{win.name} is the fastest at batch {batch} ({_ms(win.median(batch))} ms median"
    if base is not None and win is not base:
        b, w = base.median(batch), win.median(batch)
        why += f", {b / w:.2f}x the SavedModel's {_ms(b)} ms"  # type: ignore[operator]
    why += f") of the {len(ok)} path{'s' if len(ok) != 1 else ''} within tolerance ({tolerance})"
    faster = [c for c in timed if c.median(batch) < win.median(batch)]  # type: ignore[operator]
    if faster:
        why += "; faster but not chosen: " + "; ".join(
            f"{c.name} ({_excluded(c, tolerance, reference_accuracy)})" for c in faster
        )
    return win, why


def _excluded(c: Candidate, tolerance: Tolerance, reference_accuracy: float | None) -> str:
    if not c.verified:
        return "not verified: " + c.verification
    if tolerance.kind == "accuracy":
        if c.accuracy is None or reference_accuracy is None:
            return "no accuracy measured"
        return f"accuracy {c.accuracy:.4f} vs {reference_accuracy:.4f}"
    return f"deviation {c.deviation:.2g}"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def render_table(
    candidates: Sequence[Candidate], batches: Sequence[int], reference_accuracy: float | None
) -> str:
    """Every path's figures as a markdown table."""
    base = next((c for c in candidates if c.name == BASELINE and c.status == "measured"), None)
    head = ["path", "runtime", "bytes", "deviation (centred rel. L2)", "max abs diff"]
    if reference_accuracy is not None:
        head.append(f"top-1 (Keras {reference_accuracy:.4f})")
    for b in batches:
        head += [f"b{b} median ms (min–max)", f"b{b} samples/s", f"b{b} × SavedModel"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in candidates:
        if c.status != "measured":
            cells = [c.name, f"{c.status}: {c.reason}"] + [""] * (len(head) - 2)
            rows.append("| " + " | ".join(cells) + " |")
            continue
        runtime = c.runtime + ("" if c.verified else f"; NOT verified: {c.verification}")
        cells = [
            c.name,
            runtime + (f" ({c.reason})" if c.reason else ""),
            f"{c.bytes:,}" if c.bytes else "-",
            f"{c.deviation:.2g}",
            f"{c.max_abs:.2g}",
        ]
        if reference_accuracy is not None:
            cells.append("-" if c.accuracy is None else f"{c.accuracy:.4f}")
        for b in batches:
            t = c.times.get(b) or []
            med = c.median(b)
            cells.append(f"{_ms(med)} ({_ms(min(t))}–{_ms(max(t))})" if t else "-")
            cells.append((f"{b / med:,.0f}" if b / med >= 100 else f"{b / med:.1f}") if med else "-")
            bm = base.median(b) if base else None
            cells.append(f"{bm / med:.2f}" if med and bm else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
