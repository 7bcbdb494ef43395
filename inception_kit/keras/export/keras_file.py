"""Format ``keras``: a ``.keras`` file; loads with ``keras.models.load_model(path)`` and no
custom objects; its input layer is ``image``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .artifact import Check


def write(model: Any, tmp: Path, x: Any, check: Check | None, quantize: bool) -> dict[str, Any]:
    """Saves the model at `tmp`, reloads it with Keras and checks it on `x` (when given)."""
    import keras

    model.save(str(tmp))  # tmp ends in .keras (export stages it with the artifact's suffix)
    extra: dict[str, Any] = {}
    if x is not None and check is not None:
        loaded = keras.models.load_model(str(tmp))
        extra["max_abs_diff"] = check(keras.ops.convert_to_numpy(loaded(x, training=False)))
    return extra
