"""In-process analysis time of a spec, this checkout against another version's checkout.

    git worktree add /tmp/before 422ea78          # e.g. the tree before issue 12
    .venv/bin/python benchmarks/analysis_speed.py --against /tmp/before [--spec specs/inception_v3.yaml]

Each round runs one fresh process per checkout, alternating; a process times the analysis
20 times after 3 warm-ups and prints its median. Prints the medians of the rounds for each
checkout and the per-round ratio other / this (above 1: this checkout is faster). Versions
before 0.3.0 analyse with `ik.validate`, later ones with `ik.analyse`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMER = r"""
import statistics, sys, time
sys.path.insert(0, sys.argv[1])
import inception_kit as ik
analyse = ik.validate if ik.__version__.startswith(("0.1.", "0.2.")) else ik.analyse  # validate(spec) -> costs
spec = sys.argv[2]
for _ in range(3):
    analyse(spec)
times = []
for _ in range(20):
    start = time.perf_counter()
    analyse(spec)
    times.append(time.perf_counter() - start)
print(statistics.median(times) * 1e3)
"""


def median_ms(checkout: Path, spec: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMER, str(checkout), spec], capture_output=True, text=True, cwd="/"
    )
    if out.returncode:
        raise SystemExit(f"{checkout}: the timing process failed:\n{out.stderr}")
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", type=Path, required=True, help="another checkout of inception-kit")
    parser.add_argument("--spec", default="specs/inception_v3.yaml", help="relative to each checkout")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    times: dict[Path, list[float]] = {ROOT: [], args.against.resolve(): []}
    for _ in range(args.rounds):
        for checkout, samples in times.items():
            samples.append(median_ms(checkout, str(checkout / args.spec)))
    for checkout, samples in times.items():
        print(
            f"{checkout}: median {statistics.median(samples):.1f} ms (min {min(samples):.1f}, "
            f"max {max(samples):.1f}, {len(samples)} rounds)"
        )
    this, other = times.values()
    ratios = [o / t for o, t in zip(other, this)]
    print(
        f"other / this, per round: median {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
