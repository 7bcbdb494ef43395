"""How long fitting a budget takes, whole process: `inception-kit fit SPEC --macs N -o OUT`.

    .venv/bin/python benchmarks/fit_speed.py [--repeats 5]

Runs the command in a fresh Python each time (import, parse, analyse, bisect, verify the
rewritten spec, write it) and prints the median wall time (min–max) per spec, beside the
aim of 1 s, and the in-process time of `fit.fit` alone.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inception_kit.design.fit import fit

SPECS = Path(__file__).resolve().parent.parent / "specs"
CASES = {"googlenet": ("googlenet.yaml", "1.2G"), "inception_v3": ("inception_v3.yaml", "4G")}


def whole_process(spec: Path, macs: str, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "inception_kit.cli",
            "fit",
            str(spec),
            "--macs",
            macs,
            "-o",
            str(out),
            "--overwrite",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"{'spec':<14} {'whole process (median, min-max)':>34} {'fit() in-process':>18}  aim")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (file, macs) in CASES.items():
            spec = SPECS / file
            times = [whole_process(spec, macs, Path(tmp) / f"{name}.yaml") for _ in range(args.repeats)]
            inner = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                fit(spec, macs=macs)
                inner.append(time.perf_counter() - start)
            med = statistics.median(times)
            print(
                f"{name:<14} {med:>14.3f} s ({min(times):.3f}-{max(times):.3f})"
                f" {1e3 * statistics.median(inner):>15.1f} ms"
                f"  < 1 s: {'yes' if med < 1 else 'NO'} ({1 / med:.1f}x margin)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
