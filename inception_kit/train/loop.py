"""`fit`: trains a spec or a Keras model with Keras `fit`, in a run folder, and its result."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, Failure, SpecError
from ..files import write_text
from ..planner import DEFAULT_BUDGET, Budget
from ..progress import Progress, no_progress
from .callbacks import (
    best_weights_callback,
    epoch_log_callback,
    finite_loss_callback,
    main_metrics_callback,
    progress_callback,
)
from .runs import RUN_FILES, RunFolder, fail_run, save_weights, write_json
from .strategy import check_backend, fit_scope, make_strategy, worker_role
from .target import Target

MAX_SEED = 2**32 - 1  # numpy's and keras.utils.set_random_seed's range


class TrainingFailed(Failure):
    """Training stopped: a non-finite loss, unreadable data, or an error inside Keras."""


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
        ran = (
            f"epochs {self.initial_epoch + 1}-{self.epochs}"
            if self.initial_epoch < self.epochs
            else "no epochs left"
        )
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
            lines.append(
                f"run folder {self.out}: " + ", ".join(p.name for p in self.paths.values() if p.exists())
            )
        return "\n".join(lines)


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
    progress: Progress = no_progress,
) -> TrainResult:
    """Trains a spec or a Keras model; see `inception_kit.train.runs` for the run folder.

    Args:
        spec_or_model: a spec (a Plan from `inception_kit.load`, a ModelSpec or a YAML path),
            or a built Keras model.
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
        verbose: Keras' own progress output (on stdout): 'auto', 0, 1 (a bar) or 2 (a line per epoch).
        progress: told `(epochs done, epochs, what)`: once when training starts (`what`
            describes the run: data, samples, strategy, batches, run folder), then after
            every epoch ("epoch 3/10: loss 0.41, val_accuracy 0.88").

    Returns:
        The trained model (the inference graph), its history and log, and the run's files.

    Raises:
        ArgumentError: a setting out of range, unusable data, or an `out` that cannot take
            this run (an unfinished run with other settings, in use by another training).
        SpecError: the spec cannot be trained (its head against the data's classes).
        DestinationExists: `out` holds a finished run or other files, without overwrite.
        TrainingFailed: the loss became NaN or infinite, or an image could not be read.
    """
    _check_settings(epochs, batch_size, learning_rate, backup_every, seed)
    target = Target.of(spec_or_model, budget)
    heads = target.aux_heads(aux, aux_weight)
    from . import data as data_mod

    source = data_mod.inspect_source(data, target.input_shape)
    problems = target.class_problems(source)
    if problems:
        raise SpecError(problems)
    data_mod.check_split(source, validation_split, batch_size)
    role = worker_role(strategy)
    check_backend(strategy)  # before the run folder is touched, and before Keras loads
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
    folder = RunFolder.open(run_dir, settings, overwrite) if run_dir is not None else None
    try:
        return _train(
            target,
            source,
            folder,
            settings,
            strategy,
            strategy_name,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            validation_split=validation_split,
            learning_rate=learning_rate,
            backup_every=backup_every,
            callbacks=callbacks,
            verbose=verbose,
            heads=heads,
            progress=progress,
        )
    finally:
        if folder is not None:
            folder.release()


def _train(
    target: Target,
    source: Any,
    folder: RunFolder | None,
    settings: dict[str, Any],
    strategy: Any,
    strategy_name: str,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    validation_split: float,
    learning_rate: float,
    backup_every: str | int,
    callbacks: Sequence[Any],
    verbose: Any,
    heads: dict[str, tuple[float, bool]] | None = None,
    progress: Progress = no_progress,
) -> TrainResult:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    strat = make_strategy(strategy)  # first: MultiWorkerMirroredStrategy wants to precede other TF work
    import keras

    from . import data as data_mod

    replicas = int(strat.num_replicas_in_sync)
    if batch_size % replicas:
        raise ArgumentError(
            "batch_size",
            f"a multiple of the {replicas} replicas (the global batch is split evenly)",
            batch_size,
        )
    keras.utils.set_random_seed(seed)
    # The builder's name for the main output of a model with auxiliary heads (the planner
    # has no constant for it yet; the export's is the same word).
    from ..planner import OUTPUT_NAME

    outputs = (OUTPUT_NAME, *heads) if heads else ()  # every head learns the same labels
    loaded = data_mod.load(
        source,
        target.input_shape,
        batch_size=batch_size,
        validation_split=validation_split,
        seed=seed,
        backend=keras.backend.backend(),
        replicas=replicas,
        outputs=outputs,
    )
    with strat.scope():
        model = target.build(strat, aux=bool(heads))
        if heads:  # a dict of outputs: the main one, then each auxiliary head, one loss each
            loss = {OUTPUT_NAME: keras.losses.SparseCategoricalCrossentropy(from_logits=target.from_logits)}
            for k, (_, logits) in heads.items():
                loss[k] = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                loss=loss,
                loss_weights={OUTPUT_NAME: 1.0, **{k: w for k, (w, _) in heads.items()}},
                metrics={OUTPUT_NAME: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
            )
        else:
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=target.from_logits),
                metrics=["accuracy"],
            )
    # What is saved and returned: the inference graph (the aux model's main output shares its layers).
    inference = keras.Model(model.input, model.output[OUTPUT_NAME], name=model.name) if heads else model
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
    start = folder.backup_epoch() if folder is not None and folder.resume else 0
    progress(
        start,
        epochs,
        f"training {target.name} on {source.describe()}: {loaded.train_count} training and "
        f"{loaded.val_count} validation samples, {source.num_classes} classes; {strategy_name} strategy, "
        f"{replicas} replica{'s' if replicas != 1 else ''}, global batch {batch_size} "
        f"({batch_size // replicas} per replica), {loaded.steps_per_epoch} steps per epoch"
        + (
            f"; {'resuming the unfinished run in' if folder.resume else 'run folder'} {folder.path}"
            if folder
            else ""
        ),
    )

    log = epoch_log_callback(
        keras, folder.path / "log.csv" if folder else None, folder.rows if folder else []
    )
    own: list[Any] = [main_metrics_callback(keras, OUTPUT_NAME), log] if heads else [log]
    own.append(progress_callback(keras, progress, epochs))
    if folder is not None:
        folder.prepare()  # --overwrite clears the old run only now, with everything checked
        for name, text in target.files().items():
            write_text(folder.path / name, text, overwrite=True)
        write_json(folder.path / "run.json", run_info)
        own.append(best_weights_callback(keras, folder.path / "best.weights.h5", log, monitor, inference))
        own.append(
            keras.callbacks.BackupAndRestore(
                str(folder.path / "backup"), save_freq=backup_every, double_checkpoint=True
            )
        )
    # The pipeline starts at the epoch BackupAndRestore will resume (in-memory data is
    # shuffled by epoch), and runs on without end: steps_per_epoch cuts it into epochs.
    train_ds, val_ds = loaded.train(start), loaded.val
    finite = finite_loss_callback(keras)
    try:
        with fit_scope(strat):
            history = model.fit(
                train_ds,
                steps_per_epoch=loaded.steps_per_epoch,
                validation_data=val_ds,
                epochs=epochs,
                callbacks=[finite, *own, *callbacks],
                verbose=verbose,
                shuffle=False,
            )  # the pipeline shuffles
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
            fail_run(folder, run_info, log.rows, monitor, reason)
            reason += f"; the run folder {folder.path} is marked failed"
        raise TrainingFailed(reason) from err
    rows = log.rows
    first = log.first_epoch if log.first_epoch is not None else epochs
    paths: dict[str, Path] = {}
    if folder is not None:
        save_weights(inference, folder.path / "final.weights.h5")
        best = max((r for r in rows if monitor in r), key=lambda r: r[monitor], default=None)
        final = {k: v for k, v in rows[-1].items() if k != "epoch"} if rows else {}
        write_json(folder.path / "run.json", {**run_info, "status": "finished", "final": final, "best": best})
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


def _unreadable_data(err: Exception, source: Any) -> str | None:
    """When reading an image folder failed, which image TensorFlow cannot decode (its own
    error names none); None when the error is something else."""
    if source.kind != "folder" or type(err).__name__ not in (
        "InvalidArgumentError",
        "UnknownError",
        "DataLossError",
    ):
        return None
    from . import data as data_mod

    bad = data_mod.first_unreadable_image(Path(source.name))
    return (
        None
        if bad is None
        else f"the image {bad} cannot be read as an image (corrupt, or not the format its name says)"
    )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_settings(
    epochs: int, batch_size: int, learning_rate: float, backup_every: Any, seed: int = 0
) -> None:
    """Refuses settings out of range before anything is loaded (a Python caller's `True` is no number)."""
    if not _whole(epochs) or epochs < 1:
        raise ArgumentError("epochs", "a positive whole number of epochs", epochs)
    if not _whole(batch_size) or batch_size < 1:
        raise ArgumentError("batch_size", "a positive whole number (the global batch)", batch_size)
    if not (_whole(seed) and 0 <= seed <= MAX_SEED):
        raise ArgumentError("seed", f"a whole number from 0 to {MAX_SEED}", seed)
    if isinstance(learning_rate, bool) or not (
        isinstance(learning_rate, (int, float)) and 0 < learning_rate < math.inf
    ):
        raise ArgumentError("learning_rate", "a positive finite number", learning_rate)
    if backup_every != "epoch" and not (_whole(backup_every) and backup_every > 0):
        raise ArgumentError("backup_every", "'epoch' or a positive number of batches", backup_every)


def _arrays_sha(arrays: Any) -> str:
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
