"""FLOPs as TensorFlow's profiler counts them, on the frozen inference graph of a model.

This is the independent measurement the analytic cost model is checked against
(`report --verify` and the tests). No global profiler hooks are registered.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def profile_flops(model: Any, batch: int = 1) -> Counter[str]:
    """Float ops per TensorFlow op type for one inference call of a Keras model."""
    import tensorflow as tf

    from ._keras_internals import freeze, silenced_deprecations

    spec = tf.TensorSpec((batch, *model.input_shape[1:]), tf.float32)
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    graph_def = freeze(fn).graph.as_graph_def()
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    with silenced_deprecations():  # the v1 profiler's own calls of deprecated TF functions: not the user's
        result = tf.compat.v1.profiler.profile(graph, cmd="op", options=options)
    # The "op" view nests op types as a chain, so totals repeat: sum each node's own count.
    counts: Counter[str] = Counter()
    stack = list(result.children)
    while stack:
        node = stack.pop()
        if node.float_ops:
            counts[node.name] += node.float_ops
        stack.extend(node.children)
    return counts
