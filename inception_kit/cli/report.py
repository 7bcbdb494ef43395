"""`inception-kit report SPEC`: the cost report; `--plot` draws it, `--verify` checks it
against the built Keras model and TensorFlow's profiler."""

from __future__ import annotations

import argparse
import sys

from ..analysis import analyse
from ..report import render
from .common import EXIT_FAIL, EXIT_OK, emit, quiet_tensorflow, safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a YAML spec file, or - to read it from stdin")
    parser.add_argument("--format", choices=["table", "markdown", "csv", "json", "html"], default="table",
                        help="html: one self-contained page (totals, blocks with bars, diagram, layers)")
    parser.add_argument("--out", "-o", help="write to this file instead of stdout")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--verify", action="store_true",
                        help="build the model and compare with Keras' param count and TensorFlow's profiler")
    parser.add_argument("--plot", metavar="PNG", help="also draw MACs and params per block, naive against bottleneck")


def run(args: argparse.Namespace) -> int:
    analysis = analyse(args.spec)
    if args.format == "html":
        from ..viz.html import render_report

        emit(render_report(analysis), args.out, args.overwrite)
    else:
        emit(render(analysis, args.format), args.out, args.overwrite)
    if args.plot:
        from ..viz import plots

        plots.savings_chart(analysis, args.plot, overwrite=args.overwrite)
        print(f"wrote {safe(args.plot)}", file=sys.stderr)
    if not args.verify:
        return EXIT_OK
    quiet_tensorflow()
    from ..keras.builder import build_model
    from ..keras.verify import compare, render_checks

    checks = compare(analysis, build_model(analysis.plan))
    print("\nverification against the built Keras model and TensorFlow's profiler (batch 1):", file=sys.stderr)
    print(render_checks(checks), file=sys.stderr)
    bad = [c.what for c in checks if not c.ok]
    if bad:
        print(f"error: analytic and measured counts differ in: {', '.join(bad)}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK
