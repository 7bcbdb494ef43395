"""Prints the package's import graph, read from the code (no module is imported).

    python scripts/import_graph.py [PACKAGE_DIR] [--dot]

One line per module: the inception_kit modules it imports, at the top or inside functions
(`lazy:`, the TensorFlow-side imports made only when called). Then the imports that point
back at the package root (`from . import name`), which the layout forbids. `--dot` writes
Graphviz instead. Used for issue 12's closing note: the graph before and after the redesign.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()  # a module's relative imports start from its package
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, bool, list[str]]]:
    """(imported module, lazy?, names taken from it) for each inception_kit import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        lazy = id(node) not in top and not _in_type_checking(tree, node)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name, lazy, []
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, is_package, node)
            if base not in known:
                continue
            plain = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    yield sub, lazy, []
                else:
                    plain.append(alias.name)
            if plain:
                yield base, lazy, plain


def _in_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
            if any(child is node for child in ast.walk(stmt)):
                return True
    return False


def graph(package: Path) -> dict[str, dict[str, bool]]:
    """module -> {imported module: lazy only?}."""
    mods = modules(package)
    known = set(mods)
    out: dict[str, dict[str, bool]] = {}
    for name, path in mods.items():
        edges: dict[str, bool] = {}
        for target, lazy, _ in imports(name, path, known):
            if target != name:
                edges[target] = edges.get(target, True) and lazy
        out[name] = edges
    return out


def root_imports(package: Path) -> list[str]:
    """`module: names` for each import of a name (not a module) from the package root."""
    mods = modules(package)
    root = package.name
    found = []
    for name, path in mods.items():
        if name == root:
            continue
        for target, _, names in imports(name, path, set(mods)):
            if target == root and names:
                found.append(f"{name}: {', '.join(names)}")
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", nargs="?", default=str(ROOT / "inception_kit"))
    ap.add_argument("--dot", action="store_true", help="print Graphviz dot")
    args = ap.parse_args()
    package = Path(args.package).resolve()
    g = graph(package)
    if args.dot:
        print("digraph imports {\n  rankdir=LR; node [shape=box, fontsize=10];")
        for src, edges in g.items():
            for dst, lazy in sorted(edges.items()):
                print(f'  "{src}" -> "{dst}"' + (" [style=dashed]" if lazy else "") + ";")
        print("}")
        return
    width = max(map(len, g))
    for src, edges in g.items():
        eager = sorted(d for d, lazy in edges.items() if not lazy)
        lazy = sorted(d for d, lazy in edges.items() if lazy)
        short = lambda names: ", ".join(n.split(".", 1)[1] if "." in n else n for n in names)
        line = f"{src.ljust(width)}  -> {short(eager) or '-'}"
        if lazy:
            line += f"  (lazy: {short(lazy)})"
        print(line)
    back = root_imports(package)
    print(
        f"\n{len(g)} modules, {sum(map(len, g.values()))} edges; imports of names from the package root: {len(back)}"
    )
    for line in back:
        print(f"  {line}")


if __name__ == "__main__":
    main()
