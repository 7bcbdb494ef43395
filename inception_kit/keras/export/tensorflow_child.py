"""`export` under the jax or torch backend for the formats only TensorFlow writes: a child
process on the TensorFlow backend (Keras runs one backend per process) does the export.

The parent (`export_in_tensorflow`) writes the spec to a temporary file and runs
``python -m inception_kit.keras.export JOB`` (`__main__`); the child builds the same spec,
loads the same weights file (weights move between backends: tests/test_backends.py),
verifies the artifact against its own Keras model, and prints its result, or its error, as
JSON on the last line of stdout (`answer`). The parent raises the same error or returns the
same `ExportResult`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ...analysis import Budget
from ...errors import SpecError
from ...files import DestinationExists, UnsafeDestination
from ...spec.types import ModelSpec
from .artifact import ExportResult, MissingDependency, VerificationError

WHY_TENSORFLOW = {"savedmodel": "a TensorFlow format", "tflite": "converted by TensorFlow's TFLiteConverter",
                  "onnx": "converted from TensorFlow by tf2onnx; Keras' JAX route needs jax2onnx"}
CHILD = __name__.rpartition(".")[0]  # python -m runs the package's __main__.py
# The folder that holds the inception_kit package this module belongs to (the child imports the same one).
PACKAGE_ROOT = Path(__file__).resolve().parents[3]


def export_in_tensorflow(spec: ModelSpec, out: Path, format: str, weights: Any, quantize: bool, overwrite: bool,
                         verify: bool, budget: Budget, precision: str, backend: str) -> ExportResult:
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
        job = {"spec": str(spec_file), "out": os.fspath(out), "format": format,
               "weights": os.fspath(weights) if weights else None, "quantize": quantize,
               "overwrite": overwrite, "verify": verify, "precision": precision,
               "budget": [budget.max_params, budget.max_activation_bytes]}
        env = {**os.environ, "KERAS_BACKEND": "tensorflow",
               "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run([sys.executable, "-m", CHILD, json.dumps(job)],
                              env=env, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"the TensorFlow export process failed (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}") from None
    return result_of(answer)


def run_job(job_json: str) -> dict[str, Any]:
    """The child's side: runs `export` on the job, returns the answer the parent reads (`result_of`)."""
    from . import export

    job = json.loads(job_json)
    try:
        result = export(job["spec"], job["out"], format=job["format"], weights=job["weights"],
                        quantize=job["quantize"], overwrite=job["overwrite"], verify=job["verify"],
                        budget=Budget(*job["budget"]), precision=job["precision"])
    except SpecError as err:
        problems = [dataclasses.asdict(p) for p in err.problems]
        return {"error": "SpecError", "message": str(err), "problems": problems}
    except DestinationExists as err:
        return {"error": "DestinationExists", "message": str(err), "path": os.fspath(err.path)}
    except UnsafeDestination as err:
        return {"error": "UnsafeDestination", "message": str(err), "path": os.fspath(err.path), "reason": err.reason}
    except Exception as err:
        return {"error": type(err).__name__, "message": str(err)}
    fields = dataclasses.asdict(result)
    return {k: (os.fspath(v) if isinstance(v, Path) else v) for k, v in fields.items()}


def result_of(answer: dict[str, Any]) -> ExportResult:
    """The child's answer as the parent's result, or the child's error raised again."""
    if "error" in answer:
        kind, message = answer["error"], answer["message"]
        if kind == "SpecError":
            from ...errors import Mark, Problem

            raise SpecError([Problem(**{**p, "mark": Mark(**p["mark"]) if p["mark"] else None})
                             for p in answer["problems"]])
        if kind == "DestinationExists":
            raise DestinationExists(Path(answer["path"]))
        if kind == "UnsafeDestination":
            raise UnsafeDestination(Path(answer["path"]), answer["reason"])
        same = {"VerificationError": VerificationError, "MissingDependency": MissingDependency}
        raise same.get(kind, RuntimeError)(message)
    fields = {f.name for f in dataclasses.fields(ExportResult)}
    result = {k: v for k, v in answer.items() if k in fields}
    for k in ("path", "metadata"):
        result[k] = Path(result[k])
    for k in ("input_shape", "output_shape"):
        result[k] = tuple(result[k])
    return ExportResult(**result)
