"""How fast hostile or mistyped specs are refused, before anything is built.

    .venv/bin/python benchmarks/refusals.py [--repeats 5]

Prints, for each spec below, the median time (min–max) to raise SpecError and the peak
Python memory of one refusal (tracemalloc). The hostile cases of issue 11 (items 6–9) are
generated here, each just under the 1 MB file limit or as small as the attack needs; the
aim is under 1 s and 200 MB each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import inception_kit as ik
from inception_kit.spec.yaml_io import MAX_FILE_BYTES

INVALID = Path(__file__).resolve().parent.parent / "tests" / "specs" / "invalid"
HEAD = "name: hostile\ninput: [8, 8, 3]\n"


def _chain(n: int) -> str:
    text = HEAD + "templates:\n"
    for i in range(n):
        body = f"[{{t{i + 1}: {{}}}}]" if i < n - 1 else "[{conv: {filters: 3, kernel: 1}}]"
        text += f"  t{i}:\n    branches:\n      a: {body}\n"
    return text + "layers:\n  - t0\n"


def _fill(prefix: str, item: str, suffix: str) -> str:
    """prefix + as many items as fit under the file limit + suffix."""
    return prefix + item * ((MAX_FILE_BYTES - len(prefix) - len(suffix) - 100) // len(item)) + suffix


GENERATED = {
    "6: inception rows, repeat x repeat": HEAD + "templates:\n  t:\n    branches:\n      a:\n"
    "        - inception: {1x1: 1, 3x3_reduce: 1, 3x3: 1, 5x5_reduce: 1, 5x5: 1, pool_proj: 1, repeat: 1000}\n"
    "layers:\n  - t: {repeat: 1000}\n",
    "6: big value x repeat 1000": _fill(
        HEAD + "layers:\n  - conv: {filters: 3, kernel: 1, repeat: 1000, x: [", "0, ", "0]}\n"
    ),
    "6: conv repeat 1000 (Keras depth)": HEAD + "layers:\n  - conv: {filters: 3, kernel: 1, repeat: 1000}\n",
    "8: a 1 MB list": _fill(HEAD + "layers: [{conv: {filters: 3, kernel: 1}}]\nhead: [", "0, ", "0]\n"),
    "9: NUL byte": HEAD + "layers: [\x00]\n",
    "9: [ nested 5,000 deep": HEAD + "layers: " + "[" * 5000 + "]" * 5000 + "\n",
    "9: a chain of 400 templates": _chain(400),
}


def refusal(load: Callable[[], object]) -> float:
    start = time.perf_counter()
    try:
        load()
    except ik.SpecError:
        return time.perf_counter() - start
    raise AssertionError("the spec was accepted")


def endless_pipe() -> object:
    """Item 7's `validate <(yes)`: a pipe that never ends."""
    read, write = os.pipe()

    def feed() -> None:
        try:
            while True:
                os.write(write, b"y\n" * 4096)
        except OSError:
            pass
        finally:
            os.close(write)

    threading.Thread(target=feed, daemon=True).start()
    try:
        return ik.analyse(f"/dev/fd/{read}")
    finally:
        os.close(read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases: dict[str, Callable[[], object]] = {
        "billion laughs (alias bomb)": lambda: ik.analyse(INVALID / "alias_bomb.yaml"),
        "parameter budget (a huge typo)": lambda: ik.analyse(INVALID / "budget_too_many_params.yaml"),
        "activation budget": lambda: ik.analyse(INVALID / "budget_too_many_activations.yaml"),
        "repeat: 1000000000": lambda: ik.analyse(INVALID / "repeat_huge.yaml"),
        "7: /dev/zero": lambda: ik.analyse("/dev/zero"),
        "7: an endless pipe": endless_pipe,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in GENERATED.items():
            path = Path(tmp) / f"{len(cases)}.yaml"
            path.write_text(text, encoding="utf-8")
            cases[name] = lambda path=path: ik.analyse(path)
        print(f"{'spec':36} {'median':>9}  (min–max)         peak memory")
        for name, load in cases.items():
            times = [refusal(load) for _ in range(args.repeats)]
            tracemalloc.start()
            refusal(load)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(
                f"{name:36} {statistics.median(times) * 1e3:7.1f} ms  ({min(times) * 1e3:.1f}–{max(times) * 1e3:.1f})"
                f"  {peak / 2**20:7.1f} MB"
            )


if __name__ == "__main__":
    main()
