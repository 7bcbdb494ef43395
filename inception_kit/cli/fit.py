"""`inception-kit fit SPEC --macs N --params N`: the 1x1 reduction widths that meet a budget;
`--sweep` and `--plot` show MACs and params over the scale factor."""

from __future__ import annotations

import argparse
import sys

from ..design.fit import fit, render_sweep, sweep, write
from ..errors import SpecError
from ..planner import Plan
from ..tables import ms
from .common import EXIT_OK, budget, count, safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a YAML spec file, a preset name, or - to read it from stdin")
    parser.add_argument(
        "--macs", type=count, metavar="N", help="at most this many MACs (suffixes K, M, G: 1.2G)"
    )
    parser.add_argument("--params", type=count, metavar="N", help="at most this many parameters (5M)")
    parser.add_argument(
        "--latency", metavar="TIME", help="at most this predicted time (20ms, 1.5s), from --latency-profile"
    )
    parser.add_argument(
        "--latency-profile",
        metavar="PROFILE",
        help="the latency profile (inception-kit calibrate -o PROFILE)",
    )
    parser.add_argument(
        "--latency-batch",
        type=int,
        metavar="N",
        help="the profile's batch size to fit at (default its first)",
    )
    parser.add_argument(
        "--any-machine",
        action="store_true",
        dest="allow_other_machine",
        help="use a latency profile measured on another machine",
    )
    parser.add_argument(
        "--blocks", metavar="GLOB", help="only reductions in top-level blocks matching this ('inc4*')"
    )
    parser.add_argument(
        "--multiple", type=int, default=8, metavar="N", help="round widths to multiples of N (default 8)"
    )
    parser.add_argument("--out", "-o", help="write the fitted spec here (a comment per changed width)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out and --plot if they exist")
    parser.add_argument(
        "--sweep", action="store_true", help="print MACs and params over the scale factor instead"
    )
    parser.add_argument(
        "--steps", type=int, default=10, metavar="N", help="--sweep at 1/N, 2/N, ..., 1 (default 10)"
    )
    parser.add_argument("--plot", metavar="PNG", help="draw MACs and params over the scale factor")


def run(args: argparse.Namespace) -> int:
    plan: Plan = args.spec
    name = plan.model.name
    if args.sweep or args.plot:
        points = sweep(plan, args.steps, args.blocks, args.multiple, args.macs, args.params, budget(args))
        if args.sweep:
            print(
                f"{name}: MACs and params with every selected 1x1 reduction width x scale "
                f"(multiples of {args.multiple})"
            )
            print(render_sweep(points), end="")
        if args.plot:
            from ..viz import plots

            plots.sweep_chart(
                points,
                f"{name}: fitting the 1×1 reduction widths",
                args.plot,
                overwrite=args.overwrite,
                budget=(args.macs, args.params),
            )
            print(f"wrote {safe(args.plot)}", file=sys.stderr)
        if args.sweep:
            return EXIT_OK
    if args.macs is None and args.params is None and args.latency is None:
        raise SpecError.one("budget", "--macs, --params and/or --latency (or --sweep)", "none")
    result = fit(
        plan,
        args.macs,
        args.params,
        args.blocks,
        args.multiple,
        budget(args),
        args.latency,
        args.latency_profile,
        args.latency_batch,
        args.allow_other_machine,
    )
    print(
        f"scale {result.scale:g} on {result.model.name}'s 1x1 reduction widths "
        f"(multiples of {args.multiple}); "
        f"{len(result.changes)} widths changed:"
    )
    print(result.table())
    print()
    print(result.diff.render("table"), end="")
    if result.predicted is not None:
        before, after = result.predicted
        print(f"predicted time: {ms(after)} ms (was {ms(before)} ms)")
    if args.out:
        write(result, args.out, args.overwrite)
        how = "the original YAML edited in place" if result.rewritten else "the expanded spec"
        print(f"wrote {safe(args.out)} ({how}, a comment per changed width)", file=sys.stderr)
    else:
        print("(nothing written: pass -o FILE to write the fitted spec)", file=sys.stderr)
    return EXIT_OK
