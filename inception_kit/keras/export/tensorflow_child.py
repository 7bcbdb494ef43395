"""`export` under the jax or torch backend for the formats only TensorFlow writes: a child
process on the TensorFlow backend (Keras runs one backend per process) does the export.

The parent (`export_in_tensorflow`) writes the spec to a temporary file and runs
``python -m inception_kit.keras.export JOB`` (`__main__`); the child builds the same spec,
loads the same weights file (weights move between backends: tests/test_backends.py),
verifies the artifact against its own Keras model, and prints its result, or its error, as
JSON on the last line of stdout (`answer`). The parent raises the same error or returns the
same `ExportResult`.

Errors cross as typed records, ``{"error": {"kind": KIND, "message": ..., FIELDS}}``: each
kind in `ERRORS` names the class and how its fields are written and read back, so the parent
raises the class itself (a `SpecError` with its problems and marks, a `DestinationExists`
with its path, ...). An error of no listed kind comes back as `ExportProcessFailed`, naming
the child's class.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import ArgumentError, Mark, Problem, SpecError
from ...files import DestinationExists, UnsafeDestination
from ...planner import Budget
from ...spec.types import ModelSpec
from .artifact import ExportResult, MissingDependency, VerificationError

WHY_TENSORFLOW = {
    "savedmodel": "a TensorFlow format",
    "tflite": "converted by TensorFlow's TFLiteConverter",
    "onnx": "converted from TensorFlow by tf2onnx; Keras' JAX route needs jax2onnx",
}
CHILD = __name__.rpartition(".")[0]  # python -m runs the package's __main__.py
# The folder that holds the inception_kit package this module belongs to (the child imports the same one).
PACKAGE_ROOT = Path(__file__).resolve().parents[3]


def export_in_tensorflow(
    spec: ModelSpec,
    out: Path,
    format: str,
    weights: Any,
    quantize: bool,
    overwrite: bool,
    verify: bool,
    budget: Budget,
    dtype: str,
    backend: str,
) -> ExportResult:
    """`export` in a child process on the TensorFlow backend (see the module doc)."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("tensorflow") is None:
        raise MissingDependency(
            f"format {format} is {WHY_TENSORFLOW[format]}: under the {backend} backend it is written by "
            "TensorFlow in a child process, and TensorFlow is not installed: pip install 'inception-kit[keras]'"
        )
    with tempfile.TemporaryDirectory() as d:
        spec_file = Path(d) / "spec.yaml"
        spec_file.write_text(spec.to_yaml(), encoding="utf-8")
        job = {
            "spec": str(spec_file),
            "out": os.fspath(out),
            "format": format,
            "weights": os.fspath(weights) if weights else None,
            "quantize": quantize,
            "overwrite": overwrite,
            "verify": verify,
            "dtype": dtype,
            "budget": [budget.max_params, budget.max_activation_bytes],
        }
        env = {
            **os.environ,
            "KERAS_BACKEND": "tensorflow",
            "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p),
        }
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run(
            [sys.executable, "-m", CHILD, json.dumps(job)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    lines = proc.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ExportProcessFailed(
            f"the TensorFlow export process failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
        ) from None
    return result_of(answer)


class ExportProcessFailed(RuntimeError):
    """The TensorFlow child process failed in a way none of `ERRORS` describes."""


def _argument_error(r: dict[str, Any]) -> ArgumentError:
    err = ArgumentError(r["parameter"], r["expected"], hint=r.get("hint"))
    err.received = r.get("received")  # already shown in the child: kept as written
    err.args = (r["message"],)
    return err


def _spec_error(r: dict[str, Any]) -> SpecError:
    return SpecError(
        [Problem(**{**p, "mark": Mark(**p["mark"]) if p["mark"] else None}) for p in r["problems"]]
    )


@dataclasses.dataclass(frozen=True)
class ErrorKind:
    """How one error class crosses the process boundary."""

    cls: type[BaseException]
    fields: Callable[[Any], dict[str, Any]]  # the child's side: the error's own fields
    rebuild: Callable[[dict[str, Any]], BaseException]  # the parent's side


# Most specific first: the child tries them in order (a VerificationError is also a Failure).
ERRORS: dict[str, ErrorKind] = {
    "spec": ErrorKind(
        SpecError, lambda e: {"problems": [dataclasses.asdict(p) for p in e.problems]}, _spec_error
    ),
    "argument": ErrorKind(
        ArgumentError,
        lambda e: {"parameter": e.parameter, "expected": e.expected, "received": e.received, "hint": e.hint},
        _argument_error,
    ),
    "destination_exists": ErrorKind(
        DestinationExists, lambda e: {"path": os.fspath(e.path)}, lambda r: DestinationExists(Path(r["path"]))
    ),
    "unsafe_destination": ErrorKind(
        UnsafeDestination,
        lambda e: {"path": os.fspath(e.path), "reason": e.reason},
        lambda r: UnsafeDestination(Path(r["path"]), r["reason"]),
    ),
    "verification": ErrorKind(VerificationError, lambda e: {}, lambda r: VerificationError(r["message"])),
    "missing_dependency": ErrorKind(
        MissingDependency, lambda e: {}, lambda r: MissingDependency(r["message"])
    ),
}


def error_record(err: BaseException) -> dict[str, Any]:
    """The child's account of `err`: its kind, message and fields."""
    for kind, how in ERRORS.items():
        if isinstance(err, how.cls):
            return {"kind": kind, "message": str(err), **how.fields(err)}
    return {"kind": "other", "message": str(err), "class": type(err).__name__}


def raise_record(record: dict[str, Any]) -> None:
    """The parent's side: raises the error a record describes."""
    how = ERRORS.get(record.get("kind", ""))
    if how is None:
        raise ExportProcessFailed(
            f"the TensorFlow export process failed: {record.get('class', 'error')}: "
            f"{record.get('message', '')}"
        )
    raise how.rebuild(record)


def run_job(job_json: str) -> dict[str, Any]:
    """The child's side: runs `export` on the job, returns the answer the parent reads (`result_of`)."""
    from . import export

    job = json.loads(job_json)
    try:
        result = export(
            job["spec"],
            job["out"],
            format=job["format"],
            weights=job["weights"],
            quantize=job["quantize"],
            overwrite=job["overwrite"],
            verify=job["verify"],
            budget=Budget(*job["budget"]),
            dtype=job["dtype"],
        )
    except Exception as err:
        return {"error": error_record(err)}
    fields = dataclasses.asdict(result)
    return {k: (os.fspath(v) if isinstance(v, Path) else v) for k, v in fields.items()}


def result_of(answer: dict[str, Any]) -> ExportResult:
    """The child's answer as the parent's result, or the child's error raised again."""
    if "error" in answer:
        raise_record(answer["error"])
    fields = {f.name for f in dataclasses.fields(ExportResult)}
    result = {k: v for k, v in answer.items() if k in fields}
    for k in ("path", "metadata"):
        result[k] = Path(result[k])
    for k in ("input_shape", "output_shape"):
        result[k] = tuple(result[k])
    return ExportResult(**result)
