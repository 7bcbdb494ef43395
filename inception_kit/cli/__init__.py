"""The `inception-kit` command: the parser assembled from one module per command, and `main`.

Each command module has `add_arguments(parser)` and `run(args) -> int`; `main` loads and
plans the spec argument once (with the knobs applied) and the command gets that plan as
`args.spec`. Exit codes: 0 success; 2 a bad spec, a bad command line or a destination that
exists; 1 anything else (a failed verification, an internal error). Errors are one clear
message on stderr; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from ..errors import ArgumentError, Failure, SpecError
from ..files import DestinationExists, UnsafeDestination
from . import (
    build,
    calibrate,
    deploy,
    diagram,
    diff,
    export,
    fit,
    import_,
    inspect,
    profile,
    report,
    schema,
    search,
    train,
    validate,
)
from .common import EXIT_FAIL, EXIT_USAGE, add_budget, add_knobs, load_spec_arguments, safe

# What each command takes after its own arguments: the resource budget flags, and the
# keras.applications knobs.
NOTHING, BUDGET, KNOBS = (), (add_budget,), (add_budget, add_knobs)
SPEC, TWO_SPECS = ("spec",), ("a", "b")

# (name, module, help, shared flags, the arguments that are specs: each loaded and planned
# once, `-` read from stdin, before the command runs, which gets them as Plans), in the order
# `--help` lists them. Every module's top level stays TF-free: `--help` and `--backend` run
# before Keras loads.
COMMANDS = (
    ("validate", validate, "check a spec: fields, shapes and resource budget", KNOBS, SPEC),
    ("report", report, "cost report: params, MACs, FLOPs, naive vs bottleneck", KNOBS, SPEC),
    ("diff", diff, "costs of two specs side by side: model, blocks and branches (B - A)", BUDGET, TWO_SPECS),
    (
        "fit",
        fit,
        "choose the 1x1 reduction widths that meet a MACs/params budget; block outputs keep their widths",
        BUDGET,
        SPEC,
    ),
    (
        "import",
        import_,
        "turn a Keras 3 model (.keras) into a spec: report, diff and fit then work on it",
        BUDGET,
        (),
    ),
    ("schema", schema, "print the JSON Schema of the spec language", NOTHING, ()),
    ("build", build, "build the Keras model; print its summary and the cost report", KNOBS, SPEC),
    ("export", export, "build and export (SavedModel, .keras, TFLite, ONNX), verified", KNOBS, SPEC),
    ("inspect", inspect, "show the spec and cost report stored in an exported artifact", NOTHING, ()),
    (
        "search",
        search,
        "search the 1x1 reduction widths for accuracy within a budget (Optuna); the Pareto front",
        BUDGET,
        SPEC,
    ),
    ("train", train, "train a spec on an image folder or a packaged data set (tf.distribute)", KNOBS, SPEC),
    ("diagram", diagram, "draw a block or a whole model (SVG or PNG)", KNOBS, SPEC),
    ("profile", profile, "measure real time per block and branch beside MACs", KNOBS, SPEC),
    (
        "calibrate",
        calibrate,
        "measure this machine's kernels into a latency profile (report/fit/diff --latency)",
        NOTHING,
        (),
    ),
    (
        "deploy",
        deploy,
        "export through every runtime here, measure them, keep the fastest within tolerance",
        KNOBS,
        SPEC,
    ),
)

# Packages some commands need, and the extra of setup.cfg that installs each.
_OPTIONAL = {
    "tensorflow": "tensorflow",
    "keras": "tensorflow",
    "numpy": "tensorflow",
    "graphviz": "pictures",
    "matplotlib": "pictures",
    "sklearn": "train",
    "tf2onnx": "onnx",
    "onnxruntime": "onnx",
    "jax": "jax",
    "torch": "torch",
    "PIL": "train",
    "optuna": "search",
    "sqlalchemy": "search",
    "psycopg2": "search",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own usage errors exit 2 as well
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _add_globals(p: argparse.ArgumentParser, top: bool) -> None:
    """--debug and --backend, before the command or after it, as git-style CLIs take them.
    A subcommand's copy leaves the namespace alone unless typed (SUPPRESS), so typing one
    before the command is not undone by the command's default."""
    default: Any = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--debug", action="store_true", help="show tracebacks", **default)
    p.add_argument(
        "--backend",
        choices=["tensorflow", "jax", "torch"],
        **default,
        help="Keras backend: sets KERAS_BACKEND before Keras loads (default: KERAS_BACKEND, else tensorflow)",
    )


def parser() -> argparse.ArgumentParser:
    """The whole command line: the global flags and a subcommand per row of COMMANDS."""
    root = _Parser(
        prog="inception-kit", description="Design, cost, build and export Inception-style networks."
    )
    _add_globals(root, top=True)
    sub = root.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module, help_, shared, specs in COMMANDS:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=module.run, command_parser=p, spec_dests=specs, knobs=add_knobs in shared)
        module.add_arguments(p)
        for add in shared:
            add(p)
        _add_globals(p, top=False)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints as escapes
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    args, unknown = parser().parse_known_args(argv)
    if unknown:  # argparse would show the top level's usage; the subcommand's is the one that helps
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.backend:  # before anything imports Keras, which reads it once (refused if it already ran)
            from ..keras.backends import select

            select(args.backend)
        load_spec_arguments(args, args.spec_dests, args.knobs)  # once: the command gets Plans
        code: int = args.fn(args)
        return code
    except SpecError as err:
        where = " in the spec" if any(p.mark for p in err.problems) else ""
        print(
            f"error: {len(err.problems)} problem{'s' if len(err.problems) != 1 else ''}{where}",
            file=sys.stderr,
        )
        for problem in err.problems:
            print(f"  {safe(problem)}", file=sys.stderr)
        return _debug(args, EXIT_USAGE)
    except ArgumentError as err:  # a library parameter: worded with the flag that set it
        print(f"error: {safe(err.worded(_flag(args, err.parameter)))}", file=sys.stderr)
        return _debug(args, EXIT_USAGE)
    except Failure as err:  # its message is the whole story
        print(f"error: {safe(err)}", file=sys.stderr)
        return _debug(args, EXIT_FAIL)
    except DestinationExists as err:
        print(f"error: {safe(err.path)} already exists; pass --overwrite to replace it", file=sys.stderr)
        return _debug(args, EXIT_USAGE)
    except UnsafeDestination as err:
        print(f"error: {safe(err)}", file=sys.stderr)
        return _debug(args, EXIT_USAGE)
    except ModuleNotFoundError as err:
        package = (err.name or "").split(".")[0]
        if package not in _OPTIONAL:
            raise
        extra = _OPTIONAL[package]
        print(f"error: this command needs {err.name}: pip install 'inception-kit[{extra}]'", file=sys.stderr)
        return _debug(args, EXIT_FAIL)
    except BrokenPipeError:  # `inception-kit report ... | head`: the reader stopped; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit would fail again
        return EXIT_FAIL
    except KeyboardInterrupt:
        print(
            "interrupted (files are written whole or not at all; a training run resumes from its backup)",
            file=sys.stderr,
        )
        return 130
    except Exception as err:  # the CLI contract: one message, traceback on --debug
        print(f"error: {type(err).__name__}: {safe(err)}", file=sys.stderr)
        if not args.debug:
            print("(run with --debug for the traceback)", file=sys.stderr)
        return _debug(args, EXIT_FAIL)


def _flag(args: Any, parameter: str) -> str:
    """The command's flag whose value is the library's `parameter` (its dest), else the
    parameter's own name."""
    for action in args.command_parser._actions:
        if action.dest == parameter and action.option_strings:
            return str(max(action.option_strings, key=len))
    return parameter


def _debug(args: Any, code: int) -> int:
    if args.debug:
        traceback.print_exc()
    return code


if __name__ == "__main__":
    sys.exit(main())
