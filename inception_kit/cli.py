"""The `inception-kit` command.

Exit codes: 0 success; 2 a bad spec, a bad command line or a destination that exists;
1 anything else (a failed verification, an internal error). Errors are one clear message
on stderr; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any, Callable, Sequence

from .cost import DEFAULT_BUDGET, Budget
from .errors import SpecError
from .files import DestinationExists

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
# Packages some commands need, and the extra of setup.cfg that installs each.
_OPTIONAL = {"tensorflow": "keras", "keras": "keras", "numpy": "keras", "graphviz": "pictures",
             "matplotlib": "pictures", "sklearn": "train", "tf2onnx": "onnx", "onnxruntime": "onnx"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors exit 2 as well
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _budget(args: argparse.Namespace) -> Budget:
    return Budget(args.max_params, args.max_activation_bytes)


def _positive_int(text: str) -> int:
    """argparse type of the budget flags: a limit of 0 or -1 would refuse every spec."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; received {text}")
    return value


def _spec(path: str) -> Any:
    """The spec argument: a path, or for '-' the spec read from stdin (bounded like files)."""
    from .yaml_io import STDIN, decode, read_bounded

    if path != STDIN:
        return path
    from .spec import loads_spec

    return loads_spec(decode(read_bounded(sys.stdin.buffer), "<stdin>"), file="<stdin>")


def _emit(text: str, out: str | None, overwrite: bool) -> None:
    if out:
        from .files import write_text

        write_text(out, text, overwrite)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def cmd_validate(args: argparse.Namespace) -> int:
    from . import validate

    a = validate(_spec(args.spec), _budget(args))
    shown = "<stdin>" if args.spec == "-" else args.spec
    print(f"{shown}: ok ({a.plan.model.name}: {a.total.params:,} params, {a.total.macs:,} MACs, {a.total.flops:,} FLOPs)")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from . import render, validate

    analysis = validate(_spec(args.spec), _budget(args))
    _emit(render(analysis, args.format), args.out, args.overwrite)
    if args.plot:
        _module("plots").savings_chart(analysis, args.plot, overwrite=args.overwrite)
        print(f"wrote {args.plot}", file=sys.stderr)
    if not args.verify:
        return EXIT_OK
    _quiet_tensorflow()
    from .builder import build_model
    from .verify import compare, render_checks

    checks = compare(analysis, build_model(analysis.plan))
    print("\nverification against the built Keras model and TensorFlow's profiler (batch 1):", file=sys.stderr)
    print(render_checks(checks), file=sys.stderr)
    bad = [c.what for c in checks if not c.ok]
    if bad:
        print(f"error: analytic and measured counts differ in: {', '.join(bad)}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from .schema import schema_text

    _emit(schema_text(), args.out, args.overwrite)
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from . import render, validate

    analysis = validate(args.spec, _budget(args))
    _quiet_tensorflow()
    from .builder import build_model

    model = build_model(analysis.plan, args.precision)
    model.summary(line_length=100, print_fn=lambda line, **_: print(line))
    print()
    print(render(analysis, "table"))
    if args.out:
        from .files import staged_file

        with staged_file(args.out, args.overwrite, suffix=".keras") as tmp:
            model.save(str(tmp))
        print(f"wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from .exporters import export

    result = export(
        args.spec,
        args.out,
        format=args.format,
        weights=args.weights,
        quantize=args.quantize,
        overwrite=args.overwrite,
        verify=not args.no_verify,
        budget=_budget(args),
        precision=args.precision,
    )
    print(result.summary())
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from .exporters import inspect_artifact

    print(inspect_artifact(args.artifact, fmt=args.format), end="")
    return EXIT_OK


def _module(name: str) -> Any:
    import importlib

    return importlib.import_module(f"inception_kit.{name}")


def _delegate(module: str) -> Callable[[argparse.Namespace], int]:
    """A command implemented in its own module: `run(args) -> exit code`."""
    return lambda args: _module(module).run(args)


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                   help="bfloat16: compute in bfloat16, weights and outputs float32 (Keras mixed_bfloat16)")


def _add_budget(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-params", type=_positive_int, default=DEFAULT_BUDGET.max_params, metavar="N",
                   help=f"refuse specs with more parameters (default {DEFAULT_BUDGET.max_params:,})")
    p.add_argument("--max-activation-bytes", type=_positive_int, default=DEFAULT_BUDGET.max_activation_bytes, metavar="N",
                   help="refuse specs whose activations per sample exceed this (default 4 GiB)")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="inception-kit", description="Design, cost, build and export Inception-style networks.")
    root.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = root.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        return p

    p = command("validate", cmd_validate, "check a spec: fields, shapes and resource budget")
    p.add_argument("spec", help="a YAML spec file, or - to read it from stdin")
    _add_budget(p)

    p = command("report", cmd_report, "cost report: params, MACs, FLOPs, naive vs bottleneck")
    p.add_argument("spec", help="a YAML spec file, or - to read it from stdin")
    p.add_argument("--format", choices=["table", "markdown", "csv", "json"], default="table")
    p.add_argument("--out", "-o", help="write to this file instead of stdout")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--verify", action="store_true",
                   help="build the model and compare with Keras' param count and TensorFlow's profiler")
    p.add_argument("--plot", metavar="PNG", help="also draw MACs and params per block, naive against bottleneck")
    _add_budget(p)

    p = command("schema", cmd_schema, "print the JSON Schema of the spec language")
    p.add_argument("--out", "-o")
    p.add_argument("--overwrite", action="store_true")

    p = command("build", cmd_build, "build the Keras model; print its summary and the cost report")
    p.add_argument("spec")
    _add_precision(p)
    p.add_argument("--out", "-o", help="also save it as a .keras file")
    p.add_argument("--overwrite", action="store_true")
    _add_budget(p)

    p = command("export", cmd_export, "build and export (SavedModel, .keras, TFLite, ONNX), verified")
    p.add_argument("spec")
    p.add_argument("--out", "-o", required=True)
    p.add_argument("--format", choices=["savedmodel", "keras", "tflite", "onnx"], default="savedmodel")
    p.add_argument("--weights", help="a Keras .weights.h5 file to load first")
    p.add_argument("--quantize", action="store_true", help="TFLite: dynamic-range int8 weights")
    _add_precision(p)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-verify", action="store_true", help="skip reloading and comparing outputs")
    _add_budget(p)

    p = command("inspect", cmd_inspect, "show the spec and cost report stored in an exported artifact")
    p.add_argument("artifact")
    p.add_argument("--format", choices=["table", "markdown", "csv", "json", "yaml"], default="table")

    # Commands that live in their own modules; each module's top level stays TF-free.
    for name, module, help_ in (
        ("train", "train", "train a spec on an image folder or a packaged data set (tf.distribute)"),
        ("diagram", "diagram", "draw a block or a whole model (SVG or PNG)"),
        ("profile", "profile", "measure real time per block and branch beside MACs"),
    ):
        p = command(name, _delegate(module), help_)
        _module(module).add_arguments(p)
        _add_budget(p)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except SpecError as err:
        where = " in the spec" if any(p.mark for p in err.problems) else ""
        print(f"error: {len(err.problems)} problem{'s' if len(err.problems) != 1 else ''}{where}", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return _debug(args, EXIT_USAGE)
    except DestinationExists as err:
        print(f"error: {err}", file=sys.stderr)
        return _debug(args, EXIT_USAGE)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in _OPTIONAL:
            raise
        extra = _OPTIONAL[err.name.split(".")[0]]
        print(f"error: this command needs {err.name}: pip install 'inception-kit[{extra}]'", file=sys.stderr)
        return _debug(args, EXIT_FAIL)
    except KeyboardInterrupt:
        print("interrupted (files are written whole or not at all; a training run resumes from its backup)", file=sys.stderr)
        return 130
    except Exception as err:  # the CLI contract: one message, traceback on --debug
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        if not args.debug:
            print("(run with --debug for the traceback)", file=sys.stderr)
        return _debug(args, EXIT_FAIL)


def _debug(args: Any, code: int) -> int:
    if args.debug:
        traceback.print_exc()
    return code


if __name__ == "__main__":
    sys.exit(main())
