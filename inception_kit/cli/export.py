"""`inception-kit export SPEC -o OUT`: build, write and verify an artifact (SavedModel,
.keras, TFLite, ONNX) from the plan the CLI loaded.

SIGINT and SIGTERM while exporting (`interruptible`) unwind like an exception: the staged
temporaries are removed, the destination stays as it was (or, if the write had completed,
is the new artifact whole), the exit is 130 or 143."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType

from ..progress import Progress
from .common import EXIT_OK, budget, quiet_tensorflow, safe

__all__ = ["add_arguments", "checked", "interruptible", "run"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is so that `finally` blocks clean up."""


_received: list[int] = []  # the signals `interruptible` caught, newest last


def _raise(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _raise_if_received() -> None:
    """Raises for a signal whose exception never unwound: one raised while the interpreter ran
    a finaliser or a library's callback is printed as "ignored" and lost (seen under TensorFlow)."""
    if _received:
        raise Terminated() if _received[-1] == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise inside the block (Python's default SIGTERM ends the process
    without unwinding, leaving temporaries), so staged writes remove their temporaries and
    the destination stays as it was; SIGTERM then ends as exit 143, SIGINT as the CLI's 130.
    A signal whose exception was lost is raised again at the block's end (and by `checked`
    progress), so it is never ignored."""
    _received.clear()
    previous = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
        _raise_if_received()
    except Terminated:
        print("terminated (files are written whole or not at all)", file=sys.stderr)
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def checked(progress: Progress) -> Progress:
    """`progress`, raising first for a signal `interruptible` caught but whose exception was lost."""

    def report(done: int, total: int, what: str) -> None:
        _raise_if_received()
        progress(done, total, what)

    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec")
    parser.add_argument("--out", "-o", required=True)
    parser.add_argument("--format", choices=["savedmodel", "keras", "tflite", "onnx"], default="savedmodel")
    parser.add_argument("--weights", help="a Keras .weights.h5 file to load first")
    parser.add_argument("--quantize", action="store_true", help="TFLite: dynamic-range int8 weights")
    # dest is export's parameter (dtype, as Keras names it); the flag keeps its name
    parser.add_argument(
        "--precision",
        dest="dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="bfloat16: compute in bfloat16, weights and outputs float32 (Keras mixed_bfloat16)",
    )
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--no-verify", action="store_true", help="skip reloading and comparing outputs")


def run(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    from ..keras.export import export

    with interruptible():
        result = export(
            args.spec,
            args.out,
            format=args.format,
            weights=args.weights,
            quantize=args.quantize,
            overwrite=args.overwrite,
            verify=not args.no_verify,
            budget=budget(args),
            dtype=args.dtype,
        )
    print(safe(result.summary()))
    return EXIT_OK
