"""`inception-kit export SPEC -o OUT`: build, write and verify an artifact (SavedModel,
.keras, TFLite, ONNX) from the plan the CLI loaded."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, add_precision, budget, quiet_tensorflow, safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec")
    parser.add_argument("--out", "-o", required=True)
    parser.add_argument("--format", choices=["savedmodel", "keras", "tflite", "onnx"], default="savedmodel")
    parser.add_argument("--weights", help="a Keras .weights.h5 file to load first")
    parser.add_argument("--quantize", action="store_true", help="TFLite: dynamic-range int8 weights")
    add_precision(parser)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--no-verify", action="store_true", help="skip reloading and comparing outputs")


def run(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    from ..keras.export import export

    result = export(
        args.spec,
        args.out,
        format=args.format,
        weights=args.weights,
        quantize=args.quantize,
        overwrite=args.overwrite,
        verify=not args.no_verify,
        budget=budget(args),
        precision=args.precision,
    )
    print(safe(result.summary()))
    return EXIT_OK
