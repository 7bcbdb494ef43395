"""`inception-kit validate SPEC`: checks a spec (fields, shapes, resource budget) and prints its size."""

from __future__ import annotations

import argparse

from ..analysis import analyse
from .common import EXIT_OK, shown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a YAML spec file, or - to read it from stdin")


def run(args: argparse.Namespace) -> int:
    a = analyse(args.spec)
    print(
        f"{shown(args.sources['spec'])}: ok ({a.plan.model.name}: {a.total.params:,} params, {a.total.macs:,} MACs, {a.total.flops:,} FLOPs)"
    )
    return EXIT_OK
