"""`inception-kit export SPEC -o OUT`: build, write and verify an artifact (SavedModel,
.keras, TFLite, ONNX) from the plan the CLI loaded.

SIGINT and SIGTERM while exporting (`interruptible`) unwind like an exception: the staged
temporaries are removed, the destination stays as it was, the exit is 130 or 143."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType

from .common import EXIT_OK, budget, quiet_tensorflow, safe

__all__ = ["add_arguments", "interruptible", "run"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is so that `finally` blocks clean up."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises `Terminated` inside the block (Python's default ends the process
    without unwinding, leaving temporaries); it ends as exit 143 once the block has unwound.
    SIGINT already raises KeyboardInterrupt (the CLI's exit 130)."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except Terminated:
        print("terminated (files are written whole or not at all; nothing was changed)", file=sys.stderr)
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec")
    parser.add_argument("--out", "-o", required=True)
    parser.add_argument("--format", choices=["savedmodel", "keras", "tflite", "onnx"], default="savedmodel")
    parser.add_argument("--weights", help="a Keras .weights.h5 file to load first")
    parser.add_argument("--quantize", action="store_true", help="TFLite: dynamic-range int8 weights")
    # dest is export's parameter (dtype, as Keras names it); the flag keeps its name
    parser.add_argument("--precision", dest="dtype", choices=["float32", "bfloat16"], default="float32",
                        help="bfloat16: compute in bfloat16, weights and outputs float32 (Keras mixed_bfloat16)")
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
