"""The layout's rules, read from the code (issue 12): one source of truth for names and kinds,
arrows that run one way, the CLI at the edge.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from inception_kit.kinds import entries

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "inception_kit"
sys.path.insert(0, str(ROOT / "scripts"))
import import_graph  # noqa: E402

SOURCES = sorted(PACKAGE.rglob("*.py"))
NAMES = "|".join(sorted({e.name for e in entries()}, key=len, reverse=True))
# A registered kind's name compared with a kind: `op.kind == "conv"`, `kind in ("conv", ...)`.
KIND_TEST = re.compile(
    rf"""kind\w*\s*(==|!=)\s*["']({NAMES})["']|kind\w*\s+(not\s+)?in\s*[(\[{{][^)\]}}]*["']({NAMES})["']"""
)
# A block's join named outside the planner: `f"{block}_{branch}_scale"`, `..._{merge}`.
JOIN_NAME = re.compile(r"""_scale["']|_\{[\w.]*\.(merge|activation)\}|merge_name""")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _lines(pattern: re.Pattern[str], skip: set[str]) -> list[str]:
    found = []
    for path in SOURCES:
        if _rel(path) in skip:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith("#"):
                found.append(f"{_rel(path)}:{n}: {line.strip()}")
    return found


def test_no_kind_is_tested_by_name_outside_the_registry():
    assert _lines(KIND_TEST, {"inception_kit/kinds.py"}) == []


def test_the_grep_catches_a_kind_test():
    assert KIND_TEST.search('if op.kind == "conv":') and KIND_TEST.search("kind in ('maxpool', 'avgpool')")
    assert not KIND_TEST.search('if source.kind == "folder":')


def test_no_join_name_is_composed_outside_the_planner():
    assert _lines(JOIN_NAME, {"inception_kit/planner.py"}) == []
    assert JOIN_NAME.search('name=f"{step.name}_{bname}_scale"') and JOIN_NAME.search('f"{s.name}_{s.merge}"')


# Private Keras and TensorFlow APIs: modules under keras.src / tensorflow.python, and the
# private graph attributes of Keras tensors and layers. They break on upgrade, so one adapter
# module holds them all.
ADAPTER = "inception_kit/keras/_keras_internals.py"
PRIVATE_MODULES = ("keras.src", "tensorflow.python")
PRIVATE_ATTRIBUTE = re.compile(r"^_(keras_\w+|inbound_nodes|outbound_nodes|legacy_weights)$")
# A kind of merge compared by name (the merge's entry says what it does: `Merge.residual`).
MERGE_TEST = re.compile(r"""merge\w*\s*(==|!=)\s*["']|merge\w*\s+(not\s+)?in\s*[(\[{]\s*["']""")


def _private_api_uses(text: str) -> list[str]:
    """Each import from a private Keras/TensorFlow module, and each use of a private Keras
    graph attribute (as an attribute or as getattr's string)."""
    found = []
    for node in ast.walk(ast.parse(text)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        found += [f"line {node.lineno}: import {n}" for n in names if n.startswith(PRIVATE_MODULES)]
        if isinstance(node, ast.Attribute) and PRIVATE_ATTRIBUTE.match(node.attr):
            found.append(f"line {node.lineno}: .{node.attr}")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and PRIVATE_ATTRIBUTE.match(node.value)
        ):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_private_keras_apis_live_in_one_adapter_module():
    found = [
        f"{_rel(p)} {use}"
        for p in SOURCES
        if _rel(p) != ADAPTER
        for use in _private_api_uses(p.read_text(encoding="utf-8"))
    ]
    assert found == []
    assert _private_api_uses((ROOT / ADAPTER).read_text(encoding="utf-8"))  # it is where they are


def test_the_private_api_rule_catches_a_planted_violation():
    planted = (
        "from keras.src.legacy.saving import legacy_h5_format\n"
        "import tensorflow.python.framework\n"
        "def f(x):\n"
        "    h = getattr(x, '_keras_history', None)\n"
        "    return x._inbound_nodes, h\n"
    )
    assert _private_api_uses(planted) == [
        "line 1: import keras.src.legacy.saving",
        "line 2: import tensorflow.python.framework",
        "line 4: '_keras_history'",
        "line 5: ._inbound_nodes",
    ]
    assert _private_api_uses("import keras\nfrom keras import layers\nx = layers.Dense(1).name\n") == []


def test_no_merge_is_tested_by_name():
    assert _lines(MERGE_TEST, {"inception_kit/kinds.py"}) == []
    assert MERGE_TEST.search('elif block.merge != "add":') and MERGE_TEST.search(
        "if step.merge in ('concat',)"
    )
    assert not MERGE_TEST.search("merge = get_merge(block.merge)")


def test_no_module_imports_names_from_the_package_root():
    assert import_graph.root_imports(PACKAGE) == []


def test_no_private_name_crosses_a_module_boundary():
    found = []
    modules = import_graph.modules(PACKAGE)
    for name, path in modules.items():
        for target, _, names in import_graph.imports(name, path, set(modules)):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != name:
                found.append(f"{name} imports {', '.join(private)} from {target}")
        # `module._name` on a module imported from the package
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {
            a.asname or a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.level
            for a in n.names
            if f"{name.rsplit('.', 1)[0]}.{a.name}" in modules or a.name in ("exporters",)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{name} uses {node.value.id}.{node.attr}")
    assert found == []


def test_argparse_and_exit_codes_live_in_the_cli_only():
    # The edge: the CLI package, and `__main__` modules (entry points of child processes).
    outside = [
        _rel(p) for p in SOURCES if "cli" not in p.relative_to(PACKAGE).parts and p.name != "__main__.py"
    ]
    found = [
        f"{f}: {what}"
        for f in outside
        for what in ("import argparse", "sys.exit(", "def add_arguments", "print(")
        if what in (ROOT / f).read_text(encoding="utf-8")
    ]
    assert found == []


def test_the_cli_imports_its_commands_plainly():
    text = "\n".join(p.read_text(encoding="utf-8") for p in (PACKAGE / "cli").rglob("*.py"))
    assert "importlib" not in text


@pytest.mark.parametrize("stage", ["spec", "kinds", "planner", "analysis", "report", "design"])
def test_the_plain_python_stages_import_nothing_downstream(stage):
    """spec -> kinds -> planner -> analysis -> report: no stage imports Keras-side packages."""
    graph = import_graph.graph(PACKAGE)
    downstream = (
        "inception_kit.keras",
        "inception_kit.train",
        "inception_kit.viz",
        "inception_kit.cli",
        "inception_kit.deploy",
    )
    # The inline notebook views (`_repr_html_`) are the one way back: viz.html is plain Python
    # (it renders report data), checked below; the rest of viz draws with Graphviz or matplotlib.
    views = "inception_kit.viz.html"
    found = [
        f"{src} -> {dst}"
        for src, edges in graph.items()
        if src == f"inception_kit.{stage}" or src.startswith(f"inception_kit.{stage}.")
        for dst in edges
        if dst.startswith(downstream) and dst != views
    ]
    assert found == []


def test_the_html_views_import_only_plain_python_stages():
    edges = import_graph.graph(PACKAGE)["inception_kit.viz.html"]
    downstream = ("inception_kit.keras", "inception_kit.train", "inception_kit.cli", "inception_kit.deploy")
    assert edges and not [dst for dst in edges if dst.startswith(downstream)]
    text = (PACKAGE / "viz" / "html.py").read_text(encoding="utf-8")
    # The diagram (Graphviz) is imported only when a page is drawn, never at import.
    assert not re.search(r"^(from|import) .*(diagram|graphviz|matplotlib)", text, re.M)


def test_parsing_only_parses():
    graph = import_graph.graph(PACKAGE)
    parse = {src: edges for src, edges in graph.items() if src.startswith("inception_kit.spec.")}
    assert [
        f"{src} -> {dst}"
        for src, edges in parse.items()
        for dst in edges
        if dst in ("inception_kit.planner", "inception_kit.analysis")
    ] == []


def test_setup_cfg_ships_every_package():
    """A package missing from setup.cfg installs from a checkout (editable) but not from a wheel."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "inception_kit").rglob("__init__.py")
    }
    assert found - listed == set()


# -- issue 23: library code neither speaks to the terminal nor in flags -------------------

# The library's edge: the CLI package and `__main__` modules (child processes' entry points).
LIBRARY = [p for p in SOURCES if "cli" not in p.relative_to(PACKAGE).parts and p.name != "__main__.py"]
# capture.py redirects the streams at the file-descriptor level to silence converters: it
# writes nothing, and it is the one place allowed to name them.
STREAM_ALLOWED = {"inception_kit/keras/export/capture.py"}


def _code_strings(text: str) -> list[tuple[int, str]]:
    """Every string constant of a module but its docstrings, with its line."""
    tree = ast.parse(text)
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


FLAG = re.compile(r"(^|[\s('`])--[a-z][a-z-]+")


# The one way a library message may name a flag: beside the parameter it sets, as
# "allow_other_machine=True (on the command line, --any-machine)".
BESIDE_ITS_PARAMETER = re.compile(r"on the command line, --[a-z][a-z-]+")


def _flags_in(text: str) -> list[str]:
    return [f"{n}: {s!r}" for n, s in _code_strings(text) if FLAG.search(BESIDE_ITS_PARAMETER.sub("", s))]


def _stream_writes(text: str) -> list[str]:
    """`sys.stdout`/`sys.stderr` named, or `print` called, in code (not in docstrings or comments)."""
    found = []
    for n in ast.walk(ast.parse(text)):
        if (
            isinstance(n, ast.Attribute)
            and n.attr in ("stdout", "stderr")
            and getattr(n.value, "id", None) == "sys"
        ):
            found.append(f"sys.{n.attr}")
        elif isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print":
            found.append("print(")
    return found


def test_no_library_module_writes_to_the_terminal():
    found = {
        _rel(p): w
        for p in LIBRARY
        if _rel(p) not in STREAM_ALLOWED and (w := _stream_writes(p.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_no_library_string_names_a_command_line_flag():
    # Library errors name parameters (ArgumentError); the CLI maps them to flags.
    found = {_rel(p): f for p in LIBRARY if (f := _flags_in(p.read_text(encoding="utf-8")))}
    assert found == {}


def test_the_model_input_and_output_names_are_defined_once_in_the_planner():
    defined = [
        f"{_rel(p)}: {m.group()}"
        for p in SOURCES
        for m in re.finditer(r"(?m)^(INPUT|OUTPUT)_NAME\s*=", p.read_text(encoding="utf-8"))
    ]
    assert defined == ["inception_kit/planner.py: INPUT_NAME =", "inception_kit/planner.py: OUTPUT_NAME ="]
    typed = [
        f"{_rel(p)}:{n}"
        for p in LIBRARY
        if _rel(p) != "inception_kit/planner.py"
        for n, s in _code_strings(p.read_text(encoding="utf-8"))
        if s == "image"
    ]
    assert typed == []  # the input's name ("image") is typed nowhere but the planner


def test_the_new_rules_catch_planted_violations():
    assert _stream_writes('import sys\nsys.stderr.write("x")\n') and _stream_writes('print("x")\n')
    assert not _stream_writes('"""print(x) in a docstring is fine"""\n# print(x) in a comment too\n')
    assert _flags_in('raise ArgumentError("x", "see --batch-size")\n')
    assert _flags_in('problem("--out", "a folder")\n')
    assert not _flags_in('def f():\n    """Like --batch on the command line."""\n') and not _flags_in(
        'x = "a--b"\n'
    )
    assert not _flags_in('hint = "overwrite=True (on the command line, --overwrite)"\n')
