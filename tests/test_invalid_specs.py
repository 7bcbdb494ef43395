"""The corpus of broken specs: each file states the exact messages it must produce.

Every `tests/specs/invalid/*.yaml` ends with one `# expect: ...` line per problem, in
the order reported; `{file}` stands for the file's path as given to the loader.
"""

from pathlib import Path

import pytest

import inception_kit as ik
from conftest import ROOT, TEST_SPECS

CORPUS = sorted((TEST_SPECS / "invalid").glob("*.yaml"))


def expected_messages(path: Path, shown: str) -> list[str]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [l.split("# expect: ", 1)[1].replace("{file}", shown) for l in lines if l.startswith("# expect: ")]


def test_every_file_in_the_corpus_folder_is_a_tested_spec():
    # A case saved as .yml, or without its extension, would be skipped by the glob in silence.
    assert CORPUS and sorted((TEST_SPECS / "invalid").iterdir()) == CORPUS


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_invalid_spec_reports_exact_messages(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    shown = str(path.relative_to(ROOT))
    expected = expected_messages(path, shown)
    assert expected, f"{path.name} has no '# expect:' line"
    with pytest.raises(ik.SpecError) as err:
        ik.analyse(ik.load(shown))
    assert [str(p) for p in err.value.problems] == expected
    for problem in err.value.problems:  # every problem names a place and a path
        assert problem.path and problem.mark is not None
