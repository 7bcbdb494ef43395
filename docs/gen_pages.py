"""Pages generated from the code at every `mkdocs build` (mkdocs-gen-files), so they cannot drift.

* reference/api.md: every name of `inception_kit.__all__`, documented by mkdocstrings from
  its docstring (found where it is defined, statically: nothing is imported from Keras);
* reference/cli.md: the help of `inception_kit.cli.parser()` and of every subcommand;
* reference/kinds.md: the layer kinds and merges of the registry (`inception_kit.kinds`);
* reference/spec-schema.md: the spec language's JSON Schema (`inception-kit schema`);
* tutorials/notebooks/*.ipynb: the committed notebooks, rendered by mkdocs-jupyter.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import griffe
import mkdocs_gen_files

import inception_kit as ik
from inception_kit.cli import parser
from inception_kit.kinds import REQUIRED, get_kind, get_merge, list_kinds, list_merges
from inception_kit.spec.schema import spec_schema

ROOT = Path(__file__).resolve().parent.parent


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------------------- API


def api_targets() -> dict[str, str]:
    """Each public name and the dotted path where it is defined (griffe reads the sources)."""
    package = griffe.load("inception_kit", search_paths=[str(ROOT)], resolve_aliases=False)
    lazy = {}  # names the package root loads on first use (`__getattr__`): build_model, export
    for module in ("inception_kit.keras.builder", "inception_kit.keras.export"):
        for name in package[module.removeprefix("inception_kit.")].members:
            lazy.setdefault(name, f"{module}.{name}")
    out = {}
    for name in ik.__all__:
        member = package.members.get(name)
        if member is not None and member.is_alias:
            out[name] = member.target_path
        elif member is not None:
            out[name] = f"inception_kit.{name}"
        else:
            out[name] = lazy[name]
    return out


def api_page() -> str:
    lines = [
        "# Python API",
        "",
        "Every name `import inception_kit as ik` exports (`inception_kit.__all__`), from its",
        "docstring. Keras-facing names (`build_model`, `apply_block`, `export`) load TensorFlow",
        "when first used; everything else is plain Python.",
        "",
    ]
    package = griffe.load("inception_kit", search_paths=[str(ROOT)])
    for name, target in api_targets().items():
        obj = package[target.removeprefix("inception_kit.")]
        value = str(getattr(obj, "value", "") or "")
        if obj.is_attribute and value in ik.__all__:  # `Block = BlockSpec`: one entry, not two
            lines += [f"## `ik.{name}`", "", f"Another name for [`ik.{value}`](#ik{value.lower()}).", ""]
            continue
        lines += [
            f"## `ik.{name}`",
            "",
            f"::: {target}",
            "    options:",
            "      show_root_heading: true",
            "      show_root_full_path: true",
            "      show_root_toc_entry: false",
            "      heading_level: 3",
            "",
        ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- CLI


def cli_page() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: one width for the page
    root = parser()
    lines = [
        "# Command line",
        "",
        "Generated from `inception_kit.cli.parser()`: what `--help` prints.",
        "",
        "```text",
        root.format_help().rstrip(),
        "```",
        "",
    ]
    sub = next(a for a in root._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        lines += [f"## `inception-kit {name}`", "", "```text", p.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- kinds


def kinds_page() -> str:
    lines = [
        "# Layer kinds",
        "",
        "Generated from the registry (`ik.list_kinds()`, `ik.list_merges()`): each kind's fields",
        "with their defaults. `ik.register_kind` adds one ([how](../how-to/add-a-kind.md)).",
        "",
        "| kind | what it is | shorthand | fields: default (meaning) |",
        "|---|---|---|---|",
    ]
    for name in list_kinds():
        kind = get_kind(name)
        fields = "; ".join(
            f"`{f}`: {'required' if field.default is REQUIRED else '`' + json.dumps(field.default) + '`'}"
            + (f" ({_md(field.doc)})" if field.doc else "")
            for f, field in kind.fields.items()
        )
        lines.append(
            f"| `{name}` | {_md(kind.doc)} | {f'`{kind.shorthand}`' if kind.shorthand else ''} | {fields or 'none'} |"
        )
    lines += [
        "",
        "## Merges",
        "",
        "How a block joins its branches (`merge:`).",
        "",
        "| merge | what it does |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {_md(get_merge(name).doc)} |" for name in list_merges()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- schema


def schema_page() -> str:
    schema = spec_schema()
    lines = [
        "# Spec language: JSON Schema",
        "",
        "Generated from `inception_kit.spec.schema.spec_schema()`, what `inception-kit schema` prints",
        "(editors with YAML language servers validate specs against it). The",
        "[tutorial](../tutorials/spec-language.md) explains the language by example.",
        "",
        "## Top-level keys",
        "",
        "| key | required | type | description |",
        "|---|---|---|---|",
    ]
    for key, sub in schema["properties"].items():
        kind = sub.get("type", "")
        lines.append(
            f"| `{key}` | {'yes' if key in schema['required'] else ''} | {kind} | {_md(sub.get('description', ''))} |"
        )
    lines += ["", "## Layer kinds in the schema", "", "| kind | description | fields |", "|---|---|---|"]
    node = schema["$defs"]["node"]["oneOf"]
    for option in node:
        for kind, body in option.get("properties", {}).items():
            fields = ", ".join(f"`{f}`" for f in body.get("properties", {}))
            lines.append(f"| `{kind}` | {_md(body.get('description', ''))} | {fields} |")
    lines += ["", "## The whole schema", "", "```json", json.dumps(schema, indent=2), "```", ""]
    return "\n".join(lines)


def main() -> None:
    pages = {
        "reference/api.md": api_page(),
        "reference/cli.md": cli_page(),
        "reference/kinds.md": kinds_page(),
        "reference/spec-schema.md": schema_page(),
    }
    for path, text in pages.items():
        with mkdocs_gen_files.open(path, "w") as f:
            f.write(text)
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        with mkdocs_gen_files.open(f"tutorials/notebooks/{nb.name}", "w") as f:
            f.write(nb.read_text(encoding="utf-8"))


main()
