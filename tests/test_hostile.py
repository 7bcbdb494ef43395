"""Specs written to hurt: endless files, runaway expansion, names that become paths.

Each test here reproduced a crash, a hang or a wrong answer of the first version (issue 11).
Sizes are asserted through the counts the loader keeps, never through wall-clock time
(benchmarks/refusals.py prints the times and peak memory).
"""

import os
import subprocess
import sys
import threading

import pytest

import inception_kit as ik
from conftest import CLI, ROOT
from inception_kit import yaml_io
from inception_kit.shapes import iter_ops

GOOD = "name: tiny\ninput: [8, 8, 3]\nlayers:\n  - conv: {filters: 4, kernel: 1}\n"


def run(*args, stdin=None, cwd=ROOT):
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=120)


def messages(text, file="<string>"):
    with pytest.raises(ik.SpecError) as err:
        ik.loads_spec(text, file)
    return [str(p) for p in err.value.problems]


# -- item 7: every file kind is read at most limit+1 bytes --------------------------------

def test_a_character_device_is_read_only_up_to_the_limit():
    # /dev/zero reports size 0 and never ends; the old reader trusted getsize and hung.
    with pytest.raises(ik.SpecError) as err:
        ik.load_spec("/dev/zero")
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
            ik.load_spec(f"/dev/fd/{read}")
    finally:
        os.close(read)
    feeder.join(timeout=10)
    assert "expected a spec of at most 1,000,000 bytes; received more" in str(err.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs only")
def test_a_fifo_without_a_writer_is_an_empty_file_not_a_hang(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    assert messages_of_file(fifo) == [f"{fifo}:1:1: <file>: expected a YAML mapping (the spec); received an empty file"]


def messages_of_file(path):
    with pytest.raises(ik.SpecError) as err:
        ik.load_spec(path)
    return [str(p) for p in err.value.problems]


# -- item 16: `validate -` and the budget flags -------------------------------------------

def test_validate_dash_reads_the_spec_from_stdin():
    r = run("validate", "-", stdin=GOOD)
    macs = 8 * 8 * 3 * 4  # a 1x1 conv from 3 to 4 channels on 8x8
    flops = 2 * macs + 8 * 8 * 4  # a multiply and an add per MAC, and the bias
    assert (r.returncode, r.stdout) == (0, f"<stdin>: ok (tiny: {3 * 4 + 4} params, {macs} MACs, {flops:,} FLOPs)\n")


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
