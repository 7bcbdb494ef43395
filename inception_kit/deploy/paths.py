"""The registry of deployment paths: one `DeployPath` entry per path, holding everything
about it (what it is, its artifact's name in DIR, what it needs, how it is written and
verified, how it is run). `deploy` and its table read only this; a new path is one entry.

Each `write` writes and verifies the path's artifact at `dest` through the `Context`
(`export` where export writes that format, else `Context.own` with export's rules) and may
return the runner it verified with, so the artifact is not loaded twice.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from .runtimes import LiteRunner, ORTRunner, OVRunner, Runner, TFRunner

if TYPE_CHECKING:
    from .choosing import Candidate
    from .measuring import Context

Write = Callable[["Context", "Candidate", Path], "Runner | None"]


def _anywhere() -> str | None:
    return None


@dataclass(frozen=True)
class DeployPath:
    """One way to deploy: its artifact, what it needs, how it is written and run."""

    name: str
    label: str  # what it is, in deploy.json and deploy.md
    artifact: str  # the artifact's name in DIR
    write: Write  # writes and verifies the artifact at dest (see the module doc)
    runner: Callable[[Path], Runner]  # loads the artifact with the path's own runtime
    modules: tuple[str, ...] = ()  # Python modules it needs
    extra: str = "keras"  # the extra that installs them
    machine: Callable[[], str | None] = _anywhere  # None when this machine can run it, else why not

    def available(self) -> str | None:
        """None when this path can run here; else why not (and what installs it)."""
        why = self.machine()
        if why is not None:
            return why
        for module in self.modules:
            try:
                importlib.import_module(module)
            except ImportError:
                return f"needs {module}: pip install 'inception-kit[{self.extra}]'"
        return None


# --------------------------------------------------------------------------- the machine


def cpu_has_bf16() -> bool:
    """Whether /proc/cpuinfo lists bfloat16 instructions (avx512_bf16 or amx_bf16)."""
    from ..keras.profile import cpu_fields

    flags = cpu_fields().get("flags", "").split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _bf16_machine() -> str | None:
    if cpu_has_bf16():  # looked up at call time: tests stand in another machine
        return None
    return "this CPU has no bfloat16 instructions (neither avx512_bf16 nor amx_bf16 in /proc/cpuinfo)"


# --------------------------------------------------------------------------- how each is written


def _savedmodel(ctx: Context, c: Candidate, dest: Path) -> None:
    ctx.export(c, dest, format="savedmodel")


def _bfloat16(ctx: Context, c: Candidate, dest: Path) -> None:
    ctx.export(c, dest, format="savedmodel", dtype="bfloat16")


def _frozen(ctx: Context, c: Candidate, dest: Path) -> Runner:
    return ctx.own(c, dest, "savedmodel", "float32", ctx.write_frozen)


def _onnx(ctx: Context, c: Candidate, dest: Path) -> None:
    ctx.export(c, dest, format="onnx")


def _openvino(ctx: Context, c: Candidate, dest: Path) -> Runner:
    onnx_file = ctx.work / PATHS["onnxruntime"].artifact
    if not onnx_file.exists():  # the onnxruntime path was not asked for: write the ONNX file here
        ctx.export(None, onnx_file, format="onnx")
    return ctx.own(c, dest, "openvino", "float32", lambda d: ctx.write_openvino(onnx_file, d))


def _litert(ctx: Context, c: Candidate, dest: Path) -> None:
    ctx.export(c, dest, format="tflite")


def _litert_int8(ctx: Context, c: Candidate, dest: Path) -> Runner | None:
    if ctx.calibration is None:
        ctx.export(c, dest, format="tflite", quantize=True)
        c.reason = "dynamic-range: int8 weights, float activations"
        return None
    runner = ctx.own(c, dest, "tflite", "int8", ctx.write_full_int8, quantized=True)
    c.reason = f"full-integer, calibrated on {len(ctx.calibration)} training samples"
    return runner


def _ov_runner(dest: Path) -> Runner:
    return OVRunner(dest / "model.xml")


def _frozen_runner(dest: Path) -> Runner:
    return TFRunner(dest, "tf.saved_model.load, serving_default (constants)")


_ENTRIES = (
    DeployPath("savedmodel", "TF SavedModel, float32", "savedmodel", _savedmodel, TFRunner),
    DeployPath(
        "frozen", "TF SavedModel, weights frozen into constants", "savedmodel_frozen", _frozen, _frozen_runner
    ),
    DeployPath(
        "bfloat16",
        "TF SavedModel, mixed bfloat16",
        "savedmodel_bfloat16",
        _bfloat16,
        TFRunner,
        machine=_bf16_machine,
    ),
    DeployPath(
        "onnxruntime",
        "ONNX Runtime, float32",
        "model.onnx",
        _onnx,
        ORTRunner,
        ("tf2onnx", "onnx", "onnxruntime"),
        "onnx",
    ),
    DeployPath(
        "openvino",
        "OpenVINO from the ONNX file, float32",
        "openvino",
        _openvino,
        _ov_runner,
        ("tf2onnx", "onnx", "openvino"),
        "onnx,openvino",
    ),
    DeployPath("litert", "LiteRT, float32", "model.tflite", _litert, LiteRunner),
    DeployPath("litert-int8", "LiteRT, int8", "model_int8.tflite", _litert_int8, LiteRunner),
)
PATHS: Mapping[str, DeployPath] = MappingProxyType({p.name: p for p in _ENTRIES})  # read-only
ARTIFACTS: Mapping[str, str] = MappingProxyType({p.name: p.artifact for p in _ENTRIES})


def available(name: str) -> str | None:
    """None when path `name` can run here; else why not (and what installs it)."""
    return PATHS[name].available()
