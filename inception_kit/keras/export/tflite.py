"""Format ``tflite``: one file, signature ``serving_default`` (``image`` -> ``output``), batch
free (the interpreter resizes). float32, or with ``quantize`` dynamic-range int8 weights
(``tf.lite.Optimize.DEFAULT``; activations, input and output stay float32)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ...planner import INPUT_NAME, OUTPUT_NAME
from .artifact import SIGNATURE, Check, VerificationError, model_input_shape, serving_module


def write(model: Any, tmp: Path, x: Any, check: Check | None, quantize: bool) -> dict[str, Any]:
    """Converts the serving function, writes it at `tmp` and checks it on `x` (when given)."""
    import tensorflow as tf

    root, concrete = serving_module(model, model_input_shape(model))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], root)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    tmp.write_bytes(converter.convert())
    extra: dict[str, Any] = {"signature": SIGNATURE}
    if x is not None and check is not None:
        interpreter = _interpreter(tmp)
        signatures = interpreter.get_signature_list()
        if signatures.get(SIGNATURE) != {"inputs": [INPUT_NAME], "outputs": [OUTPUT_NAME]}:
            raise VerificationError(f"unexpected TFLite signatures {signatures}")
        runner = interpreter.get_signature_runner(SIGNATURE)
        extra["max_abs_diff"] = check(runner(**{INPUT_NAME: x})[OUTPUT_NAME])
    return extra


def _interpreter(path: Path) -> Any:
    import tensorflow as tf

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated" (it still works)
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_path=str(path))
