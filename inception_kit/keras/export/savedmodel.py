"""Format ``savedmodel``: a folder, signature ``serving_default`` (``image`` -> ``output``).

It loads with plain TensorFlow, no inception_kit and no Keras code needed:
``tf.saved_model.load(path).signatures["serving_default"](image=x)["output"]``; the same
function is the object's ``serve(image)`` method.

Why not ``model.export()``: Keras 3's ``ExportArchive`` stores every weight twice
(keras-team/keras#23553). It tracks the model's *Keras* variables in its ``variables``
lists, and, separately, the *tf.Variable* objects that the traced endpoint captured in
``_all_variables``. With the TensorFlow backend a Keras ``Variable`` is a trackable wrapper
around a ``tf.Variable`` and serializes that variable's value itself
(``_serialize_to_tensors``); the SavedModel saver deduplicates by object, and wrapper and
wrapped are two objects, so each value is written under ``variables/N`` and again under
``_all_variables/M`` (about twice the weight bytes: docs/measurements.md). Here a
bare ``tf.Module`` holds only the tf.Variables the serving function captures (once, keyed
by the Keras weight path) plus that ``tf.function`` (`artifact.serving_module`); the Keras
model is reached only through the function's closure, so it is not tracked: the folder is
the raw weight bytes plus the graph and metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...planner import INPUT_NAME, OUTPUT_NAME
from .artifact import SIGNATURE, Check, VerificationError, model_input_shape, serving_module


def write(model: Any, tmp: Path, x: Any, check: Check | None, quantize: bool) -> dict[str, Any]:
    """Saves the serving module at `tmp`, reloads it and checks it on `x` (when given)."""
    import tensorflow as tf

    root, concrete = serving_module(model, model_input_shape(model))
    tf.saved_model.save(root, str(tmp), signatures={SIGNATURE: concrete})
    extra: dict[str, Any] = {"signature": SIGNATURE}
    if x is not None and check is not None:
        loaded = tf.saved_model.load(str(tmp))
        fn = loaded.signatures[SIGNATURE]
        inputs = fn.structured_input_signature[1]
        if set(inputs) != {INPUT_NAME} or set(fn.structured_outputs) != {OUTPUT_NAME}:
            raise VerificationError(f"unexpected signature {inputs} -> {fn.structured_outputs}")
        extra["max_abs_diff"] = check(fn(**{INPUT_NAME: tf.constant(x)})[OUTPUT_NAME].numpy())
    return extra
