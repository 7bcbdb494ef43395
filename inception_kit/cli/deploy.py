"""`inception-kit deploy`: its arguments, and the run that prints the table and the choice.

The work is `inception_kit.deploy.deploy`; its progress is drawn on stderr
(`common.ProgressBar`). Each flag's dest is the library parameter it sets, so an
`ArgumentError` is worded with the flag.
"""

from __future__ import annotations

import argparse

from ..deploy import DEFAULT_BATCHES, DEFAULT_TOLERANCE, PATHS, DeployOptions, deploy, parse_batches
from ..errors import ArgumentError
from .common import EXIT_OK, ProgressBar, budget, quiet_tensorflow
from .export import checked, interruptible

__all__ = ["add_arguments", "run"]


def _batches_arg(text: str) -> tuple[int, ...]:
    try:
        return parse_batches(text)
    except ArgumentError as err:
        raise argparse.ArgumentTypeError(err.worded("").removeprefix(": ")) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the spec (YAML) to deploy")
    parser.add_argument(
        "--out", "-o", required=True, metavar="DIR", help="the folder to write (whole or not at all)"
    )
    parser.add_argument("--weights", help="a Keras .weights.h5 file to load first (as `train` writes)")
    parser.add_argument(
        "--batch",
        dest="batches",
        type=_batches_arg,
        default=DEFAULT_BATCHES,
        metavar="B[,B...]",
        help="batch sizes to time; the largest decides (default 1,8)",
    )
    parser.add_argument(
        "--data",
        metavar="digits|FOLDER",
        help="held-out accuracy (with --weights), int8 calibration and the deviation batch",
    )
    parser.add_argument(
        "--tolerance",
        default=DEFAULT_TOLERANCE,
        metavar="T",
        help="deviation:T (centred relative L2, default 1e-4) or accuracy:D (top-1 lost, e.g. 0.01)",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per batch size (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument(
        "--paths", metavar="P[,P...]", help=f"only these paths (default all: {','.join(PATHS)})"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if an earlier deploy wrote it")


def run(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    options = DeployOptions(
        weights=args.weights,
        batches=args.batches,
        data=args.data,
        tolerance=args.tolerance,
        repeats=args.repeats,
        warmup=args.warmup,
        paths=None if not args.paths else tuple(p.strip() for p in args.paths.split(",")),
        budget=budget(args),
    )
    with interruptible():
        result = deploy(
            args.spec, args.out, options, overwrite=args.overwrite, progress=checked(ProgressBar("deploy"))
        )
    print(result.table())
    print(result.summary())
    return EXIT_OK
