"""Each path's runtime: the artifact loaded once, called on a batch (`__call__`) and timed
(`timer(x)`: a function of no arguments that runs one batch, its input made beforehand).

Every runner takes float32 NHWC input named ``image`` (`planner.INPUT_NAME`) and returns the
output named ``output`` (`artifact.OUTPUT_NAME`); its `name` says which runtime runs it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..keras.export.artifact import SIGNATURE
from ..planner import INPUT_NAME, OUTPUT_NAME


class Runner(Protocol):
    """An artifact loaded by its runtime."""

    name: str  # the runtime, as deploy.md shows it

    def __call__(self, x: Any) -> Any: ...

    def timer(self, x: Any) -> Callable[[], Any]: ...


class TFRunner:
    """A SavedModel's serving_default, run by tf.saved_model.load."""

    def __init__(self, path: Path, name: str = "tf.saved_model.load, serving_default") -> None:
        import tensorflow as tf

        self.tf, self.name = tf, name
        self.loaded = tf.saved_model.load(str(path))
        self.fn = self.loaded.signatures[SIGNATURE]

    def __call__(self, x: Any) -> Any:
        return self.fn(**{INPUT_NAME: self.tf.constant(x)})[OUTPUT_NAME].numpy()

    def timer(self, x: Any) -> Callable[[], Any]:
        t = self.tf.constant(x)
        return lambda: self.fn(**{INPUT_NAME: t})  # on CPU the call returns when the output is computed


class ORTRunner:
    """An ONNX file, run by ONNX Runtime on the CPU."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.name = f"onnxruntime {onnxruntime.__version__}, CPUExecutionProvider"

    def __call__(self, x: Any) -> Any:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]

    def timer(self, x: Any) -> Callable[[], Any]:
        return lambda: self.session.run([OUTPUT_NAME], {INPUT_NAME: x})


class OVRunner:
    """A compiled model per input shape (static shapes are OpenVINO's fast case)."""

    def __init__(self, xml: Path) -> None:
        import openvino as ov

        self.core, self.xml = ov.Core(), str(xml)
        self.name = f"openvino {ov.__version__.split('-')[0]}, CPU, f32"
        self.compiled: dict[tuple[int, ...], Any] = {}

    def _for(self, shape: tuple[int, ...]) -> Any:
        if shape not in self.compiled:
            model = self.core.read_model(self.xml)
            model.reshape(list(shape))
            # float32 inference: on CPUs with bfloat16 instructions OpenVINO's default is bf16
            self.compiled[shape] = self.core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return self.compiled[shape]

    def __call__(self, x: Any) -> Any:
        return self._for(x.shape)(x)[0]

    def timer(self, x: Any) -> Callable[[], Any]:
        request = self._for(x.shape).create_infer_request()
        return lambda: request.infer({0: x})


class LiteRunner:
    """An interpreter per input shape, one thread per core: ai-edge-litert's if installed, else TF's."""

    def __init__(self, path: Path) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter

            self.name = "ai-edge-litert"
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
            self.name = "tf.lite.Interpreter"
        self.make: Callable[[], Any] = lambda: Interpreter(model_path=str(path), num_threads=cores())
        self.runners: dict[tuple[int, ...], Any] = {}
        self.name += f", {cores()} threads"

    def _for(self, shape: tuple[int, ...]) -> Any:
        if shape not in self.runners:
            with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated" (it still works)
                warnings.simplefilter("ignore")
                self.runners[shape] = self.make().get_signature_runner(SIGNATURE)
        return self.runners[shape]

    def __call__(self, x: Any) -> Any:
        return self._for(x.shape)(**{INPUT_NAME: x})[OUTPUT_NAME]

    def timer(self, x: Any) -> Callable[[], Any]:
        run = self._for(x.shape)
        return lambda: run(**{INPUT_NAME: x})


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
