"""`inception-kit calibrate --runtime tensorflow|onnxruntime [--batch 1,8] [--quick] -o PROFILE.json`:
measures this machine's kernels and writes the latency profile that `report --latency`,
`fit --latency`, `diff --latency` and `profile --latency` read (library: `latency.calibrate`)."""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_OK, ProgressBar, quiet_tensorflow, safe


def batch_sizes(text: str) -> list[int]:
    """argparse type of --batch: 1 or 1,8."""
    try:
        values = [int(p) for p in text.split(",")]
    except ValueError:
        values = []
    if not values or any(v < 1 or v > 4096 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected batch sizes from 1 to 4096 such as 1,8; received {text!r}"
        )
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        choices=["tensorflow", "onnxruntime"],
        default="tensorflow",
        help="the runtime whose kernels are timed (default tensorflow)",
    )
    parser.add_argument(
        "--batch",
        type=batch_sizes,
        default=[1],
        metavar="N[,N]",
        dest="batch",
        help="batch sizes to calibrate, e.g. 1,8 (default 1)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small sample set (a few minutes) instead of the full one (at most 1,500 measurements)",
    )
    parser.add_argument(
        "--threads", type=int, metavar="N", help="intra-op threads to pin (default: every core here)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the samples drawn (default 0)")
    parser.add_argument(
        "--out",
        "-o",
        required=True,
        help="the profile to write (JSON); OUT.partial keeps "
        "measurements so far: a killed run resumes from it",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    from ..latency.calibrate import calibrate

    quiet_tensorflow()
    data = calibrate(
        args.runtime,
        args.batch,
        args.quick,
        args.out,
        overwrite=args.overwrite,
        threads=args.threads,
        seed=args.seed,
        progress=ProgressBar("calibrate"),
    )
    valid = data["valid_for"]
    print(
        f"calibrated {valid['runtime']} on {safe(valid['cpu'])}, {valid['cores']} cores, threads "
        f"{valid['threads']}, batches {valid['batches']}: {data['calibration']['samples']} samples "
        f"in {data['calibration']['seconds']:.0f} s",
        file=sys.stderr,
    )
    for batch, models in data["kernels"].items():
        worst = sorted(models.items(), key=lambda kv: -kv[1]["cv_mape_percent"])[:3]
        print(
            f"  batch {batch}: overhead {data['overhead'][batch]['median_ms']:.3f} ms per call; "
            f"cross-validated error worst in "
            + ", ".join(f"{k} {m['cv_mape_percent']:.1f}%" for k, m in worst),
            file=sys.stderr,
        )
    return EXIT_OK
