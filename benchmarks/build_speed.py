"""Building InceptionV3 from its YAML against keras.applications.InceptionV3(weights=None).

Both run alternately in one process, after a warm-up of each, so they see the same caches
and the same machine load. Prints medians (min–max) and the ratio; the aim is <= 1.2x.

    .venv/bin/python benchmarks/build_speed.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPEC = Path(__file__).resolve().parent.parent / "specs" / "inception_v3.yaml"


def timed(fn) -> float:
    import keras

    keras.backend.clear_session()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import keras

    import inception_kit as ik

    runs = {
        "keras.applications.InceptionV3": lambda: keras.applications.InceptionV3(weights=None),
        "inception-kit (YAML -> Keras)": lambda: ik.build_model(ik.load_spec(SPEC)),
    }
    for fn in runs.values():  # warm-up: first builds pay for tracing and imports
        timed(fn)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            times[name].append(timed(fn))
    print(f"{'build':34} {'median s':>9} {'min':>7} {'max':>7}")
    for name, ts in times.items():
        print(f"{name:34} {statistics.median(ts):9.3f} {min(ts):7.3f} {max(ts):7.3f}")
    base, ours = (statistics.median(times[n]) for n in runs)
    print(f"ratio inception-kit / keras.applications: {ours / base:.3f}x (aim <= 1.2x)")


if __name__ == "__main__":
    main()
