"""The child process of `tensorflow_child.export_in_tensorflow`: one export on the TensorFlow backend.

    python -m inception_kit.keras.export JOB_JSON

Prints the result, or the error, as JSON on the last line of stdout, and exits 0 either way
(the parent reads the answer; a non-JSON last line means the process itself failed).
"""

from __future__ import annotations

import json
import sys

from .tensorflow_child import run_job


def main(argv: list[str]) -> int:
    print(json.dumps(run_job(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
