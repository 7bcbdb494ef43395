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
