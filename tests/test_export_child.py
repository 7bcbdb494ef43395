"""The TensorFlow child process's errors cross as typed records (issue 23): the parent raises
the child's own class with its fields, never a class name matched as text. Plain Python: the
records are made and read here as the child and the parent make and read them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inception_kit.errors import ArgumentError, Mark, Problem, SpecError
from inception_kit.files import DestinationExists, UnsafeDestination
from inception_kit.keras.export import MissingDependency, VerificationError
from inception_kit.keras.export.tensorflow_child import (
    ERRORS,
    ExportProcessFailed,
    error_record,
    raise_record,
    result_of,
)

CASES = {
    "spec": SpecError(
        [
            Problem("layers[2].kernel", "a positive integer", "-3", Mark("net.yaml", 12, 7)),
            Problem("name", "a plain name", "'a/b'"),
        ]
    ),
    "argument": ArgumentError("dtype", "one of float32, bfloat16", "float16", hint="Keras' names"),
    "destination_exists": DestinationExists(Path("/tmp/out/model.tflite")),
    "unsafe_destination": UnsafeDestination(Path("/home/u"), "it is the home folder"),
    "verification": VerificationError(
        "the savedmodel artifact's outputs differ from the Keras model's by up to 1"
    ),
    "missing_dependency": MissingDependency("format onnx needs tf2onnx: pip install inception-kit[onnx]"),
}


def through_the_pipe(err: BaseException) -> BaseException:
    """`err` as the child writes it (JSON on its last stdout line) and the parent raises it."""
    answer = json.loads(json.dumps({"error": error_record(err)}))
    with pytest.raises(BaseException) as raised:
        result_of(answer)
    return raised.value


def test_every_kind_has_a_case():
    assert set(CASES) == set(ERRORS)


@pytest.mark.parametrize("kind", list(CASES))
def test_each_error_comes_back_as_its_own_class_with_its_fields(kind):
    sent = CASES[kind]
    assert error_record(sent)["kind"] == kind
    back = through_the_pipe(sent)
    assert type(back) is type(sent)
    assert str(back) == str(sent)
    for field in ("problems", "path", "reason", "parameter", "expected", "received", "hint"):
        assert getattr(back, field, None) == getattr(sent, field, None), field


def test_an_argument_error_is_still_worded_with_the_flag_by_the_cli():
    back = through_the_pipe(CASES["argument"])
    assert (
        back.worded("--precision")
        == "--precision: expected one of float32, bfloat16; received 'float16' (Keras' names)"
    )


def test_an_unlisted_error_names_the_childs_class_and_is_no_other_class():
    back = through_the_pipe(ZeroDivisionError("division by zero"))
    assert type(back) is ExportProcessFailed
    assert str(back) == "the TensorFlow export process failed: ZeroDivisionError: division by zero"


def test_a_forged_kind_is_not_looked_up_as_a_class_name():
    """The old protocol raised whatever class name the record held; a record now names a kind."""
    with pytest.raises(ExportProcessFailed):
        raise_record({"kind": "SystemExit", "message": "x"})
    with pytest.raises(ExportProcessFailed):
        raise_record({"error": "VerificationError", "message": "x"})  # the old record's shape


def test_the_records_import_no_tensorflow():
    code = (
        "import sys, inception_kit.keras.export.tensorflow_child; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
