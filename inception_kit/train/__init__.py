"""Training: a spec (or your own Keras model) with Keras `fit`, under tf.distribute or keras.distribution.

    inception-kit train specs/inception_3a_tiny.yaml --data digits --epochs 5 --out runs/tiny
    inception-kit train SPEC --data path/to/images/ --strategy mirrored
    TF_CONFIG='{"cluster": ..., "task": ...}' inception-kit train SPEC --data ... --strategy multi-worker

From Python, `fit(spec_or_model, data, epochs=..., out=...)` does the same and returns a
`TrainResult` (history, the run's paths, final and best accuracy, the trained model).

Data (see `inception_kit.train.data`): an image folder with one sub-folder per class, `digits`
(scikit-learn's, no download), or from Python a pair of arrays. The spec's head must end in
one unit per class, with softmax (probabilities) or no activation (logits); the loss is
sparse categorical cross-entropy, the optimizer Adam(--learning-rate), and `--seed` goes
to `keras.utils.set_random_seed` and to every shuffle.

The modules: `loop` (`fit` and its result), `target` (what training needs to know of a spec
or a Keras model), `strategy` (the strategies and which worker this process is), `runs` (the
run folder: its files, resuming, the lock), `callbacks` (the run's own Keras callbacks) and
`data` (the input pipelines). No module here imports Keras or TensorFlow at its top level.
"""

from .loop import MAX_SEED, TrainingFailed, TrainResult, fit
from .runs import IDENTITY, RUN_FILES, save_weights
from .strategy import STRATEGIES, TF_CONFIG_WANTED, TF_STRATEGIES
from .target import Target

__all__ = [
    "IDENTITY",
    "MAX_SEED",
    "RUN_FILES",
    "STRATEGIES",
    "TF_CONFIG_WANTED",
    "TF_STRATEGIES",
    "Target",
    "TrainResult",
    "TrainingFailed",
    "fit",
    "save_weights",
]
