"""`inception-kit train`: its arguments, and the run of `inception_kit.train.fit` it makes of them.

    inception-kit train specs/inception_3a_tiny.yaml --data digits --epochs 5 --out runs/tiny
    inception-kit train SPEC --data path/to/images/ --strategy mirrored
    TF_CONFIG='{"cluster": ..., "task": ...}' inception-kit train SPEC --data ... --strategy multi-worker

The run folder, resuming and the strategies: see `inception_kit.train`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..files import child_path
from ..progress import no_progress
from ..train import STRATEGIES, fit
from .common import EXIT_OK, budget, quiet_tensorflow, safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the spec (YAML) to build and train")
    parser.add_argument(
        "--data",
        required=True,
        metavar="FOLDER|NAME",
        help="an image folder with one sub-folder per class, or 'digits' (scikit-learn's 8x8 digits)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="epochs in all (a resumed run continues up to this; default 10)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="the GLOBAL batch, split evenly over the replicas (default 64)",
    )
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, metavar="LR", help="Adam's learning rate (default 0.001)"
    )
    parser.add_argument(
        "--validation-split",
        type=float,
        default=0.2,
        metavar="F",
        help="fraction of the data held out for validation (default 0.2; 0 for none)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed: weights, shuffles, the split (default 0)"
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="default: one device; mirrored: every GPU (or logical CPU device); "
        "multi-worker: MultiWorkerMirroredStrategy from TF_CONFIG (both TensorFlow); "
        "data-parallel: keras.distribution.DataParallel over JAX's devices (JAX)",
    )
    parser.add_argument("--out", "-o", metavar="FOLDER", help="the run folder (default runs/<model name>)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing run folder's files and start again"
    )
    parser.add_argument(
        "--backup-every",
        type=_backup_every,
        default="epoch",
        metavar="epoch|N",
        help="back up for resuming after each epoch (default) or every N batches",
    )
    parser.add_argument(
        "--aux",
        action="store_true",
        help="add the auxiliary heads' losses, weighted (0.3 each, or --aux-weight)",
    )
    parser.add_argument(
        "--aux-weight", type=float, metavar="W", help="one loss weight for every auxiliary head"
    )
    parser.add_argument(
        "--verbose",
        choices=["auto", "0", "1", "2"],
        default="auto",
        help="Keras' progress output: 1 a bar, 2 a line per epoch, 0 none "
        "(default auto: a bar on a terminal, a line per epoch into a pipe or file)",
    )


def run(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    out = args.out or child_path("runs", args.spec.model.name)  # the CLI passes the plan
    verbose = int(args.verbose) if args.verbose != "auto" else 1 if sys.stdout.isatty() else 2
    result = fit(
        args.spec,
        args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        strategy=args.strategy,
        out=out,
        seed=args.seed,
        validation_split=args.validation_split,
        learning_rate=args.learning_rate,
        overwrite=args.overwrite,
        backup_every=args.backup_every,
        budget=budget(args),
        verbose=verbose,
        aux=args.aux,
        aux_weight=args.aux_weight,
        progress=Announcement() if verbose != 0 else no_progress,
    )
    print(result.summary())
    return EXIT_OK


class Announcement:
    """`fit`'s progress as the command shows it: the line describing the run, on stderr, once;
    Keras draws the epochs itself (on stdout, `--verbose`)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream, self.said = stream, False

    def __call__(self, done: int, total: int, what: str) -> None:
        if not self.said:
            self.said = True
            stream = self.stream or sys.stderr
            stream.write(safe(what) + "\n")
            stream.flush()


def _backup_every(text: str) -> str | int:
    """argparse type of --backup-every: 'epoch' or a positive number of batches."""
    if text == "epoch":
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected 'epoch' or a positive number of batches; received {text!r}")
