"""Side-by-side comparisons of inception-kit against the usual routes, measured on this machine.

Each pair runs in ONE process, alternately (a, b, a, b, ...), after warm-ups of each, so both
see the same caches and load; a ratio is the median of the per-round ratios, with their min
and max. Settings that TensorFlow reads only at start-up (thread pools, oneDNN environment)
are tried in fresh subprocesses of this script, run round-robin against a default one.

    .venv/bin/python benchmarks/compare.py [--quick] [--only report,build,...]

Sections (--only takes a comma-separated list of these names):
  report      `inception-kit report` of InceptionV3 (whole process) against the profiler route
              (a process that imports TensorFlow, builds keras.applications.InceptionV3, freezes
              and profiles it); and ik.analyse alone, in-process, in milliseconds.
  build       building InceptionV3 from YAML against keras.applications.InceptionV3(weights=None)
              (benchmarks/build_speed.py's timing).
  inference   the built InceptionV3 against the Keras application with the same weights, batch
              1 and 32; checks that the outputs are the same.
  savedmodel  bytes of `inception_kit.keras.export.export(..., format="savedmodel")` against the
              raw float32 weight bytes.
  gflops      achieved GFLOP/s of InceptionV3 inference at batch 8 against a 4096³ float32
              matmul; then XLA, frozen weights, thread settings and oneDNN options.
  bf16        mixed_bfloat16 inference against float32: speed-up and output deviation.
  backends    InceptionV3 and GoogLeNet under Keras' JAX and PyTorch backends against TensorFlow:
              build time and inference time at batch 1 and 8 (Keras' predict_on_batch on every
              backend: JAX jit-compiles it, torch runs eagerly under no_grad, TensorFlow a
              tf.function), as time ratios to TensorFlow (above 1: slower). Keras runs one backend
              per process, so each backend runs in its own subprocess; the three run round-robin,
              and a ratio is the median over rounds of backend median / TensorFlow median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # build_speed, and inception_kit from this checkout

import build_speed  # noqa: E402  (the build benchmark's timing, reused)

from inception_kit.deploy.measuring import centred_rel_l2  # noqa: E402  (deploy's deviation measure)

SPEC = build_speed.SPEC  # specs/inception_v3.yaml
SECTIONS = ("report", "build", "inference", "savedmodel", "gflops", "bf16", "backends")
BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_SPECS = {
    "InceptionV3": ROOT / "specs" / "inception_v3.yaml",
    "GoogLeNet": ROOT / "specs" / "googlenet.yaml",
}
BACKEND_BATCHES = (1, 8)
MATMUL_N = 4096
GFLOPS_BATCH = 8
HELD_UP = ">= 1.05x"  # a speed-up "holds up" when it beats the noise of alternating runs


def held_up(ratio: float) -> bool:
    return ratio >= 1.05


@dataclass
class Config:
    quick: bool

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """One line of the final table: a ratio (or value) over repeated runs."""

    what: str
    samples: list[float]
    unit: str = "x"  # "x" for ratios, else the unit of the value
    aim: str = "-"
    meets: Callable[[float], bool] | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


RESULTS: list[Result] = []


def result(r: Result) -> None:
    RESULTS.append(r)
    lo, hi = min(r.samples), max(r.samples)
    spread = f" (min {_num(lo)}, max {_num(hi)}, n={len(r.samples)})" if len(r.samples) > 1 else ""
    aim = f"; aim {r.aim}" if r.aim != "-" else ""
    print(f"  => {r.what}: {_num(r.median)}{r.unit}{spread}{aim}")


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2e}"


def _stats(ts: list[float], scale: float = 1.0, unit: str = "s") -> str:
    v = [t * scale for t in ts]
    return f"median {_num(statistics.median(v))} {unit} (min {_num(min(v))}, max {_num(max(v))}, n={len(v)})"


def alternate(fns: dict[str, Callable[[], Any]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each function, called round-robin after `warmup` rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def ratios(num: list[float], den: list[float]) -> list[float]:
    """Per-round ratios of paired runs."""
    return [a / b for a, b in zip(num, den)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env or _env())
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {r.returncode}:\n{r.stderr[-3000:]}")
    return r.stdout


def _header(title: str) -> None:
    print(f"\n== {title}", flush=True)


# --------------------------------------------------------------------------- report

PROFILER_ROUTE = """
import json, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
from inception_kit.keras.profiler import profile_flops
model = keras.applications.InceptionV3(weights=None)
print(json.dumps({"flops": int(sum(profile_flops(model).values()))}))
"""


def section_report(cfg: Config) -> None:
    _header("report of InceptionV3 from YAML (whole process) vs the TF profiler route (whole process)")
    import inception_kit as ik

    ours = [
        sys.executable,
        "-m",
        "inception_kit.cli",
        "report",
        str(SPEC.relative_to(ROOT)),
        "--format",
        "json",
    ]
    prof = [sys.executable, "-c", PROFILER_ROUTE]
    outputs: dict[str, str] = {}

    def call(name: str, cmd: list[str]) -> Callable[[], None]:
        def fn() -> None:
            outputs[name] = _run(cmd)

        return fn

    # In --quick the profiler route (tens of seconds) runs once, after a warm-up of ours only.
    if cfg.quick:
        call("ours", ours)()
    times = alternate(
        {"ours": call("ours", ours), "profiler": call("profiler", prof)}, cfg.n(1, 0), cfg.n(3, 1)
    )
    ours_flops = json.loads(outputs["ours"])["model"]["flops"]
    prof_flops = json.loads(outputs["profiler"])["flops"]
    print(f"  inception-kit report --format json : {_stats(times['ours'])}")
    print(f"  import TF + build + freeze + profile: {_stats(times['profiler'])}")
    same = "the same" if ours_flops == prof_flops else "DIFFERENT"
    print(f"  FLOPs: report {ours_flops:,}, profiler {prof_flops:,}: {same}")
    result(
        Result(
            "report vs profiler route, whole process (x faster)",
            ratios(times["profiler"], times["ours"]),
            aim=">= 20x",
            meets=lambda r: r >= 20,
        )
    )

    analysis = alternate({"validate": lambda: ik.analyse(SPEC)}, 2, cfg.n(20, 3))["validate"]
    print(f"  ik.analyse(inception_v3.yaml) in-process: {_stats(analysis, 1e3, 'ms')}")
    result(Result("analysis alone in-process (ik.analyse)", [t * 1e3 for t in analysis], unit=" ms"))


# --------------------------------------------------------------------------- build


def section_build(cfg: Config) -> None:
    _header("building InceptionV3: from YAML vs keras.applications.InceptionV3(weights=None)")
    import keras

    import inception_kit as ik

    runs = {
        "keras": lambda: build_speed.timed(lambda: keras.applications.InceptionV3(weights=None)),
        "ours": lambda: build_speed.timed(lambda: ik.build_model(ik.load_spec(SPEC))),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}  # timed() clears the session, times the build
    for fn in runs.values():  # warm-up: first builds pay for tracing and imports
        fn()
    for _ in range(cfg.n(7, 2)):
        for name, fn in runs.items():
            times[name].append(fn())
    print(f"  keras.applications: {_stats(times['keras'])}")
    print(f"  inception-kit     : {_stats(times['ours'])}")
    result(
        Result(
            "build from YAML / keras.applications",
            ratios(times["ours"], times["keras"]),
            aim="<= 1.2x",
            meets=lambda r: r <= 1.2,
        )
    )


# --------------------------------------------------------------------------- inference helpers


def concrete(model: Any, batch: int, jit: bool = False) -> Any:
    import tensorflow as tf

    spec = tf.TensorSpec((batch, *model.input_shape[1:]), tf.float32)
    return tf.function(
        lambda x: model(x, training=False), autograph=False, jit_compile=jit
    ).get_concrete_function(spec)


def random_input(batch: int, seed: int = 0) -> Any:
    import numpy as np
    import tensorflow as tf

    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (batch, 299, 299, 3)).astype("float32"))


def logits_model(model: Any) -> Any:
    """The model up to its classifier, then the classifier's product without softmax
    (a new Dense with the same weights and the same dtype policy)."""
    import keras

    head = next(layer for layer in reversed(model.layers) if isinstance(layer, keras.layers.Dense))
    dense = keras.layers.Dense(
        head.units, activation=None, use_bias=head.use_bias, dtype=head.dtype_policy, name="logits"
    )
    out = dense(head.input)
    dense.set_weights(head.get_weights())
    return keras.Model(model.input, out)


# --------------------------------------------------------------------------- inference


def section_inference(cfg: Config) -> None:
    _header("inference: InceptionV3 built from YAML vs keras.applications.InceptionV3, same weights")
    import keras
    import numpy as np

    import inception_kit as ik

    keras.backend.clear_session()
    app = keras.applications.InceptionV3(weights=None)
    ours = ik.build_model(SPEC)
    shapes_match = [tuple(w.shape) for w in app.weights] == [tuple(w.shape) for w in ours.weights]
    if shapes_match:
        ours.set_weights(app.get_weights())
    x = random_input(2, seed=1)
    out_app, out_ours = np.asarray(app(x, training=False)), np.asarray(ours(x, training=False))
    lg_app, lg_ours = np.asarray(logits_model(app)(x)), np.asarray(logits_model(ours)(x))
    diff = float(np.abs(out_app - out_ours).max())
    ldiff = float(np.abs(lg_app - lg_ours).max() / np.abs(lg_app).max())
    same = shapes_match and ldiff <= 1e-5
    print(
        f"  weights copied with ours.set_weights(app.get_weights()): "
        f"{'yes, the order matches' if shapes_match else 'NO: shapes differ in order; each keeps its own'}"
    )
    print(
        f"  outputs on a batch of 2: max abs diff of softmax {diff:.3g}, of logits {ldiff:.3g} relative "
        f"-> {'MATCH' if same else 'DIFFER'}"
    )
    if shapes_match and not same:
        print("  FAIL: same-shaped weights but different outputs: the weight order differs somewhere")
    for batch, reps in ((1, cfg.n(20, 3)), (32, cfg.n(5, 1))):
        fa, fo = concrete(app, batch), concrete(ours, batch)
        xb = random_input(batch)
        times = alternate({"app": lambda: fa(xb), "ours": lambda: fo(xb)}, cfg.n(2, 1), reps)
        print(f"  batch {batch:2}: keras.applications {_stats(times['app'], 1e3, 'ms')}")
        print(f"            inception-kit      {_stats(times['ours'], 1e3, 'ms')}")
        result(
            Result(
                f"inference batch {batch}, ours / keras.applications",
                ratios(times["ours"], times["app"]),
                aim="<= 1.02x",
                meets=lambda r: r <= 1.02,
            )
        )
    del app, ours
    keras.backend.clear_session()
    assert same or not shapes_match, "same weights, different outputs (see above)"


# --------------------------------------------------------------------------- savedmodel


def section_savedmodel(cfg: Config) -> None:
    _header("SavedModel size on disk vs raw float32 weight bytes")
    import keras

    import inception_kit as ik
    from inception_kit.keras.export import export, tree_bytes

    analysis = ik.analyse(SPEC)
    raw = analysis.total.params * 4
    print(f"  raw float32 weights: {analysis.total.params:,} params x 4 = {raw:,} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "export", Path(tmp) / "model_export"
        res = export(analysis.plan, ours, format="savedmodel")
        total = tree_bytes(ours)
        variables = tree_bytes(ours / "variables")
        print(
            f"  inception_kit.keras.export.export: {total:,} bytes in all (reported {res.size_bytes:,}); "
            f"variables/ {variables:,}; graph and metadata {total - variables:,}"
        )
        result(
            Result(
                "SavedModel (export) bytes / raw weight bytes",
                [total / raw],
                aim="<= 1.05x",
                meets=lambda r: r <= 1.05,
            )
        )
        # Keras' own route, which stores each weight twice (the reason export does not use it)
        ik.build_model(analysis.plan).export(str(theirs), format="tf_saved_model", verbose=False)
        keras.backend.clear_session()
        result(
            Result(
                "SavedModel (Keras model.export) bytes / raw weight bytes",
                [tree_bytes(theirs) / raw],
                aim="report",
            )
        )


# --------------------------------------------------------------------------- gflops

WORKER_VARIANTS: list[tuple[str, dict[str, str], list[str]]] = [
    # (label, environment, worker arguments); the first is the reference
    ("default (oneDNN on, TF's thread pools)", {}, []),
    ("intra-op = cores, inter-op 1", {}, ["--intra", "cores", "--inter", "1"]),
    ("intra-op = cores/2, inter-op 2", {}, ["--intra", "half", "--inter", "2"]),
    ("oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)", {"TF_ENABLE_ONEDNN_OPTS": "0"}, []),
    ("oneDNN bf16 math (TF_SET_ONEDNN_FPMATH_MODE=BF16)", {"TF_SET_ONEDNN_FPMATH_MODE": "BF16"}, []),
    ("oneDNN bf16 math (ONEDNN_DEFAULT_FPMATH_MODE=BF16)", {"ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}, []),
]


def matmul_fn() -> tuple[Callable[[], Any], int]:
    """A 4096³ float32 matmul in a tf.function; operands are arguments (no constant folding)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((MATMUL_N, MATMUL_N), dtype="float32"))
    b = tf.constant(rng.standard_normal((MATMUL_N, MATMUL_N), dtype="float32"))
    fn = tf.function(lambda a, b: tf.linalg.matmul(a, b), autograph=False).get_concrete_function(a, b)
    return (lambda: fn(a, b)), 2 * MATMUL_N**3


def _gflops(flops: float, seconds: list[float]) -> list[float]:
    return [flops / t / 1e9 for t in seconds]


def worker(args: argparse.Namespace) -> None:
    """One subprocess variant: thread settings before TF starts; prints JSON times."""
    import tensorflow as tf

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    pick = {"cores": cores, "half": max(1, cores // 2)}
    if args.intra:
        tf.config.threading.set_intra_op_parallelism_threads(int(pick.get(args.intra, args.intra)))
    if args.inter:
        tf.config.threading.set_inter_op_parallelism_threads(int(pick.get(args.inter, args.inter)))
    import keras
    import numpy as np

    import inception_kit as ik

    keras.utils.set_random_seed(0)  # the same weights in every variant: outputs compare
    model = ik.build_model(SPEC)
    fn = concrete(model, GFLOPS_BATCH)
    x = random_input(GFLOPS_BATCH)
    mm, _ = matmul_fn()
    times = alternate({"model": lambda: fn(x), "matmul": mm}, 1, args.reps)
    np.save(args.logits, np.asarray(logits_model(model)(random_input(2, seed=1))))
    # Did a math-mode setting take effect? A float32 matmul is exact to ~1e-7; bf16 to ~1e-3.
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((512, 512)), rng.standard_normal((512, 512))
    got = tf.linalg.matmul(tf.constant(a, tf.float32), tf.constant(b, tf.float32)).numpy()
    err = float(np.linalg.norm(got - a @ b) / np.linalg.norm(a @ b))
    print(
        json.dumps(
            {
                **times,
                "matmul_rel_error": err,
                "threads": [
                    tf.config.threading.get_intra_op_parallelism_threads(),
                    tf.config.threading.get_inter_op_parallelism_threads(),
                ],
            }
        )
    )


def section_gflops(cfg: Config) -> None:
    _header(
        f"achieved GFLOP/s: InceptionV3 inference at batch {GFLOPS_BATCH} vs a {MATMUL_N}³ float32 matmul"
    )
    import keras
    import numpy as np
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    import inception_kit as ik

    flops = ik.analyse(SPEC).total.flops * GFLOPS_BATCH
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = ik.build_model(SPEC)
    x = random_input(GFLOPS_BATCH)
    graph = concrete(model, GFLOPS_BATCH)
    xla = concrete(model, GFLOPS_BATCH, jit=True)
    frozen = convert_variables_to_constants_v2(graph)
    ref = np.asarray(graph(x))
    for name, fn in (("XLA", xla), ("frozen", frozen)):
        out = fn(x)
        out = out[0] if isinstance(out, (list, tuple)) else out
        print(f"  {name} output vs graph mode: max abs diff {float(np.abs(np.asarray(out) - ref).max()):.3g}")
    mm, mm_flops = matmul_fn()
    times = alternate(
        {"graph": lambda: graph(x), "xla": lambda: xla(x), "frozen": lambda: frozen(x), "matmul": mm},  # noqa: F821 (called before the del below)
        1,
        cfg.n(5, 2),
    )
    for name, label in (
        ("graph", "tf.function (graph)"),
        ("xla", "jit_compile=True (XLA)"),
        ("frozen", "weights frozen into constants"),
    ):
        g = _gflops(flops, times[name])
        print(
            f"  InceptionV3 b{GFLOPS_BATCH}, {label:30}: {_num(statistics.median(g))} GFLOP/s; "
            f"{_stats(times[name], 1e3, 'ms')}"
        )
    m = _gflops(mm_flops, times["matmul"])
    print(
        f"  matmul {MATMUL_N}³ float32{'':27}: {_num(statistics.median(m))} GFLOP/s; {_stats(times['matmul'], 1e3, 'ms')}"
    )
    result(
        Result(
            f"GFLOP/s InceptionV3 b{GFLOPS_BATCH} / matmul {MATMUL_N}³",
            [a / b for a, b in zip(_gflops(flops, times["graph"]), m)],
            note="context",
        )
    )
    result(
        Result(
            "XLA speed-up (graph time / XLA time)",
            ratios(times["graph"], times["xla"]),
            aim=HELD_UP,
            meets=held_up,
        )
    )
    result(
        Result(
            "frozen-constants speed-up (graph / frozen)",
            ratios(times["graph"], times["frozen"]),
            aim=HELD_UP,
            meets=held_up,
        )
    )
    del model, graph, xla, frozen
    keras.backend.clear_session()

    print(
        "  start-up settings, each in a fresh process; processes round-robin, a ratio per round "
        "against that round's default one (same seed, same weights):",
        flush=True,
    )
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in WORKER_VARIANTS}
    logits: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(cfg.n(3, 1)):
            for i, (label, env, wargs) in enumerate(WORKER_VARIANTS):
                path = Path(tmp) / f"logits_{i}.npy"
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    "--logits",
                    str(path),
                    "--reps",
                    str(cfg.n(2, 1)),
                    *wargs,
                ]
                rounds[label].append(json.loads(_run(cmd, {**_env(), **env}).strip().splitlines()[-1]))
                logits[label] = np.load(path)
    base_label = WORKER_VARIANTS[0][0]
    base = [statistics.median(r["model"]) for r in rounds[base_label]]
    for label, _, _ in WORKER_VARIANTS:
        runs = rounds[label]
        g = statistics.median(_gflops(flops, [t for r in runs for t in r["model"]]))
        mg = statistics.median(_gflops(mm_flops, [t for r in runs for t in r["matmul"]]))
        dev = float(centred_rel_l2(logits[base_label], logits[label]).max())
        err = max(r["matmul_rel_error"] for r in runs)
        print(f"    {label:51} model {_num(g):>5} GFLOP/s, matmul {_num(mg):>5} GFLOP/s")
        print(
            f"      logits vs default: rel. L2 {dev:.2g}; 512² matmul rel. error vs float64 {err:.1g}; "
            f"threads (intra, inter; 0 = TF's default) {tuple(runs[0]['threads'])}"
        )
        inert = "bf16 math" in label and err < 1e-5 and dev < 1e-5
        if inert:
            print("      not applied: the numerics are float32's, so any difference in time is noise")
        if label != base_label:
            mine = [statistics.median(r["model"]) for r in runs]
            result(
                Result(
                    f"speed-up: {label}" + (" [not applied]" if inert else ""),
                    ratios(base, mine),
                    aim="-" if inert else HELD_UP,
                    meets=None if inert else held_up,
                )
            )


# --------------------------------------------------------------------------- bf16


def section_bf16(cfg: Config) -> None:
    _header(f"mixed_bfloat16 vs float32 inference of InceptionV3, batch {GFLOPS_BATCH}, same weights")
    import keras
    import numpy as np

    import inception_kit as ik

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    f32 = ik.build_model(SPEC)
    bf16 = ik.build_model(SPEC, precision="bfloat16")  # Keras' mixed_bfloat16 policy
    bf16.set_weights(f32.get_weights())  # variables stay float32 under mixed precision
    print(
        f"  compute dtype of the bf16 model's convs: {bf16.layers[1].compute_dtype}; "
        f"output dtype: {bf16.output.dtype}"
    )
    x = random_input(GFLOPS_BATCH)
    ff, fb = concrete(f32, GFLOPS_BATCH), concrete(bf16, GFLOPS_BATCH)
    times = alternate({"f32": lambda: ff(x), "bf16": lambda: fb(x)}, 1, cfg.n(5, 2))
    print(f"  float32       : {_stats(times['f32'], 1e3, 'ms')}")
    print(f"  mixed_bfloat16: {_stats(times['bf16'], 1e3, 'ms')}")
    result(
        Result(
            "bf16 speed-up (float32 time / bf16 time)",
            ratios(times["f32"], times["bf16"]),
            aim=HELD_UP,
            meets=held_up,
        )
    )
    lf = np.asarray(logits_model(f32)(x), np.float64)
    lb = np.asarray(logits_model(bf16)(x)).astype(np.float64)
    dev = centred_rel_l2(lf, lb)
    agree = float(np.mean(lf.argmax(1) == lb.argmax(1)))
    print(f"  centred logits, relative L2 per sample: median {np.median(dev):.3g}, max {dev.max():.3g}")
    print(
        f"  top-1 agreement {agree:.0%} of {GFLOPS_BATCH} (meaningless with random weights: near-equal logits)"
    )
    result(
        Result(
            "bf16 logits deviation (centred, relative L2)",
            [float(d) for d in dev],
            unit="",
            note="per sample; lower is better",
        )
    )
    del f32, bf16
    keras.backend.clear_session()


# --------------------------------------------------------------------------- backends


def backend_worker(reps: int) -> None:
    """Under KERAS_BACKEND (set by the parent): build and inference times per model, as JSON."""
    import gc

    import keras
    import numpy as np

    import inception_kit as ik

    out: dict[str, Any] = {"backend": keras.backend.backend()}
    for name, spec in BACKEND_SPECS.items():
        plan = ik.analyse(spec).plan
        builds = []
        for _ in range(min(reps, 3) + 1):  # the first build pays for imports and tracing: dropped
            keras.backend.clear_session()
            gc.collect()
            start = time.perf_counter()
            model = ik.build_model(plan)
            builds.append(time.perf_counter() - start)
        row: dict[str, Any] = {"build": builds[1:], "params": int(model.count_params())}
        for batch in BACKEND_BATCHES:
            x = np.random.default_rng(0).uniform(-1, 1, (batch, *plan.model.input_shape)).astype("float32")
            row[f"batch {batch}"] = alternate({"call": lambda: model.predict_on_batch(x)}, 2, reps)["call"]
        out[name] = row
    print(json.dumps(out))


def section_backends(cfg: Config) -> None:
    _header("Keras backends: JAX and PyTorch against TensorFlow (build, inference at batch 1 and 8)")
    rounds, reps = cfg.n(2, 1), cfg.n(5, 2)
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    for _ in range(rounds):
        for backend in BACKENDS:  # round-robin, so slow drift of the machine's load hits all three
            env = {**_env(), "KERAS_BACKEND": backend}
            text = _run([sys.executable, __file__, "--backend-worker", "--reps", str(reps)], env=env)
            got = json.loads(text.strip().splitlines()[-1])
            assert got["backend"] == backend, got["backend"]
            runs[backend].append(got)
    for name in BACKEND_SPECS:
        params = {b: runs[b][0][name]["params"] for b in BACKENDS}
        assert len(set(params.values())) == 1, f"{name}: params differ between backends: {params}"
        for what, label in (
            ("build", "build"),
            *((f"batch {b}", f"inference batch {b}") for b in BACKEND_BATCHES),
        ):
            medians = {b: [statistics.median(r[name][what]) for r in runs[b]] for b in BACKENDS}
            print(
                f"  {name} {label}: "
                + ", ".join(f"{b} {_num(statistics.median(m) * 1000)} ms" for b, m in medians.items())
            )
            for backend in BACKENDS[1:]:
                result(
                    Result(
                        f"{name} {label}, {backend} / TensorFlow (time)",
                        ratios(medians[backend], medians["tensorflow"]),
                        note="above 1: slower than TF",
                    )
                )


# --------------------------------------------------------------------------- main


def machine() -> str:
    import tensorflow as tf  # noqa: F401  (machine_info reads its version)

    from inception_kit.keras.profile import machine_info, machine_line

    return machine_line(machine_info())


def final_table() -> str:
    header = ["comparison", "median", "min–max", "aim", "meets"]
    rows = []
    for r in RESULTS:
        lo, hi = min(r.samples), max(r.samples)
        spread = f"{_num(lo)}–{_num(hi)}" if len(r.samples) > 1 else "(one run)"
        meets = "-" if r.meets is None else ("yes" if r.meets(r.median) else "no")
        rows.append([r.what, f"{_num(r.median)}{r.unit}", spread, r.aim, meets])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a smoke test, not a measurement")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        metavar="NAMES",
        help="comma-separated sections: " + ", ".join(SECTIONS),
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--intra", help=argparse.SUPPRESS)
    parser.add_argument("--inter", help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--logits", help=argparse.SUPPRESS)
    parser.add_argument("--backend-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backend_worker:
        backend_worker(args.reps)
        return
    if args.worker:
        worker(args)
        return
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    cfg = Config(args.quick)
    print(machine())
    print(
        f"mode: {'--quick (a smoke test: too few repeats to mean much)' if cfg.quick else 'full'}; "
        f"sections: {', '.join(only)}",
        flush=True,
    )
    functions = {name: globals()[f"section_{name}"] for name in SECTIONS}
    failed = []
    for name in only:
        try:
            functions[name](cfg)
        except Exception as err:  # one broken section must not hide the others' numbers
            failed.append(name)
            print(f"  section {name} failed: {type(err).__name__}: {err}", flush=True)
    print("\n== all ratios (median of per-round ratios of alternating runs; min–max over rounds)")
    print(final_table() if RESULTS else "(none)")
    print("Timings on a loaded machine are noisy; ratios of alternating runs are less so.")
    if failed:
        print(f"failed sections: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
