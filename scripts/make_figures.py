#!/usr/bin/env python3
"""Regenerates the README figures from the shipped specs.

    .venv/bin/python scripts/make_figures.py            # writes docs/
    .venv/bin/python scripts/make_figures.py --out-dir /tmp/figures

* docs/inception_3a.svg: GoogLeNet's inception (3a) block (specs/inception_3a.yaml), its
  four branches side by side, the 1×1 bottlenecks highlighted.
* docs/googlenet_savings.png: MACs and parameters per block of specs/googlenet.yaml,
  naive against bottleneck.

Needs Graphviz's `dot` (apt-get install graphviz) and matplotlib. Existing figures are
replaced (each atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from inception_kit import analyse  # noqa: E402
from inception_kit.viz import diagram, plots  # noqa: E402

FIGURES = {
    "inception_3a.svg": lambda out: diagram.save(
        analyse(ROOT / "specs" / "inception_3a.yaml"), out, block="inc3a", overwrite=True
    ),
    "googlenet_savings.png": lambda out: plots.savings_chart(
        analyse(ROOT / "specs" / "googlenet.yaml"), out, overwrite=True
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir", type=Path, default=ROOT / "docs", help="where to write the figures (default: docs/)"
    )
    args = parser.parse_args(argv)
    for name, make in FIGURES.items():
        out = args.out_dir / name
        make(out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
