"""`inception-kit import MODEL.keras`: a Keras 3 model as a spec (YAML), with its size.

(`import_`: `import` is a keyword.)"""

from __future__ import annotations

import argparse
import sys

from ..analysis import analyse
from ..loading import load
from .common import EXIT_OK, budget, emit, quiet_tensorflow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .keras file of a functional or Sequential CNN")
    parser.add_argument("--out", "-o", help="write the spec here instead of stdout")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    from ..keras.importer import import_keras, load_keras

    imported = import_keras(load_keras(args.model))
    emit(imported.to_yaml(), args.out, args.overwrite)
    a = analyse(load(imported.plan, budget=budget(args)))  # checked as every loaded spec is
    print(
        f"{args.model}: {a.total.params:,} params, {a.total.macs:,} MACs, {len(a.blocks)} blocks",
        file=sys.stderr,
    )
    return EXIT_OK
