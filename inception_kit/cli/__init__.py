"""The `inception-kit` command.

Exit codes: 0 success; 2 a bad spec, a bad command line or a destination that exists;
1 anything else (a failed verification, an internal error). Errors are one clear message
on stderr; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ..analysis import DEFAULT_BUDGET, Budget
from ..errors import SpecError
from ..files import DestinationExists, UnsafeDestination
from . import deploy, diagram, profile, train

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
SUMMARY_WIDTH = 100  # `build`'s Keras summary, like the cost report: at most 100 columns
# Packages some commands need, and the extra of setup.cfg that installs each.
_OPTIONAL = {"tensorflow": "tensorflow", "keras": "tensorflow", "numpy": "tensorflow", "graphviz": "pictures",
             "matplotlib": "pictures", "sklearn": "train", "tf2onnx": "onnx", "onnxruntime": "onnx",
             "jax": "jax", "torch": "torch"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors exit 2 as well
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _budget(args: argparse.Namespace) -> Budget:
    return Budget(args.max_params, args.max_activation_bytes)


# C0 and C1 control characters but tab, newline and carriage return, and lone surrogates
# (bytes of a file name that are not UTF-8): text from a spec, an artifact or a file name
# never drives the terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _safe(text: object) -> str:
    """`text` with every control character shown as an escape (\\x1b), never sent raw."""

    def escape(m: re.Match[str]) -> str:
        c = ord(m.group())
        return f"\\x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _CONTROL.sub(escape, str(text))


def _positive_int(text: str) -> int:
    """argparse type of the budget flags: a limit of 0 or -1 would refuse every spec."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; received {text}")
    return value


def _plan(path: str, **knobs: Any) -> Any:
    """The spec argument loaded and planned once: a path or preset, or for '-' the spec
    read from stdin (bounded like files)."""
    from ..planner import load_plan, loads_plan
    from ..spec.yaml_io import STDIN, decode, read_bounded

    if path != STDIN:
        return load_plan(path, **knobs)
    return loads_plan(decode(read_bounded(sys.stdin.buffer), "<stdin>"), "<stdin>", **knobs)


def _emit(text: str, out: str | None, overwrite: bool) -> None:
    if out and out != "-":
        from ..files import write_text

        write_text(out, text, overwrite)
        if not _is_stream(out):
            print(f"wrote {_safe(out)}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _is_stream(path: str) -> bool:
    from ..files import is_stream

    return is_stream(path)


def cmd_validate(args: argparse.Namespace) -> int:
    from ..analysis import analyse

    a = analyse(args.spec, _budget(args))
    shown = "<stdin>" if args.spec_source == "-" else _safe(args.spec_source)
    print(f"{shown}: ok ({a.plan.model.name}: {a.total.params:,} params, {a.total.macs:,} MACs, {a.total.flops:,} FLOPs)")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from ..analysis import analyse
    from ..report import render

    analysis = analyse(args.spec, _budget(args))
    _emit(render(analysis, args.format), args.out, args.overwrite)
    if args.plot:
        from ..viz import plots

        plots.savings_chart(analysis, args.plot, overwrite=args.overwrite)
        print(f"wrote {_safe(args.plot)}", file=sys.stderr)
    if not args.verify:
        return EXIT_OK
    _quiet_tensorflow()
    from ..keras.builder import build_model
    from ..keras.verify import compare, render_checks

    checks = compare(analysis, build_model(analysis.plan))
    print("\nverification against the built Keras model and TensorFlow's profiler (batch 1):", file=sys.stderr)
    print(render_checks(checks), file=sys.stderr)
    bad = [c.what for c in checks if not c.ok]
    if bad:
        print(f"error: analytic and measured counts differ in: {', '.join(bad)}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from ..spec.schema import schema_text

    _emit(schema_text(), args.out, args.overwrite)
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from ..analysis import analyse
    from ..report import render

    analysis = analyse(args.spec, _budget(args))
    _quiet_tensorflow()
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
            result = export(analysis.plan.model, args.out, format="keras", weights=weights,
                            overwrite=args.overwrite, budget=_budget(args), precision=args.precision)
        print(result.summary(), file=sys.stderr)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from ..keras.export import export

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
    print(_safe(result.summary()))
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..keras.export import inspect_artifact

    print(_safe(inspect_artifact(args.artifact, fmt=args.format)), end="")  # an artifact's text is untrusted
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from ..analysis import analyse
    from ..design.diff import diff

    d = diff(analyse(args.a, _budget(args)), analyse(args.b, _budget(args)))
    _emit(d.render(args.format), args.out, args.overwrite)
    if args.plot:
        from ..viz import plots

        plots.diff_chart(d, args.plot, overwrite=args.overwrite)
        print(f"wrote {args.plot}", file=sys.stderr)
    return EXIT_OK


def _count(text: str) -> int:
    from ..design.fit import parse_count

    try:
        return parse_count(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_fit(args: argparse.Namespace) -> int:
    from ..design.fit import fit, render_sweep, sweep, write

    name = os.path.splitext(os.path.basename(args.spec))[0]
    if args.sweep or args.plot:
        points = sweep(args.spec, args.steps, args.blocks, args.multiple, args.macs, args.params,
                       _budget(args))
        if args.sweep:
            print(f"{name}: MACs and params with every selected 1x1 reduction width x scale "
                  f"(multiples of {args.multiple})")
            print(render_sweep(points), end="")
        if args.plot:
            from ..viz import plots

            plots.sweep_chart(points, f"{name}: fitting the 1×1 reduction widths", args.plot,
                                         overwrite=args.overwrite, budget=(args.macs, args.params))
            print(f"wrote {args.plot}", file=sys.stderr)
        if args.sweep:
            return EXIT_OK
    if args.macs is None and args.params is None:
        raise SpecError.one("budget", "--macs and/or --params (or --sweep)", "neither")
    result = fit(args.spec, args.macs, args.params, args.blocks, args.multiple, _budget(args))
    print(f"scale {result.scale:g} on {result.model.name}'s 1x1 reduction widths "
          f"(multiples of {args.multiple}); "
          f"{len(result.changes)} widths changed:")
    print(result.table())
    print()
    print(result.diff.render("table"), end="")
    if args.out:
        write(result, args.out, args.overwrite)
        how = "the original YAML edited in place" if result.rewritten else "the expanded spec"
        print(f"wrote {args.out} ({how}, a comment per changed width)", file=sys.stderr)
    else:
        print("(nothing written: pass -o FILE to write the fitted spec)", file=sys.stderr)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from ..analysis import analyse
    from ..keras.importer import import_keras, load_keras

    imported = import_keras(load_keras(args.model))
    _emit(imported.to_yaml(), args.out, args.overwrite)
    a = analyse(imported.model, _budget(args))
    print(f"{args.model}: {a.total.params:,} params, {a.total.macs:,} MACs, {len(a.blocks)} blocks",
          file=sys.stderr)
    return EXIT_OK


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                   help="bfloat16: compute in bfloat16, weights and outputs float32 (Keras mixed_bfloat16)")


def _shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTHxCHANNELS, e.g. 150x150x3; received {text!r}")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _add_knobs(p: argparse.ArgumentParser) -> None:
    """keras.applications' knobs, on every command that takes a spec (see knobs.py)."""
    g = p.add_argument_group("keras.applications knobs (applied to the spec before anything else)")
    g.add_argument("--input", type=_shape, metavar="HxWxC", dest="input_shape", help="input shape, e.g. 150x150x3")
    g.add_argument("--no-top", action="store_false", dest="include_top", help="drop the spec's head (its classifier)")
    g.add_argument("--pooling", choices=["avg", "max"], help="with --no-top: global average or max pooling")
    g.add_argument("--classes", type=int, metavar="N", help="units of the head's last dense layer")
    g.add_argument("--classifier-activation", metavar="NAME",
                   help="activation of that layer: softmax, sigmoid, linear, ... ('none' for linear)")
    g.add_argument("--no-aux", action="store_false", dest="include_aux",
                   help="drop the spec's auxiliary heads (aux:), e.g. for inputs too small for them")


def _apply_knobs(args: argparse.Namespace) -> None:
    """Loads and plans the spec once, with the knobs applied: commands get the plan."""
    from ..spec.knobs import KEEP

    activation = args.classifier_activation
    if activation is None:
        activation = KEEP
    elif activation.lower() in ("none", "null"):
        activation = None
    args.spec_source = args.spec
    args.spec = _plan(args.spec, input_shape=args.input_shape, include_top=args.include_top,
                      pooling=args.pooling, classes=args.classes, classifier_activation=activation,
                      include_aux=args.include_aux)


def _add_budget(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-params", type=_positive_int, default=DEFAULT_BUDGET.max_params, metavar="N",
                   help=f"refuse specs with more parameters (default {DEFAULT_BUDGET.max_params:,})")
    p.add_argument("--max-activation-bytes", type=_positive_int, default=DEFAULT_BUDGET.max_activation_bytes, metavar="N",
                   help="refuse specs whose activations per sample exceed this (default 4 GiB)")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="inception-kit", description="Design, cost, build and export Inception-style networks.")
    root.add_argument("--debug", action="store_true", help="show tracebacks")
    root.add_argument("--backend", choices=["tensorflow", "jax", "torch"],
                      help="Keras backend: sets KERAS_BACKEND before Keras loads (default: KERAS_BACKEND, else tensorflow)")
    sub = root.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn, command_parser=p)
        return p

    p = command("validate", cmd_validate, "check a spec: fields, shapes and resource budget")
    p.add_argument("spec", help="a YAML spec file, or - to read it from stdin")
    _add_budget(p)
    _add_knobs(p)

    p = command("report", cmd_report, "cost report: params, MACs, FLOPs, naive vs bottleneck")
    p.add_argument("spec", help="a YAML spec file, or - to read it from stdin")
    p.add_argument("--format", choices=["table", "markdown", "csv", "json"], default="table")
    p.add_argument("--out", "-o", help="write to this file instead of stdout")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--verify", action="store_true",
                   help="build the model and compare with Keras' param count and TensorFlow's profiler")
    p.add_argument("--plot", metavar="PNG", help="also draw MACs and params per block, naive against bottleneck")
    _add_budget(p)
    _add_knobs(p)

    p = command("diff", cmd_diff, "costs of two specs side by side: model, blocks and branches (B - A)")
    p.add_argument("a", help="spec A (the baseline)")
    p.add_argument("b", help="spec B (the change)")
    p.add_argument("--format", choices=["table", "markdown", "csv", "json"], default="table")
    p.add_argument("--out", "-o", help="write to this file instead of stdout")
    p.add_argument("--overwrite", action="store_true", help="replace --out and --plot if they exist")
    p.add_argument("--plot", metavar="PNG", help="also draw MACs and params per block, A against B")
    _add_budget(p)

    p = command("fit", cmd_fit, "choose the 1x1 reduction widths that meet a MACs/params budget; "
                "block outputs keep their widths")
    p.add_argument("spec")
    p.add_argument("--macs", type=_count, metavar="N", help="at most this many MACs (suffixes K, M, G: 1.2G)")
    p.add_argument("--params", type=_count, metavar="N", help="at most this many parameters (5M)")
    p.add_argument("--blocks", metavar="GLOB",
                   help="only reductions in top-level blocks matching this ('inc4*')")
    p.add_argument("--multiple", type=int, default=8, metavar="N",
                   help="round widths to multiples of N (default 8)")
    p.add_argument("--out", "-o", help="write the fitted spec here (a comment per changed width)")
    p.add_argument("--overwrite", action="store_true", help="replace --out and --plot if they exist")
    p.add_argument("--sweep", action="store_true", help="print MACs and params over the scale factor instead")
    p.add_argument("--steps", type=int, default=10, metavar="N",
                   help="--sweep at 1/N, 2/N, ..., 1 (default 10)")
    p.add_argument("--plot", metavar="PNG", help="draw MACs and params over the scale factor")
    _add_budget(p)

    p = command("import", cmd_import,
                "turn a Keras 3 model (.keras) into a spec: report, diff and fit then work on it")
    p.add_argument("model", help="a .keras file of a functional or Sequential CNN")
    p.add_argument("--out", "-o", help="write the spec here instead of stdout")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    _add_budget(p)

    p = command("schema", cmd_schema, "print the JSON Schema of the spec language")
    p.add_argument("--out", "-o")
    p.add_argument("--overwrite", action="store_true")

    p = command("build", cmd_build, "build the Keras model; print its summary and the cost report")
    p.add_argument("spec")
    _add_precision(p)
    p.add_argument("--aux", action="store_true",
                   help="add the spec's auxiliary heads as outputs (training only; --out saves without them)")
    p.add_argument("--weights", metavar="FILE|imagenet",
                   help="a keras.applications weight file (legacy .h5), or imagenet (Keras downloads it)")
    p.add_argument("--out", "-o", help="also save it as a .keras file, with the spec and report beside it (as export does)")
    p.add_argument("--overwrite", action="store_true")
    _add_budget(p)
    _add_knobs(p)

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
    _add_knobs(p)

    p = command("inspect", cmd_inspect, "show the spec and cost report stored in an exported artifact")
    p.add_argument("artifact")
    p.add_argument("--format", choices=["table", "markdown", "csv", "json", "yaml"], default="table")

    # Commands that live in their own modules; each module's top level stays TF-free.
    for name, module, help_ in (
        ("train", train, "train a spec on an image folder or a packaged data set (tf.distribute)"),
        ("diagram", diagram, "draw a block or a whole model (SVG or PNG)"),
        ("profile", profile, "measure real time per block and branch beside MACs"),
        ("deploy", deploy, "export through every runtime here, measure them, keep the fastest within tolerance"),
    ):
        p = command(name, module.run, help_)
        module.add_arguments(p)
        _add_budget(p)
        _add_knobs(p)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints as escapes
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    args, unknown = parser().parse_known_args(argv)
    if unknown:  # argparse would show the top level's usage; the subcommand's is the one that helps
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.backend:  # before anything imports Keras, which reads it once (refused if it already ran)
            from ..keras.backends import select

            select(args.backend)
        if hasattr(args, "include_top"):
            _apply_knobs(args)
        return args.fn(args)
    except SpecError as err:
        where = " in the spec" if any(p.mark for p in err.problems) else ""
        print(f"error: {len(err.problems)} problem{'s' if len(err.problems) != 1 else ''}{where}", file=sys.stderr)
        for problem in err.problems:
            print(f"  {_safe(problem)}", file=sys.stderr)
        return _debug(args, EXIT_USAGE)
    except DestinationExists as err:
        print(f"error: {_safe(err.path)} already exists; pass --overwrite to replace it", file=sys.stderr)
        return _debug(args, EXIT_USAGE)
    except UnsafeDestination as err:
        print(f"error: {_safe(err)}", file=sys.stderr)
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
        ours = type(err).__name__ == "TrainingFailed"  # its message is the whole story
        print(f"error: {'' if ours else type(err).__name__ + ': '}{_safe(err)}", file=sys.stderr)
        if not args.debug and not ours:
            print("(run with --debug for the traceback)", file=sys.stderr)
        return _debug(args, EXIT_FAIL)


def _debug(args: Any, code: int) -> int:
    if args.debug:
        traceback.print_exc()
    return code


if __name__ == "__main__":
    sys.exit(main())
