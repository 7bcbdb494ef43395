"""Deploy (issue 15): every path measured, the choice rule, skipped runtimes, an atomic DIR.

Reference outputs and accuracies are computed here, from a Keras model this file builds and
whose weights it saves and passes to `deploy(weights=...)`; the held-out split is computed
with data.py's documented rule (numpy RandomState(seed) permutation, the last int(split * n)).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from inception_kit import deploy as dp
from inception_kit.cli.common import ProgressBar
from inception_kit.deploy import paths as deploy_paths
from inception_kit.errors import ArgumentError, SpecError
from inception_kit.files import DestinationExists, UnsafeDestination

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "specs" / "inception_3a_tiny.yaml"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
CLI = [sys.executable, "-m", "inception_kit.cli"]


def fake(
    name: str,
    ms: float,
    deviation: float,
    accuracy: float | None = None,
    verified: bool = True,
    batch: int = 8,
) -> dp.Candidate:
    c = dp.Candidate(name, name, verified=verified, deviation=deviation, max_abs=deviation, accuracy=accuracy)
    c.times[batch] = [ms / 1e3 * f for f in (0.9, 1.0, 1.2)]  # median = ms
    return c


# --------------------------------------------------------------------------- the choice rule (pure)


def test_a_slower_path_with_lower_deviation_loses():
    base = fake("savedmodel", 10.0, 0.0)
    exact_slow = fake("frozen", 9.0, 1e-9)
    close_fast = fake("onnxruntime", 7.5, 3e-5)
    win, why = dp.choose([base, exact_slow, close_fast], dp.parse_tolerance("1e-4"), 8)
    assert win is close_fast
    assert "1.33x the SavedModel's 10 ms" in why  # 10 / 7.5


def test_a_path_outside_tolerance_is_never_chosen():
    base = fake("savedmodel", 10.0, 0.0)
    bf16 = fake("bfloat16", 5.0, 1e-2)
    int8 = fake("litert-int8", 2.0, 5e-2)
    unverified = fake("openvino", 1.0, 0.0, verified=False)
    win, why = dp.choose([base, bf16, int8, unverified], dp.parse_tolerance("deviation:1e-4"), 8)
    assert win is base
    assert (
        "bfloat16 (deviation 0.01)" in why
        and "litert-int8 (deviation 0.05)" in why
        and "openvino (not verified" in why
    )
    # A looser deviation bound admits bf16 but still not int8.
    assert dp.choose([base, bf16, int8], dp.parse_tolerance("2e-2"), 8)[0] is bf16
    # Nothing within: no winner.
    assert dp.choose([bf16, int8], dp.parse_tolerance("1e-4"), 8)[0] is None


def test_accuracy_tolerance_counts_points_lost():
    base = fake("savedmodel", 10.0, 0.0, accuracy=0.95)
    int8 = fake("litert-int8", 2.0, 5e-2, accuracy=0.945)  # 0.5 points lost
    worse = fake("bfloat16", 1.0, 1e-2, accuracy=0.93)  # 2 points lost
    tol = dp.parse_tolerance("accuracy:0.01")
    assert dp.choose([base, int8, worse], tol, 8, reference_accuracy=0.95)[0] is int8
    assert (
        dp.choose([base, int8, worse], dp.parse_tolerance("accuracy:0.001"), 8, reference_accuracy=0.95)[0]
        is base
    )


def test_the_largest_batch_decides():
    a, b = fake("savedmodel", 10.0, 0.0, batch=8), fake("onnxruntime", 12.0, 0.0, batch=8)
    a.times[1], b.times[1] = [0.005], [0.001]  # b wins at batch 1, loses at batch 8
    assert dp.choose([a, b], dp.parse_tolerance("1e-4"), 8)[0] is a
    assert dp.choose([a, b], dp.parse_tolerance("1e-4"), 1)[0] is b


@pytest.mark.parametrize("text", ["", "fast", "accuracy:", "accuracy:-1", "speed:0.1", "nan", "inf"])
def test_bad_tolerance_names_the_parameter(text):
    with pytest.raises(ArgumentError) as err:
        dp.parse_tolerance(text)
    assert err.value.parameter == "tolerance" and "--" not in str(err.value)


def test_batches():
    assert dp.parse_batches("1,8") == (1, 8)
    assert dp.parse_batches(" 32 ") == (32,)
    assert dp.parse_batches("4096") == (4096,)
    for bad in ("", "0", "1,,8", "1,x", "-1", "8,8", "1.5", "1000000000000", "4097", "\u00b2"):
        with pytest.raises(ArgumentError) as err:
            dp.parse_batches(bad)
        assert err.value.parameter == "batches"


@pytest.mark.parametrize(
    "settings, parameter",
    [
        ({"batches": (0,)}, "batches"),
        ({"batches": (10**12,)}, "batches"),
        ({"repeats": 0}, "repeats"),
        ({"warmup": -1}, "warmup"),
        ({"paths": ("litert",)}, "paths"),
        ({"tolerance": "accuracy:0.01"}, "tolerance"),
        ({"weights": "no/such.weights.h5"}, "weights"),
    ],
)
def test_settings_out_of_range_name_the_parameter_not_a_flag(settings, parameter, tmp_path):
    with pytest.raises(ArgumentError) as err:
        dp.deploy(TINY, tmp_path / "d", **settings)
    assert err.value.parameter == parameter and "--" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_options_and_keywords_are_one_settings_record():
    base = dp.DeployOptions(repeats=3, paths=("savedmodel",))
    with pytest.raises(ArgumentError, match="warmup"):
        dp.deploy(TINY, "unused", base, warmup=-2)  # keywords override the record, checked before any work
    with pytest.raises(TypeError):
        dp.deploy(TINY, "unused", repets=3)  # a misspelt setting is not silently dropped


@pytest.mark.parametrize(
    "argv",
    [
        ["--batch", "1,x"],
        ["--batch", "0"],
        ["--tolerance", "accuracy:0.01"],
        ["--tolerance", "loose"],
        ["--paths", "savedmodel,tensorrt"],
        ["--batch", "1000000000000"],
        ["--repeats", "0"],
        ["--weights", "missing.weights.h5"],
    ],
)
def test_cli_bad_input_exits_2(argv, tmp_path):
    proc = subprocess.run(
        [*CLI, "deploy", str(TINY), "--out", str(tmp_path / "d"), *argv],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert argv[0] in proc.stderr  # worded with the flag the user typed
    assert not (tmp_path / "d").exists()


def test_progress_is_plain_lines_in_a_pipe():
    out = io.StringIO()  # not a TTY
    bar = ProgressBar("deploy", out)  # what cli/deploy.py draws deploy's Progress with
    for i, what in enumerate(["exporting savedmodel", "batch 1: round 1/2", "batch 1: round 2/2", "done"]):
        bar(i, 3, what)
    assert out.getvalue().splitlines() == [
        "deploy [0/3] exporting savedmodel",
        "deploy [1/3] batch 1: round 1/2",
        "deploy [3/3] done",
    ]


# --------------------------------------------------------------------------- missing runtimes


def test_a_missing_runtime_is_skipped_with_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert dp.available("openvino").endswith("pip install 'inception-kit[onnx,openvino]'")
    assert dp.available("onnxruntime").endswith("pip install 'inception-kit[onnx]'")
    assert dp.available("litert") is None and dp.available("savedmodel") is None
    monkeypatch.setattr(deploy_paths, "cpu_has_bf16", lambda: False)
    assert "no bfloat16 instructions" in dp.available("bfloat16")


def test_one_registry_entry_per_path():
    """Each path is one entry: its name, artifact, availability, writer and runner."""
    assert list(dp.PATHS) == [
        "savedmodel",
        "frozen",
        "bfloat16",
        "onnxruntime",
        "openvino",
        "litert",
        "litert-int8",
    ]
    for name, path in dp.PATHS.items():
        assert path.name == name and dp.ARTIFACTS[name] == path.artifact
        assert callable(path.write) and callable(path.runner) and callable(path.available)
    assert len(set(dp.ARTIFACTS.values())) == len(dp.PATHS)  # no two paths share a name in DIR
    with pytest.raises(TypeError):
        dp.PATHS["mine"] = dp.PATHS["savedmodel"]  # read-only: a new path is a new entry in paths.py


def untrained_weights(folder: Path):
    """The tiny spec built here, and its weights saved for deploy."""
    from inception_kit.keras.builder import build_model

    model = build_model(TINY)
    path = folder / "tiny.weights.h5"
    model.save_weights(str(path))
    return model, path


@pytest.mark.slow
def test_deploy_lists_skipped_runtimes_and_still_chooses(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setattr(deploy_paths, "cpu_has_bf16", lambda: False)
    _, weights = untrained_weights(tmp_path)
    r = dp.deploy(
        TINY,
        tmp_path / "d",
        weights=weights,
        batches=(2,),
        repeats=1,
        warmup=0,
        paths=["savedmodel", "bfloat16", "onnxruntime", "openvino"],
    )
    status = {c.name: (c.status, c.reason) for c in r.candidates}
    assert status["savedmodel"] == ("measured", "")
    assert status["bfloat16"][0] == status["onnxruntime"][0] == status["openvino"][0] == "skipped"
    assert "pip install 'inception-kit[onnx" in status["onnxruntime"][1]
    assert r.winner.name == "savedmodel"
    saved = json.loads((tmp_path / "d" / "deploy.json").read_text())
    assert [(p["name"], p["status"]) for p in saved["paths"]] == [
        ("savedmodel", "measured"),
        ("bfloat16", "skipped"),
        ("onnxruntime", "skipped"),
        ("openvino", "skipped"),
    ]
    assert "skipped: needs onnxruntime" in (tmp_path / "d" / "deploy.md").read_text()


# --------------------------------------------------------------------------- every path, for real


def expected_paths() -> set[str]:
    """What this machine can run, found independently of deploy.available."""
    have = lambda *mods: all(importlib.util.find_spec(m) is not None for m in mods)
    flags = Path("/proc/cpuinfo").read_text().split()
    paths = {"savedmodel", "frozen", "litert", "litert-int8"}
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        paths.add("bfloat16")
    if have("tf2onnx", "onnx", "onnxruntime"):
        paths.add("onnxruntime")
    if have("tf2onnx", "onnx", "openvino"):
        paths.add("openvino")
    return paths


def run_artifact(path: Path, x):
    """Runs a written artifact with its own runtime, without inception_kit."""
    import numpy as np

    if path.suffix == ".tflite":
        import tensorflow as tf

        with warnings.catch_warnings():  # tf.lite.Interpreter is deprecated (still works)
            warnings.simplefilter("ignore")
            runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serving_default")
        return runner(image=x)["output"]
    if path.suffix == ".onnx":
        import onnxruntime

        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
            None, {"image": x}
        )[0]
    if (path / "model.xml").exists():
        import openvino as ov

        return ov.Core().compile_model(str(path / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(
            x
        )[0]
    import tensorflow as tf

    return np.asarray(
        tf.saved_model.load(str(path)).signatures["serving_default"](image=tf.constant(x))["output"]
    )


@pytest.mark.slow
def test_deploy_covers_every_available_path(tmp_path):
    import numpy as np
    from sklearn.datasets import load_digits

    from inception_kit import inspect_artifact

    model, weights = untrained_weights(tmp_path)
    out = tmp_path / "d"
    r = dp.deploy(TINY, out, weights=weights, batches=(1, 4), data="digits", repeats=3, warmup=1)

    measured = {c.name for c in r.candidates if c.status == "measured"}
    assert measured == expected_paths(), [(c.name, c.status, c.reason) for c in r.candidates]
    by = {c.name: c for c in r.candidates}
    for name in measured:
        c = by[name]
        assert sorted(c.times) == [1, 4] and all(len(t) == 3 for t in c.times.values())
        assert c.bytes > 0
    for name in measured & {"savedmodel", "frozen", "onnxruntime", "openvino", "litert"}:  # float32 paths
        assert by[name].verified and by[name].deviation < 1e-5, (name, by[name].deviation)
    assert by["litert-int8"].reason.startswith("full-integer, calibrated on 128")

    # Held-out accuracy of the Keras model, computed here by data.py's documented split.
    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    order = np.random.RandomState(0).permutation(len(x))
    held = order[len(x) - int(0.2 * len(x)) :]
    keras_acc = float(np.mean(model.predict(x[held], verbose=0).argmax(1) == d.target[held]))
    assert r.reference_accuracy == pytest.approx(keras_acc, abs=1e-12)
    assert by["savedmodel"].accuracy == pytest.approx(keras_acc, abs=1e-12)

    # The winner: fastest at batch 4 among verified paths within 1e-4, re-derived from deploy.json.
    saved = json.loads((out / "deploy.json").read_text())
    ok = [p for p in saved["paths"] if p["status"] == "measured" and p["verified"] and p["deviation"] <= 1e-4]
    assert saved["chosen"] == min(ok, key=lambda p: p["median_ms"]["4"])["name"] == r.winner.name
    # It is in DIR, alone, and reproduces the Keras model on inputs of our own.
    art = out / dp.ARTIFACTS[r.winner.name]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        {art.name, dp.DEPLOY_JSON, dp.DEPLOY_MD} | ({art.name + ".inception-kit"} if art.is_file() else set())
    )
    xs = np.random.default_rng(5).uniform(0, 1, (3, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(run_artifact(art, xs), model.predict(xs, verbose=0), atol=1e-5)
    assert "inception_3a_tiny" in inspect_artifact(art, "yaml")
    assert "Chosen: **" + r.winner.name in (out / dp.DEPLOY_MD).read_text()


# --------------------------------------------------------------------------- atomicity of DIR


def test_an_existing_dir_is_kept_without_overwrite(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(UnsafeDestination, match="did not write it"):  # not ours: --overwrite would not help
        dp.deploy(TINY, out, paths=["savedmodel"])
    (out / "deploy.json").write_text("{}")  # ours: only replacing it was not asked for
    with pytest.raises(DestinationExists):
        dp.deploy(TINY, out, paths=["savedmodel"])
    (out / "deploy.json").unlink()
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and (out / "mine.txt").read_text() == "keep me"


@pytest.mark.slow
def test_a_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("killed while choosing")

    monkeypatch.setattr(dp, "choose", boom)  # after every artifact is written and timed
    with pytest.raises(RuntimeError):
        dp.deploy(TINY, tmp_path / "new", paths=["savedmodel", "litert"], batches=(1,), repeats=1, warmup=0)
    assert list(tmp_path.iterdir()) == []  # no DIR, no temporaries

    old = tmp_path / "old"
    old.mkdir()
    _write(old / "deploy.json", GOOD)  # an earlier deploy's (one it can read back)
    with pytest.raises(RuntimeError):
        dp.deploy(TINY, old, overwrite=True, paths=["savedmodel"], batches=(1,), repeats=1, warmup=0)
    assert [p.name for p in tmp_path.iterdir()] == ["old"] and json.loads(
        (old / "deploy.json").read_text()
    ) == GOOD


@pytest.mark.slow
def test_cli_deploy_replaces_only_with_overwrite(tmp_path):
    args = [
        *CLI,
        "deploy",
        str(TINY),
        "--out",
        "d",
        "--paths",
        "savedmodel,litert",
        "--batch",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
    ]
    first = subprocess.run(args, capture_output=True, text=True, env=ENV, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "| savedmodel |" in first.stdout and "Chose " in first.stdout
    assert "deploy [" in first.stderr  # plain progress lines: stderr is a pipe
    before = (tmp_path / "d" / "deploy.json").read_text()
    again = subprocess.run(args, capture_output=True, text=True, env=ENV, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (tmp_path / "d" / "deploy.json").read_text() == before
    third = subprocess.run([*args, "--overwrite"], capture_output=True, text=True, env=ENV, cwd=tmp_path)
    assert third.returncode == 0, third.stderr


def test_accuracy_needs_one_output_per_class(tmp_path):
    import numpy as np

    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"not read: the check comes first")
    images = np.zeros((20, 8, 8, 1), np.float32)
    labels = np.arange(20, dtype=np.int32) % 12  # 12 classes for a 10-unit head
    with pytest.raises(SpecError) as err:
        dp.deploy(TINY, tmp_path / "d", weights=weights, data=(images, labels))
    assert "at least 12 units" in str(err.value.problems[0]) and "received 10 units" in str(
        err.value.problems[0]
    )
    assert not (tmp_path / "d").exists()


def test_progress_is_a_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    bar = ProgressBar("deploy", out)
    bar(0, 4, "exporting savedmodel")
    bar(2, 4, "batch 1: round 1/2")
    bar(4, 4, "done")
    frames = out.getvalue().split("\r")[1:]
    assert [f[:36] for f in frames] == [
        "[" + "." * 30 + "] 0/4",
        "[" + "#" * 15 + "." * 15 + "] 2/4",
        "[" + "#" * 30 + "] 4/4",
    ]
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 1


def test_overwrite_replaces_only_a_deploy_folder(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")  # no deploy.json: not written by deploy
    with pytest.raises(UnsafeDestination):
        dp.deploy(TINY, out, overwrite=True, paths=["savedmodel"])
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


# --------------------------------------------------------------------------- deploy.json (issue 22)


def test_deploy_json_carries_the_speedup_and_every_paths_median_and_spread(tmp_path):
    """The figures are computed here from the rounds themselves (statistics' own quartiles)."""
    import statistics

    base = dp.Candidate("savedmodel", "TF", verified=True, deviation=0.0, max_abs=0.0)
    fast = dp.Candidate("litert", "LiteRT", verified=True, deviation=1e-7, max_abs=1e-7)
    slow = dp.Candidate("frozen", "frozen", verified=True, deviation=0.0, max_abs=0.0)
    base.times = {1: [0.004, 0.005, 0.006], 8: [0.020, 0.024, 0.030, 0.022]}
    fast.times = {1: [0.001, 0.003, 0.002], 8: [0.004, 0.008, 0.006, 0.005]}
    slow.times = {1: [0.010, 0.011, 0.012], 8: [0.050, 0.040, 0.045, 0.041]}
    skipped = dp.Candidate("openvino", "OV", status="skipped", reason="needs openvino")
    cands = [base, slow, fast, skipped]
    tol = dp.parse_tolerance("1e-4")
    winner, why = dp.choose(cands, tol, 8)
    r = dp.DeployResult(tmp_path, "m", winner, why, cands, (1, 8), tol, None, {})
    saved = json.loads(json.dumps(dp._json(r)))  # as written to deploy.json

    assert saved["chosen"] == "litert" and saved["deciding_batch"] == 8
    sp = saved["speedup"]
    assert sp["over"] == "savedmodel" and sp["batch"] == 8
    assert sp["factor"] == pytest.approx(
        statistics.median([20, 24, 30, 22]) / statistics.median([4, 8, 6, 5])
    )
    assert sp["chosen_median_ms"] == pytest.approx(5.5) and sp["baseline_median_ms"] == pytest.approx(23.0)
    by = {p["name"]: p for p in saved["paths"]}
    for c in (base, slow, fast):
        for b, t in c.times.items():
            ms = sorted(x * 1e3 for x in t)
            q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive")
            spread = by[c.name]["spread_ms"][str(b)]
            assert spread == pytest.approx({"min": ms[0], "q1": q1, "q3": q3, "max": ms[-1]})
            assert by[c.name]["median_ms"][str(b)] == pytest.approx(statistics.median(ms))
            assert by[c.name]["speedup_over_savedmodel"][str(b)] == pytest.approx(
                statistics.median(base.times[b]) / statistics.median(t)
            )
    assert by["openvino"]["spread_ms"] == {} and by["openvino"]["speedup_over_savedmodel"] == {}
    assert "min, q1, q3 and max" in saved["spread"]
    assert dp.read_deploy_json(_write(tmp_path / "deploy.json", saved))["chosen"] == "litert"  # reads back


def _write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


GOOD = {
    "chosen": "litert",
    "artifact": "model.tflite",
    "deciding_batch": 8,
    "paths": [{"name": "savedmodel"}, {"name": "litert"}],
}


@pytest.mark.parametrize(
    "content, words",
    [
        ("[1, 2]", "a JSON object; received a JSON list"),
        ("[" * 100_000 + "]" * 100_000, "JSON nested too deep"),
        ("{not json", "invalid JSON"),
        (b"\xff\xfe{}", "invalid JSON"),
        ({**GOOD, "paths": "all"}, "paths: expected a list of paths"),
        ({**GOOD, "chosen": "rm -rf /"}, "chosen: expected one of the paths listed"),
        (
            {**GOOD, "artifact": "../../etc/passwd"},
            "artifact: expected the chosen path's artifact (model.tflite)",
        ),
        ({**GOOD, "deciding_batch": "8"}, "deciding_batch: expected a whole number"),
    ],
)
def test_a_forged_deploy_json_is_one_error_naming_the_file_and_field(tmp_path, content, words):
    path = tmp_path / "deploy.json"
    path.write_bytes(content) if isinstance(content, bytes) else _write(path, content)
    with pytest.raises(SpecError) as err:
        dp.read_deploy_json(path)
    assert len(err.value.problems) == 1
    assert str(path) in str(err.value) and words in str(err.value), str(err.value)


def test_a_huge_or_fifo_or_linked_deploy_json_is_refused_without_reading_it(tmp_path):
    huge = tmp_path / "huge" / "deploy.json"
    huge.parent.mkdir()
    with huge.open("wb") as f:  # sparse: no disk used, and never read whole
        f.truncate(dp.MAX_DEPLOY_JSON_BYTES + 1)
    with pytest.raises(SpecError, match="larger than 4,000,000 bytes"):
        dp.read_deploy_json(huge)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # nobody writes to it: a blocking read would hang
    with pytest.raises(SpecError, match="not a regular file"):
        dp.read_deploy_json(fifo)
    link = tmp_path / "link.json"
    link.symlink_to(_write(tmp_path / "real.json", GOOD))
    with pytest.raises(SpecError, match="a symbolic link"):
        dp.read_deploy_json(link)


def test_overwrite_refuses_a_folder_whose_deploy_json_is_forged(tmp_path):
    """deploy's reuse of DIR: the proof it wrote DIR is a deploy.json it can read back."""
    out = tmp_path / "d"
    out.mkdir()
    _write(out / "deploy.json", {**GOOD, "chosen": "mine"})
    (out / "thesis.tex").write_text("years of work")
    proc = subprocess.run(
        [*CLI, "deploy", str(TINY), "--out", str(out), "--overwrite"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{out / 'deploy.json'}: chosen: expected one of the paths listed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["deploy.json", "thesis.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_deploy_onto_a_link_is_refused_and_nothing_touched(tmp_path, overwrite):
    target = tmp_path / "theirs"
    target.mkdir()
    _write(target / "deploy.json", GOOD)
    (tmp_path / "d").symlink_to(target)
    proc = subprocess.run(
        [*CLI, "deploy", str(TINY), "--out", "d", *overwrite],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and "symbolic link" in proc.stderr, proc.stderr
    assert (tmp_path / "d").is_symlink() and [p.name for p in target.iterdir()] == ["deploy.json"]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_mid_deploy_keeps_the_old_dir_and_leaves_no_temporary(tmp_path, sig, code):
    import signal
    import time

    out = tmp_path / "d"
    out.mkdir()
    _write(out / "deploy.json", GOOD)  # an earlier deploy's DIR, which --overwrite may replace
    before = (out / "deploy.json").read_bytes()
    proc = subprocess.Popen(
        [
            *CLI,
            "deploy",
            str(TINY),
            "--out",
            "d",
            "--overwrite",
            "--paths",
            "savedmodel,litert",
            "--batch",
            "1",
            "--repeats",
            "200",
            "--warmup",
            "0",
        ],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    try:  # until the staged DIR holds an exported artifact
        while not list(tmp_path.glob(".d.*.tmp/.candidates/*")):
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "no staged DIR appeared"
            time.sleep(0.005)
    finally:
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # the staged DIR removed
    assert [p.name for p in out.iterdir()] == ["deploy.json"] and (out / "deploy.json").read_bytes() == before
