"""Shared test helpers: the repo's paths, the command line, Graphviz's dot, Keras sessions."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by every subprocess below

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SHIPPED = sorted(SPECS.glob("*.yaml"))
TEST_SPECS = Path(__file__).resolve().parent / "specs"
CLI = [sys.executable, "-m", "inception_kit.cli"]

# Only the diagram tests need Graphviz; `make test` and `make check` install it, so CI never skips them.
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (make test installs it)"
)


def run(*args, cwd=ROOT, env=None, timeout=300) -> subprocess.CompletedProcess:
    """`inception-kit ARGS...` in a subprocess; stdout and stderr captured as text.

    Paths may be bytes (file names that are not UTF-8); other arguments are passed as str().
    """
    argv = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in args]
    return subprocess.run([*CLI, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Keras numbers auto-named layers per session; clear it between tests that built models."""
    yield
    if "keras" in sys.modules:  # without its gc.collect(): about a second a test once TF is loaded
        sys.modules["keras"].backend.clear_session(free_memory=False)


def write_pngs(folder, classes, per_class, size=(32, 32)):
    """Small RGB PNGs, one solid-ish colour per class, written with TensorFlow's encoder."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for c, colour in classes.items():
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(np.array(colour) + rng.normal(0, 20, (*size, 3)), 0, 255).astype("uint8")
            tf.io.write_file(str(folder / c / f"{i}.png"), tf.io.encode_png(img))
