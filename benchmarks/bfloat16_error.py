"""How far a bfloat16 export is from the Keras models, per shipped spec, on non-trivial weights.

    .venv/bin/python benchmarks/bfloat16_error.py [--specs inception_3a_tiny,googlenet] \\
        [--weights inception_3a_tiny=runs/tiny/best.weights.h5]

Untrained Keras weights give near-uniform softmax outputs, on which any relative measure is
noise; so each spec gets seeded "non-trivial" weights (every kernel He-normal, batch-norm
statistics and scales spread around 1: `spread_weights`), or the trained weights given with
``--weights``. Each is exported with ``precision="bfloat16"`` and ``verify=False``, reloaded
with ``tf.saved_model.load`` and run on export's own verification batch
(`artifact.VERIFY_BATCH` samples of ``default_rng(VERIFY_SEED)`` uniform in [-1, 1)).
Printed per spec: the centred relative L2 (deploy's `centred_rel_l2`, the largest over the
batch) and the max abs diff over max(1, max |reference|), both against the bfloat16 Keras
model (export's reference) and against the float32 Keras model of the same weights; then
the worst of each and the bound (`artifact.TOLERANCE["bfloat16"]`). docs/measurements.md
records a run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPECS = Path(__file__).resolve().parent.parent / "specs"
DEFAULT_SPECS = ("five_by_five_bottleneck", "inception_3a", "inception_3a_tiny", "googlenet")


def spread_weights(model: Any, seed: int = 0) -> None:
    """Seeded weights far from Keras' initial ones: He-normal kernels, biases and batch-norm
    shifts N(0, 0.1), scales and variances uniform in [0.5, 1.5)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape, name = tuple(w.shape), w.path.rsplit("/", 1)[-1]
        if name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = rng.normal(0.0, 0.1, shape)
        else:  # kernels: fan-in is every axis but the last (depthwise: all but the last two)
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
        w.assign(value.astype(np.float32))


def main() -> None:
    import numpy as np
    import tensorflow as tf

    from inception_kit.deploy.measuring import centred_rel_l2
    from inception_kit.keras.builder import build_model
    from inception_kit.keras.export import export
    from inception_kit.keras.export.artifact import SIGNATURE, TOLERANCE, VERIFY_BATCH, VERIFY_SEED
    from inception_kit.planner import load_plan

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--specs", default=",".join(DEFAULT_SPECS), help="comma-separated names from specs/")
    parser.add_argument("--weights", action="append", default=[], metavar="SPEC=FILE", help="trained weights")
    args = parser.parse_args()
    trained = dict(w.split("=", 1) for w in args.weights)
    worst = {"own": 0.0, "own_abs": 0.0, "f32": 0.0, "f32_abs": 0.0}
    print(
        f"{'spec':26} {'weights':9} {'L2 vs bf16':>11} {'abs vs bf16':>12} {'L2 vs f32':>10} {'abs vs f32':>11} {'s':>5}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        names = [n for n in args.specs.split(",") if n] + [
            n for n in trained if n not in args.specs.split(",")
        ]
        for name in names:
            start = time.perf_counter()
            plan = load_plan(SPECS / f"{name}.yaml")
            weights = trained.get(name)
            if weights is None:
                model = build_model(plan, "float32")
                spread_weights(model)
                weights = str(Path(tmp) / f"{name}.weights.h5")
                model.save_weights(weights)
            f32, bf16 = build_model(plan, "float32"), build_model(plan, "bfloat16")
            f32.load_weights(weights)
            bf16.load_weights(weights)
            out = Path(tmp) / f"{name}-bf16"
            export(plan, out, weights=weights, precision="bfloat16", verify=False)
            in_shape = tuple(int(d) for d in plan.model.input_shape)
            x = (
                np.random.default_rng(VERIFY_SEED)
                .uniform(-1.0, 1.0, (VERIFY_BATCH, *in_shape))
                .astype(np.float32)
            )
            got = tf.saved_model.load(str(out)).signatures[SIGNATURE](image=tf.constant(x))["output"].numpy()
            row = {}
            for key, ref_model in (("own", bf16), ("f32", f32)):
                ref = np.asarray(ref_model(x, training=False), np.float32)
                row[key] = float(centred_rel_l2(ref, got).max())
                row[key + "_abs"] = float(np.abs(got - ref).max()) / max(1.0, float(np.abs(ref).max()))
            for k, v in row.items():
                worst[k] = max(worst[k], v)
            label = "trained" if name in trained else "spread"
            print(
                f"{name:26} {label:9} {row['own']:11.3g} {row['own_abs']:12.3g} {row['f32']:10.3g} "
                f"{row['f32_abs']:11.3g} {time.perf_counter() - start:5.0f}",
                flush=True,
            )
    print(
        f"\nworst: centred rel. L2 vs bf16 Keras {worst['own']:.3g}, vs float32 Keras {worst['f32']:.3g}; "
        f"relative max abs vs bf16 Keras {worst['own_abs']:.3g}, vs float32 {worst['f32_abs']:.3g}"
    )
    print(f"bound (TOLERANCE['bfloat16']): {TOLERANCE['bfloat16']:g}")


if __name__ == "__main__":
    main()
