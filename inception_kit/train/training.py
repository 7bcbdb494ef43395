"""`inception-kit train`: train a spec (or your own Keras model) with Keras `fit` under tf.distribute.

    inception-kit train specs/inception_3a_tiny.yaml --data digits --epochs 5 --out runs/tiny
    inception-kit train SPEC --data path/to/images/ --strategy mirrored
    TF_CONFIG='{"cluster": ..., "task": ...}' inception-kit train SPEC --data ... --strategy multi-worker

From Python, `fit(spec_or_model, data, epochs=..., out=...)` does the same and returns a
`TrainResult` (history, the run's paths, final and best accuracy, the trained model).

Data (see `inception_kit.data`): an image folder with one sub-folder per class, `digits`
(scikit-learn's, no download), or from Python a pair of arrays. The spec's head must end in
one unit per class, with softmax (probabilities) or no activation (logits); the loss is
sparse categorical cross-entropy, the optimizer Adam(--learning-rate), and `--seed` goes
to `keras.utils.set_random_seed` and to every shuffle.

Strategies: `default` (one device), `mirrored` (`tf.distribute.MirroredStrategy` over every
GPU, or, without GPUs, every logical CPU device) and `multi-worker`
(`tf.distribute.MultiWorkerMirroredStrategy`, cluster and task from `TF_CONFIG`). The model
is built and compiled inside `strategy.scope()`. `--batch-size` is the GLOBAL batch: each of
the R replicas gets batch/R of it (it must divide evenly).
Under the JAX backend, `default` is one device and `data-parallel` is
`keras.distribution.DataParallel` over every device JAX sees (on a CPU, as many as
`XLA_FLAGS=--xla_force_host_platform_device_count=N` makes); under torch, `default` only
(see `inception_kit.backends`). The run folder, resume and log work the same on all.

The run folder (`--out`, default `runs/<model name>`):

    run.json          settings, status (running / finished), final and best metrics
    report.json       the spec's cost report (`inception-kit report --format json`)
    spec.yaml         the expanded spec (templates and table rows written out)
    log.csv           one row per epoch: epoch, accuracy, loss, val_accuracy, val_loss
    best.weights.h5   the weights of the epoch with the best val_accuracy (ModelCheckpoint)
    final.weights.h5  the weights after the last epoch
    backup/           keras.callbacks.BackupAndRestore's state, while the run is unfinished

Every file but backup/'s is replaced atomically (`inception_kit.files`): a kill never leaves
half of one. backup/ is Keras' own; it keeps the previous backup too (`double_checkpoint`),
so a kill during a backup falls back to the one before.
log.csv has CSVLogger's columns but is rewritten whole each epoch rather than appended to:
an append can be cut mid-row by a kill, and after a resume it would repeat the epoch that
was cut short. best.weights.h5 is ModelCheckpoint's file, staged and renamed into place.

What happens to an existing `--out`:

* missing or empty: a new run;
* an unfinished run (run.json says running: killed, crashed or interrupted) of the same
  spec, data, batch size, learning rate, validation split and seed: it RESUMES. Re-running
  the same command restores the weights and optimizer state of the last backup (made at the
  end of every epoch) and continues the epoch count; log.csv keeps the epochs before it,
  and in-memory data sees the very batches an uninterrupted run would. With
  `--backup-every N` the weights are those of the last backup inside the epoch, and that
  epoch runs again from its first batch (Keras records the epoch, not the batch).
  `--epochs` and `--strategy` may differ when resuming; the other settings may not (the
  error names them);
* anything else (a finished run, other files): refused, exit 2, unless `--overwrite`, which
  deletes the run's own files (the names above) and starts again; other files stay.

A lock (`OUT/.lock`) keeps two trainings out of one folder at a time.

Multi-worker: every worker runs the same command with its own TF_CONFIG. The chief (task
"chief", or worker 0 when there is none) writes OUT; each other worker writes the same set
of files to `OUT/<type>-<index>/` (each worker restores from its own backup). On a shared
file system that keeps writers apart; on separate disks each machine has its own copy.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import DEFAULT_BUDGET, Budget
from ..errors import Problem, SpecError
from ..files import (
    DestinationExists,
    UnsafeDestination,
    check_folder_destination,
    child_path,
    read_bounded,
    staged_file,
    write_text,
)

STRATEGIES = ("default", "mirrored", "multi-worker", "data-parallel")
TF_STRATEGIES = ("mirrored", "multi-worker")  # tf.distribute: the TensorFlow backend only
RUN_FILES = ("run.json", "report.json", "spec.yaml", "log.csv", "best.weights.h5", "final.weights.h5", "backup")
# Settings a resumed run must share with the run it continues.
IDENTITY = ("model", "spec_sha256", "data", "batch_size", "learning_rate", "validation_split", "seed")
_WORKER_DIR = re.compile(r"^(chief|worker)-\d+$")
_BEST_STAGING = ".best.staging.weights.h5"
MAX_RUN_JSON_BYTES = 1_000_000
MAX_SEED = 2**32 - 1  # numpy's and keras.utils.set_random_seed's range


# ---------------------------------------------------------------------------------------
# The command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the spec (YAML) to build and train")
    parser.add_argument("--data", required=True, metavar="FOLDER|NAME",
                        help="an image folder with one sub-folder per class, or 'digits' (scikit-learn's 8x8 digits)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs in all (a resumed run continues up to this; default 10)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="the GLOBAL batch, split evenly over the replicas (default 64)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, metavar="LR", help="Adam's learning rate (default 0.001)")
    parser.add_argument("--validation-split", type=float, default=0.2, metavar="F",
                        help="fraction of the data held out for validation (default 0.2; 0 for none)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: weights, shuffles, the split (default 0)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="default: one device; mirrored: every GPU (or logical CPU device); "
                             "multi-worker: MultiWorkerMirroredStrategy from TF_CONFIG (both TensorFlow); "
                             "data-parallel: keras.distribution.DataParallel over JAX's devices (JAX)")
    parser.add_argument("--out", "-o", metavar="FOLDER", help="the run folder (default runs/<model name>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder's files and start again")
    parser.add_argument("--backup-every", default="epoch", metavar="epoch|N",
                        help="back up for resuming after each epoch (default) or every N batches")
    parser.add_argument("--aux", action="store_true",
                        help="add the auxiliary heads' losses, weighted (0.3 each, or --aux-weight)")
    parser.add_argument("--aux-weight", type=float, metavar="W",
                        help="one loss weight for every auxiliary head")
    parser.add_argument("--verbose", choices=["auto", "0", "1", "2"], default="auto",
                        help="Keras' progress output: 1 a bar, 2 a line per epoch, 0 none "
                             "(default auto: a bar on a terminal, a line per epoch into a pipe or file)")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = args.out or child_path("runs", args.spec.model.name)  # the CLI passes the plan
    result = fit(
        args.spec,
        args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        strategy=args.strategy,
        out=out,
        seed=args.seed,
        validation_split=args.validation_split,
        learning_rate=args.learning_rate,
        overwrite=args.overwrite,
        backup_every=_backup_every(args.backup_every),
        budget=Budget(args.max_params, args.max_activation_bytes),
        verbose=int(args.verbose) if args.verbose != "auto" else 1 if sys.stdout.isatty() else 2,
        aux=args.aux,
        aux_weight=args.aux_weight,
    )
    print(result.summary())
    return 0


def _backup_every(text: str) -> str | int:
    if text == "epoch":
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise SpecError.one("--backup-every", "'epoch' or a positive number of batches", repr(text))


# ---------------------------------------------------------------------------------------
# The result


@dataclass
class TrainResult:
    """What `fit` returns. `log` holds every epoch of the run, including those before a resume;
    `history` only this call's epochs (Keras' History.history)."""

    model: Any
    history: dict[str, list[float]]
    log: list[dict[str, float]]
    out: Path | None
    paths: dict[str, Path]
    initial_epoch: int  # the first epoch this call ran (0-based); > 0 when it resumed
    epochs: int
    replicas: int
    global_batch: int
    strategy: str
    class_names: list[str] = field(default_factory=list)
    monitor: str = "val_accuracy"

    @property
    def per_replica_batch(self) -> int:
        return self.global_batch // self.replicas

    @property
    def resumed(self) -> bool:
        return self.initial_epoch > 0

    @property
    def final(self) -> dict[str, float]:
        """The metrics of the last epoch (accuracy, loss, val_accuracy, val_loss)."""
        return {k: v for k, v in self.log[-1].items() if k != "epoch"} if self.log else {}

    @property
    def accuracy(self) -> float | None:
        return self.final.get("accuracy")

    @property
    def val_accuracy(self) -> float | None:
        return self.final.get("val_accuracy")

    @property
    def best(self) -> dict[str, float] | None:
        """The row of the best epoch by `monitor` (the one best.weights.h5 holds)."""
        rows = [r for r in self.log if self.monitor in r]
        return max(rows, key=lambda r: r[self.monitor]) if rows else None

    def summary(self) -> str:
        ran = f"epochs {self.initial_epoch + 1}-{self.epochs}" if self.initial_epoch < self.epochs else "no epochs left"
        lines = [
            f"trained {self.model.name}: {ran} of {self.epochs}"
            + (" (resumed)" if self.resumed else "")
            + f"; {self.strategy}, {self.replicas} replica{'s' if self.replicas != 1 else ''}, "
            f"global batch {self.global_batch} ({self.per_replica_batch} per replica)"
        ]
        if self.final:
            lines.append("final: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(self.final.items())))
        best = self.best
        if best is not None:
            lines.append(f"best {self.monitor}: {best[self.monitor]:.4f} (epoch {int(best['epoch']) + 1})")
        if self.out is not None:
            lines.append(f"run folder {self.out}: " + ", ".join(p.name for p in self.paths.values() if p.exists()))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Training


def fit(
    spec_or_model: Any,
    data: Any,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    strategy: Any = "default",
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    validation_split: float = 0.2,
    learning_rate: float = 1e-3,
    overwrite: bool = False,
    backup_every: str | int = "epoch",
    budget: Budget = DEFAULT_BUDGET,
    callbacks: Sequence[Any] = (),
    verbose: Any = "auto",
    aux: bool = False,
    aux_weight: float | None = None,
) -> TrainResult:
    """Trains a spec or a Keras model; see the module docstring for the run folder.

    Args:
        spec_or_model: a spec (`inception_kit.Model` or a YAML path), or a built Keras model.
            A Keras model made outside this strategy's scope is cloned into it (weights
            copied) and the clone is trained and returned in the result.
        data: an image folder, a packaged name ('digits'), or `(images, labels)` arrays.
        strategy: 'default', 'mirrored', 'multi-worker' or a `tf.distribute.Strategy`.
            Create a MultiWorkerMirroredStrategy before any other TensorFlow work in the
            process (TensorFlow's rule); the 'multi-worker' name creates it here.
        out: the run folder; None trains without writing anything (no checkpoints, no backup).
        batch_size: the global batch; each replica gets batch_size / replicas.
        callbacks: more Keras callbacks, run after the run's own.
        aux: train with the spec's auxiliary heads as extra outputs, their losses weighted by
            each head's `weight` (0.3, the paper's) or by `aux_weight` for all. Metrics and the
            saved weights are the main output's (the inference graph's, which export takes).

    Raises:
        SpecError: a bad spec, data, setting, or an unfinished run with other settings.
        DestinationExists: `out` holds a finished run or other files, without overwrite.
    """
    _check_settings(epochs, batch_size, learning_rate, backup_every, seed)
    target = _Target.of(spec_or_model, budget)
    heads = target.aux_heads(aux, aux_weight)
    from . import data as data_mod

    source = data_mod.inspect_source(data, target.input_shape)
    problems = [*target.class_problems(source), *data_mod.split_problems(source, validation_split, batch_size)]
    if problems:
        raise SpecError(problems)
    role = _role(strategy)
    _check_backend(strategy)  # before the run folder is touched, and before Keras loads
    run_dir = None if out is None else (Path(out) if role.chief else Path(out) / role.name)
    strategy_name = strategy if isinstance(strategy, str) else type(strategy).__name__
    settings = {
        "model": target.name,
        "spec_sha256": hashlib.sha256(target.identity.encode()).hexdigest(),
        "data": source.name if source.kind != "arrays" else "arrays sha256:" + _arrays_sha(source.arrays),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "validation_split": validation_split,
        "seed": seed,
        **({"aux_loss_weights": {k: w for k, (w, _) in heads.items()}} if heads else {}),
    }
    folder = _RunFolder.open(run_dir, settings, overwrite) if run_dir is not None else None
    try:
        return _train(target, source, folder, settings, strategy, strategy_name, epochs=epochs,
                      batch_size=batch_size, seed=seed, validation_split=validation_split,
                      learning_rate=learning_rate, backup_every=backup_every, callbacks=callbacks,
                      verbose=verbose, heads=heads)
    finally:
        if folder is not None:
            folder.release()


def _train(target: _Target, source: Any, folder: _RunFolder | None, settings: dict[str, Any], strategy: Any,
           strategy_name: str, *, epochs: int, batch_size: int, seed: int, validation_split: float,
           learning_rate: float, backup_every: str | int, callbacks: Sequence[Any], verbose: Any,
           heads: dict[str, tuple[float, bool]] | None = None) -> TrainResult:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    strat = _make_strategy(strategy)  # first: MultiWorkerMirroredStrategy wants to precede other TF work
    import keras

    from . import data as data_mod

    replicas = int(strat.num_replicas_in_sync)
    if batch_size % replicas:
        raise SpecError.one(
            "--batch-size", f"a multiple of the {replicas} replicas (the global batch is split evenly)", str(batch_size)
        )
    keras.utils.set_random_seed(seed)
    loaded = data_mod.load(source, target.input_shape, batch_size=batch_size, validation_split=validation_split, seed=seed,
                           backend=keras.backend.backend(), replicas=replicas)
    with strat.scope():
        model = target.build(strat, aux=bool(heads))
        if heads:  # a dict of outputs: the main one, then each auxiliary head, one loss each
            loss = {"output": keras.losses.SparseCategoricalCrossentropy(from_logits=target.from_logits)}
            for k, (_, logits) in heads.items():
                loss[k] = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                loss=loss,
                loss_weights={"output": 1.0, **{k: w for k, (w, _) in heads.items()}},
                metrics={"output": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
            )
        else:
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=target.from_logits),
                metrics=["accuracy"],
            )
    # What is saved and returned: the inference graph (the aux model's main output shares its layers).
    inference = keras.Model(model.input, model.output["output"], name=model.name) if heads else model
    monitor = "val_accuracy" if loaded.val is not None else "accuracy"
    run_info = {
        **settings,
        "status": "running",
        "epochs": epochs,
        "strategy": strategy_name,
        "replicas": replicas,
        "per_replica_batch": batch_size // replicas,
        "classes": source.class_names,
        "train_samples": loaded.train_count,
        "val_samples": loaded.val_count,
        "monitor": monitor,
    }
    if verbose != 0:
        print(
            f"training {target.name} on {source.describe()}: {loaded.train_count} training and "
            f"{loaded.val_count} validation samples, {source.num_classes} classes; {strategy_name} strategy, "
            f"{replicas} replica{'s' if replicas != 1 else ''}, global batch {batch_size} "
            f"({batch_size // replicas} per replica), {loaded.steps_per_epoch} steps per epoch"
            + (f"; {'resuming the unfinished run in' if folder.resume else 'run folder'} {folder.path}" if folder else ""),
            file=sys.stderr,
        )

    log = _epoch_log_callback(keras, folder.path / "log.csv" if folder else None, folder.rows if folder else [])
    own: list[Any] = [_main_metrics_callback(keras), log] if heads else [log]
    if folder is not None:
        folder.prepare()  # --overwrite clears the old run only now, with everything checked
        for name, text in target.files().items():
            write_text(folder.path / name, text, overwrite=True)
        _write_json(folder.path / "run.json", run_info)
        own.append(_best_weights_callback(keras, folder.path / "best.weights.h5", log, monitor, inference))
        own.append(keras.callbacks.BackupAndRestore(str(folder.path / "backup"), save_freq=backup_every,
                                                    double_checkpoint=True))
    # The pipeline starts at the epoch BackupAndRestore will resume (in-memory data is
    # shuffled by epoch), and runs on without end: steps_per_epoch cuts it into epochs.
    start = folder.backup_epoch() if folder is not None and folder.resume else 0
    train_ds, val_ds = loaded.train(start), loaded.val
    if heads:  # every head learns the same labels
        names = ["output", *heads]
        train_ds, val_ds = (None if ds is None else ds.map(lambda x, y: (x, {k: y for k in names}))
                            for ds in (train_ds, val_ds))
    finite = _finite_loss_callback(keras)
    try:
        with _fit_scope(strat):
            history = model.fit(train_ds, steps_per_epoch=loaded.steps_per_epoch, validation_data=val_ds,
                                epochs=epochs, callbacks=[finite, *own, *callbacks], verbose=verbose,
                                shuffle=False)  # the pipeline shuffles
        if finite.stopped is not None:
            epoch, batch, loss = finite.stopped
            raise TrainingFailed(
                f"the training loss became {loss} at epoch {epoch + 1}, batch {batch + 1}; training stopped "
                f"(a learning rate of {learning_rate:g} may be too high)"
            )
    except Exception as err:
        # A diverged run or an unreadable image is marked failed (resuming it repeats the
        # failure until the data or the settings change); anything else, a crash or an
        # interrupt, leaves the run "running", to resume from its backup.
        reason = str(err) if isinstance(err, TrainingFailed) else _unreadable_data(err, source)
        if reason is None:
            raise
        if folder is not None:
            _fail_run(folder, run_info, log.rows, monitor, reason)
            reason += f"; the run folder {folder.path} is marked failed"
        raise TrainingFailed(reason) from err
    rows = log.rows
    first = log.first_epoch if log.first_epoch is not None else epochs
    paths: dict[str, Path] = {}
    if folder is not None:
        save_weights(inference, folder.path / "final.weights.h5")
        best = max((r for r in rows if monitor in r), key=lambda r: r[monitor], default=None)
        final = {k: v for k, v in rows[-1].items() if k != "epoch"} if rows else {}
        _write_json(folder.path / "run.json", {**run_info, "status": "finished", "final": final, "best": best})
        paths = {name: folder.path / name for name in RUN_FILES if name != "backup"}
        paths = {k: v for k, v in paths.items() if v.exists()}
    return TrainResult(
        model=inference,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        log=rows,
        out=folder.path if folder else None,
        paths=paths,
        initial_epoch=first,
        epochs=epochs,
        replicas=replicas,
        global_batch=batch_size,
        strategy=strategy_name,
        class_names=source.class_names,
        monitor=monitor,
    )


class TrainingFailed(RuntimeError):
    """Training stopped: a non-finite loss, unreadable data, or an error inside Keras."""


def _fail_run(folder: _RunFolder, run_info: dict[str, Any], rows: list[dict[str, float]], monitor: str,
              reason: str) -> None:
    """Marks the run failed in run.json; the weights of the last good epoch stay where they are."""
    best = max((r for r in rows if monitor in r and math.isfinite(r.get("loss", math.nan))),
               key=lambda r: r[monitor], default=None)
    kept = "best.weights.h5 (the best finite epoch) and backup/ keep the last good weights"
    _write_json(folder.path / "run.json", {**run_info, "status": "failed", "error": reason, "best": best,
                                            "weights": kept if (folder.path / "best.weights.h5").exists() else None})


def _unreadable_data(err: Exception, source: Any) -> str | None:
    """When reading an image folder failed, which image TensorFlow cannot decode (its own
    error names none); None when the error is something else."""
    if source.kind != "folder" or type(err).__name__ not in ("InvalidArgumentError", "UnknownError", "DataLossError"):
        return None
    from . import data as data_mod

    bad = data_mod.first_unreadable_image(Path(source.name))
    return None if bad is None else f"the image {bad} cannot be read as an image (corrupt, or not the format its name says)"


def _finite_loss_callback(keras: Any) -> Any:
    class FiniteLoss(keras.callbacks.Callback):
        """Stops at the first batch whose loss is NaN or infinite (TerminateOnNaN, remembering where)."""

        stopped: tuple[int, int, float] | None = None
        epoch = 0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.stopped = (self.epoch, batch, float(loss))
                self.model.stop_training = True

    return FiniteLoss()


def _check_settings(epochs: int, batch_size: int, learning_rate: float, backup_every: Any, seed: int = 0) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise SpecError.one("--epochs", "a positive whole number of epochs", repr(epochs))
    if not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError.one("--batch-size", "a positive whole number (the global batch)", repr(batch_size))
    if not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise SpecError.one("--seed", f"a whole number from 0 to {MAX_SEED}", repr(seed))
    if not (isinstance(learning_rate, (int, float)) and 0 < learning_rate < math.inf):
        raise SpecError.one("--learning-rate", "a positive finite number", repr(learning_rate))
    if backup_every != "epoch" and not (isinstance(backup_every, int) and backup_every > 0):
        raise SpecError.one("--backup-every", "'epoch' or a positive number of batches", repr(backup_every))


def _arrays_sha(arrays: Any) -> str:
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def save_weights(model: Any, dest: str | os.PathLike[str]) -> None:
    """`model.save_weights` to `dest`, atomically (Keras wants a name ending .weights.h5)."""
    with staged_file(dest, overwrite=True, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n", overwrite=True)


# ---------------------------------------------------------------------------------------
# What is trained: a spec or a Keras model


class _Target:
    """A spec (validated, costed) or a Keras model, with what training needs to know of it."""

    def __init__(self, name: str, input_shape: tuple[int, ...], units: int, from_logits: bool,
                 identity: str, analysis: Any = None, keras_model: Any = None, where: str = "head",
                 mark: Any = None) -> None:
        self.name, self.input_shape, self.units, self.from_logits = name, input_shape, units, from_logits
        self.identity, self.analysis, self.keras_model = identity, analysis, keras_model
        self.where, self.mark = where, mark

    @classmethod
    def of(cls, spec_or_model: Any, budget: Budget) -> _Target:
        from ..planner import Plan
        from ..spec.types import Model

        if isinstance(spec_or_model, (Plan, Model, str, os.PathLike)):
            return cls._of_spec(spec_or_model, budget)
        if hasattr(spec_or_model, "fit") and hasattr(spec_or_model, "output_shape"):
            return cls._of_keras(spec_or_model)
        raise SpecError.one("spec", "a spec (inception_kit.Model or a YAML path) or a Keras model",
                            type(spec_or_model).__name__)

    @classmethod
    def _of_spec(cls, spec: Any, budget: Budget) -> _Target:
        from ..analysis import analyse
        from ..kinds import kind_of
        from ..planner import iter_ops

        analysis = analyse(spec, budget)
        p = analysis.plan
        ops = list(iter_ops(p.steps))
        last = ops[-1] if ops else None
        if len(p.output_shape) != 1 or last is None:
            raise SpecError.one(
                "head", "a head that ends in one unit per class, e.g. [gap, {dense: {units: K, activation: softmax}}]",
                "an output of shape " + "x".join(map(str, p.output_shape)),
                p.model.origins.get("head", (None, None))[0],
            )
        # Class scores come from a layer with an activation field (dense, activation): logits or softmax.
        scores = "activation" in kind_of(last.kind).fields
        activation = last.args.get("activation") if scores else None
        if not scores or activation not in (None, "linear", "softmax"):
            raise SpecError.one(
                f"{last.path}", "a head ending in a dense layer with softmax (probabilities) or no activation "
                "(logits), for sparse categorical cross-entropy",
                f"a {last.kind} layer" + (f" with activation {activation}" if activation else ""), last.mark,
            )
        dense = next((op for op in reversed(ops) if "units" in kind_of(op.kind).fields), last)
        return cls(p.model.name, tuple(p.model.input_shape), int(p.output_shape[0]), activation != "softmax",
                   p.model.to_yaml(), analysis=analysis,
                   where=f"{dense.path}.units" if "units" in dense.args else dense.path, mark=dense.mark)

    @classmethod
    def _of_keras(cls, model: Any) -> _Target:
        out = model.output_shape
        if not isinstance(out, tuple) or len(out) != 2 or out[1] is None:
            raise SpecError.one("model", "a Keras model with one output of shape (batch, classes)", str(out))
        act = getattr(model.layers[-1], "activation", None) if model.layers else None
        name = getattr(act, "__name__", None)
        if name not in (None, "linear", "softmax"):
            raise SpecError.one("model", "a last layer with softmax or no activation (logits)", f"activation {name}")
        inp = tuple(int(d) for d in model.input_shape[1:])
        return cls(model.name, inp, int(out[1]), name != "softmax", model.to_json(), keras_model=model,
                   where="the model's output")

    def class_problems(self, source: Any) -> list[Problem]:
        """The head's units against the data's classes."""
        if source.kind == "arrays":
            if source.num_classes > self.units:
                return [Problem(self.where, f"at least {source.num_classes} units, one per label 0..{source.num_classes - 1}",
                                f"{self.units} units", self.mark)]
            return []
        if source.num_classes != self.units:
            names = ", ".join(source.class_names[:8]) + (", ..." if source.num_classes > 8 else "")
            return [Problem(
                self.where,
                f"{source.num_classes} units, one per class in {source.describe()} ({names})",
                f"{self.units} units",
                self.mark,
                hint=f"the head has {self.units} outputs but the data has {source.num_classes} classes",
            )]
        return []

    def aux_heads(self, aux: bool, weight: float | None) -> dict[str, tuple[float, bool]]:
        """Auxiliary head -> (loss weight, from_logits), when training with them."""
        if not aux:
            if weight is not None:
                raise SpecError.one("aux_weight", "aux=True (--aux) with it", str(weight))
            return {}
        bad = isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0
        if weight is not None and bad:
            raise SpecError.one("aux_weight", "a loss weight, a number from 0", repr(weight))
        if self.analysis is None or not self.analysis.plan.model.aux:
            raise SpecError.one("aux", "a spec with auxiliary heads (an aux: section)",
                                f"'{self.name}', which has none")
        heads = {}
        for name, a in self.analysis.plan.aux.items():
            last = a.steps[-1]
            units = last.output_shape[-1]
            if len(last.output_shape) != 1 or units != self.units:
                raise SpecError.one(f"aux.{name}.layers",
                                    f"a head ending in {self.units} units, as the model's",
                                    f"an output of shape {last.output_shape}", last.mark)
            logits = last.args.get("activation") != "softmax"
            heads[name] = (float(weight if weight is not None else a.weight), logits)
        return heads

    def build(self, strategy: Any, aux: bool = False) -> Any:
        """The model, with its variables in `strategy`'s scope (call inside the scope)."""
        if self.analysis is not None:
            from ..keras.builder import build_model

            return build_model(self.analysis.plan, aux=aux)
        model = self.keras_model
        if isinstance(strategy, _KerasStrategy):
            if strategy.distribution is None:
                return model
        elif all(strategy.extended.variable_created_in_scope(v.value) for v in model.weights):
            return model
        import keras

        try:
            clone = keras.models.clone_model(model)
        except Exception as err:  # subclassed models cannot always be cloned
            raise SpecError.one("model", "a model built inside strategy.scope() of the strategy passed to fit",
                                f"{type(model).__name__} made elsewhere, which Keras could not clone ({err})") from err
        clone.set_weights(model.get_weights())
        return clone

    def files(self) -> dict[str, str]:
        """The spec's files in the run folder: its cost report and the expanded spec."""
        if self.analysis is None:
            return {}
        from ..report import render

        return {"report.json": render(self.analysis, "json"), "spec.yaml": self.identity}


# ---------------------------------------------------------------------------------------
# Strategies


@dataclass(frozen=True)
class _Role:
    chief: bool
    name: str  # "" for the chief, else "<type>-<index>"


def _role(strategy: Any) -> _Role:
    """Which worker this process is. Read from TF_CONFIG for 'multi-worker', without TensorFlow."""
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise SpecError.one("--strategy", "one of " + ", ".join(STRATEGIES), repr(strategy))
        if strategy != "multi-worker":
            return _Role(True, "")
        cluster, task_type, index = _tf_config()
    else:
        resolver = getattr(strategy, "cluster_resolver", None)
        task_type = getattr(resolver, "task_type", None)
        if not task_type:
            return _Role(True, "")
        index = int(resolver.task_id)
        cluster = resolver.cluster_spec().as_dict()
    chief = task_type == "chief" or (task_type == "worker" and index == 0 and not cluster.get("chief"))
    return _Role(chief, "" if chief else f"{task_type}-{index}")


TF_CONFIG_WANTED = (
    'TF_CONFIG holding JSON like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def _tf_config() -> tuple[dict[str, Any], str, int]:
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise SpecError.one("TF_CONFIG", TF_CONFIG_WANTED, "nothing (it is not set)",
                            hint="--strategy multi-worker needs every worker's address and this one's task")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, index = task["type"], int(task["index"])
        hosts = cluster[task_type]
        if not isinstance(hosts, list) or not 0 <= index < len(hosts):
            raise ValueError(f"task index {index} is not in cluster[{task_type!r}]")
    except (ValueError, KeyError, TypeError) as err:
        hint = f"no {err} in it" if isinstance(err, KeyError) else str(err)
        raise SpecError.one("TF_CONFIG", TF_CONFIG_WANTED, repr(text[:200]), hint=hint) from None
    if task_type not in ("chief", "worker"):
        raise SpecError.one("TF_CONFIG", "a task of type chief or worker", repr(task_type))
    return cluster, task_type, index


def _make_strategy(strategy: Any) -> Any:
    from ..keras.backends import current

    backend = current()
    if backend != "tensorflow" or strategy == "data-parallel":
        return _keras_strategy(strategy, backend)
    import tensorflow as tf

    if not isinstance(strategy, str):
        return strategy
    if strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return _multi_worker_strategy()


class _KerasStrategy:
    """What `_train` needs of a strategy, for the JAX and torch backends: the replica count and
    a scope; `distribution` is the keras.distribution one (None: one device)."""

    def __init__(self, distribution: Any = None) -> None:
        self.distribution = distribution
        mesh = distribution.device_mesh if distribution is not None else None
        self.num_replicas_in_sync = len(mesh.devices.flat) if mesh is not None else 1

    def scope(self) -> Any:
        import contextlib

        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()


def _check_backend(strategy: Any) -> None:
    """A strategy name the backend cannot run is a SpecError (the backend read without Keras)."""
    from ..keras.backends import current

    backend = current()
    if not isinstance(strategy, str) or strategy == "default":
        return
    can = {"tensorflow": "default, mirrored or multi-worker", "jax": "default or data-parallel"}.get(backend, "default")
    if strategy in TF_STRATEGIES and backend != "tensorflow":
        raise SpecError.one("--strategy", f"{can} under the {backend} backend",
                            f"{strategy!r}, a tf.distribute strategy (run it with --backend tensorflow)")
    if strategy == "data-parallel" and backend != "jax":
        raise SpecError.one("--strategy", f"{can} under the {backend} backend",
                            "'data-parallel', which keras.distribution runs on JAX only (use --backend jax)")


def _fit_scope(strat: Any) -> Any:
    """keras.distribution lays out the batches during fit too, so its scope stays open for it."""
    import contextlib

    return strat.scope() if isinstance(strat, _KerasStrategy) else contextlib.nullcontext()


def _keras_strategy(strategy: Any, backend: str) -> _KerasStrategy:
    """'default' on any backend, 'data-parallel' on JAX, or a keras.distribution.Distribution."""
    import keras

    if not isinstance(strategy, str):
        if isinstance(strategy, keras.distribution.Distribution):
            return _KerasStrategy(strategy)
        raise SpecError.one("strategy", "'default', 'data-parallel' or a keras.distribution.Distribution "
                            f"under the {backend} backend (tf.distribute strategies need TensorFlow's)", type(strategy).__name__)
    _check_backend(strategy)
    if strategy == "default":
        return _KerasStrategy()
    # Every device JAX sees; Keras splits each global batch along its first axis over them.
    return _KerasStrategy(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))


def _multi_worker_strategy() -> Any:
    """tf.distribute.MultiWorkerMirroredStrategy (cluster and task from TF_CONFIG) with a
    `reduce` that Keras 3 can use, as it uses MirroredStrategy's (keras-team/keras#20585):

    * a nest of values is reduced value by value: Keras reduces a whole (images, labels)
      batch in one call when fit starts, which the stock multi-worker `reduce` rejects
      ("Attempt to convert a value (PerReplica...) with an unsupported type");
    * a scalar is reduced across replicas only: Keras reduces every step's scalar metrics
      with axis=0 ("Invalid reduction dimension 0 for input with 0 dimensions").
    """
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
            parent = super()

            def one(v: Any) -> Any:
                local = self.experimental_local_results(v)[0]
                scalar = getattr(getattr(local, "shape", None), "rank", None) == 0
                return parent.reduce(reduce_op, v, None if scalar else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerMirroredStrategy()


# ---------------------------------------------------------------------------------------
# The run folder


class _RunFolder:
    """An open run folder: new, resumed or overwritten; locked while training."""

    def __init__(self, path: Path, decision: str, rows: list[dict[str, float]], lock: Any) -> None:
        self.path, self.decision, self.rows, self._lock = path, decision, rows, lock

    @property
    def resume(self) -> bool:
        return self.decision == "resume"

    def prepare(self) -> None:
        """Deletes an overwritten run's files; called once training is about to start."""
        if self.decision == "overwrite":
            _clear(self.path)
            self.decision = "new"

    @classmethod
    def open(cls, path: Path, settings: dict[str, Any], overwrite: bool) -> _RunFolder:
        _decide(path, settings, overwrite)  # refuse before touching anything
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        lock = _lock(path)
        try:
            decision = _decide(path, settings, overwrite)  # again, now that no one else can start
            rows = _read_log(path / "log.csv") if decision == "resume" else []
            folder = cls(path, decision, rows, lock)
            folder.created = created
            return folder
        except BaseException:
            _unlock(lock)
            raise

    def backup_epoch(self) -> int:
        """The epoch BackupAndRestore will resume at (it records it in its folder), else 0."""
        try:
            meta = json.loads((self.path / "backup" / "training_metadata.json").read_text(encoding="utf-8"))
            return max(0, int(meta["epoch"]))
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    created = False  # this run made the folder

    def release(self) -> None:
        """Unlocks; a folder this run made and never wrote to is removed again."""
        _unlock(self._lock)
        self._lock = None
        if self.created and [e.name for e in self.path.iterdir()] in ([], [".lock"]):
            (self.path / ".lock").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.path.rmdir()


def _decide(path: Path, settings: dict[str, Any], overwrite: bool) -> str:
    """'new', 'resume' or 'overwrite'; raises when the folder must not be used."""
    if not path.exists():
        return "new"
    if not path.is_dir():
        raise SpecError.one("--out", "a folder for the run (new, or an unfinished run to resume)", f"'{path}', a file")
    entries = [e for e in path.iterdir() if not e.name.startswith(".") and not _WORKER_DIR.match(e.name)]
    if not entries:
        return "new"
    try:
        previous = json.loads(read_bounded(path / "run.json", MAX_RUN_JSON_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        previous = None
    if overwrite:
        # The run folder's rule (inception_kit.files): only a folder a run wrote is cleared.
        check_folder_destination(path, True, "run.json")
        if not isinstance(previous, dict) or "model" not in previous:
            raise UnsafeDestination(path, "its run.json was not written by inception-kit train")
        return "overwrite"
    if not isinstance(previous, dict) or previous.get("status") not in ("running", "failed"):
        raise DestinationExists(path)
    different = [k for k in IDENTITY if previous.get(k) != settings[k]]
    if different:
        raise SpecError.one(
            "--out",
            f"the settings of the unfinished run in '{path}' to resume it, or --overwrite to start again",
            "; ".join(f"{k} {settings[k]!r} where the run has {previous.get(k)!r}" for k in different),
        )
    return "resume"


def _clear(path: Path) -> None:
    """Deletes the run's own files (and their staging leftovers), nothing else."""
    names = set(RUN_FILES)
    for entry in path.iterdir():
        ours = entry.name in names or entry.name == _BEST_STAGING or any(
            entry.name.startswith(f".{n}.") and entry.name.endswith(".tmp") for n in names
        )
        if ours:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _lock(path: Path) -> Any:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SpecError.one("--out", "a run folder no other training is using", f"'{path}', in use by another training") from None
    return fd


def _unlock(fd: Any) -> None:
    if fd is not None:
        os.close(fd)  # closing releases the flock


def _read_log(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v not in (None, "")})
            except ValueError:
                continue
    return rows


# ---------------------------------------------------------------------------------------
# Callbacks (classes made on first use: Keras is imported lazily)


def _epoch_log_callback(keras: Any, path: Path | None, rows: list[dict[str, float]]) -> Any:
    class EpochLog(keras.callbacks.Callback):
        """CSVLogger's table (epoch, then the metrics in name order), rewritten atomically
        every epoch. On a resume, rows of the epoch resumed and later are dropped first."""

        def __init__(self) -> None:
            super().__init__()
            self.rows = list(rows)
            self.first_epoch: int | None = None

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if self.first_epoch is None:
                self.first_epoch = epoch
                self.rows = [r for r in self.rows if r["epoch"] < epoch]

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.rows.append({"epoch": epoch, **{k: float(v) for k, v in sorted((logs or {}).items())}})
            if path is not None:
                write_text(path, self.csv(), overwrite=True)

        def csv(self) -> str:
            keys = sorted({k for r in self.rows for k in r if k != "epoch"})
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["epoch", *keys])
            for r in self.rows:
                writer.writerow([r["epoch"], *(repr(r[k]) if k in r else "" for k in keys)])
            return buf.getvalue()

    return EpochLog()


def _main_metrics_callback(keras: Any) -> Any:
    """With auxiliary heads Keras names the main output's metrics output_accuracy, ...; the
    log, the best-weights monitor and the result read them under their plain names."""

    class MainMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            for key in list(logs or {}):
                for prefix, plain_prefix in (("output_", ""), ("val_output_", "val_")):
                    if key.startswith(prefix) and key.endswith("accuracy"):
                        logs[plain_prefix + key[len(prefix):]] = logs[key]

    return MainMetrics()


def _best_weights_callback(keras: Any, dest: Path, log: Any, monitor: str, inference: Any = None) -> Any:
    staging = dest.with_name(_BEST_STAGING)

    class BestWeights(keras.callbacks.ModelCheckpoint):
        """ModelCheckpoint(save_best_only) into a staging file, renamed onto `dest` when it
        saved. On a resume, the best so far is taken from the log, so a worse epoch after
        the resume does not replace the best weights."""

        def set_model(self, model: Any) -> None:  # the inference graph's weights, as final's
            super().set_model(inference if inference is not None else model)

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            super().on_epoch_begin(epoch, logs)
            if self.best is None:
                earlier = [r[monitor] for r in log.rows if monitor in r and r["epoch"] < epoch]
                if earlier and dest.exists():
                    self.best = max(earlier)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if staging.exists():
                staging.unlink()
            if not math.isfinite(float((logs or {}).get("loss", 0.0))):
                return  # weights from a diverged epoch are never "best"
            super().on_epoch_end(epoch, logs)
            if staging.exists():
                with staged_file(dest, overwrite=True) as tmp:
                    os.replace(staging, tmp)

    return BestWeights(str(staging), monitor=monitor, mode="max", save_best_only=True, save_weights_only=True)
