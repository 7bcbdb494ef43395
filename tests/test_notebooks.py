"""The notebooks run top to bottom and their asserts hold; the committed copies carry outputs.

Each notebook is executed in a temporary copy (the committed file is never touched) with
the `python3` kernel, which must be this interpreter (the venv's), not another Python.
"""

import re
import shutil
import sys

import pytest

from conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # a runaway cell fails (nbclient raises), whatever the machine's speed


def execute(nb, cwd):
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


def test_docs_list_and_render_every_notebook_in_order():
    page = (ROOT / "docs" / "tutorials" / "notebooks.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\d+\. `(\w+)`", page, flags=re.MULTILINE)
    assert NOTEBOOKS and listed == [p.stem for p in NOTEBOOKS]
    nav = re.findall(r"tutorials/notebooks/(\w+)\.ipynb", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert nav == listed  # the site renders each (docs/gen_pages.py copies them in)


def test_kernel_is_this_python(tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("import sys; print(sys.executable)")])
    execute(nb, tmp_path)
    assert nb.cells[0].outputs[0].text.strip() == sys.executable


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_has_its_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), (
        "execute the notebook and save it with its outputs"
    )
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        "run top to bottom in one session"
    )
    assert any(c.outputs for c in code)
    for c in code:
        assert not any(o.output_type == "error" for o in c.outputs), "committed with an error"
    assert any("assert " in c.source for c in code), "key facts are asserted in code"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    for cell in nb.cells:  # run from scratch: no output of the committed run is visible
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    try:
        execute(nb, tmp_path)  # a failing assert cell raises CellExecutionError
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell failed:\n{err}", pytrace=False)
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # wrote nothing beside it


def test_notebooks_show_the_inline_views():
    # The analysis and diff display themselves (their _repr_html_, with a plain-text twin).
    shown = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for c in nb.cells:
            for o in c.get("outputs", []):
                if '<div class="ik' in "".join(
                    o.get("data", {}).get("text/html", "")
                ) and "text/plain" in o.get("data", {}):
                    shown.append(path.stem)
    assert len(set(shown)) >= 3, shown
