"""How fast hostile or mistyped specs are refused, before anything is built.

    .venv/bin/python benchmarks/refusals.py [--repeats 20]

Prints the median time (min–max) to raise SpecError for each spec below.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import inception_kit as ik

INVALID = Path(__file__).resolve().parent.parent / "tests" / "specs" / "invalid"
CASES = {
    "billion laughs (alias bomb)": INVALID / "alias_bomb.yaml",
    "parameter budget (a huge typo)": INVALID / "budget_too_many_params.yaml",
    "activation budget": INVALID / "budget_too_many_activations.yaml",
    "repeat: 1000000000": INVALID / "repeat_huge.yaml",
}


def refusal_seconds(path: Path) -> float:
    start = time.perf_counter()
    try:
        ik.validate(path)
    except ik.SpecError:
        return time.perf_counter() - start
    raise AssertionError(f"{path} was accepted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    for name, path in CASES.items():
        times = [refusal_seconds(path) for _ in range(args.repeats)]
        print(f"{name:34} {statistics.median(times) * 1e3:7.1f} ms  ({min(times) * 1e3:.1f}–{max(times) * 1e3:.1f})")


if __name__ == "__main__":
    main()
