"""Which Keras backend runs the model: TensorFlow, JAX or PyTorch.

Keras 3 reads `KERAS_BACKEND` once, when it is first imported; `select` sets it and
refuses to switch a process whose Keras already runs another backend. `current` answers
without importing Keras (and so TensorFlow) when Keras is not loaded yet.

What depends on the backend, and what does not:

* the spec, its plan and its cost report: plain Python, never (tests/test_backends.py);
* `build_model`/`apply_block`: standard `keras.layers` only, so every backend builds the
  same layers with the same parameters, and a `.keras`/`.weights.h5` file moves between them;
* `train`: TensorFlow gets tf.data pipelines and tf.distribute strategies; JAX and torch get
  numpy batches (a `keras.utils.PyDataset`, no TensorFlow imported for in-memory data) and
  `--strategy data-parallel` (JAX only: `keras.distribution.DataParallel`);
* `export`: SavedModel and TFLite are TensorFlow formats, so under JAX or torch they are
  written by a child process on the TensorFlow backend from the same spec and weights; ONNX
  goes through Keras' own `model.export(format="onnx")` under torch, and through TensorFlow
  (tf2onnx) under TensorFlow and JAX (Keras' JAX route needs jax2onnx, not a dependency);
* `profile` times `predict_on_batch` under JAX and torch (a concrete tf.function under TF);
  `report --verify` needs TensorFlow's profiler, so the TensorFlow backend.
"""

from __future__ import annotations

import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"


def current() -> str:
    """The backend Keras runs (or will run, once imported) in this process."""
    if "keras" in sys.modules:
        import keras

        return str(keras.backend.backend())
    return os.environ.get("KERAS_BACKEND") or DEFAULT


def select(name: str) -> None:
    """Makes `name` Keras' backend; call before Keras is imported.

    Raises:
        ValueError: an unknown backend, or Keras already loaded with another one.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; received {name!r}")
    if "keras" in sys.modules and current() != name:
        raise ValueError(
            f"Keras already runs the {current()} backend in this process; received {name!r} "
            "(set KERAS_BACKEND before importing Keras)"
        )
    os.environ["KERAS_BACKEND"] = name


def versions() -> dict[str, str]:
    """Keras and its backend's version, for manifests and benchmark tables."""
    import importlib

    import keras

    backend = current()
    module = importlib.import_module(backend)
    return {"keras": keras.__version__, "backend": backend, backend: str(getattr(module, "__version__", "?"))}
