"""`inception-kit diagram SPEC -o out.svg`: a picture of one block (`--block`) or the whole
model, drawn by `viz.diagram` from the plan the CLI loaded."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..analysis import analyse
from ..viz.diagram import FORMATS, save
from .common import EXIT_OK, EXIT_USAGE, safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a YAML spec file, a preset name, or - to read it from stdin")
    parser.add_argument(
        "--block", metavar="NAME", help="draw this block with its branches (default: the whole model)"
    )
    parser.add_argument("--out", "-o", required=True, help="the picture to write: .svg or .png")
    parser.add_argument("--format", choices=FORMATS, help="svg or png (default: from the --out suffix)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    fmt = args.format or Path(args.out).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        print(
            f"error: --out must end in .svg or .png (or pass --format); received {args.out!r}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    analysis = analyse(args.spec)
    save(analysis, args.out, args.block, fmt, args.overwrite)
    print(f"wrote {safe(args.out)}", file=sys.stderr)
    return EXIT_OK
