"""One regressor per kernel type, fitted with scikit-learn and kept as plain JSON numbers.

The model, stated once: **time + floor = (c0 + c1·MACs + c2·input elements + c3·output
elements + c4·params + floor) × exp(forest(log features))**, where `floor` is the runtime's
per-call overhead. The linear part (coefficients ≥ 0) carries how time grows with work, so it
extrapolates sanely to sizes the calibration never saw; a small random forest on the
logarithm of its ratio to the measured time learns what the work terms miss (a 1×1 conv with
few channels far below peak, a cache-friendly size), bounded by the ratios it saw. Errors
are relative to the time of a call (kernel plus floor): a kernel of a few microseconds, whose
time after the overhead is subtracted is mostly noise, then weighs as little as it costs. Fitting needs scikit-learn and numpy;
`predict` is plain Python (a forest is lists of split features, thresholds and leaves).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .kernels import FEATURES, LINEAR

_LINEAR_AT = [FEATURES.index(f) for f in LINEAR]
TREES, DEPTH, LEAF = 24, 6, 2
MIN_FOR_FOREST = 8  # fewer samples than this: the linear part alone


def _log(x: Sequence[float]) -> list[float]:
    return [math.log1p(max(v, 0.0)) for v in x]


def _linear_terms(x: Sequence[float]) -> list[float]:
    return [1.0, *(x[i] for i in _LINEAR_AT)]


def fit(
    xs: Sequence[Sequence[float]], ys: Sequence[float], seed: int = 0, floor: float = 0.0
) -> dict[str, Any]:
    """The regressor of one kernel type from feature vectors `xs` and times `ys` (seconds > 0);
    `floor` is the per-call overhead errors are taken relative to (see the module docstring).

    Returns:
        {"linear": [c0..c4], "floor": s, "forest": [tree, ...]}, each tree {"feature", "threshold",
        "left", "right", "value"} as lists (a leaf has feature -1).
    """
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LinearRegression

    y = np.asarray(ys, dtype=float)
    a = np.asarray([_linear_terms(x) for x in xs], dtype=float)
    scale = np.maximum(a.max(axis=0), 1e-30)  # columns of 1..1e9: fitted on a common scale
    reg = LinearRegression(positive=True, fit_intercept=False)
    reg.fit(a / scale, y, sample_weight=1.0 / (y + floor) ** 2)  # relative to a call's time
    coef = [float(c) for c in reg.coef_ / scale]
    if not any(coef):  # every sample took the same time: a constant
        coef[0] = float(np.median(y))
    linear = [_dot(coef, _linear_terms(x)) for x in xs]
    model: dict[str, Any] = {"linear": coef, "floor": floor, "forest": []}
    if len(xs) < MIN_FOR_FOREST:
        return model
    residual = [math.log((t + floor) / max(p + floor, 1e-12)) for t, p in zip(ys, linear)]
    forest = RandomForestRegressor(
        n_estimators=TREES, max_depth=DEPTH, min_samples_leaf=LEAF, random_state=seed
    )
    forest.fit(np.asarray([_log(x) for x in xs]), np.asarray(residual))
    model["forest"] = [_tree(e.tree_) for e in forest.estimators_]
    return model


def _tree(t: Any) -> dict[str, list[Any]]:
    return {
        "feature": [int(f) for f in t.feature],
        "threshold": [float(v) for v in t.threshold],
        "left": [int(i) for i in t.children_left],
        "right": [int(i) for i in t.children_right],
        "value": [float(v) for v in t.value[:, 0, 0]],
    }


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(p * q for p, q in zip(a, b))


def _walk(tree: dict[str, list[Any]], x: Sequence[float]) -> float:
    node, steps = 0, 0
    feature, threshold, left, right = tree["feature"], tree["threshold"], tree["left"], tree["right"]
    while feature[node] >= 0:
        node = left[node] if x[feature[node]] <= threshold[node] else right[node]
        steps += 1
        if steps > 64:  # a checked profile has no cycles; this bounds a hostile one all the same
            raise ValueError("a tree deeper than 64 levels")
    return float(tree["value"][node])


def predict(model: dict[str, Any], x: Sequence[float]) -> float:
    """Seconds the kernel takes on features `x` (plain Python)."""
    base = max(_dot(model["linear"], _linear_terms(x)), 0.0)
    if not model["forest"]:
        return base
    floor = model.get("floor", 0.0)
    lx = _log(x)
    correction = sum(_walk(t, lx) for t in model["forest"]) / len(model["forest"])
    return float(max((base + floor) * math.exp(correction) - floor, 0.0))
