#!/usr/bin/env python3
"""Re-executes the notebooks in place, so their committed outputs match the code.

    .venv/bin/python scripts/run_notebooks.py [notebooks/NAME.ipynb ...]

Runs each notebook top to bottom with nbclient (kernel python3: this interpreter's), keeps
its outputs, drops TensorFlow's start-up notes on stderr (oneDNN, absl: no environment
variable silences them) and merges consecutive stream chunks. tests/test_notebooks.py runs
the same notebooks without writing them.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I0000 00:00:\S+ +\d+ (port\.cc|cpu_feature_guard\.cc):\d+\] .*)$"
)


def tidy(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stderr":
                out.text = "".join(
                    l for l in out.text.splitlines(keepends=True) if not NOISE.match(l.rstrip("\n"))
                )
                if not out.text:
                    continue
            previous = outputs[-1] if outputs else None
            if (
                out.output_type == "stream"
                and previous is not None
                and previous.output_type == "stream"
                and previous.name == out.name
            ):
                previous.text += out.text
                continue
            outputs.append(out)
        cell.outputs = outputs


def main(paths: list[str]) -> int:
    for path in [Path(p) for p in paths] or sorted(FOLDER.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(FOLDER)}}
        ).execute()
        tidy(nb)
        nbformat.write(nb, path)
        print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
