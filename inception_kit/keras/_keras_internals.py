"""The one adapter for Keras' and TensorFlow's private APIs: nothing else in inception-kit
touches them (tests/test_architecture.py holds that).

Each function wraps one private API that has no public counterpart and says which, so a
Keras or TensorFlow upgrade that moves one breaks here, and only here. Imports are inside
the functions: importing this module loads neither Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import Any


def upstream_layer_names(x: Any) -> set[str]:
    """Names of the layers a symbolic Keras tensor was computed by.

    Keras 3 keeps a tensor's graph history only in the private `_keras_history` and each
    operation's `_inbound_nodes`; a public `keras.Model` needs the graph's inputs, which
    `apply_block` is not given. Walked iteratively: deep graphs overflow recursion.
    """
    names: set[str] = set()
    stack, seen = [x], set()
    while stack:
        history = getattr(stack.pop(), "_keras_history", None)
        if history is None or id(history.operation) in seen:
            continue
        seen.add(id(history.operation))
        names.add(history.operation.name)
        stack.extend(history.operation._inbound_nodes[history.node_index].input_tensors)
    return names


def hdf5_attribute(group: Any, name: str) -> list[str]:
    """A string-list attribute of a legacy Keras HDF5 group (`layer_names`, `weight_names`),
    as Keras writes it: whole, or split into `name0`, `name1`, ... when it exceeds HDF5's
    header limit. Keras' own reader (`keras.src.legacy.saving.legacy_h5_format`) is private."""
    from keras.src.legacy.saving.legacy_h5_format import load_attributes_from_hdf5_group

    return [str(n) for n in load_attributes_from_hdf5_group(group, name)]


def freeze(concrete: Any) -> Any:
    """A concrete tf.function with its variables folded into constants (the frozen graph the
    v1 profiler reads). TensorFlow exports no v2 freezing function; this is its own."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(concrete)


def silenced_deprecations() -> Any:
    """A context in which TensorFlow does not warn about deprecated calls made by its own
    v1 profiler (not the user's calls)."""
    from tensorflow.python.util import deprecation

    return deprecation.silence()
