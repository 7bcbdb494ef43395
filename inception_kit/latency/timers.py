"""The timers calibration and the accuracy benchmark use: TensorFlow (a concrete
tf.function per sample, graph mode, no XLA) and ONNX Runtime (each sample converted by
tf2onnx, run by the CPU provider). Both pin their threads: intra-op to the count asked for,
inter-op to 1, so ops run one after another (what `predict` adds up).

The measurement discipline: each callable is warmed up, then timed in rounds that alternate
over the whole group (one timed chunk of each per round), so a drift of the machine's load
hits every sample alike; a chunk repeats a short call until it lasts about `CHUNK` seconds;
the median of the rounds is kept with its quartiles (the spread). The per-call overhead is a
callable of its own in every group: a model that only passes a tiny tensor through.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..kinds import kind_of, list_merges
from .calibrate import Measurement
from .kernels import Sample

WARMUP, ROUNDS, CHUNK = 3, 9, 0.002


def run_rounds(
    calls: Sequence[Callable[[], Any]],
    warmup: int = WARMUP,
    rounds: int = ROUNDS,
    chunk: float = CHUNK,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Measurement]:
    """Times `calls` in alternating rounds (see the module docstring); seconds per call."""
    repeat = []
    for call in calls:
        start = clock()
        for _ in range(max(warmup, 1)):
            call()
        per = (clock() - start) / max(warmup, 1)
        repeat.append(max(1, min(64, math.ceil(chunk / max(per, 1e-9)))))
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for i, call in enumerate(calls):
            start = clock()
            for _ in range(repeat[i]):
                call()
            times[i].append((clock() - start) / repeat[i])
    out = []
    for t in times:
        q1, _, q3 = statistics.quantiles(t, n=4, method="inclusive") if len(t) > 1 else (t[0],) * 3
        out.append(Measurement(statistics.median(t), q1, q3, len(t)))
    return out


def _keras_model(sample: Sample) -> Any:
    """One op as a Keras model: its kind's layers, as the builder makes them."""
    import keras

    inputs = [keras.Input(shape=s, name=f"x{i}") for i, s in enumerate(sample.inputs)]
    x: Any = inputs if sample.kind in list_merges() else inputs[0]
    for layer in kind_of(sample.kind).layers(sample.args, "k"):
        x = layer(x)
    return keras.Model(inputs, x)


def _overhead_model() -> Any:
    import keras

    x = keras.Input(shape=(8,), name="x0")
    return keras.Model([x], keras.layers.Identity(name="k")(x))


class TensorFlowTimer:
    """Times samples as concrete tf.functions (graph mode, no XLA, training=False)."""

    runtime = "tensorflow"
    method = (
        "concrete tf.function per sample (graph mode, no XLA, training=False), "
        f"{WARMUP} warm-ups, {ROUNDS} alternating rounds, median and quartiles"
    )

    def __init__(self, threads: int) -> None:
        import keras
        import tensorflow as tf

        try:  # only before TensorFlow's runtime starts; afterwards recorded as they are
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
        self.threads = {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads() or "default",
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads() or "default",
        }
        from .profile import versions

        self.versions = versions("tensorflow")
        self.keras, self.tf = keras, tf
        import numpy as np

        self.rng = np.random.default_rng(0)

    def callable(self, model: Any, shapes: Sequence[tuple[int, ...]], batch: int) -> Callable[[], Any]:
        tf = self.tf
        specs = [tf.TensorSpec((batch, *s), tf.float32) for s in shapes]
        several = len(shapes) > 1 or len(model.inputs) > 1
        fn = tf.function(lambda *xs: model(list(xs) if several else xs[0], training=False), autograph=False)
        concrete = fn.get_concrete_function(*specs)
        xs = [tf.constant(self.rng.standard_normal((batch, *s), dtype="float32")) for s in shapes]
        return lambda: concrete(*xs)

    def runnable(self, sample: Sample, batch: int) -> Callable[[], Any] | None:
        """The sample as a call; None where the runtime cannot run it (ONNX Runtime and a
        grouped conv, which TensorFlow compiles into a function tf2onnx cannot convert)."""
        return self.callable(_keras_model(sample), sample.inputs, batch)

    def __call__(self, samples: Sequence[Sample], batch: int) -> tuple[list[Measurement | None], Measurement]:
        made = [self.runnable(s, batch) for s in samples]
        calls = [self.callable(_overhead_model(), [(8,)], batch), *(c for c in made if c is not None)]
        times = iter(run_rounds(calls))
        overhead = next(times)
        self.keras.backend.clear_session()
        return [None if c is None else next(times) for c in made], overhead

    def models(self, plans: Sequence[Any], batch: int) -> list[Measurement]:
        """Whole models of `plans`, timed like samples (calibration's composition check)."""
        times = run_rounds([model_callable(self, plan, batch) for plan in plans])
        self.keras.backend.clear_session()
        return times


class OnnxRuntimeTimer(TensorFlowTimer):
    """Times samples converted by tf2onnx and run by ONNX Runtime's CPU provider (sequential)."""

    runtime = "onnxruntime"
    method = (
        "tf2onnx conversion per sample, ONNX Runtime CPUExecutionProvider, sequential execution, no spinning, "
        f"all graph optimisations; {WARMUP} warm-ups, {ROUNDS} alternating rounds, median and quartiles"
    )

    def __init__(self, threads: int) -> None:
        super().__init__(threads)
        import onnxruntime as ort

        from .profile import versions

        self.ort, self.intra = ort, threads
        self.threads = {"intra_op": threads, "inter_op": 1}
        self.versions = versions("onnxruntime")

    def runnable(self, sample: Sample, batch: int) -> Callable[[], Any] | None:
        try:
            return self.callable(_keras_model(sample), sample.inputs, batch)
        except Exception:  # tf2onnx or ONNX Runtime refused it: recorded as unsupported
            return None

    def callable(self, model: Any, shapes: Sequence[tuple[int, ...]], batch: int) -> Callable[[], Any]:
        import tf2onnx

        tf, ort = self.tf, self.ort
        specs = [tf.TensorSpec((None, *s), tf.float32, name=f"x{i}") for i, s in enumerate(shapes)]
        several = len(shapes) > 1 or len(model.inputs) > 1
        fn = tf.function(lambda *xs: model(list(xs) if several else xs[0], training=False), autograph=False)
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=17)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        # Each session has its own pool; idle pools spinning for work would steal the cores of
        # the one timed (a group alternates 9 sessions): no spinning, here and when measuring.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        feed = {n: self.rng.standard_normal((batch, *s), dtype="float32") for n, s in zip(names, shapes)}
        return lambda: session.run(None, feed)


def make_timer(runtime: str, threads: int) -> TensorFlowTimer:
    """The timer of `runtime`, its threads pinned."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return OnnxRuntimeTimer(threads) if runtime == "onnxruntime" else TensorFlowTimer(threads)


def model_callable(timer: TensorFlowTimer, plan: Any, batch: int) -> Callable[[], Any]:
    """The whole model of `plan` as the timer runs a sample (for the accuracy benchmark)."""
    from ..keras.builder import build_model

    return timer.callable(build_model(plan), [tuple(plan.model.input_shape)], batch)
