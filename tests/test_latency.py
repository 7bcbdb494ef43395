"""The latency model: calibration (a fake timer), the profile file, prediction, the report's
predicted times, and the registry-wide check that every kind is sampled and predicted."""

import copy
import json
import math
import os
import subprocess
import sys
from typing import ClassVar

import pytest

import inception_kit as ik
from conftest import ROOT
from inception_kit.cli import main
from inception_kit.kinds import kind_of
from inception_kit.latency import calibrate as cal
from inception_kit.latency.kernels import registry_kinds, sample_of, sampler_of
from inception_kit.latency.predict import op_seconds
from inception_kit.latency.profile import Profile, ProfileError, check, load_profile, versions
from inception_kit.planner import Op

OVERHEAD = 40e-6
TINY = cal.Settings(initial=72, adaptive=6, per_kind=5, around=2, rounds=1)


def truth(macs: int, out_elems: int, batch: int) -> float:
    """The fake machine: 15 µs a kernel, 0.1 ns a MAC and 2 ns an output value per sample."""
    return 15e-6 + batch * (macs * 1e-10 + out_elems * 2e-9)


class FakeTimer:
    """Times from `truth` (the sample's MACs from the registry's cost rule), no machine involved."""

    runtime, method = "tensorflow", "fake"
    threads: ClassVar[dict[str, int]] = {"intra_op": 2, "inter_op": 1}

    def __init__(self, stop_after: int | None = None):
        self.versions = versions("tensorflow")
        self.calls, self.stop_after, self.timed = 0, stop_after, []

    def __call__(self, samples, batch):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        out = []
        for s in samples:
            cost = kind_of(s.kind).op_cost(s.args, s.inputs, s.output)
            t = OVERHEAD + truth(cost.macs, math.prod(s.output), batch)
            out.append(cal.Measurement(t, t * 0.99, t * 1.01, 9))
            self.timed.append((s.key, batch))
        return out, cal.Measurement(OVERHEAD, OVERHEAD * 0.98, OVERHEAD * 1.02, 9)


@pytest.fixture(scope="module")
def profile_data():
    return cal.calibrate(batches=[1, 8], settings=TINY, timer=FakeTimer())


@pytest.fixture
def profile_file(tmp_path, profile_data):
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps(profile_data))
    return path


def test_calibration_is_deterministic_given_its_measurements(profile_data):
    again = cal.calibrate(batches=[1, 8], settings=TINY, timer=FakeTimer())
    assert again["kernels"] == profile_data["kernels"]
    assert again["overhead"] == profile_data["overhead"]
    assert profile_data["overhead"]["1"]["median_ms"] == pytest.approx(OVERHEAD * 1e3)
    assert profile_data["valid_for"]["batches"] == [1, 8]
    assert all(n <= TINY.initial + TINY.adaptive for n in profile_data["calibration"]["samples"].values())


@pytest.mark.parametrize("batch", [1, 8])
def test_prediction_recovers_the_fake_machine(profile_file, batch):
    """The model's time: one overhead plus every op's kernel, each computed here from the analysis."""
    plan = ik.load("inception_3a")
    analysis = ik.analyse(plan)
    expected = OVERHEAD + sum(truth(r.cost.macs, math.prod(r.output_shape), batch) for r in analysis.rows)
    p = ik.predict_latency(plan, profile_file, batch=batch)
    assert p.plan.total == pytest.approx(expected, rel=1e-6)
    naive_rows = ik.analyse(analysis.naive_plan).rows
    naive_expected = OVERHEAD + sum(truth(r.cost.macs, math.prod(r.output_shape), batch) for r in naive_rows)
    assert p.naive.total == pytest.approx(naive_expected, rel=1e-6)
    block = analysis.blocks[0]
    assert p.plan.blocks[block.name] == pytest.approx(
        sum(
            truth(r.cost.macs, math.prod(r.output_shape), batch)
            for r in analysis.rows
            if r.block == block.name
        ),
        rel=1e-6,
    )


def test_a_killed_calibration_resumes_from_its_partial_file(tmp_path):
    out = tmp_path / "cpu.json"
    with pytest.raises(KeyboardInterrupt):
        cal.calibrate(batches=[1], settings=TINY, timer=FakeTimer(stop_after=2), out=out)
    partial = tmp_path / "cpu.json.partial"
    assert not out.exists() and partial.exists()
    kept = json.loads(partial.read_text())["measured"]["1"]
    assert len(kept) - 1 == 2 * cal.GROUP  # two groups, plus their overheads
    rest = FakeTimer()
    data = cal.calibrate(batches=[1], settings=TINY, timer=rest, out=out)
    assert not partial.exists() and json.loads(out.read_text()) == data
    assert not {k for k, _ in rest.timed} & set(kept)  # nothing measured twice
    whole = cal.calibrate(batches=[1], settings=TINY, timer=FakeTimer())
    assert data["kernels"] == whole["kernels"]


def test_calibration_never_replaces_a_partial_file_it_did_not_write(tmp_path):
    (tmp_path / "cpu.json.partial").write_text("my notes")
    with pytest.raises(ik.errors.Failure, match="did not write it"):
        cal.calibrate(batches=[1], settings=TINY, timer=FakeTimer(), out=tmp_path / "cpu.json")
    assert (tmp_path / "cpu.json.partial").read_text() == "my notes"


def test_a_profile_from_another_machine_is_refused_unless_told(tmp_path, profile_data, capsys):
    other = copy.deepcopy(profile_data)
    other["valid_for"]["cpu"] = "Some Other CPU 9000"
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    plan = ik.load("inception_3a")
    with pytest.raises(
        ProfileError, match=r"other\.json: valid_for\.cpu: expected a profile measured on this machine"
    ):
        ik.predict_latency(plan, path)
    assert ik.predict_latency(plan, path, allow_other_machine=True).plan.total > 0
    assert main(["report", "inception_3a", "--latency", str(path)]) == 2
    err = capsys.readouterr().err
    assert "valid_for.cpu" in err and "--any-machine" in err
    assert main(["report", "inception_3a", "--latency", str(path), "--any-machine"]) == 0


def _hostile(profile):
    def tree(fn):
        p = copy.deepcopy(profile)
        model = p["kernels"]["1"]["conv"]
        # a valid tree of three nodes (a split on MACs and two leaves), then spoilt by `fn`
        model["forest"] = [
            {
                "feature": [0, -2, -2],
                "threshold": [10.0, -2.0, -2.0],
                "left": [1, -1, -1],
                "right": [2, -1, -1],
                "value": [0.0, 0.0, 0.0],
            }
        ]
        check(copy.deepcopy(p), "ok.json")
        fn(model)
        return json.dumps(p)

    def field(fn):
        p = copy.deepcopy(profile)
        fn(p)
        return json.dumps(p)

    return {
        "not json": ('{"format": ', ""),
        "not utf-8": (b"\xff\xfe{}", "UTF-8"),
        "a NaN": (
            json.dumps(profile).replace(
                '"median_ms": ' + json.dumps(profile["overhead"]["1"]["median_ms"]), '"median_ms": NaN', 1
            ),
            "NaN",
        ),
        "another format": (json.dumps({"format": "something else"}), "format"),
        "a cycle in a tree": (tree(lambda m: m["forest"][0]["left"].__setitem__(0, 0)), "left[0]"),
        "a feature out of range": (
            tree(lambda m: m["forest"][0]["feature"].__setitem__(0, 99)),
            "feature[0]",
        ),
        "lists of unequal length": (tree(lambda m: m["forest"][0]["value"].pop()), "forest[0]"),
        "a negative coefficient": (tree(lambda m: m["linear"].__setitem__(1, -1.0)), "linear[1]"),
        "a batch without regressors": (field(lambda p: p["kernels"].pop("8")), "kernels"),
        "a string for the cores": (
            field(lambda p: p["valid_for"].__setitem__("cores", "2")),
            "valid_for.cores",
        ),
        "deep nesting": ("[" * 100000 + "]" * 100000, ""),
    }


HOSTILE = [
    "not json",
    "not utf-8",
    "a NaN",
    "another format",
    "a cycle in a tree",
    "a feature out of range",
    "lists of unequal length",
    "a negative coefficient",
    "a batch without regressors",
    "a string for the cores",
    "deep nesting",
]


@pytest.mark.parametrize("case", HOSTILE)
def test_a_corrupt_or_hostile_profile_exits_2_naming_file_and_field(tmp_path, profile_data, capsys, case):
    text, field = _hostile(profile_data)[case]
    path = tmp_path / "bad.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ProfileError):
        load_profile(path)
    assert main(["report", "inception_3a", "--latency", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and field in err and "Traceback" not in err


def test_a_huge_or_odd_profile_file_is_read_bounded(tmp_path, monkeypatch, profile_data):
    from inception_kit.latency import profile as module

    path = tmp_path / "huge.json"
    path.write_text(json.dumps(profile_data))
    monkeypatch.setattr(module, "MAX_BYTES", 1000)
    with pytest.raises(ProfileError, match="larger than 1,000 bytes"):
        load_profile(path)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ProfileError, match="not a regular file"):
        load_profile(fifo)
    with pytest.raises(ProfileError, match=r"missing\.json"):
        load_profile(tmp_path / "missing.json")


def test_predict_imports_neither_tensorflow_nor_sklearn(profile_file):
    code = (
        f"import sys, inception_kit as ik; p = ik.predict_latency(ik.load('googlenet'), {str(profile_file)!r}); "
        "assert p.plan.total > 0; print(sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'numpy') "
        "if m in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", registry_kinds())
def test_every_registry_kind_is_sampled_and_predicted(kind, profile_data):
    profile = Profile(check(profile_data, "cpu.json"), "cpu.json")
    seeds = [s for seed in sampler_of(kind) if (s := sample_of(kind, seed.fields, seed.inputs, "seed"))]
    assert seeds, f"no seed of {kind} fits"
    for s in seeds:
        op = Op("x", kind, s.args, "x", s.inputs[0], s.output, inputs=s.inputs)
        cost = kind_of(kind).op_cost(s.args, s.inputs, s.output)
        for batch in (1, 8):
            assert op_seconds(op, profile, batch) == pytest.approx(
                truth(cost.macs, math.prod(s.output), batch), rel=1e-5
            )


def test_a_kind_without_a_sampler_is_named():
    with pytest.raises(
        ik.ArgumentError, match=r"kind: expected a layer kind with a latency sampler.*'nosuch'"
    ):
        sampler_of("nosuch")


def test_report_json_and_csv_carry_predicted_times_that_add_up(profile_file, capsys):
    assert main(["report", "inception_3a", "--latency", str(profile_file), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    block = data["blocks"][0]
    mine = [l for l in data["layers"] if l["block"] == block["name"]]
    assert block["predicted_ms"] == pytest.approx(sum(l["predicted_ms"] for l in mine), abs=1e-3)
    assert data["model"]["time_saving_ratio"] == pytest.approx(
        data["model"]["naive_predicted_ms"] / data["model"]["predicted_ms"], rel=1e-3
    )
    assert data["conventions"]["latency"]["batch"] == 1
    assert (
        main(
            [
                "report",
                "inception_3a",
                "--latency",
                str(profile_file),
                "--latency-batch",
                "8",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    header = capsys.readouterr().out.splitlines()[0]
    assert header.endswith(",predicted_ms,naive_predicted_ms")
    assert main(["report", "inception_3a", "--latency", str(profile_file), "--latency-batch", "4"]) == 2
    assert (
        "--latency-batch: expected one of the profile's batch sizes: 1, 8; received 4"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_a_tiny_real_calibration_times_tensorflow(tmp_path):
    settings = cal.Settings(initial=14, adaptive=0, per_kind=1, around=1, rounds=0)
    data = cal.calibrate(batches=[1], settings=settings, out=tmp_path / "tf.json")
    profile = load_profile(tmp_path / "tf.json")
    import tensorflow as tf

    # Pinned to 1 when TensorFlow's runtime had not started; in a suite that already ran it, the
    # profile states the threads it really ran with.
    ran_with = tf.config.threading.get_inter_op_parallelism_threads() or "default"
    assert profile.threads["inter_op"] == ran_with and set(data["kernels"]["1"]) == set(registry_kinds())
    assert 0 < ik.predict_latency(ik.load("inception_3a"), profile).plan.total < 1.0


class ComposingTimer(FakeTimer):
    """A fake machine on which a kernel inside a network takes 0.8 of its time alone."""

    def models(self, plans, batch):
        out = []
        for plan in plans:
            t = OVERHEAD + 0.8 * sum(
                truth(r.cost.macs, math.prod(r.output_shape), batch) for r in ik.analyse(plan).rows
            )
            out.append(cal.Measurement(t, t, t, 9))
        return out


def test_the_composition_factor_is_measured_on_whole_models(tmp_path):
    data = cal.calibrate(batches=[1], settings=TINY, timer=ComposingTimer())
    assert data["composition"]["1"]["factor"] == pytest.approx(0.8, rel=1e-6)
    assert [m["spec"] for m in data["composition"]["1"]["models"]] == list(cal.COMPOSITION_SPECS)
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps(data))
    plan = ik.load("googlenet")
    expected = OVERHEAD + 0.8 * sum(
        truth(r.cost.macs, math.prod(r.output_shape), 1) for r in ik.analyse(plan).rows
    )
    assert ik.predict_latency(plan, path).plan.total == pytest.approx(expected, rel=1e-6)
    data["composition"]["1"]["factor"] = 50
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match=r"composition\.1\.factor: expected a factor from 0\.2 to 5"):
        load_profile(path)


class NoGroupsTimer(FakeTimer):
    """A runtime that cannot run grouped convolutions (ONNX Runtime via tf2onnx)."""

    def __call__(self, samples, batch):
        times, overhead = super().__call__(samples, batch)
        return [None if s.args.get("groups", 1) > 1 else t for s, t in zip(samples, times)], overhead


def test_samples_a_runtime_cannot_run_are_recorded_and_left_out():
    data = cal.calibrate(batches=[1], settings=TINY, timer=NoGroupsTimer())
    skipped = [m for m in data["kernels"]["1"]["conv"]["measured"] if m["features"][14] > 1]
    assert skipped == [] and data["calibration"]["unsupported_by_runtime"]["1"] >= 1
    assert data["kernels"]["1"]["conv"]["samples"] >= 5
