"""Which distribution strategy trains, and which worker this process is.

Strategies: `default` (one device), `mirrored` (`tf.distribute.MirroredStrategy` over every
GPU, or, without GPUs, every logical CPU device) and `multi-worker`
(`tf.distribute.MultiWorkerMirroredStrategy`, cluster and task from `TF_CONFIG`). The model
is built and compiled inside `strategy.scope()`. The batch size is the GLOBAL batch: each of
the R replicas gets batch/R of it (it must divide evenly).
Under the JAX backend, `default` is one device and `data-parallel` is
`keras.distribution.DataParallel` over every device JAX sees (on a CPU, as many as
`XLA_FLAGS=--xla_force_host_platform_device_count=N` makes); under torch, `default` only
(see `inception_kit.keras.backends`).

Multi-worker: every worker runs the same command with its own TF_CONFIG. The chief (task
"chief", or worker 0 when there is none) writes the run folder; each other worker writes its
own (`inception_kit.train.runs`). `worker_role` reads which one this process is without TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from ..errors import ArgumentError, SpecError

STRATEGIES = ("default", "mirrored", "multi-worker", "data-parallel")
TF_STRATEGIES = ("mirrored", "multi-worker")  # tf.distribute: the TensorFlow backend only


@dataclass(frozen=True)
class Role:
    chief: bool
    name: str  # "" for the chief, else "<type>-<index>"


def worker_role(strategy: Any) -> Role:
    """Which worker this process is. Read from TF_CONFIG for 'multi-worker', without TensorFlow."""
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ArgumentError("strategy", "one of " + ", ".join(STRATEGIES), strategy)
        if strategy != "multi-worker":
            return Role(True, "")
        cluster, task_type, index = _tf_config()
    else:
        resolver = getattr(strategy, "cluster_resolver", None)
        task_type = str(getattr(resolver, "task_type", None) or "")
        if not task_type:
            return Role(True, "")
        index = int(resolver.task_id)  # type: ignore[union-attr]  # a resolver has them where it has a task type
        cluster = resolver.cluster_spec().as_dict()  # type: ignore[union-attr]
    chief = task_type == "chief" or (task_type == "worker" and index == 0 and not cluster.get("chief"))
    return Role(chief, "" if chief else f"{task_type}-{index}")


TF_CONFIG_WANTED = (
    'TF_CONFIG holding JSON like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def _tf_config() -> tuple[dict[str, Any], str, int]:
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise SpecError.one(
            "TF_CONFIG",
            TF_CONFIG_WANTED,
            "nothing (it is not set)",
            hint="strategy 'multi-worker' needs every worker's address and this one's task",
        )
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


def make_strategy(strategy: Any) -> Any:
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


class KerasStrategy:
    """What training needs of a strategy, for the JAX and torch backends: the replica count and
    a scope; `distribution` is the keras.distribution one (None: one device)."""

    def __init__(self, distribution: Any = None) -> None:
        self.distribution = distribution
        mesh = distribution.device_mesh if distribution is not None else None
        self.num_replicas_in_sync = len(mesh.devices.flat) if mesh is not None else 1

    def scope(self) -> Any:
        import contextlib

        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()


def check_backend(strategy: Any) -> None:
    """A strategy name the backend cannot run is an ArgumentError (the backend read without Keras)."""
    from ..keras.backends import current

    backend = current()
    if not isinstance(strategy, str) or strategy == "default":
        return
    can = {"tensorflow": "default, mirrored or multi-worker", "jax": "default or data-parallel"}.get(
        backend, "default"
    )
    if strategy in TF_STRATEGIES and backend != "tensorflow":
        raise ArgumentError(
            "strategy",
            f"{can} under the {backend} backend",
            f"{strategy!r}, a tf.distribute strategy (the tensorflow backend; on the command line, --backend tensorflow)",
            raw=True,
        )
    if strategy == "data-parallel" and backend != "jax":
        raise ArgumentError(
            "strategy",
            f"{can} under the {backend} backend",
            "'data-parallel', which keras.distribution runs on JAX only (on the command line, --backend jax)",
            raw=True,
        )


def fit_scope(strat: Any) -> Any:
    """keras.distribution lays out the batches during fit too, so its scope stays open for it."""
    import contextlib

    return strat.scope() if isinstance(strat, KerasStrategy) else contextlib.nullcontext()


def _keras_strategy(strategy: Any, backend: str) -> KerasStrategy:
    """'default' on any backend, 'data-parallel' on JAX, or a keras.distribution.Distribution."""
    import keras

    if not isinstance(strategy, str):
        if isinstance(strategy, keras.distribution.Distribution):
            return KerasStrategy(strategy)
        raise ArgumentError(
            "strategy",
            "'default', 'data-parallel' or a keras.distribution.Distribution "
            f"under the {backend} backend (tf.distribute strategies need TensorFlow's)",
            type(strategy).__name__,
            raw=True,
        )
    check_backend(strategy)
    if strategy == "default":
        return KerasStrategy()
    # Every device JAX sees; Keras splits each global batch along its first axis over them.
    return KerasStrategy(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))


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
                return parent.reduce(reduce_op, v, None if scalar else axis)  # type: ignore[attr-defined]  # TF's untyped base

            return tf.nest.map_structure(one, value)

    return MultiWorkerMirroredStrategy()
