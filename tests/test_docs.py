"""The documentation site: `mkdocs build --strict` passes, and the generated pages hold what
the code holds (the API from docstrings, the CLI from the parser, the kinds from the registry,
the schema from `spec_schema()`, the notebooks rendered).

Built once per module into a temporary folder, in about 5 seconds; skipped only where the
`docs` extra is not installed (make installs it, so CI builds the site).
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import subprocess
import sys

import pytest

import inception_kit as ik
from conftest import ROOT
from inception_kit.kinds import get_kind, list_kinds, list_merges
from inception_kit.spec.schema import spec_schema

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("mkdocs_gen_files", reason="the docs extra is not installed (pip install -e '.[docs]')")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DISABLE_MKDOCS_2_WARNING": "true",
        "NO_MKDOCS_2_WARNING": "1",
    }
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def text_of(path) -> str:
    """A built page's text: tags dropped, entities decoded, whitespace collapsed."""
    raw = path.read_text(encoding="utf-8")
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", raw, flags=re.S)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    return re.sub(r"\s+([.,;:)])", r"\1", text).replace("( ", "(")  # tags around code leave spaces


def plain(docstring: str) -> str:
    """A docstring's first paragraph as the page shows it (Markdown marks gone)."""
    first = docstring.strip().split("\n\n")[0]
    return " ".join(first.replace("`", "").replace("**", "").split())


def docstring_of(name: str) -> str | None:
    """Read from the source, not imported: build_model and export would load TensorFlow."""
    obj = vars(ik).get(name)
    if obj is not None:
        doc = (
            obj.__doc__
            if callable(obj) and getattr(obj, "__module__", "").startswith("inception_kit")
            else None
        )
        # A dataclass without a docstring gets its signature as one: not a docstring to show.
        return None if not doc or doc.startswith(f"{obj.__name__}(") else doc
    for rel in ("keras/builder.py", "keras/export/__init__.py", "keras/export/inspect.py"):
        tree = ast.parse((ROOT / "inception_kit" / rel).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                return ast.get_docstring(node)
    raise AssertionError(f"{name} is in __all__ but defined nowhere the test looks")


def test_api_page_lists_every_public_name_with_its_docstring(site):
    page = site / "reference" / "api" / "index.html"
    raw = page.read_text(encoding="utf-8")
    text = " ".join(text_of(page).replace("¶", " ").split())
    for name in ik.__all__:
        assert f'id="ik{name.lower()}"' in raw or f'id="ik{name.lower().replace("_", "")}"' in raw, name
        doc = docstring_of(name)
        if doc:
            # The first sentence, up to any inline link or code the renderer rewrites.
            sentence = plain(doc).split(". ")[0]
            sentence = re.split(r"[\[\]()]", sentence)[0].strip()
            assert sentence in text, (name, sentence)


def test_cli_page_is_the_parsers_help(site):
    text = text_of(site / "reference" / "cli" / "index.html")
    from inception_kit.cli import parser

    root = parser()
    sub = next(a for a in root._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert f"inception-kit {name}" in text
        for action in p._actions:
            for flag in action.option_strings:
                assert flag in text, (name, flag)
    assert "{table,markdown,csv,json,html}" in text  # report's and diff's --format choices


def test_kinds_page_is_the_registry(site):
    text = text_of(site / "reference" / "kinds" / "index.html")
    for name in list_kinds():
        kind = get_kind(name)
        assert f"{name} {' '.join(kind.doc.split())}" in text, name
        for field, spec in kind.fields.items():
            assert field in text and (not spec.doc or " ".join(spec.doc.split()) in text), (name, field)
    assert all(name in text for name in list_merges())


def test_schema_page_holds_the_whole_schema(site):
    raw = (site / "reference" / "spec-schema" / "index.html").read_text(encoding="utf-8")
    block = re.search(
        r"<pre[^>]*><span></span><code>(.*?)</code></pre>", raw.split('id="the-whole-schema"')[1], re.S
    )
    assert json.loads(html.unescape(re.sub(r"<[^>]+>", "", block.group(1)))) == spec_schema()


def test_notebooks_are_rendered_with_their_outputs(site):
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = site / "tutorials" / "notebooks" / nb.stem / "index.html"
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        outputs = [
            o for c in cells if c["cell_type"] == "code" for o in c["outputs"] if o.get("name") == "stdout"
        ]
        text = text_of(page)
        assert outputs, nb.name
        first = " ".join("".join(outputs[0]["text"]).split())[:60]
        assert first in text, (nb.name, first)


def test_every_page_of_the_site_is_in_the_nav_and_links_resolve(site):
    # --strict already failed on a broken link or a page left out of the nav; this proves the
    # pages the README links to were built.
    for link in re.findall(r"\]\(docs/([^)#]+)\.md", (ROOT / "README.md").read_text(encoding="utf-8")):
        assert (
            (site / link / "index.html").is_file() or (site / f"{link}.html").is_file() or link == "index"
        ), link
