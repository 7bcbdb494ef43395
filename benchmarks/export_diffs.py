"""How far each export format's outputs are from the Keras model's, per shipped spec.

    .venv/bin/python benchmarks/export_diffs.py [--specs googlenet,inception_3a] [--formats savedmodel,tflite]

Exports every spec (untrained weights) in every format and prints the max abs diff that the
export's own verification measured, and the same diff relative to max(1, max |keras|) (the
scale `TOLERANCE` multiplies), then the worst relative diff per format and how far each
format's tolerance is above it. docs/measurements.md records a run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from inception_kit.keras.export import export
from inception_kit.keras.export.artifact import TOLERANCE, MissingDependency
from inception_kit.keras.export.onnx import require as require_onnx

SPECS = Path(__file__).resolve().parent.parent / "specs"
# (label, export format, quantize, file suffix)
FORMATS = {
    "savedmodel": ("savedmodel", False, ""),
    "keras": ("keras", False, ".keras"),
    "tflite": ("tflite", False, ".tflite"),
    "tflite-int8": ("tflite", True, ".tflite"),
    "onnx": ("onnx", False, ".onnx"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--specs", help="comma-separated spec names from specs/ (default: all)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: " + ", ".join(FORMATS))
    args = parser.parse_args()
    names = args.specs.split(",") if args.specs else sorted(p.stem for p in SPECS.glob("*.yaml"))
    formats = args.formats.split(",")
    if "onnx" in formats:
        try:
            require_onnx()
        except MissingDependency as err:
            print(f"onnx left out: {err}")
            formats.remove("onnx")
    worst: dict[str, float] = {}
    print(f"{'spec':28} {'format':12} {'max abs diff':>13} {'relative':>10} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for label in formats:
                fmt, quantize, suffix = FORMATS[label]
                start = time.perf_counter()
                r = export(
                    SPECS / f"{name}.yaml",
                    Path(tmp) / f"{name}-{label}{suffix}",
                    format=fmt,
                    quantize=quantize,
                )
                seconds = time.perf_counter() - start
                assert r.max_abs_diff is not None and r.tolerance is not None
                kind = "int8" if quantize else "float32"
                scale = r.tolerance / TOLERANCE[kind]  # max(1, max |keras output|)
                rel = r.max_abs_diff / scale
                worst[label] = max(worst.get(label, 0.0), rel)
                print(f"{name:28} {label:12} {r.max_abs_diff:13.3g} {rel:10.3g} {seconds:8.1f}", flush=True)
    print("\nworst relative diff per format, and its tolerance over it:")
    for label, rel in worst.items():
        kind = "int8" if FORMATS[label][1] else "float32"
        over = f"{TOLERANCE[kind] / rel:,.3g}x" if rel else "(diff 0)"
        print(f"  {label:12} {rel:10.3g}   tolerance {TOLERANCE[kind]:g}: {over}")


if __name__ == "__main__":
    main()
