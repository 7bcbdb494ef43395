"""How well a latency profile predicts whole models it never saw: predict, then measure.

    .venv/bin/python benchmarks/latency_accuracy.py --profile tensorflow=tf.json \\
        --profile onnxruntime=ort.json --batch 1,8 --random 100 --seed 0

For every preset and `--random` specs drawn by this script's own generator (GoogLeNet-family
nets: a stem, 1–5 inception blocks of random widths, pools between, a classifier; seeded by
`--seed`, so the calibration, which samples the presets' layers, never saw them), at each
batch size and for each runtime given a profile: the model's predicted time
(`ik.predict_latency`) and its measured time (the runtime's timer from
`inception_kit.latency.timers`, its threads pinned as the profile states: whole models timed
in alternating rounds of a few models at a time, medians), and each top-level block run as
its own model likewise. Prints per runtime and batch: the share of models within ±10% and
±20%, the MAPE (also over the GoogLeNet-family presets alone), and the worst models with the
block whose prediction is furthest off. `--json FILE` keeps every case.

One runtime per process (TensorFlow's threads are fixed when it starts): the script runs
itself once per `--profile`. A quiet machine is assumed; the spread of every measurement is
kept beside it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from typing import Any

import inception_kit as ik
from inception_kit.planner import BlockPlan

GOOGLENET_FAMILY = ("googlenet", "inception_3a", "five_by_five_bottleneck", "inception_3a_tiny")
GROUP = 4  # whole models timed together, round-robin


def random_spec(rng: random.Random, index: int) -> str:
    """A GoogLeNet-family spec as YAML: sizes and widths drawn from `rng`."""
    size = rng.choice([64, 96, 112, 128, 160, 192, 224])
    bn = rng.random() < 0.4
    act = rng.choice(["relu", "relu", "relu6"])
    lines = [
        f"name: random_{index}",
        f"input: [{size}, {size}, 3]",
        "defaults:",
        f"  conv: {{activation: {act}, padding: same, bias: {str(not bn).lower()}, batchnorm: {str(bn).lower()}}}",
        "layers:",
        f"  - conv: {{filters: {rng.choice([32, 48, 64])}, kernel: {rng.choice([3, 5, 7])}, strides: 2}}",
        "  - maxpool: {pool: 3, strides: 2}",
    ]
    if rng.random() < 0.5:
        lines.append(f"  - conv: {{filters: {rng.choice([96, 128, 192])}, kernel: 3}}")
    spatial = size // 4
    for b in range(rng.randint(1, 5)):
        w = lambda lo, hi: rng.randrange(lo, hi + 1, 8)
        lines.append(
            f"  - inception: {{name: inc{b}, 1x1: {w(16, 256)}, 3x3_reduce: {w(16, 160)}, 3x3: {w(32, 320)}, "
            f"5x5_reduce: {w(8, 48)}, 5x5: {w(16, 128)}, pool_proj: {w(16, 128)}}}"
        )
        if spatial > 7 and rng.random() < 0.4:
            lines.append("  - maxpool: {pool: 3, strides: 2}")
            spatial = (spatial + 1) // 2
    lines += ["head:", "  - gap", f"  - dense: {{units: {rng.choice([10, 100, 1000])}, activation: softmax}}"]
    return "\n".join(lines) + "\n"


def cases(count: int, seed: int, presets: list[str]) -> list[tuple[str, Any]]:
    rng = random.Random(seed)
    out = [(name, ik.load(name)) for name in presets]
    out += [
        (f"random_{i} (seed {seed})", ik.loads(random_spec(rng, i), f"<random {i}>")) for i in range(count)
    ]
    return out


def measure_runtime(
    runtime: str, profile_path: str, batches: list[int], models: list[tuple[str, Any]], blocks: bool
) -> list[dict[str, Any]]:
    import keras

    from inception_kit.keras.builder import apply_steps
    from inception_kit.latency.profile import load_profile
    from inception_kit.latency.timers import make_timer, model_callable, run_rounds

    profile = load_profile(profile_path)
    timer = make_timer(runtime, int(profile.threads.get("intra_op", 1)))
    results = []
    for batch in batches:
        for start in range(0, len(models), GROUP):
            group = models[start : start + GROUP]
            predictions = [ik.predict_latency(plan, profile, batch) for _, plan in group]
            calls = [model_callable(timer, plan, batch) for _, plan in group]
            measured = run_rounds(calls, warmup=3, rounds=11, chunk=0.0)
            for (name, plan), p, m in zip(group, predictions, measured):
                case = {
                    "runtime": runtime,
                    "batch": batch,
                    "model": name,
                    "predicted_ms": p.plan.total * 1e3,
                    "measured_ms": m.median * 1e3,
                    "q1_ms": m.q1 * 1e3,
                    "q3_ms": m.q3 * 1e3,
                    "blocks": [],
                }
                if blocks:
                    tops = [s for s in plan.steps if isinstance(s, BlockPlan)]
                    block_calls = []
                    for step in tops:
                        x = keras.Input(shape=tuple(step.input_shape))
                        model = keras.Model(x, apply_steps([step], x))
                        block_calls.append(timer.callable(model, [tuple(step.input_shape)], batch))
                    for step, bm in zip(tops, run_rounds(block_calls, warmup=2, rounds=7, chunk=0.0)):
                        case["blocks"].append(
                            {
                                "block": step.name,
                                "measured_ms": bm.median * 1e3,
                                "predicted_ms": (p.plan.overhead + p.plan.blocks[step.name]) * 1e3,
                            }
                        )
                case["error"] = case["predicted_ms"] / case["measured_ms"] - 1
                results.append(case)
                print(
                    f"  {runtime} b{batch} {name}: predicted {case['predicted_ms']:.2f} ms, measured "
                    f"{case['measured_ms']:.2f} ms ({100 * case['error']:+.1f}%)",
                    file=sys.stderr,
                    flush=True,
                )
            keras.backend.clear_session()
    return results


def summary(results: list[dict[str, Any]], worst: int) -> str:
    out = []
    keys = sorted({(r["runtime"], r["batch"]) for r in results})
    out.append(
        f"{'runtime':<12} {'batch':>5} {'models':>6} {'±10%':>6} {'±20%':>6} {'MAPE':>6} {'MAPE GoogLeNet-family':>22}"
    )
    for runtime, batch in keys:
        rs = [r for r in results if (r["runtime"], r["batch"]) == (runtime, batch)]
        errs = [abs(r["error"]) for r in rs]
        fam = [
            abs(r["error"]) for r in rs if r["model"] in GOOGLENET_FAMILY or r["model"].startswith("random_")
        ]
        out.append(
            f"{runtime:<12} {batch:>5} {len(rs):>6} {sum(e <= 0.1 for e in errs) / len(rs):>6.1%} "
            f"{sum(e <= 0.2 for e in errs) / len(rs):>6.1%} {statistics.fmean(errs):>6.1%} "
            f"{statistics.fmean(fam) if fam else float('nan'):>22.1%}"
        )
    out.append("")
    out.append("worst cases (the block furthest off, each block run as its own model):")
    for r in sorted(results, key=lambda r: -abs(r["error"]))[:worst]:
        bad = max(r["blocks"], key=lambda b: abs(b["predicted_ms"] / b["measured_ms"] - 1), default=None)
        where = (
            f"; block {bad['block']}: predicted {bad['predicted_ms']:.2f} ms, measured {bad['measured_ms']:.2f} ms"
            if bad
            else ""
        )
        out.append(
            f"  {r['runtime']} b{r['batch']} {r['model']}: {100 * r['error']:+.1f}% "
            f"(predicted {r['predicted_ms']:.2f} ms, measured {r['measured_ms']:.2f} ms, "
            f"q1–q3 {r['q1_ms']:.2f}–{r['q3_ms']:.2f}){where}"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--profile",
        action="append",
        required=True,
        metavar="RUNTIME=PATH",
        help="a runtime and its profile: tensorflow=tf.json, onnxruntime=ort.json (repeatable)",
    )
    ap.add_argument("--batch", default="1", help="batch sizes, e.g. 1,8 (each must be in the profiles)")
    ap.add_argument("--random", type=int, default=100, help="random specs besides the presets (default 100)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the random specs (default 0)")
    ap.add_argument("--presets", default="all", help="comma-separated presets, 'all' or 'none'")
    ap.add_argument("--no-blocks", action="store_true", help="time whole models only")
    ap.add_argument("--worst", type=int, default=8)
    ap.add_argument("--json", metavar="FILE", help="write every case here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    presets = (
        ik.list_presets()
        if args.presets == "all"
        else []
        if args.presets == "none"
        else args.presets.split(",")
    )
    if args.child:  # one runtime, in this process
        (pair,) = args.profile
        runtime, path = pair.split("=", 1)
        results = measure_runtime(
            runtime, path, batches, cases(args.random, args.seed, presets), not args.no_blocks
        )
        json.dump(results, sys.stdout)
        return
    started, results = time.monotonic(), []
    for pair in args.profile:
        argv = [a for a in sys.argv[1:] if a not in args.profile and a != "--profile"]
        r = subprocess.run(
            [sys.executable, __file__, *argv, "--profile", pair, "--child"], capture_output=True, text=True
        )
        sys.stderr.write(r.stderr[-4000:] if r.returncode else "")
        if r.returncode:
            raise SystemExit(f"{pair}: failed (exit {r.returncode})")
        results += json.loads(r.stdout)
    print(
        f"{len({r['model'] for r in results})} models (presets: {len(presets)}, random: {args.random}, seed "
        f"{args.seed}), batches {batches}, {time.monotonic() - started:.0f} s"
    )
    print(summary(results, args.worst))
    if args.json:
        from inception_kit.files import write_text

        write_text(args.json, json.dumps(results, indent=1) + "\n", overwrite=True)


if __name__ == "__main__":
    main()
