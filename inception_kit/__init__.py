"""inception-kit: design Inception-style blocks, see what every 1×1 bottleneck saves,
build them as Keras models and export them.

Data flows one way: YAML or Python → spec objects → `load` (the plan: names and shapes) →
`analyse` (costs) → `report`; and plan → `build_model` (Keras) → `export`. Everything up to
the report is plain Python; Keras and TensorFlow are imported only when a model is built.
This module only re-exports.
"""

from __future__ import annotations

import warnings
from types import MappingProxyType
from typing import Any

from .analysis import Analysis, analyse
from .design.diff import Diff, diff
from .errors import ArgumentError, SpecError
from .keras.importer import from_keras
from .kinds import (
    Field,
    KerasRules,
    Kind,
    Merge,
    MergeRules,
    Rules,
    Words,
    get_kind,
    get_merge,
    list_kinds,
    list_merges,
    register_kind,
    register_merge,
)
from .latency.predict import predict_latency
from .loading import load, loads
from .planner import DEFAULT_BUDGET, Budget, Plan
from .report import render, report, report_data
from .spec.catalog import list_presets
from .spec.types import BlockSpec, LayerSpec, ModelSpec
from .version import __version__

__all__ = [
    "DEFAULT_BUDGET",
    "Analysis",
    "ArgumentError",
    "BlockSpec",
    "Budget",
    "Diff",
    "Field",
    "KerasRules",
    "Kind",
    "LayerSpec",
    "Merge",
    "MergeRules",
    "ModelSpec",
    "Plan",
    "Rules",
    "SpecError",
    "Words",
    "__version__",
    "analyse",
    "apply_block",
    "build_model",
    "diff",
    "export",
    "from_keras",
    "get_kind",
    "get_merge",
    "inspect_artifact",
    "list_kinds",
    "list_merges",
    "list_presets",
    "load",
    "loads",
    "predict_latency",
    "register_kind",
    "register_merge",
    "render",
    "report",
    "report_data",
]

# The Keras-facing parts load TensorFlow: they are imported when first asked for.
_LAZY = {
    "build_model": "keras.builder",
    "apply_block": "keras.builder",
    "export": "keras.export",
    "inspect_artifact": "keras.export",
}

# Names 0.3 exported that go in 0.5: (module, name there, what to use instead).
_DEPRECATED = {
    "load_plan": ("loading", "load_plan", "ik.load"),
    "loads_plan": ("loading", "loads_plan", "ik.loads"),
    "load_spec": ("loading", "load_spec", "ik.load(...).model"),
    "loads_spec": ("loading", "loads_spec", "ik.loads(...).model"),
    "from_data": ("loading", "from_data", "ik.load(data)"),
    "validate": ("loading", "validate", "ik.load"),
    "plan": ("planner", "plan", "ik.load"),
    "naive": ("planner", "naive", "inception_kit.planner.naive"),
    "check_budget": ("analysis", "check_budget", "ik.load(source, budget=...)"),
    "apply_knobs": ("spec.knobs", "apply_knobs", "ik.load(source, **knobs)"),
    "knobs_given": ("spec.knobs", "knobs_given", "ik.load(source, **knobs)"),
    "KINDS": ("kinds", "get_kind", "ik.list_kinds() and ik.get_kind(name)"),
    "MERGES": ("kinds", "get_merge", "ik.list_merges() and ik.get_merge(name)"),
    "Model": ("spec.types", "ModelSpec", "ik.ModelSpec (ik.Model is not a keras.Model)"),
    "Block": ("spec.types", "BlockSpec", "ik.BlockSpec"),
    "Layer": ("spec.types", "LayerSpec", "ik.LayerSpec"),
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _DEPRECATED:
        module, attr, instead = _DEPRECATED[name]
        if module != "loading":  # those functions warn when called
            warnings.warn(
                f"inception_kit.{name} is deprecated and goes in 0.5; use {instead}",
                DeprecationWarning,
                stacklevel=2,
            )
        found = getattr(importlib.import_module(f".{module}", __name__), attr)
        if name in ("KINDS", "MERGES"):  # the 0.3 dicts, now a read-only view of the registry
            names = list_kinds() if name == "KINDS" else list_merges()
            return MappingProxyType({n: found(n) for n in names})
        return found
    raise AttributeError(f"module 'inception_kit' has no attribute {name!r}")
