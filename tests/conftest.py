import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SHIPPED = sorted(SPECS.glob("*.yaml"))
TEST_SPECS = Path(__file__).resolve().parent / "specs"
CLI = [sys.executable, "-m", "inception_kit.cli"]


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Keras numbers auto-named layers per session; clear it between tests that built models."""
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
