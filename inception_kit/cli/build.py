"""`inception-kit build SPEC`: the Keras model's summary and the cost report; `--out` saves
it through `export`, from the same plan."""

from __future__ import annotations

import argparse
import os
import sys

from ..analysis import analyse
from ..report import render
from .common import EXIT_OK, add_precision, budget, quiet_tensorflow

SUMMARY_WIDTH = 100  # the Keras summary, like the cost report: at most 100 columns


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a YAML spec file, a preset name, or - to read it from stdin")
    add_precision(parser)
    parser.add_argument(
        "--aux",
        action="store_true",
        help="add the spec's auxiliary heads as outputs (training only; --out saves without them)",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE|imagenet",
        help="a keras.applications weight file (legacy .h5), or imagenet (Keras downloads it)",
    )
    parser.add_argument(
        "--out",
        "-o",
        help="also save it as a .keras file, with the spec and report beside it (as export does)",
    )
    parser.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    analysis = analyse(args.spec)
    quiet_tensorflow()
    from ..keras.builder import build_model

    model = build_model(analysis.plan, args.precision, weights=args.weights, aux=args.aux)
    # Keras draws the summary with rich, which is as wide as COLUMNS says, else 80 columns when
    # stdout is not a terminal, whatever line_length asks: a pipe would get the table cut at 80.
    os.environ["COLUMNS"] = str(SUMMARY_WIDTH)
    model.summary(line_length=SUMMARY_WIDTH, print_fn=lambda line, **_: print(line))
    print()
    print(render(analysis, "table"))
    if args.out:
        # Written by export, so the file gets its sidecar (spec, report, manifest): `inspect` reads it.
        import tempfile

        from ..keras.export import export

        with tempfile.TemporaryDirectory() as tmp:
            weights = None
            if args.weights:  # export loads Keras 3 weight files: hand it this model's
                weights = os.path.join(tmp, "built.weights.h5")
                model.save_weights(weights)
            # The plan, not its spec: export would plan a spec again.
            result = export(
                analysis.plan,
                args.out,
                format="keras",
                weights=weights,
                overwrite=args.overwrite,
                budget=budget(args),
                dtype=args.precision,
            )
        print(result.summary(), file=sys.stderr)
    return EXIT_OK
