"""`inception-kit schema`: the JSON Schema of the spec language."""

from __future__ import annotations

import argparse

from ..spec.schema import schema_text
from .common import EXIT_OK, emit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", "-o")
    parser.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    emit(schema_text(), args.out, args.overwrite)
    return EXIT_OK
