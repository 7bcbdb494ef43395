"""`inception-kit report SPEC`: the cost report; `--plot` draws it, `--verify` checks it
against the built Keras model and TensorFlow's profiler."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..analysis import analyse
from ..report import render
from .common import EXIT_FAIL, EXIT_OK, emit, quiet_tensorflow, safe

if TYPE_CHECKING:
    from ..latency.predict import LatencyPrediction


def add_latency(parser: argparse.ArgumentParser, batch: bool = True) -> None:
    """The latency profile flags that report, diff and profile share (profile has its own --batch)."""
    parser.add_argument(
        "--latency",
        metavar="PROFILE",
        dest="profile",
        help="predicted time from this latency profile (inception-kit calibrate -o PROFILE)",
    )
    if batch:
        parser.add_argument(
            "--latency-batch",
            type=int,
            metavar="N",
            dest="batch",
            help="the profile's batch size to predict at (default its first)",
        )
    parser.add_argument(
        "--any-machine",
        action="store_true",
        dest="allow_other_machine",
        help="use a profile measured on another machine (its times are that machine's)",
    )


def predicted(args: argparse.Namespace, plan: Any, naive_plan: Any = None) -> LatencyPrediction | None:
    """The latency prediction the flags of `add_latency` ask for, or None."""
    if not getattr(args, "profile", None):
        return None
    from ..latency.predict import predict_latency

    return predict_latency(plan, args.profile, args.batch, args.allow_other_machine, naive_plan)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a YAML spec file, or - to read it from stdin")
    parser.add_argument(
        "--format",
        choices=["table", "markdown", "csv", "json", "html"],
        default="table",
        help="html: one self-contained page (totals, blocks with bars, diagram, layers)",
    )
    parser.add_argument("--out", "-o", help="write to this file instead of stdout")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="build the model and compare with Keras' param count and TensorFlow's profiler",
    )
    parser.add_argument(
        "--plot", metavar="PNG", help="also draw MACs and params per block, naive against bottleneck"
    )
    add_latency(parser)


def run(args: argparse.Namespace) -> int:
    analysis = analyse(args.spec)
    latency = predicted(args, analysis.plan, analysis.naive_plan)
    if args.format == "html":  # the page shows costs; predicted time stays in the text formats for now
        from ..viz.html import render_report

        emit(render_report(analysis), args.out, args.overwrite)
    else:
        emit(render(analysis, args.format, latency), args.out, args.overwrite)
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
    print(
        "\nverification against the built Keras model and TensorFlow's profiler (batch 1):", file=sys.stderr
    )
    print(render_checks(checks), file=sys.stderr)
    bad = [c.what for c in checks if not c.ok]
    if bad:
        print(f"error: analytic and measured counts differ in: {', '.join(bad)}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK
