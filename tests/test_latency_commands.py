"""Predicted time in fit, diff and profile, from a profile of the fake machine of test_latency."""

import json
import math

import pytest
from test_latency import OVERHEAD, TINY, FakeTimer, truth

import inception_kit as ik
from inception_kit.cli import main
from inception_kit.design.fit import fit
from inception_kit.keras.profile import attach_prediction, pairs_of, render_table
from inception_kit.latency import calibrate as cal


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("latency") / "cpu.json"
    path.write_text(json.dumps(cal.calibrate(batches=[1, 8], settings=TINY, timer=FakeTimer())))
    return path


def seconds(plan, batch=1):
    """The fake machine's time of a whole plan, from the analysis (not from the predictor)."""
    return OVERHEAD + sum(truth(r.cost.macs, math.prod(r.output_shape), batch) for r in ik.analyse(plan).rows)


def test_fit_meets_a_latency_budget(profile_path):
    plan = ik.load("googlenet")
    before = seconds(plan)
    budget = 0.85 * before
    result = fit(plan, latency=f"{budget * 1e3:.4f}ms", latency_profile=profile_path)
    assert result.scale < 1
    assert result.predicted[0] == pytest.approx(before, rel=1e-6)
    assert result.predicted[1] == pytest.approx(seconds(result.after.plan), rel=1e-6)
    assert result.predicted[1] <= budget
    wider = fit(
        plan,
        latency=f"{budget * 1e3:.4f}ms",
        latency_profile=profile_path,
        macs=result.after.total.macs - 10**7,
    )
    assert wider.after.total.macs <= result.after.total.macs - 10**7 and wider.predicted[1] <= budget
    assert "# Predicted" in result.text


def test_fit_latency_command_line_errors(profile_path, capsys):
    assert main(["fit", "googlenet", "--latency", "0.01ms", "--latency-profile", str(profile_path)]) == 2
    assert "--latency: expected at least" in capsys.readouterr().err
    assert main(["fit", "googlenet", "--latency", "20ms"]) == 2
    assert "--latency-profile: expected a latency profile" in capsys.readouterr().err
    assert main(["fit", "googlenet", "--latency", "fast", "--latency-profile", str(profile_path)]) == 2
    assert "--latency: expected a duration such as 20ms" in capsys.readouterr().err
    assert main(["fit", "googlenet", "--latency", "1s", "--latency-profile", str(profile_path)]) == 0
    assert "predicted time:" in capsys.readouterr().out


def test_diff_shows_predicted_time(profile_path, capsys):
    assert (
        main(
            [
                "diff",
                "inception_3a",
                "five_by_five_bottleneck",
                "--latency",
                str(profile_path),
                "--format",
                "json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    model = data["rows"][0]
    a, b = seconds(ik.load("inception_3a")) * 1e3, seconds(ik.load("five_by_five_bottleneck")) * 1e3
    assert model["a"]["predicted_ms"] == pytest.approx(a, rel=1e-4)
    assert model["delta"]["predicted_ms"] == pytest.approx(b - a, abs=1e-3)
    assert main(["diff", "inception_3a", "five_by_five_bottleneck", "--latency", str(profile_path)]) == 0
    out = capsys.readouterr().out
    assert "predicted ms" in out and "Δ ms" in out
    assert main(["diff", "inception_3a", "five_by_five_bottleneck"]) == 0
    assert "predicted" not in capsys.readouterr().out


def test_profile_puts_the_prediction_beside_each_unit(profile_path):
    plan = ik.load("inception_3a")
    analysis = ik.analyse(plan)
    pairs = pairs_of(analysis)
    attach_prediction(pairs, ik.predict_latency(plan, profile_path))
    block = pairs[0]
    rows = [r for r in analysis.rows if r.block == block.real.label]
    assert block.real.predicted == pytest.approx(
        OVERHEAD + sum(truth(r.cost.macs, math.prod(r.output_shape), 1) for r in rows), rel=1e-6
    )
    b3 = next(c for c in block.children if c.real.label.endswith("/b3"))
    assert b3.naive.predicted < block.naive.predicted and b3.real.predicted < b3.naive.predicted
    assert pairs[-1].real.predicted == pytest.approx(seconds(plan), rel=1e-6)
    for p in pairs:
        for unit in (p.real, p.naive, *(u for c in p.children for u in (c.real, c.naive))):
            if unit is not None:
                unit.timing.times = [0.001, 0.002]
    table = render_table(analysis, pairs, 1, 2, 0)
    assert "predicted ms" in table.splitlines()[3] or "predicted ms" in table
