"""The run's own Keras callbacks. Their classes are made on first use (Keras is imported
lazily): each function takes the `keras` module and returns one callback."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from ..files import staged_file, write_text
from .runs import BEST_STAGING


def epoch_log_callback(keras: Any, path: Path | None, rows: list[dict[str, float]]) -> Any:
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


def main_metrics_callback(keras: Any, output: str) -> Any:
    """With auxiliary heads Keras names the main output's metrics after it (`output`:
    output_accuracy, ...); the log, the best-weights monitor and the result read them under
    their plain names."""

    class MainMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            for key in list(logs or {}):
                for prefix, plain_prefix in ((f"{output}_", ""), (f"val_{output}_", "val_")):
                    if key.startswith(prefix) and key.endswith("accuracy"):
                        logs[plain_prefix + key[len(prefix) :]] = logs[key]

    return MainMetrics()


def best_weights_callback(keras: Any, dest: Path, log: Any, monitor: str, inference: Any = None) -> Any:
    staging = dest.with_name(BEST_STAGING)

    class BestWeights(keras.callbacks.ModelCheckpoint):
        """ModelCheckpoint(save_best_only) into a staging file, renamed onto `dest` when it
        saved. On a resume, the best so far is taken from the log, so a worse epoch after
        the resume does not replace the best weights."""

        def set_model(self, model: Any) -> None:  # the inference graph's weights, as final's
            super().set_model(inference if inference is not None else model)

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            super().on_epoch_begin(epoch, logs)
            if self.best is None:  # type: ignore[has-type]  # set by Keras' ModelCheckpoint.__init__
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


def finite_loss_callback(keras: Any) -> Any:
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


def progress_callback(keras: Any, progress: Any, epochs: int) -> Any:
    """Tells `progress` (an `inception_kit.progress.Progress`) of every epoch that ends."""

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            shown = {
                k: float(v)
                for k, v in sorted((logs or {}).items())
                if k in ("accuracy", "loss", "val_accuracy", "val_loss")
            }
            progress(
                epoch + 1,
                epochs,
                f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()),
            )

    return EpochProgress()
