"""Export (issue 8): every format round-trips, artifacts carry their spec, writes are atomic.

Reference outputs are computed here, from Keras models this file builds and whose weights it
saves and passes to `export(weights=...)`; the artifacts are run with their own runtimes on
a batch (seed 1, 3 samples) that is not the exporter's own verification batch (seed 0, 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import site
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from conftest import CLI, SPECS
from inception_kit import analyse, load_spec, render
from inception_kit.errors import ArgumentError, SpecError
from inception_kit.files import DestinationExists
from inception_kit.keras import export as exporters

pytestmark = pytest.mark.slow  # every test here starts TensorFlow (make check leaves them out)

BLOCK = SPECS / "inception_3a.yaml"
TINY_SPEC = SPECS / "inception_3a_tiny.yaml"
GOOGLENET = SPECS / "googlenet.yaml"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

# The documented contract (module docstring of inception_kit.keras.export).
BOUND = {"float32": 1e-5, "int8": 5e-2}
# (format, quantize, file name suffix)
CASES = {
    "savedmodel": ("savedmodel", False, ""),
    "keras": ("keras", False, ".keras"),
    "tflite": ("tflite", False, ".tflite"),
    "tflite-int8": ("tflite", True, ".tflite"),
    "onnx": ("onnx", False, ".onnx"),
}


# --------------------------------------------------------------------------- helpers


def keras_model_with_weights(spec: Path, folder: Path, name: str = "w"):
    """A freshly initialised Keras model of `spec` and its weights saved as `.weights.h5`."""
    from inception_kit.keras.builder import build_model

    model = build_model(spec)
    path = folder / f"{name}.weights.h5"
    model.save_weights(str(path))
    return model, path


def batch(model, n: int = 3, seed: int = 1) -> np.ndarray:
    shape = tuple(int(d) for d in model.input_shape[1:])
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def run_artifact(fmt: str, path: Path, x: np.ndarray) -> np.ndarray:
    """Runs an artifact with its own runtime, through the documented names."""
    if fmt == "savedmodel":
        import tensorflow as tf

        return (
            tf.saved_model.load(str(path))
            .signatures["serving_default"](image=tf.constant(x))["output"]
            .numpy()
        )
    if fmt == "keras":
        import keras

        return np.asarray(keras.models.load_model(str(path))(x, training=False))
    if fmt == "tflite":
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_path=str(path))
        return interpreter.get_signature_runner("serving_default")(image=x)["output"]
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["image"]
        assert [o.name for o in session.get_outputs()] == ["output"]
        assert session.get_inputs()[0].shape[0] == "batch"
        return session.run(["output"], {"image": x})[0]
    raise AssertionError(fmt)


def size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def meta_of(path: Path, fmt: str) -> Path:
    return (
        path / "assets.extra" / "inception_kit"
        if fmt == "savedmodel"
        else path.with_name(path.name + ".inception-kit")
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for folders): to prove nothing changed."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def old_artifact(path: Path) -> dict[str, bytes | None]:
    """Stands in for an artifact an earlier export wrote at `path` (a folder carries the
    manifest that proves it, or --overwrite would refuse to replace it)."""
    if path.suffix:
        path.write_bytes(b"the user's previous model")
    else:
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"the user's previous model")
        (path / exporters.META_DIR).mkdir(parents=True)
        (path / exporters.META_DIR / exporters.MANIFEST_FILE).write_text("{}")
    return listing(path.parent)


def check_round_trip(spec: Path, case: str, folder: Path) -> None:
    fmt, quantize, suffix = CASES[case]
    model, weights = keras_model_with_weights(spec, folder)
    out = folder / f"{model.name}{'-int8' if quantize else ''}{suffix}"
    result = exporters.export(spec, out, format=fmt, weights=weights, quantize=quantize)

    x = batch(model)
    expected = np.asarray(model(x, training=False))
    actual = run_artifact(fmt, out, x)
    assert actual.shape == expected.shape == (3, *model.output_shape[1:])
    kind = "int8" if quantize else "float32"
    bound = BOUND[kind] * max(1.0, float(np.abs(expected).max()))
    assert float(np.abs(actual - expected).max()) <= bound

    # The result and the stored manifest agree with what is on disk.
    meta = meta_of(out, fmt)
    manifest = json.loads((meta / "manifest.json").read_text())
    assert result.path == out and result.format == fmt and result.quantized is quantize
    assert result.size_bytes == (size_on_disk(out) if fmt == "savedmodel" else out.stat().st_size)
    assert manifest["format"] == fmt and manifest["quantized"] is quantize
    assert manifest["input"] == {"name": "image", "dtype": "float32", "shape": [None, *model.input_shape[1:]]}
    assert manifest["output"] == {
        "name": "output",
        "dtype": "float32",
        "shape": [None, *model.output_shape[1:]],
    }
    assert manifest["weights"]["sha256"] == sha256(weights)
    verification = manifest["verification"]
    assert (
        verification["max_abs_diff"] == result.max_abs_diff <= verification["tolerance"] == result.tolerance
    )
    if fmt != "savedmodel":
        assert manifest["artifact"] == {"file": out.name, "bytes": out.stat().st_size, "sha256": sha256(out)}
    analysis = analyse(spec)
    assert (meta / "spec.yaml").read_text() == analysis.plan.model.to_yaml()
    assert json.loads((meta / "report.json").read_text()) == json.loads(render(analysis, "json"))

    summary = result.summary()
    assert "\n" not in summary
    for part in (
        str(out),
        fmt,
        f"{result.size_bytes:,} bytes",
        f"{result.max_abs_diff:.3g}",
        f"{result.tolerance:.3g}",
    ):
        assert part in summary
    # Nothing but the artifact (and its sidecar) was left in the folder.
    names = {p.name for p in folder.iterdir()} - {weights.name}
    assert names == ({out.name} if fmt == "savedmodel" else {out.name, meta.name})
    if quantize:  # int8 weights: about a quarter of the float32 bytes
        assert out.stat().st_size < 0.35 * sum(int(w.numpy().nbytes) for w in model.weights)


def temp_siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and ".tmp" in p.name)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_block(case, tmp_path):
    check_round_trip(BLOCK, case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c != "savedmodel"])
def test_round_trip_googlenet(case, tmp_path):
    check_round_trip(GOOGLENET, case, tmp_path)


FRESH = textwrap.dedent(
    """
    import sys
    sys.modules["inception_kit"] = None  # importing it now fails: the artifact must not need it
    sys.path.extend(sys.argv[3:])        # site-packages, without the editable install's .pth
    import numpy as np, tensorflow as tf
    fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    x = np.load(sys.argv[2])
    np.save(sys.argv[2] + ".out.npy", fn(image=tf.constant(x))["output"].numpy())
    print(fn.structured_input_signature[1]["image"].shape, fn.structured_outputs["output"].shape)
    """
)


@pytest.mark.slow
def test_googlenet_savedmodel_small_and_loadable_without_inception_kit(tmp_path):
    model, weights = keras_model_with_weights(GOOGLENET, tmp_path)
    out = tmp_path / "googlenet"
    result = exporters.export(GOOGLENET, out, weights=weights)

    raw = sum(int(w.numpy().size) * 4 for w in model.weights)  # float32
    assert raw == analyse(GOOGLENET).total.params * 4
    assert size_on_disk(out) == result.size_bytes <= 1.05 * raw

    # A fresh interpreter: isolated (-I: no cwd, no PYTHONPATH), no site processing (-S), run
    # from elsewhere, with inception_kit made unimportable.
    x = batch(model, n=3, seed=2)
    np.save(tmp_path / "x.npy", x)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", FRESH, str(out), str(tmp_path / "x.npy"), *site.getsitepackages()],
        cwd=elsewhere,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[0] == f"{(None, *model.input_shape[1:])} {(None, *model.output_shape[1:])}"
    actual = np.load(tmp_path / "x.npy.out.npy")
    expected = np.asarray(model(x, training=False))
    assert np.abs(actual - expected).max() <= BOUND["float32"]


def test_block_savedmodel_size_bound(tmp_path):
    model, weights = keras_model_with_weights(BLOCK, tmp_path)
    out = tmp_path / "block"
    exporters.export(BLOCK, out, weights=weights)
    raw = sum(int(w.numpy().nbytes) for w in model.weights)
    # A one-block graph is small, but its weights are stored once, not twice as by model.export.
    variables = size_on_disk(out / "variables")
    assert raw <= variables <= 1.01 * raw


def test_untrained_default_and_no_verify(tmp_path):
    result = exporters.export(BLOCK, tmp_path / "a.tflite", format="tflite")
    manifest = json.loads((tmp_path / "a.tflite.inception-kit" / "manifest.json").read_text())
    assert manifest["weights"].startswith("untrained")
    assert "untrained weights" in result.summary()
    result = exporters.export(BLOCK, tmp_path / "b", verify=False)
    manifest = json.loads((tmp_path / "b" / "assets.extra" / "inception_kit" / "manifest.json").read_text())
    assert manifest["verification"] is None and result.max_abs_diff is None
    assert "not verified" in result.summary()


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize("suffix", ["", ".tflite"])
def test_existing_destination_is_not_overwritten(suffix, tmp_path):
    out = tmp_path / f"model{suffix}"
    before = old_artifact(out)
    fmt = "tflite" if suffix else "savedmodel"
    with pytest.raises(DestinationExists, match="already exists"):
        exporters.export(BLOCK, out, format=fmt)
    assert listing(tmp_path) == before


def test_existing_sidecar_alone_is_not_overwritten(tmp_path):
    sidecar = tmp_path / "m.onnx.inception-kit"
    sidecar.mkdir()
    (sidecar / "manifest.json").write_text("{}")
    before = listing(tmp_path)
    with pytest.raises(DestinationExists):
        exporters.export(BLOCK, tmp_path / "m.onnx", format="onnx")
    assert listing(tmp_path) == before


def test_overwrite_replaces_whole(tmp_path):
    out = tmp_path / "model.tflite"
    old_artifact(out)
    exporters.export(BLOCK, out, format="tflite", overwrite=True)
    assert out.read_bytes()[4:8] == b"TFL3"  # the FlatBuffer identifier
    assert "tflite" in exporters.inspect_artifact(out, "table")
    assert temp_siblings(tmp_path) == []


@pytest.mark.parametrize("suffix", ["", ".tflite"])
def test_exception_leaves_destination_as_it_was(suffix, tmp_path, monkeypatch):
    out = tmp_path / f"model{suffix}"
    before = old_artifact(out)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(exporters, "write_meta", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        exporters.export(BLOCK, out, format="tflite" if suffix else "savedmodel", overwrite=True)
    assert listing(tmp_path) == before  # no temporary sibling left either


@pytest.mark.parametrize("suffix", ["", ".onnx"])
def test_failed_verification_leaves_nothing(suffix, tmp_path, monkeypatch):
    monkeypatch.setitem(exporters.TOLERANCE, "float32", -1.0)  # no output can pass
    out = tmp_path / f"model{suffix}"
    with pytest.raises(exporters.VerificationError, match="differ from the Keras model"):
        exporters.export(BLOCK, out, format="onnx" if suffix else "savedmodel")
    assert list(tmp_path.iterdir()) == []


KILLED = textwrap.dedent(
    """
    import sys
    from inception_kit.keras.export import export
    export(sys.argv[1], sys.argv[2], overwrite=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("existing", [True, False], ids=["over-old", "fresh"])
def test_sigkill_mid_export_leaves_destination_as_it_was(existing, tmp_path):
    out = tmp_path / "googlenet"
    before = old_artifact(out) if existing else listing(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(GOOGLENET), str(out)],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    staged = None
    try:
        while staged is None:  # until the temporary SavedModel folder has files in it
            assert proc.poll() is None, (
                f"export ended before it could be killed: {proc.stderr.read()[-2000:]}"
            )
            assert time.monotonic() < deadline, "no temporary sibling appeared"
            for p in tmp_path.glob(".googlenet.*.tmp"):
                if any(p.iterdir()):
                    staged = p
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert staged.exists()  # it was killed while writing, before the move
    after = {k: v for k, v in listing(tmp_path).items() if not k.startswith(staged.name)}
    assert after == before


def run_cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["", ".tflite"])
def test_concurrent_exporters_one_wins_whole(suffix, tmp_path):
    """Two CLI exports to one destination, with different weights: one wins, one exits 2."""
    work = tmp_path / "work"
    work.mkdir()
    models, files = zip(*(keras_model_with_weights(BLOCK, tmp_path, name) for name in ("a", "b")))
    out = work / f"block{suffix}"
    fmt = "tflite" if suffix else "savedmodel"
    procs = [
        run_cli("export", str(BLOCK), "--out", str(out), "--format", fmt, "--weights", str(f), cwd=tmp_path)
        for f in files
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    winner = next(i for i, r in enumerate(results) if r[0] == 0)
    loser = results[1 - winner]
    assert "already exists" in loser[2]
    assert results[winner][1].count("\n") == 1 and results[winner][1].startswith(f"Wrote {out}")

    # Whole: the outputs are the winner's model's, and the metadata names the winner's weights.
    x = batch(models[0])
    actual = run_artifact(fmt, out, x)
    expected = [np.asarray(m(x, training=False)) for m in models]
    assert np.abs(actual - expected[winner]).max() <= BOUND["float32"] * max(
        1.0, float(np.abs(expected[winner]).max())
    )
    assert np.abs(actual - expected[1 - winner]).max() > 1e-3
    manifest = json.loads((meta_of(out, fmt) / "manifest.json").read_text())
    assert manifest["weights"]["sha256"] == sha256(files[winner])
    exporters.inspect_artifact(out, "json")  # the sidecar's sha256 matches the file
    assert temp_siblings(work) == []
    assert {p.name for p in work.iterdir()} == (
        {out.name} if fmt == "savedmodel" else {out.name, out.name + ".inception-kit"}
    )


# --------------------------------------------------------------------------- weights and options


def test_mismatching_weights_name_the_first_bad_layer(tmp_path):
    from inception_kit import loads_spec
    from inception_kit.keras.builder import build_model

    narrow = loads_spec(BLOCK.read_text().replace("3x3: 128", "3x3: 64"))
    other = build_model(narrow)
    bad = tmp_path / "narrow.weights.h5"
    other.save_weights(str(bad))
    ours = build_model(BLOCK)
    # The first layer (in model order) whose weight shapes differ, found here independently.
    first = next(
        l
        for l, o in zip(ours.layers, other.layers)
        if [tuple(w.shape) for w in l.weights] != [tuple(w.shape) for w in o.weights]
    )
    theirs = other.get_layer(first.name)
    with pytest.raises(SpecError) as info:
        exporters.export(BLOCK, tmp_path / "out", weights=bad)
    message = str(info.value)
    assert f"layer '{first.name}'" in message
    for w in first.weights:
        assert str(tuple(w.shape)) in message.split("; received")[0]
    for w in theirs.weights:
        assert str(tuple(w.shape)) in message.split("; received")[1]
    assert not (tmp_path / "out").exists()


def test_weights_file_errors(tmp_path):
    not_h5 = tmp_path / "x.weights.h5"
    not_h5.write_text("not hdf5")
    for path, words in [(tmp_path / "missing.weights.h5", "no such file"), (not_h5, "not an HDF5 file")]:
        with pytest.raises(SpecError, match=words):
            exporters.export(BLOCK, tmp_path / "out", weights=path)
    # A bigger network's weights hold layers the block does not have.
    from inception_kit.keras.builder import build_model

    g = tmp_path / "g.weights.h5"
    build_model(GOOGLENET).save_weights(str(g))
    with pytest.raises(SpecError, match="layer 'conv7x7'"):
        exporters.export(BLOCK, tmp_path / "out", weights=g)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.weights.h5", "x.weights.h5"]


def test_bad_options_name_the_parameter(tmp_path):
    cases = [
        ({"format": "pickle"}, "format"),
        ({"quantize": True}, "quantize"),
        ({"dtype": "float16"}, "dtype"),
        ({"format": "tflite", "dtype": "bfloat16"}, "dtype"),
        ({"format": "keras"}, "out"),
    ]
    for options, parameter in cases:
        out = tmp_path / ("a.h5" if options.get("format") == "keras" else "a")
        with pytest.raises(ArgumentError) as err:
            exporters.export(BLOCK, out, **options)
        assert err.value.parameter == parameter and "--" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_tf2onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(exporters.MissingDependency, match=r"pip install inception-kit\[onnx\]"):
        exporters.export(BLOCK, tmp_path / "a.onnx", format="onnx")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- inspect

INSPECT = textwrap.dedent(
    """
    import json, sys
    import inception_kit.keras.export as ex
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules
    out = {fmt: ex.inspect_artifact(sys.argv[1], fmt) for fmt in ("table", "markdown", "csv", "json", "yaml")}
    out["loaded"] = sorted(m for m in ("tensorflow", "keras", "h5py", "numpy") if m in sys.modules)
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("suffix", ["", ".tflite"])
def test_inspect_without_tensorflow(suffix, tmp_path):
    out = tmp_path / f"block{suffix}"
    exporters.export(BLOCK, out, format="tflite" if suffix else "savedmodel")
    proc = subprocess.run(
        [sys.executable, "-c", INSPECT, str(out)],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["loaded"] == []
    analysis = analyse(BLOCK)
    assert shown["yaml"] == load_spec(BLOCK).to_yaml()
    assert json.loads(shown["json"]) == json.loads(render(analysis, "json"))
    assert shown["csv"] == render(analysis, "csv")
    assert shown["table"].endswith(render(analysis, "table"))
    assert shown["markdown"].endswith(render(analysis, "markdown"))
    assert shown["table"].startswith(f"artifact: {out} ")
    assert (
        "input 'image' float32[batch, 28, 28, 192] -> output 'output' float32[batch, 28, 28, 256]"
        in shown["table"]
    )


def test_inspect_refuses_what_it_cannot_vouch_for(tmp_path):
    out = tmp_path / "block.tflite"
    exporters.export(BLOCK, out, format="tflite")
    # The sidecar's folder itself works too.
    assert (
        exporters.inspect_artifact(tmp_path / "block.tflite.inception-kit", "yaml")
        == load_spec(BLOCK).to_yaml()
    )
    with out.open("ab") as f:  # a file the sidecar does not describe
        f.write(b"\0")
    with pytest.raises(SpecError, match="not written together"):
        exporters.inspect_artifact(out, "table")
    with pytest.raises(SpecError, match="no such file"):
        exporters.inspect_artifact(tmp_path / "nothing", "table")
    (tmp_path / "plain").mkdir()
    with pytest.raises(SpecError, match="an artifact written by inception-kit export"):
        exporters.inspect_artifact(tmp_path / "plain", "json")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inception_v3", "inception_resnet_v2", "xception"])
def test_big_networks_export_as_savedmodel(name, tmp_path):
    spec = SPECS / f"{name}.yaml"
    out = tmp_path / name
    result = exporters.export(spec, out)  # verified against Keras inside export
    raw = analyse(spec).total.params * 4  # float32 bytes; params equal Keras' (test_canonical)
    assert result.max_abs_diff is not None and result.max_abs_diff <= result.tolerance
    assert size_on_disk(out) <= 1.05 * raw
    assert json.loads(exporters.inspect_artifact(out, fmt="json"))["model"]["params"] == raw // 4


def test_bfloat16_savedmodel_and_its_limits(tmp_path):
    result = exporters.export(BLOCK, tmp_path / "half", dtype="bfloat16")
    manifest = json.loads((tmp_path / "half" / exporters.META_DIR / exporters.MANIFEST_FILE).read_text())
    assert manifest["precision"] == "bfloat16" and result.dtype == "bfloat16"
    assert result.max_abs_diff <= result.tolerance
    with pytest.raises(ArgumentError, match="dtype"):
        exporters.export(BLOCK, tmp_path / "half.tflite", format="tflite", dtype="bfloat16")


def test_precision_is_a_deprecated_alias_of_dtype(tmp_path):
    with pytest.warns(DeprecationWarning, match="use dtype="):
        result = exporters.export(TINY_SPEC, tmp_path / "half", precision="bfloat16", verify=False)
    assert result.dtype == "bfloat16"
    manifest = json.loads((tmp_path / "half" / exporters.META_DIR / exporters.MANIFEST_FILE).read_text())
    assert manifest["precision"] == "bfloat16"


def spread_weights(model, seed: int = 0) -> None:
    """Weights far from Keras' initial ones (whose softmax is near uniform): He-normal kernels,
    batch-norm statistics and scales around 1."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape, name = tuple(w.shape), w.path.rsplit("/", 1)[-1]
        if name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = rng.normal(0.0, 0.1, shape)
        else:
            value = rng.normal(0.0, np.sqrt(2.0 / max(int(np.prod(shape[:-1])), 1)), shape)
        w.assign(value.astype(np.float32))


def test_bfloat16_meets_its_own_bound_on_non_trivial_weights_and_reports_its_error(tmp_path):
    """Issue 22: with such weights the bfloat16 export failed the float32 bound of 1e-5."""
    from inception_kit.keras.builder import build_model

    f32 = build_model(TINY_SPEC, "float32")
    spread_weights(f32)
    weights = tmp_path / "w.weights.h5"
    f32.save_weights(str(weights))
    bf16 = build_model(TINY_SPEC, "bfloat16")
    bf16.load_weights(str(weights))

    out = tmp_path / "half"
    result = exporters.export(TINY_SPEC, out, weights=weights, dtype="bfloat16")
    x = (
        np.random.default_rng(exporters.VERIFY_SEED)
        .uniform(-1, 1, (exporters.VERIFY_BATCH, 8, 8, 1))
        .astype(np.float32)
    )
    got = run_artifact("savedmodel", out, x)
    own, full = np.asarray(bf16(x, training=False), np.float32), np.asarray(f32(x, training=False))
    diff = float(np.abs(got - own).max())
    assert diff > 1e-5  # what the old bound refused
    scale = max(1.0, float(np.abs(own).max()))
    assert diff <= 1.6e-2 * scale and result.tolerance == pytest.approx(1.6e-2 * scale)

    def centred_rel_l2(ref, other):  # deploy's measure, written out here
        a = ref.reshape(len(ref), -1) - ref.reshape(len(ref), -1).mean(1, keepdims=True)
        b = other.reshape(len(other), -1) - other.reshape(len(other), -1).mean(1, keepdims=True)
        return float((np.linalg.norm(b - a, axis=1) / np.linalg.norm(a, axis=1)).max())

    v = json.loads((out / exporters.META_DIR / exporters.MANIFEST_FILE).read_text())["verification"]
    assert v["max_abs_diff"] == pytest.approx(diff, abs=1e-7) and v["tolerance"] == result.tolerance
    assert v["bound"] == {"kind": "bfloat16", "factor": 1.6e-2}
    assert v["compared_with"] == "the Keras model (bfloat16), training=False"
    assert v["centred_rel_l2"] == pytest.approx(centred_rel_l2(own, got), rel=1e-3)
    assert v["float32_centred_rel_l2"] == pytest.approx(centred_rel_l2(full, got), rel=1e-3)
    assert 1e-4 < v["float32_centred_rel_l2"] < 5e-2  # bfloat16 costs about a percent, not nothing
    assert f"centred relative L2 {v['float32_centred_rel_l2']:.2g} from the float32 model" in result.summary()
    assert "verified: max abs diff" in exporters.inspect_artifact(
        out, "table"
    )  # inspect reads the new record


TERMINATED = textwrap.dedent(
    """
    import sys
    from inception_kit.cli import main
    sys.exit(main(["export", sys.argv[1], "--out", sys.argv[2], "--overwrite"]))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_or_sigint_mid_export_leaves_the_old_artifact_and_no_temporary(sig, code, tmp_path):
    out = tmp_path / "googlenet"
    before = old_artifact(out)
    proc = subprocess.Popen(
        [sys.executable, "-c", TERMINATED, str(GOOGLENET), str(out)],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    try:
        while not any(any(p.iterdir()) for p in tmp_path.glob(".googlenet.*.tmp")):  # mid-write
            assert proc.poll() is None, f"export ended before the signal: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no temporary sibling appeared"
            time.sleep(0.002)
    finally:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert listing(tmp_path) == before  # the old artifact whole, the temporary gone


@pytest.mark.parametrize("fmt, name", [("savedmodel", "m"), ("tflite", "m.tflite")])
def test_export_onto_a_link_is_refused_and_nothing_touched(fmt, name, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("theirs")
    (tmp_path / name).symlink_to(target if fmt == "savedmodel" else target / "keep.txt")
    before = listing(target)
    r = subprocess.run(
        [*CLI, "export", str(BLOCK), "--out", name, "--format", fmt, "--overwrite"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "symbolic link" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert listing(target) == before and (tmp_path / name).is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["elsewhere", name])
