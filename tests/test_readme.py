"""The README's Python example runs as written and prints what its comment says."""

import contextlib
import io
import re

from conftest import ROOT


def test_readme_python_example_prints_what_its_comment_says(monkeypatch):
    monkeypatch.chdir(ROOT)
    text = (ROOT / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
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
