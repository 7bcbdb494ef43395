"""Format ``onnx``: one file, input ``image`` float32 ``["batch", H, W, C]`` (NHWC, as in
Keras), output ``output``; needs ``pip install inception-kit[onnx]``.

Under TensorFlow it is converted by tf2onnx (opset `ONNX_OPSET`); under torch by Keras' own
``model.export(format="onnx")``. Either way it is checked with onnxruntime.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ...planner import INPUT_NAME, OUTPUT_NAME
from .artifact import (
    Check,
    MissingDependency,
    VerificationError,
    model_input_shape,
    serving_module,
)

ONNX_OPSET = 17


def require(backend: str = "tensorflow") -> None:
    """Raises MissingDependency (naming the extra) unless the ONNX route of `backend` can run."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        if backend == "tensorflow":
            import tf2onnx  # noqa: F401
    except ImportError as err:
        raise MissingDependency(
            f"format onnx needs tf2onnx, onnx and onnxruntime ({err}); install them with: "
            "pip install inception-kit[onnx]"
        ) from err


def write(model: Any, tmp: Path, x: Any, check: Check | None, quantize: bool) -> dict[str, Any]:
    """tf2onnx's conversion of the serving function, written at `tmp` and checked on `x` (when given)."""
    import tensorflow as tf
    import tf2onnx

    shape = model_input_shape(model)
    root, _ = serving_module(model, shape)
    proto, _ = tf2onnx.convert.from_function(
        root.serve,
        input_signature=[tf.TensorSpec((None, *shape), tf.float32, name=INPUT_NAME)],
        opset=ONNX_OPSET,
    )
    for value in (*proto.graph.input, *proto.graph.output):  # tf2onnx names it unk__N
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    tmp.write_bytes(proto.SerializeToString())
    extra: dict[str, Any] = {"opset": ONNX_OPSET}
    if x is not None and check is not None:
        extra["max_abs_diff"] = _check(tmp, x, check)
    return extra


def write_with_keras(model: Any, tmp: Path, x: Any, check: Check | None, quantize: bool) -> dict[str, Any]:
    """Keras' own ONNX export (torch.onnx under the torch backend), checked with onnxruntime.
    Keras names the input after the model's input layer ("image"); the output is renamed."""
    import onnx

    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "model.onnx"
        model.export(str(raw), format="onnx", verbose=False)
        proto = onnx.load(str(raw))
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [OUTPUT_NAME if o == old else o for o in node.output]
    proto.graph.output[0].name = OUTPUT_NAME
    tmp.write_bytes(proto.SerializeToString())
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    extra: dict[str, Any] = {"opset": opset, "exporter": "keras model.export(format='onnx')"}
    if x is not None and check is not None:
        extra["max_abs_diff"] = _check(tmp, x, check)
    return extra


def _check(path: Path, x: Any, check: Check) -> float:
    """Runs the ONNX file with onnxruntime on `x`; its names must be `image` -> `output`."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    if names != ([INPUT_NAME], [OUTPUT_NAME]):
        raise VerificationError(f"unexpected ONNX inputs and outputs {names}")
    return check(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0])
