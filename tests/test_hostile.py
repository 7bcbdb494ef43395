"""Specs written to hurt: endless files, runaway expansion, names that become paths.

Each test here reproduced a crash, a hang or a wrong answer of the first version (issue 11).
Sizes are asserted through the counts the loader keeps, never through wall-clock time
(benchmarks/refusals.py prints the times and peak memory).
"""

import os
import subprocess
import threading

import pytest

import inception_kit as ik
from conftest import CLI, ROOT
from inception_kit.spec import yaml_io

GOOD = "name: tiny\ninput: [8, 8, 3]\nlayers:\n  - conv: {filters: 4, kernel: 1}\n"


def run(*args, stdin=None, cwd=ROOT):
    return subprocess.run(
        [*CLI, *map(str, args)], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )


def messages(text, file="<string>"):
    with pytest.raises(ik.SpecError) as err:
        ik.loads(text, file)
    return [str(p) for p in err.value.problems]


# -- item 7: every file kind is read at most limit+1 bytes --------------------------------


def test_a_character_device_is_read_only_up_to_the_limit():
    # /dev/zero reports size 0 and never ends; the old reader trusted getsize and hung.
    with pytest.raises(ik.SpecError) as err:
        ik.load("/dev/zero")
    assert str(err.value) == (
        f"/dev/zero:1:1: <file>: expected a spec of at most {yaml_io.MAX_FILE_BYTES:,} bytes; received more"
    )


def test_an_endless_pipe_is_read_only_up_to_the_limit():
    read, write = os.pipe()

    def feed():  # like `validate <(yes)`: a writer that never stops on its own
        try:
            while True:
                os.write(write, b"y\n" * 4096)
        except OSError:  # the reader closed its end
            pass
        finally:
            os.close(write)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        with pytest.raises(ik.SpecError) as err:
            ik.load(f"/dev/fd/{read}")
    finally:
        os.close(read)
    feeder.join(timeout=10)
    assert "expected a spec of at most 1,000,000 bytes; received more" in str(err.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs only")
def test_a_fifo_without_a_writer_is_an_empty_file_not_a_hang(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    assert messages_of_file(fifo) == [
        f"{fifo}:1:1: <file>: expected a YAML mapping (the spec); received an empty file"
    ]


def messages_of_file(path):
    with pytest.raises(ik.SpecError) as err:
        ik.load(path)
    return [str(p) for p in err.value.problems]


# -- item 16: `validate -` and the budget flags -------------------------------------------


def test_validate_dash_reads_the_spec_from_stdin():
    r = run("validate", "-", stdin=GOOD)
    macs = 8 * 8 * 3 * 4  # a 1x1 conv from 3 to 4 channels on 8x8
    flops = 2 * macs + 8 * 8 * 4  # a multiply and an add per MAC, and the bias
    assert (r.returncode, r.stdout) == (
        0,
        f"<stdin>: ok (tiny: {3 * 4 + 4} params, {macs} MACs, {flops:,} FLOPs)\n",
    )


def test_validate_dash_reports_stdin_as_the_file():
    r = run("validate", "-", stdin=GOOD.replace("filters: 4", "filters: -4"))
    assert r.returncode == 2
    assert "<stdin>:4:21: layers[0].filters: expected a positive integer; received -4" in r.stderr


def test_stdin_is_bounded_like_files():
    r = run("validate", "-", stdin="#" * (yaml_io.MAX_FILE_BYTES + 10))
    assert r.returncode == 2
    assert "<stdin>:1:1: <file>: expected a spec of at most 1,000,000 bytes; received more" in r.stderr


@pytest.mark.parametrize("flag", ["--max-params", "--max-activation-bytes"])
@pytest.mark.parametrize("value", ["-1", "0"])
def test_budget_flags_must_be_positive(flag, value):
    r = run("validate", "specs/one_by_one.yaml", flag, value)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"argument {flag}: expected a positive whole number; received {value}" in r.stderr


# -- items 2 and 11: names, in Python-made specs too ----------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "/tmp/x", "a\x00b", "-x", "x" * 65, ""])
def test_python_made_specs_obey_the_name_rule(name):
    model = ik.ModelSpec("ok", (8, 8, 3), [ik.LayerSpec("conv", name=name or None, filters=4, kernel=1)])
    model_named = ik.ModelSpec(name or "a b", (8, 8, 3), [ik.LayerSpec("conv", filters=4, kernel=1)])
    if name:
        with pytest.raises(ik.SpecError, match=r"layers\[0\]\.name: expected a name of 1 to 64"):
            ik.analyse(ik.load(model))
    with pytest.raises(ik.SpecError, match=r"^name: expected a name of 1 to 64"):
        ik.analyse(ik.load(model_named))


# -- item 10: whatever validate accepts, build builds ----------------------------------------


@pytest.mark.slow
def test_the_deepest_spec_validate_accepts_builds_saves_and_reloads(tmp_path):
    import keras

    from inception_kit.planner import MAX_KERAS_DEPTH

    times = (MAX_KERAS_DEPTH - 1) // 2  # each conv adds itself and its relu; the input is one more
    spec = ik.loads(
        f"name: deep\ninput: [4, 4, 3]\nlayers:\n  - conv: {{filters: 3, kernel: 1, repeat: {times}}}\n"
    ).model
    model = ik.build_model(spec)
    assert len(model.layers) == 1 + 2 * times
    model.save(tmp_path / "deep.keras")
    assert (
        keras.saving.load_model(tmp_path / "deep.keras").count_params() == model.count_params() == times * 12
    )
    deeper = (
        f"name: deep\ninput: [4, 4, 3]\nlayers:\n  - conv: {{filters: 3, kernel: 1, repeat: {times + 1}}}\n"
    )
    assert messages(deeper) == [
        f"<string>:4:11: layers[0]: expected at most {MAX_KERAS_DEPTH} Keras layers from input to output; "
        f"received {MAX_KERAS_DEPTH + 1} at this layer (Keras recurses once per layer)"
    ]


# -- item 11: a property: validate refuses, or build builds -------------------------------

HOSTILE_NAMES = [
    "a",
    "image",
    "output_float32",
    "a_relu",
    "a_bn",
    "..",
    "a/b",
    "x" * 65,
    "b{i}",
    "blk_concat",
    "b_1",
    "-x",
    "ok.v2",
]


def _layer(draw, st):
    body = {"filters": draw(st.integers(1, 4)), "kernel": 1, "name": draw(st.sampled_from(HOSTILE_NAMES))}
    if draw(st.booleans()):
        body["repeat"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        body["batchnorm"] = True
    return {"conv": body}


@pytest.mark.slow
def test_hostile_specs_fail_validate_or_build_and_reload(tmp_path):
    import hypothesis  # in the test extra of setup.cfg

    st = hypothesis.strategies

    @st.composite
    def specs(draw, depth=0):
        items = []
        for _ in range(draw(st.integers(1, 3))):
            if depth < 2 and draw(st.booleans()):
                branches = {draw(st.sampled_from(["a", "b", "c", "a/b"])): draw(specs(depth + 1))["layers"]}
                block = {"name": draw(st.sampled_from(HOSTILE_NAMES)), "branches": branches}
                if draw(st.booleans()):
                    block["repeat"] = draw(st.integers(1, 2))
                items.append({"block": block})
            else:
                items.append(_layer(draw, st))
        return {"name": draw(st.sampled_from(HOSTILE_NAMES)), "input": [4, 4, 2], "layers": items}

    built = []

    @hypothesis.settings(max_examples=25, deadline=None, database=None)
    @hypothesis.given(specs())
    def check(data):
        try:
            analysis = ik.analyse(ik.load(data).model)
        except ik.SpecError:
            return
        import keras

        model = ik.build_model(analysis.plan)
        assert model.count_params() == analysis.total.params
        if len(built) < 3:  # a few go through a save and a reload
            path = tmp_path / f"m{len(built)}.keras"
            model.save(path)
            assert keras.saving.load_model(path).count_params() == model.count_params()
        built.append(data)

    check()
    assert built, "no drawn spec was valid: the strategy tests nothing"
