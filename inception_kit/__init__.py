"""inception-kit: design Inception-style blocks, see what every 1×1 bottleneck saves,
build them as Keras models and export them.

Data flows one way: YAML or Python → spec objects → `plan` (validation and shapes) →
`analyse` (costs) → `build_model` (Keras) → `export`. Everything up to `analyse` is
plain Python; Keras and TensorFlow are imported only by the builder and exporters.
"""

from __future__ import annotations

import os
from typing import Any

from .catalog import list_presets
from .cost import DEFAULT_BUDGET, Analysis, Budget, analyse, check_budget
from .diff import Diff, diff
from .errors import SpecError
from .importer import from_keras
from .kinds import KINDS, MERGES
from .knobs import apply_knobs, knobs_given
from .report import render, report_data
from .shapes import Plan, plan
from .spec import Block, Layer, Model, from_data, loads_spec
from .spec import load_spec as _load_spec

__version__ = "0.2.0"

__all__ = [
    "KINDS",
    "MERGES",
    "Analysis",
    "Block",
    "Budget",
    "Diff",
    "Layer",
    "Model",
    "Plan",
    "SpecError",
    "analyse",
    "apply_block",
    "apply_knobs",
    "build_model",
    "diff",
    "export",
    "from_data",
    "from_keras",
    "list_presets",
    "load_spec",
    "loads_spec",
    "plan",
    "report",
    "report_data",
    "validate",
]


def load_spec(source: str | os.PathLike[str], **knobs: Any) -> Model:
    """Reads a spec file or a preset by name, with keras.applications' knobs applied
    (`input_shape`, `include_top`, `pooling`, `classes`, `classifier_activation`).

    Raises:
        SpecError: with every problem found, each naming its path (and line, from YAML).
    """
    return _model(source, **knobs)


def _model(spec: Model | str | os.PathLike[str], **knobs: Any) -> Model:
    model = spec if isinstance(spec, Model) else _load_spec(spec)
    given = knobs_given(**knobs)
    if not given:
        return model
    return apply_knobs(model, **given)


def validate(spec: Model | str | os.PathLike[str], budget: Budget = DEFAULT_BUDGET, **knobs: Any) -> Analysis:
    """Checks a spec completely (fields, shapes, resource budget) and returns its costs.

    Raises:
        SpecError: with every problem found, each naming its path (and line, from YAML).
    """
    analysis = analyse(plan(_model(spec, **knobs)))
    check_budget(analysis, budget)
    return analysis


def report(spec: Model | str | os.PathLike[str], fmt: str = "table", budget: Budget = DEFAULT_BUDGET,
           **knobs: Any) -> str:
    """The cost report of a spec as text: 'table', 'markdown', 'csv' or 'json'."""
    return render(validate(spec, budget, **knobs), fmt)


def __getattr__(name: str) -> Any:
    # The Keras-facing parts load TensorFlow; import them only when asked for.
    if name in ("build_model", "apply_block"):
        from . import builder

        return getattr(builder, name)
    if name in ("export", "inspect_artifact"):
        from . import exporters

        return getattr(exporters, name)
    raise AttributeError(f"module 'inception_kit' has no attribute {name!r}")
