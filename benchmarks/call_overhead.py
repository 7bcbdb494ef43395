"""How `inception-kit profile` calls a model, against the other ways to call one.

    .venv/bin/python benchmarks/call_overhead.py [--spec specs/inception_3a.yaml] [--repeats 200]

Times one forward pass of a spec's model at batch 1 four ways, in one process, round-robin
after warm-ups: a concrete `tf.function` in graph mode (what `profile` uses), Keras'
`predict_on_batch`, an XLA-compiled `tf.function`, and `model(x)` op by op in eager mode.
Prints the median of each and its ratio to the concrete function (docs/measurements.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=str(ROOT / "specs" / "inception_3a.yaml"))
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()

    import numpy as np
    import tensorflow as tf

    import inception_kit as ik

    model = ik.build_model(args.spec)
    shape = (1, *model.input_shape[1:])
    x = tf.constant(np.random.default_rng(0).standard_normal(shape, dtype="float32"))
    spec = tf.TensorSpec(shape, tf.float32)
    concrete = tf.function(lambda t: model(t, training=False), autograph=False).get_concrete_function(spec)
    xla = tf.function(lambda t: model(t, training=False), jit_compile=True)
    ways = {
        "concrete tf.function (profile)": lambda: concrete(x),
        "predict_on_batch": lambda: model.predict_on_batch(x),
        "XLA tf.function": lambda: xla(x),
        "eager model(x)": lambda: model(x, training=False),
    }
    for _ in range(args.warmup):
        for call in ways.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, call in ways.items():
            start = time.perf_counter()
            out = call()
            _ = out.numpy() if hasattr(out, "numpy") else out
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["concrete tf.function (profile)"])
    print(f"{Path(args.spec).stem}, batch 1, {args.repeats} rounds, {os.cpu_count()} cores:")
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"  {name:32s} {median * 1e3:8.2f} ms  {median / base:5.2f}x the concrete function")


if __name__ == "__main__":
    main()
