"""The README's Python example runs as written and prints what its comment says."""

import contextlib
import io
import re

from conftest import ROOT


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_readme_python_example_prints_what_its_comment_says(monkeypatch):
    monkeypatch.chdir(ROOT)
    code = next(block for block in _python_blocks() if "analysis.naive.macs" in block)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    first = out.getvalue().splitlines()[0]
    promised = re.search(r"print\(analysis.total.macs, analysis.naive.macs\)\s+# (.*)", code).group(1)
    assert first == promised


def test_readme_opens_with_the_two_setup_commands_and_ci_runs_the_second():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert text.index(first_block.group(0)) < text.index("```console")  # before any other example
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert ci[-1].split()[:2] == ["make", "test"]


def test_readme_register_kind_example_gives_the_figures_it_states():
    import inception_kit as ik
    from inception_kit.kinds import registry_scope

    (code,) = [block for block in _python_blocks() if "register_kind" in block]
    with registry_scope():  # the example's kind is gone after the test
        exec(compile(code, "README.md", "exec"), {})
        spec = ik.ModelSpec("lb", (28, 28, 192), [ik.LayerSpec("pointwise", filters=16),
                                                  ik.LayerSpec("conv", filters=32, kernel=5)])
        a = ik.analyse(spec)
        text = (ROOT / "README.md").read_text()
        assert f"{a.rows[0].cost.macs:,} MACs for the pointwise layer" in text
        assert f"classic {a.naive.macs:,} naive MACs" in text
        assert (a.rows[0].cost.macs, a.naive.macs) == (2_408_448, 120_422_400)
    assert "pointwise" not in ik.list_kinds()
