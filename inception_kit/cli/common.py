"""What the commands share: exit codes, escaping of untrusted text, output to a file or
stdout, and the budget and keras.applications knob flags with the one load-and-plan of the
spec argument they feed.

Nothing here imports Keras or TensorFlow: `--backend` must run before anything does.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from ..errors import SpecError
from ..planner import DEFAULT_BUDGET, Budget

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# C0 and C1 control characters but tab, newline and carriage return, and lone surrogates
# (bytes of a file name that are not UTF-8): text from a spec, an artifact or a file name
# never drives the terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def safe(text: object) -> str:
    """`text` with every control character shown as an escape (\\x1b), never sent raw."""

    def escape(m: re.Match[str]) -> str:
        c = ord(m.group())
        return (
            f"\\x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
        )

    return _CONTROL.sub(escape, str(text))


def quiet_tensorflow() -> None:
    """TensorFlow's C++ logging down to warnings; set before TensorFlow loads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def emit(text: str, out: str | None, overwrite: bool) -> None:
    """`text` to the file `out` (atomically, refused if it exists unless `overwrite`), or to
    stdout for no `out` or '-'."""
    if out and out != "-":
        from ..files import is_stream, write_text

        write_text(out, text, overwrite)
        if not is_stream(out):
            print(f"wrote {safe(out)}", file=sys.stderr)
    else:
        sys.stdout.write(text)


# ------------------------------------------------------------------------------ budget


def positive_int(text: str) -> int:
    """argparse type of the budget flags: a limit of 0 or -1 would refuse every spec."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; received {text}")
    return value


def count(text: str) -> int:
    """argparse type of --macs and --params (fit, search): 1200000, 1.2M, 5G."""
    from ..design.fit import parse_count

    try:
        return parse_count(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_budget(p: argparse.ArgumentParser) -> None:
    """--max-params and --max-activation-bytes: the resource budget every spec is checked against."""
    p.add_argument(
        "--max-params",
        type=positive_int,
        default=DEFAULT_BUDGET.max_params,
        metavar="N",
        help=f"refuse specs with more parameters (default {DEFAULT_BUDGET.max_params:,})",
    )
    p.add_argument(
        "--max-activation-bytes",
        type=positive_int,
        default=DEFAULT_BUDGET.max_activation_bytes,
        metavar="N",
        help="refuse specs whose activations per sample exceed this (default 4 GiB)",
    )


def budget(args: argparse.Namespace) -> Budget:
    """The budget the flags of `add_budget` ask for."""
    return Budget(args.max_params, args.max_activation_bytes)


# ------------------------------------------------------------------------------- knobs


def input_shape(text: str) -> tuple[int, int, int]:
    """argparse type of --input: HEIGHTxWIDTHxCHANNELS."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTHxCHANNELS, e.g. 150x150x3; received {text!r}")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def add_knobs(p: argparse.ArgumentParser) -> None:
    """keras.applications' knobs, on every command that takes a spec (see spec/knobs.py)."""
    g = p.add_argument_group("keras.applications knobs (applied to the spec before anything else)")
    g.add_argument(
        "--input", type=input_shape, metavar="HxWxC", dest="input_shape", help="input shape, e.g. 150x150x3"
    )
    g.add_argument(
        "--no-top", action="store_false", dest="include_top", help="drop the spec's head (its classifier)"
    )
    g.add_argument("--pooling", choices=["avg", "max"], help="with --no-top: global average or max pooling")
    g.add_argument("--classes", type=int, metavar="N", help="units of the head's last dense layer")
    g.add_argument(
        "--classifier-activation",
        metavar="NAME",
        help="activation of that layer: softmax, sigmoid, linear, ... ('none' for linear)",
    )
    g.add_argument(
        "--no-aux",
        action="store_false",
        dest="include_aux",
        help="drop the spec's auxiliary heads (aux:), e.g. for inputs too small for them",
    )


def load_spec_arguments(args: argparse.Namespace, dests: tuple[str, ...], knobs: bool) -> None:
    """The one load of a command's spec arguments: each of `dests` (a path, a preset name, or
    '-' for stdin, read once and bounded like files) becomes the Plan the command hands down,
    checked against the budget flags and, where the command has them, with the knobs applied.
    `args.sources` keeps what was typed, by dest."""
    from ..loading import load, loads
    from ..spec.yaml_io import STDIN, decode, read_bounded

    typed = {dest: getattr(args, dest) for dest in dests}
    if sum(text == STDIN for text in typed.values()) > 1:
        raise SpecError.one(
            "<stdin>",
            "at most one spec read from standard input ('-')",
            " and ".join(d for d, t in typed.items() if t == STDIN),
        )
    given = _knobs(args) if knobs else {}
    for dest, text in typed.items():
        if text == STDIN:
            plan = loads(
                decode(read_bounded(sys.stdin.buffer), "<stdin>"), "<stdin>", budget=budget(args), **given
            )
        else:
            plan = load(text, budget=budget(args), **given)
        setattr(args, dest, plan)
    args.sources = typed


def shown(source: str) -> str:
    """A spec argument as messages name it."""
    return "<stdin>" if source == "-" else safe(source)


def _knobs(args: argparse.Namespace) -> dict[str, Any]:
    from ..spec.knobs import KEEP

    activation = args.classifier_activation
    if activation is None:
        activation = KEEP
    elif activation.lower() in ("none", "null"):
        activation = None
    return {
        "input_shape": args.input_shape,
        "include_top": args.include_top,
        "pooling": args.pooling,
        "classes": args.classes,
        "classifier_activation": activation,
        "include_aux": args.include_aux,
    }


def add_precision(p: argparse.ArgumentParser) -> None:
    """--precision of `build` and `export`."""
    p.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="bfloat16: compute in bfloat16, weights and outputs float32 (Keras mixed_bfloat16)",
    )


# ---------------------------------------------------------------------------- progress

PIPE_EVERY = 10.0  # seconds between lines within one stage, when stderr is not a terminal


class ProgressBar:
    """The CLI's drawing of a library `Progress` on `stream` (default sys.stderr, so stdout
    stays clean for --format json): a bar on a terminal, a line per stage otherwise."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.label, self.stream = label, stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last, self.when = "", 0.0

    def __call__(self, done: int, total: int, what: str) -> None:
        import time

        if self.tty:
            filled = int(30 * done / max(total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {safe(what):<40}")
            if done >= total:
                self.stream.write("\n")
        else:  # a line per stage, and one at least every PIPE_EVERY seconds within a long one
            stage = what.split(":")[0]
            now = time.monotonic()
            if stage == self.last and now - self.when < PIPE_EVERY and done < total:
                return
            self.last, self.when = stage, now
            self.stream.write(f"{self.label} [{done}/{total}] {safe(what)}\n")
        self.stream.flush()
