"""The spec language as a JSON Schema, derived from the registry (never written by hand).

Editors that read JSON Schema (VS Code's YAML extension, for example) complete and check
specs as users type. The schema checks structure and field types; `validate` does the
rest (shapes, template arguments, did-you-mean hints). The same schema ships in the
package as `spec.schema.json`; a test keeps the two equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..kinds import ACTIVATION, REQUIRED, get_kind, list_kinds, list_merges
from .parse import TABLE_COLUMNS

SCHEMA_FILE = Path(__file__).with_name("spec.schema.json")
_REF = {"type": "string", "pattern": r"^\$[A-Za-z_][A-Za-z0-9_]*$"}
_NAME = {"type": "string", "pattern": r"^([A-Za-z0-9_.\-]|\{i\})+$"}
_REPEAT = {
    "oneOf": [
        {"type": "integer", "minimum": 1},
        {
            "type": "object",
            "properties": {
                "times": {"type": "integer", "minimum": 1},
                "first": {"type": "integer", "minimum": 0},
            },
            "additionalProperties": False,
        },
    ],
    "description": "N copies named NAME_1..NAME_N, or {times: N, first: K} for NAME_K..",
}


def _value(schema: dict[str, Any], templated: bool) -> dict[str, Any]:
    return {"anyOf": [schema, _REF]} if templated else schema


def _layer_body(kind: str, templated: bool) -> dict[str, Any]:
    spec = get_kind(kind)
    props = {k: {**_value(f.type.schema, templated), "description": f.doc} for k, f in spec.fields.items()}
    body: dict[str, Any] = {
        "type": "object",
        "description": spec.doc,
        "properties": {**props, "name": _NAME, "repeat": _REPEAT},
        "additionalProperties": False,
    }
    required = [k for k, f in spec.fields.items() if f.default is REQUIRED]
    if required and not templated:
        body["required"] = required
    options = [body]
    if spec.shorthand:
        options.append(_value(spec.fields[spec.shorthand].type.schema, templated))
    if not required:
        options.append({"type": "null"})
    return {"oneOf": options} if len(options) > 1 else body


def _node(templated: bool) -> dict[str, Any]:
    suffix = "_t" if templated else ""
    props: dict[str, Any] = {k: _layer_body(k, templated) for k in list_kinds()}
    props["block"] = {"$ref": f"#/$defs/block{suffix}"}
    props["inception"] = {
        "type": "object",
        "description": "a GoogLeNet table row: output channels of each column",
        "properties": {
            **{c: _value({"type": "integer", "minimum": 1}, templated) for c in TABLE_COLUMNS},
            "name": _NAME,
            "pool": {"enum": ["max", "avg"]},
            "repeat": _REPEAT,
        },
        "required": list(TABLE_COLUMNS),
        "additionalProperties": False,
    }
    bare = [k for k in list_kinds() if all(f.default is not REQUIRED for f in get_kind(k).fields.values())]
    return {
        "oneOf": [
            {"enum": bare, "description": "a layer kind with every field defaulted"},
            {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "properties": props,
                # any other key is a template instance: {TEMPLATE: {arg: value, ...}}
                "additionalProperties": {"type": ["object", "null"]},
            },
        ]
    }


def _block(templated: bool) -> dict[str, Any]:
    suffix = "_t" if templated else ""
    return {
        "type": "object",
        "properties": {
            "name": _NAME,
            "merge": _value({"enum": list_merges()}, templated),
            "scale": _value({"type": "number"}, templated),
            "activation": _value(ACTIVATION.schema, templated),
            "repeat": _REPEAT,
            "branches": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {
                    "oneOf": [{"type": "array", "items": {"$ref": f"#/$defs/node{suffix}"}}, {"type": "null"}]
                },
            },
        },
        "required": ["branches"],
        "additionalProperties": False,
    }


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a spec document."""
    template = _block(True)
    template = {
        **template,
        "properties": {
            **{k: v for k, v in template["properties"].items() if k not in ("name", "repeat")},
            "args": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"type": "string"},
                        {"type": "object", "minProperties": 1, "maxProperties": 1},
                    ]
                },
            },
        },
    }
    defaults = {
        k: {
            "type": "object",
            "properties": {f: v.type.schema for f, v in get_kind(k).fields.items()},
            "additionalProperties": False,
        }
        for k in list_kinds()
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "inception-kit spec",
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "input": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 3,
                "maxItems": 3,
                "description": "[height, width, channels]",
            },
            "defaults": {"type": "object", "properties": defaults, "additionalProperties": False},
            "templates": {"type": "object", "additionalProperties": template},
            "layers": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            "head": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            "aux": {
                "type": "object",
                "description": "training-only side heads on the output of layer or block `at`",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "at": {"type": "string", "minLength": 1},
                        "weight": {"type": "number", "minimum": 0},
                        "layers": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    },
                    "required": ["at", "layers"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["input", "layers"],
        "additionalProperties": False,
        "$defs": {
            "node": _node(False),
            "node_t": _node(True),
            "block": _block(False),
            "block_t": _block(True),
        },
    }


def schema_text() -> str:
    return json.dumps(spec_schema(), indent=2) + "\n"
