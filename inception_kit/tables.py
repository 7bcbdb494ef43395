"""How every text output is laid out: the number formats, the plain-text and Markdown
tables, and the one format switch (json, csv, markdown, table) that the cost report, the
diff and the profile share. Plain Python."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from .errors import ArgumentError

FORMATS = ("table", "markdown", "csv", "json")


def human(n: int) -> str:
    """2.41M, 163.70K: short numbers for terminal tables."""
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def ratio(r: float | None) -> str:
    """A ratio as tables show it: 2.41x; '-' for none."""
    return "-" if r is None else f"{r:.2f}x"


def ms(seconds: float) -> str:
    """Seconds as milliseconds with the digits a timing can carry: 0.412, 12.41, 352.1."""
    value = seconds * 1e3
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def text_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    """A plain-text table: columns padded, those in `right` right-aligned, a rule under the header."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table; '|' inside cells escaped."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def csv_text(header: list[str], rows: Iterable[list[Any]]) -> str:
    """CSV with a header row; None cells empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if c is None else c for c in row] for row in rows)
    return buf.getvalue()


def render_as(
    fmt: str,
    data: dict[str, Any],
    *,
    table: Callable[[], str],
    markdown: Callable[[], str],
    csv_rows: Callable[[], tuple[list[str], Iterable[list[Any]]]],
) -> str:
    """`data` in one of FORMATS: json is the data itself; the other three are drawn by the
    caller's functions (each called only for its format)."""
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt == "csv":
        return csv_text(*csv_rows())
    if fmt == "markdown":
        return markdown()
    if fmt == "table":
        return table()
    raise ArgumentError("fmt", "one of " + ", ".join(FORMATS), fmt)
