"""`inception-kit profile SPEC`: the real time of every block, branch and naive counterpart
beside the MACs the analysis predicts (measured by `keras.profile`, which loads TensorFlow
only when it measures)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from ..analysis import analyse, check_batch
from .common import EXIT_OK, ProgressBar, quiet_tensorflow
from .report import add_latency, predicted


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than `minimum`."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; received {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}; received {value}")
        return value

    return parse


_positive, _non_negative = _at_least(1), _at_least(0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a YAML spec file, a preset name, or - to read it from stdin")
    parser.add_argument("--batch", type=_positive, default=1, metavar="N", help="batch size (default 1)")
    parser.add_argument(
        "--repeats",
        type=_positive,
        default=20,
        metavar="N",
        help="timed calls of each block, branch and naive counterpart (default 20)",
    )
    parser.add_argument(
        "--warmup", type=_non_negative, default=3, metavar="N", help="untimed calls of each first (default 3)"
    )
    parser.add_argument("--block", metavar="NAME", help="profile this top-level block only")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    add_latency(parser, batch=False)


def run(args: argparse.Namespace) -> int:
    from ..keras.profile import measure, pairs_of, profile_data, render_table

    analysis = analyse(args.spec)
    check_batch(analysis, args.batch)  # a bad --batch or --block fails before TensorFlow loads
    pairs = pairs_of(analysis, args.block)
    latency = predicted(args, analysis.plan, analysis.naive_plan)  # a bad profile too
    quiet_tensorflow()
    if latency is not None:
        from ..keras.profile import attach_prediction

        attach_prediction(pairs, latency)
        _pin_threads(latency.threads)  # measured as the profile was, so both describe one setup
    measure(pairs, args.batch, args.repeats, args.warmup, ProgressBar("profile"))
    if args.format == "json":
        data = profile_data(analysis, pairs, args.batch, args.repeats, args.warmup)
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(render_table(analysis, pairs, args.batch, args.repeats, args.warmup))
    return EXIT_OK


def _pin_threads(threads: dict[str, object]) -> None:
    """TensorFlow's thread pools as a latency profile states them (before TensorFlow starts)."""
    import tensorflow as tf

    intra, inter = threads.get("intra_op"), threads.get("inter_op")
    if isinstance(intra, int):
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if isinstance(inter, int):
        tf.config.threading.set_inter_op_parallelism_threads(inter)
