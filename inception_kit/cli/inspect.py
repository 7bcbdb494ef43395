"""`inception-kit inspect ARTIFACT`: the spec and cost report stored beside an exported artifact."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact")
    parser.add_argument("--format", choices=["table", "markdown", "csv", "json", "yaml"], default="table")


def run(args: argparse.Namespace) -> int:
    from ..keras.export import inspect_artifact

    print(safe(inspect_artifact(args.artifact, fmt=args.format)), end="")  # an artifact's text is untrusted
    return EXIT_OK
