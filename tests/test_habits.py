"""Tests that cannot fail do not come back (issue 16): a grep over the test files.

Each pattern is a kind of assertion that passes whatever the code does, or one that fails
for reasons that are not the code's (a slow machine). Replace the test, not the pattern.
"""

import re

import pytest

from conftest import ROOT

TESTS = sorted(p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_habits.py")

FORBIDDEN = {
    "a measured figure only checked to be positive": r"""\[["']measured_\w+["']\]\s*>\s*0\b""",
    "a label checked instead of the values it introduces": r"""["']machine:["']\s+in\s+\w+""",
    "a script only checked to run (compare its output with real values)": r"def test_\w*_runs\(",
    "a corpus checked by its size (check that every file in the folder is tested)": r"len\(CORPUS\)\s*>=?\s*\d",
    "a hard-coded list of notebooks (compare the folder with the README's list)": r"""["']\d\d_\w+\.ipynb["']""",
    "a wall-clock assertion (speed goes in benchmarks/, as ratios)": r"assert\s+\w*(seconds|elapsed|duration|took)\w*\s*[<>]|BUDGET_S\b",
    "a sleep standing in for an event (wait for something the code writes)": r"time\.sleep\([^)]*\)\s*#\s*(well into|long enough|give it|wait for)",
}


def offences(pattern: str) -> list[str]:
    found = []
    for path in TESTS:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    return found


@pytest.mark.parametrize("what", FORBIDDEN)
def test_no_test_of_this_kind(what):
    assert offences(FORBIDDEN[what]) == [], what


@pytest.mark.parametrize(
    ("what", "line"),
    [
        ("a measured figure only checked to be positive", 'assert got["measured_saving"] > 0'),
        ("a label checked instead of the values it introduces", 'assert "machine:" in r.stdout'),
        (
            "a script only checked to run (compare its output with real values)",
            "def test_compare_quick_report_runs():",
        ),
        (
            "a corpus checked by its size (check that every file in the folder is tested)",
            "assert len(CORPUS) >= 40",
        ),
        (
            "a hard-coded list of notebooks (compare the folder with the README's list)",
            '    "01_one_by_one.ipynb",',
        ),
        (
            "a wall-clock assertion (speed goes in benchmarks/, as ratios)",
            "assert seconds < BUDGET_S, path.name",
        ),
        (
            "a sleep standing in for an event (wait for something the code writes)",
            "time.sleep(0.5)  # well into epoch 2",
        ),
    ],
)
def test_each_pattern_catches_the_line_it_was_written_for(what, line):
    assert re.search(FORBIDDEN[what], line)
