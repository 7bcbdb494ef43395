"""inception-kit: design Inception-style blocks, see what every 1×1 bottleneck saves,
build them as Keras models and export them.

Data flows one way: YAML or Python → spec objects → `plan` (names and shapes) → `analyse`
(costs) → `report`; and plan → `build_model` (Keras) → `export`. Everything up to the
report is plain Python; Keras and TensorFlow are imported only when a model is built.
This module only re-exports.
"""

from __future__ import annotations

from typing import Any

from .analysis import DEFAULT_BUDGET, Analysis, Budget, analyse, check_budget, validate
from .design.diff import Diff, diff
from .errors import SpecError
from .keras.importer import from_keras
from .kinds import (Field, KerasRules, Kind, Merge, MergeRules, Rules, Words, get_kind, get_merge, list_kinds,
                    list_merges, register_kind, register_merge)
from .planner import Plan, from_data, load_plan, load_spec, loads_spec, naive, plan
from .report import render, report, report_data
from .spec.catalog import list_presets
from .spec.knobs import apply_knobs, knobs_given
from .spec.types import Block, BlockSpec, Layer, LayerSpec, Model, ModelSpec
from .version import __version__

__all__ = [
    "DEFAULT_BUDGET",
    "Analysis",
    "Block",
    "BlockSpec",
    "Budget",
    "Diff",
    "Field",
    "KerasRules",
    "Kind",
    "Layer",
    "LayerSpec",
    "Merge",
    "MergeRules",
    "Model",
    "ModelSpec",
    "Plan",
    "Rules",
    "SpecError",
    "Words",
    "__version__",
    "analyse",
    "apply_block",
    "apply_knobs",
    "build_model",
    "check_budget",
    "diff",
    "export",
    "from_data",
    "from_keras",
    "get_kind",
    "get_merge",
    "knobs_given",
    "list_kinds",
    "list_merges",
    "list_presets",
    "load_plan",
    "load_spec",
    "loads_spec",
    "naive",
    "plan",
    "register_kind",
    "register_merge",
    "render",
    "report",
    "report_data",
    "validate",
]

# The Keras-facing parts load TensorFlow: they are imported when first asked for.
def __getattr__(name: str) -> Any:
    if name in ("build_model", "apply_block"):
        from .keras import builder

        return getattr(builder, name)
    if name in ("export", "inspect_artifact"):
        from .keras import export

        return getattr(export, name)
    raise AttributeError(f"module 'inception_kit' has no attribute {name!r}")
