"""`inception-kit diff A B`: the costs of two specs side by side (B - A); each spec loaded once."""

from __future__ import annotations

import argparse
import sys

from ..analysis import analyse
from ..design.diff import diff
from .common import EXIT_OK, emit, safe
from .report import add_latency, predicted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="spec A (the baseline): a YAML file, a preset name, or - for stdin")
    parser.add_argument("b", help="spec B (the change): a YAML file, a preset name, or - for stdin")
    parser.add_argument(
        "--format",
        choices=["table", "markdown", "csv", "json", "html"],
        default="table",
        help="html: one self-contained page",
    )
    parser.add_argument("--out", "-o", help="write to this file instead of stdout")
    parser.add_argument("--overwrite", action="store_true", help="replace --out and --plot if they exist")
    parser.add_argument("--plot", metavar="PNG", help="also draw MACs and params per block, A against B")
    add_latency(parser)


def run(args: argparse.Namespace) -> int:
    a, b = analyse(args.a), analyse(args.b)
    times = predicted(args, a.plan, a.naive_plan), predicted(args, b.plan, b.naive_plan)
    d = diff(a, b, (times[0], times[1]) if times[0] is not None and times[1] is not None else None)
    if args.format == "html":
        from ..viz.html import diff_page

        emit(diff_page(d.data()), args.out, args.overwrite)
    else:
        emit(d.render(args.format), args.out, args.overwrite)
    if args.plot:
        from ..viz import plots

        plots.diff_chart(d, args.plot, overwrite=args.overwrite)
        print(f"wrote {safe(args.plot)}", file=sys.stderr)
    return EXIT_OK
