"""The one way in: `load(source, **knobs)` reads a spec (a YAML file, a preset name, a
`ModelSpec`, plain data, or a `Plan`), applies keras.applications' knobs, plans it once and
checks its resource budget. Everything downstream takes the `Plan` it returns.

Plain Python: no TensorFlow here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .analysis import check_plan_budget
from .errors import Problems, SpecError
from .planner import DEFAULT_BUDGET, Budget, Plan, plan
from .spec.catalog import resolve
from .spec.knobs import apply_knobs, knobs_given, misfit
from .spec.parse import parse_plain, parse_text
from .spec.types import ModelSpec
from .spec.yaml_io import read_text

# A plan, or a spec: a YAML file, a preset name, a ModelSpec, or plain data (`ModelSpec.to_data`).
Source = Plan | ModelSpec | Mapping[str, Any] | str | os.PathLike[str]


def load(source: Source, *, budget: Budget | None = DEFAULT_BUDGET, **knobs: Any) -> Plan:
    """Loads a spec and plans it, once, within a resource budget.

    Args:
        source: a YAML file, a preset name (`ik.list_presets()`), a `ModelSpec`, plain data
            in the form `ModelSpec.to_data()` writes, or a `Plan` (returned as is unless
            knobs are given).
        budget: the limits the model must fit (parameters, activation bytes per sample);
            `None` checks nothing (for a model you will cost but never build).
        **knobs: keras.applications' knobs, applied before planning: `input_shape`,
            `include_top`, `pooling`, `classes`, `classifier_activation`, `include_aux`.

    Returns:
        The plan: every layer the builder will create, named, with its shapes.

    Raises:
        SpecError: every problem found, each naming its path (and file, line and column
            where the spec came from YAML), or the budget it exceeds.

    Example:
        >>> import inception_kit as ik
        >>> ik.load("googlenet").output_shape
        (1000,)
    """
    given = knobs_given(**knobs)
    if isinstance(source, Plan):
        planned = source if not given else _planned(source.model, given)
    elif isinstance(source, ModelSpec):
        planned = _planned(source, given)
    elif isinstance(source, Mapping):
        planned = _parsed(*parse_plain(source), given)
    else:
        file = resolve(source)
        planned = _parsed(*parse_text(read_text(file), file), given)
    return _within(planned, budget)


def loads(text: str, file: str = "<string>", *, budget: Budget | None = DEFAULT_BUDGET, **knobs: Any) -> Plan:
    """Like `load`, from YAML text; `file` names it in error messages (`<stdin>`, say)."""
    return _within(_parsed(*parse_text(text, file), knobs_given(**knobs)), budget)


def _within(planned: Plan, budget: Budget | None) -> Plan:
    if budget is None:
        return planned
    check_plan_budget(planned, budget)
    return planned if planned.budget == budget else replace(planned, budget=budget)


def _parsed(model: ModelSpec, problems: Problems, knobs: dict[str, Any]) -> Plan:
    """Plans a parsed model, reporting the parser's and the planner's problems together, in
    file order. Where the structure is broken, shapes are not inferred: they would only
    repeat the damage."""
    if not problems:
        try:
            return _planned(model, knobs)
        except SpecError as err:
            problems.extend(err.problems)
    else:
        try:
            plan(model, shapes=False)
        except SpecError as err:
            problems.extend(err.problems)
    problems.sort()
    problems.raise_if_any()
    raise AssertionError("unreachable: problems were raised")


def _planned(written: ModelSpec, knobs: dict[str, Any]) -> Plan:
    if not knobs:
        return plan(written)
    changed = apply_knobs(written, **knobs)
    try:
        return plan(changed)
    except SpecError as err:
        plan(written)  # the spec's own problem, where it has one
        if "input_shape" not in knobs:
            raise
        raise misfit(changed, err) from None


# ------------------------------------------------------------------- deprecated ways in
# Kept for one release (0.4): each warns and calls `load`/`loads` as it behaved before.


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"inception_kit.{old} is deprecated and goes in 0.5; use {new}", DeprecationWarning, stacklevel=3
    )


def load_plan(source: Source, **knobs: Any) -> Plan:
    """Deprecated: `load(source, budget=None, **knobs)`."""
    _deprecated("load_plan", "ik.load")
    return load(source, budget=None, **knobs)


def loads_plan(text: str, file: str = "<string>", **knobs: Any) -> Plan:
    """Deprecated: `loads(text, file, budget=None, **knobs)`."""
    _deprecated("loads_plan", "ik.loads")
    return loads(text, file, budget=None, **knobs)


def load_spec(source: str | os.PathLike[str], **knobs: Any) -> ModelSpec:
    """Deprecated: `load(source, budget=None, **knobs).model`."""
    _deprecated("load_spec", "ik.load(...).model")
    return load(source, budget=None, **knobs).model


def loads_spec(text: str, file: str = "<string>") -> ModelSpec:
    """Deprecated: `loads(text, file, budget=None).model`."""
    _deprecated("loads_spec", "ik.loads(...).model")
    return loads(text, file, budget=None).model


def from_data(data: Any) -> ModelSpec:
    """Deprecated: `load(data, budget=None).model`."""
    _deprecated("from_data", "ik.load(data).model")
    return load(data, budget=None).model


def validate(source: Source, budget: Budget | None = None, **knobs: Any) -> Plan:
    """Deprecated: `load(source, budget=budget or DEFAULT_BUDGET, **knobs)`."""
    _deprecated("validate", "ik.load")
    return load(source, budget=budget or DEFAULT_BUDGET, **knobs)
