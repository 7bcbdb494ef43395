"""The trainer `inception_kit.design.search` uses by default: a candidate trained with
`train.fit` on arrays (no run folder), scored with Keras' `evaluate` on a held-out tenth of
the training data (trials) or on the test split where the data has one (the front's seeds).
No TensorFlow at import time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..planner import DEFAULT_BUDGET, Budget, Plan


@dataclass
class Splits:
    """The data a search trains on: training, held-out (scored by the trials) and test arrays."""

    train: tuple[Any, Any]
    held_out: tuple[Any, Any]
    test: tuple[Any, Any] | None


def splits(data: Any, input_shape: Sequence[int], seed: int = 0, held_out: float = 0.1) -> Splits:
    """The training split of `data` ('digits', 'fashion-mnist', 'idx:DIR', an image folder)
    cut into training and held-out parts by a seeded shuffle, and the test split where the
    data has one (the IDX t10k files)."""
    import numpy as np

    from . import data as data_mod
    from . import idx

    test = None
    if idx.is_idx_name(data):
        x, y = data_mod.inspect_source(data, input_shape).arrays
        t = idx.load_split(data, "t10k")
        test = t.arrays(input_shape[-1])
    elif data == "digits":
        x, y = data_mod.digits_arrays(input_shape)
    else:
        source = data_mod.inspect_source(data, input_shape)
        x, y = _folder_arrays(source, input_shape, seed)
    order = np.random.RandomState(seed).permutation(len(x))
    n_out = max(1, int(held_out * len(x)))
    tr, va = order[:-n_out], order[-n_out:]
    return Splits((x[tr], y[tr]), (x[va], y[va]), test)


def _folder_arrays(source: Any, input_shape: Sequence[int], seed: int) -> tuple[Any, Any]:
    """An image folder read whole into arrays by Keras (scaled to [0, 1])."""
    import keras
    import numpy as np

    from .data import COLOR_MODES

    h, w, c = input_shape
    ds = keras.utils.image_dataset_from_directory(
        source.name,
        labels="inferred",
        label_mode="int",
        class_names=source.class_names,
        color_mode=COLOR_MODES[c],
        batch_size=256,
        image_size=(h, w),
        shuffle=False,
        verbose=False,
    )
    xs, ys = zip(*((np.asarray(a) / 255.0, np.asarray(b)) for a, b in ds))
    return np.concatenate(xs).astype("float32"), np.concatenate(ys).astype("int32")


class KerasTrainer:
    """The default trainer: `inception_kit.train.fit` on arrays (no run folder), scored with
    Keras' `evaluate` on the held-out split (trials) or the test split (the front)."""

    def __init__(
        self,
        data: Any,
        input_shape: Sequence[int],
        *,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        budget: Budget = DEFAULT_BUDGET,
    ) -> None:
        self.data, self.input_shape = data, tuple(input_shape)
        self.batch_size, self.learning_rate, self.budget = batch_size, learning_rate, budget
        self._splits: Splits | None = None

    def splits(self) -> Splits:
        if self._splits is None:
            self._splits = splits(self.data, self.input_shape)
        return self._splits

    def __call__(self, plan: Plan, *, epochs: int, seed: int, subset: int | None, final: bool) -> float:
        import keras

        from . import fit

        s = self.splits()
        x, y = s.train
        if subset is not None and not final:
            x, y = x[:subset], y[:subset]
        keras.backend.clear_session()
        result = fit(
            plan,
            (x, y),
            epochs=epochs,
            batch_size=min(self.batch_size, len(x)),
            out=None,
            seed=seed,
            validation_split=0.0,
            learning_rate=self.learning_rate,
            budget=self.budget,
            verbose=0,
        )
        xe, ye = s.test if final and s.test is not None else s.held_out
        scores = result.model.evaluate(xe, ye, batch_size=512, verbose=0, return_dict=True)
        return float(scores["accuracy"])
