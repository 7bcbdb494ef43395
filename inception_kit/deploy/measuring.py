"""Writing, verifying, loading and measuring each path (`Context`), in one process.

Each path's artifact is written to the work folder (by `export` where it writes that format,
else here, verified and described by export's rules), reloaded with its own runtime
(`runtimes`), and its deviation from the Keras float32 model measured on one batch of
`DEVIATION_SAMPLES`: the centred relative L2 (per sample, ``||c(out) - c(ref)|| / ||c(ref)||``
with c removing the sample's mean; the largest over the batch) and the largest absolute
difference. With data, the held-out top-1 accuracy of the Keras model and of every path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Problem, SpecError
from ..keras.export.artifact import centred_rel_l2
from .choosing import Candidate
from .runtimes import LiteRunner, OVRunner, Runner, TFRunner

if TYPE_CHECKING:
    from .paths import DeployPath

DEVIATION_SAMPLES = 8
CALIBRATION_SAMPLES = 128


def quiet() -> Any:
    """TensorFlow's and the converters' console output, captured as `export` does."""
    from ..keras.export.capture import captured

    return captured()


class Context:
    """The Keras model, the data, and each path's artifact and runtime."""

    def __init__(self, analysis: Any, in_shape: tuple[int, ...], weights: Any, work: Path) -> None:
        self.analysis, self.in_shape, self.weights, self.work = analysis, in_shape, weights, work
        self.val: tuple[Any, Any] | None = None
        self.calibration: Any = None
        self.data_info: dict[str, Any] = {}
        self.runners: dict[str, Runner] = {}
        self.model: Any = None
        self.weights_entry: Any = None  # the manifest's account of the weights
        self.x_dev: Any = None
        self.ref: Any = None

    # ---- data and the reference model

    def prepare_data(self, source: Any, split: float, seed: int) -> None:
        import numpy as np

        from ..keras.export.artifact import model_with_weights

        _seed()
        self.model, self.weights_entry = model_with_weights(self.analysis.plan, self.weights)
        rng = np.random.default_rng(0)
        self.x_dev = rng.uniform(-1.0, 1.0, (DEVIATION_SAMPLES, *self.in_shape)).astype(np.float32)
        dev_from = "numpy default_rng(0).uniform(-1, 1)"
        if source is not None:
            from ..train.data import load, split_problems

            problems = split_problems(source, split)
            if split == 0:
                problems.append(Problem("validation_split", "a held-out split > 0 for deploy", "0"))
            if problems:
                raise SpecError(problems)
            loaded = load(source, self.in_shape, batch_size=1, validation_split=split, seed=seed)
            xs, ys = zip(*((x, y) for x, y in loaded.val.as_numpy_iterator()))
            self.val = (np.concatenate(xs).astype(np.float32), np.concatenate(ys))
            cal = loaded.train(0).take(min(CALIBRATION_SAMPLES, loaded.train_count)).as_numpy_iterator()
            self.calibration = np.concatenate([x for x, _ in cal]).astype(np.float32)
            self.x_dev = self.val[0][:DEVIATION_SAMPLES]
            dev_from = f"the first {len(self.x_dev)} held-out samples"
            self.data_info = {
                "data": source.name,
                "held_out": len(self.val[0]),
                "validation_split": split,
                "seed": seed,
                "calibration_samples": len(self.calibration),
            }
            if self.weights is None:
                self.val = None  # untrained: accuracy would mean nothing
        self.data_info["deviation_batch"] = dev_from
        self.ref = np.asarray(self.model(self.x_dev, training=False))

    # ---- each path

    def prepare(self, c: Candidate, path: DeployPath) -> None:
        """Writes, verifies and loads `path`'s artifact; marks `c` failed when it cannot."""
        try:
            with quiet():
                c.artifact = path.artifact
                dest = self.work / path.artifact
                runner = path.write(self, c, dest) or path.runner(dest)
                self.runners[c.name] = runner
                c.runtime = runner.name
                dev_out = runner(self.x_dev)
            import numpy as np

            c.deviation = float(centred_rel_l2(self.ref, dev_out).max())
            c.max_abs = float(np.abs(np.asarray(dev_out, np.float64) - self.ref).max())
        except Exception as err:  # a converter's failure is a result: the path is listed as failed
            c.status = "failed"
            c.reason = (
                f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}"
            )

    def export(self, c: Candidate | None, dest: Path, **kw: Any) -> None:
        """Via `export` (verified); on a failed verification, written unverified to be measured
        anyway. `c` None: a file another path reads (openvino's ONNX), not a candidate."""
        from ..keras.export import VerificationError, export

        _seed()
        try:
            result = export(self.analysis.plan, dest, weights=self.weights, **kw)
            verification, verified = f"max abs diff {result.max_abs_diff:.3g} <= {result.tolerance:.3g}", True
        except VerificationError as err:
            verification, verified = str(err).split(";")[0], False
            _seed()
            result = export(self.analysis.plan, dest, weights=self.weights, verify=False, **kw)
        if c is not None:
            c.verified, c.verification, c.bytes = verified, verification, result.size_bytes

    # ---- artifacts that `export` does not write: written and verified by its rules here

    def own(
        self,
        c: Candidate,
        dest: Path,
        fmt: str,
        kind: str,
        write: Callable[[Path], Runner],
        quantized: bool = False,
    ) -> Runner:
        """Writes an artifact `export` does not write (`write(dest)` returns its runner),
        verifies it by export's rule for `kind` and writes its metadata as export does."""
        import numpy as np

        from ..keras.export import artifact

        folder = fmt != "tflite"
        meta = dest / artifact.META_DIR if folder else artifact.metadata_dir(dest, fmt)
        run = write(dest)
        x, check, tolerance = artifact.checker(
            self.model, self.in_shape, kind, f"the {c.name} artifact", dest
        )
        where: dict[str, Any] = {}
        if kind == "int8" and self.calibration is not None:
            # Calibrated int8 is checked on held-out data, by export's rule: the export batch
            # (uniform in [-1, 1)) lies outside the calibrated ranges of data in [0, 1].
            x = self.x_dev
            where = {
                "batch": len(x),
                "input": self.data_info["deviation_batch"] + " of " + self.data_info["data"],
            }
            tolerance = artifact.TOLERANCE[kind] * max(1.0, float(np.abs(self.ref).max()))
            check = artifact.Check(self.ref.astype(np.float32), tolerance, f"the {c.name} artifact", dest)
        diff: float | None
        try:
            diff = check(run(x))
            c.verified, c.verification = True, f"max abs diff {diff:.3g} <= {tolerance:.3g}"
        except artifact.VerificationError as err:
            diff, c.verification = None, str(err).split(";")[0]
        manifest = {
            **artifact.manifest_of(self.analysis.plan, fmt, quantized, "float32", self.weights_entry),
            "path": c.name,
        }
        if not folder:
            manifest["artifact"] = artifact.file_stamp(dest.name, dest)
        texts = artifact.meta_texts(self.analysis)
        figures = {**check.figures(), **where}
        artifact.write_meta(
            meta, texts, manifest, diff, kind, tolerance if diff is not None else None, figures
        )
        c.bytes = artifact.tree_bytes(dest) if folder else dest.stat().st_size
        return run

    def write_frozen(self, dest: Path) -> Runner:
        import tensorflow as tf

        from ..keras._keras_internals import freeze
        from ..keras.export.artifact import SIGNATURE, serving_module
        from ..planner import INPUT_NAME, OUTPUT_NAME

        _, concrete = serving_module(self.model, self.in_shape)
        frozen = freeze(concrete)
        root = tf.Module()
        root.frozen = frozen
        root.serve = tf.function(
            lambda image: {OUTPUT_NAME: frozen(image)[0]},
            autograph=False,
            input_signature=[tf.TensorSpec((None, *self.in_shape), tf.float32, name=INPUT_NAME)],
        )
        tf.saved_model.save(root, str(dest), signatures={SIGNATURE: root.serve.get_concrete_function()})
        return TFRunner(dest, "tf.saved_model.load, serving_default (constants)")

    def write_full_int8(self, dest: Path) -> Runner:
        import tensorflow as tf

        from ..keras.export.artifact import serving_module

        root, concrete = serving_module(self.model, self.in_shape)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], root)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        samples = self.calibration
        converter.representative_dataset = lambda: ([s[None]] for s in samples)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]  # input and output stay float32
        dest.write_bytes(converter.convert())
        return LiteRunner(dest)

    def write_openvino(self, onnx_file: Path, dest: Path) -> Runner:
        import openvino as ov

        dest.mkdir()
        # compress_to_fp16=False: keep the float32 weights (the default halves them)
        ov.save_model(ov.convert_model(str(onnx_file)), str(dest / "model.xml"), compress_to_fp16=False)
        return OVRunner(dest / "model.xml")

    # ---- timing and accuracy

    def timer(self, c: Candidate, batch: int) -> Callable[[], Any]:
        import numpy as np

        x = np.random.default_rng(1).uniform(-1.0, 1.0, (batch, *self.in_shape)).astype(np.float32)
        return self.runners[c.name].timer(x)

    def accuracies(self, live: list[Candidate], batch: int) -> float | None:
        """Sets each path's held-out top-1 accuracy; returns the Keras model's."""
        if self.val is None:
            return None
        import numpy as np

        x, y = self.val
        keras_pred = np.asarray(self.model.predict(x, batch_size=batch, verbose=0))
        for c in live:
            run = self.runners[c.name]
            outs = []
            for i in range(0, len(x), batch):  # whole batches: the last one padded with zeros
                chunk = x[i : i + batch]
                padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), np.float32)])
                outs.append(np.asarray(run(padded))[: len(chunk)])
            c.accuracy = _top1(np.concatenate(outs), y)
        return _top1(keras_pred, y)

    def release(self) -> None:
        self.runners.clear()  # closes files in `work` before it is removed


def _seed() -> None:
    """Before each build: without --weights, every path's model gets the same initial weights."""
    import keras

    keras.utils.set_random_seed(0)


def _top1(pred: Any, y: Any) -> float:
    import numpy as np

    return float(np.mean(np.asarray(pred).reshape(len(y), -1).argmax(axis=1) == y))
