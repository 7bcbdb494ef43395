"""Weights from keras.applications: their weight files, or "imagenet" through Keras' download.

A keras.applications weight file (what `keras.applications.InceptionV3(weights="imagenet")`
caches under ~/.keras/models) is Keras' legacy HDF5 format: the layers' names in the model's
order, then each layer's arrays. Names differ between tools (`conv2d_93` there,
`mixed9_b1x1_conv1x1` here), so the arrays are matched by structure: the i-th layer with
weights in the file goes to the i-th layer with weights in the model, both in Keras'
topological order (depth from the output, then inputs in order) — the order Keras itself
loads such files in. Every array's shape is checked before anything is assigned; the first
mismatch is the error. The presets inception_v3, inception_resnet_v2 and xception list their
branches in Keras' order, so their layers line up with Keras' files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import SpecError

# preset name -> keras.applications builder, for weights="imagenet"
KERAS_APPS = {
    "inception_v3": "InceptionV3",
    "inception_resnet_v2": "InceptionResNetV2",
    "xception": "Xception",
}


def load_application_weights(
    model: Any, weights: str | os.PathLike[str], spec_name: str | None = None
) -> None:
    """Loads a keras.applications weight file, or "imagenet", into a built model, in place.

    Args:
        model: a model from `build_model` (with or without its top).
        weights: the path of a legacy HDF5 weight file, or "imagenet".
        spec_name: the preset the model was built from; "imagenet" needs it to pick the application.

    Raises:
        SpecError: no such file, not such a file (or a forged one: a missing or linked member,
            an array that is not numbers), or layers and arrays that do not match (naming the
            file, the layer and the first mismatch); "imagenet" for a spec that is no Keras
            application.
        RuntimeError: "imagenet" could not be downloaded (offline).
    """
    if os.fspath(weights) == "imagenet":
        _assign(model, _imagenet(model, spec_name), "keras.applications' imagenet weights")
        return
    import h5py

    path = Path(weights)
    if not path.is_file():
        raise SpecError.one("weights", _WANTED, f"{path} (no such file)")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise SpecError.one("weights", _WANTED, f"{path}, which is not an HDF5 file") from None
    with f:  # datasets are read only once every shape is checked (a forged file may hold huge ones)
        _assign(model, _read_file(f, path), os.fspath(path))


_WANTED = "a keras.applications weight file (legacy HDF5 with layer_names)"


def _legacy_weights(layer: Any) -> list[Any]:
    """A layer's variables in the order legacy HDF5 files hold them: trainable, then not
    (Keras' own order for these files; `layer.weights` is ordered otherwise)."""
    return [*layer.trainable_weights, *layer.non_trainable_weights]


def _member(group: Any, key: str, path: Path, what: str) -> Any:
    """`group[key]`, refusing a missing member or a link (h5py would follow one into another file)."""
    import h5py

    link = group.get(key, getlink=True)
    if link is None:
        raise SpecError.one("weights", f"{what} '{key}', as the file's own index lists", f"none in {path}")
    if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
        raise SpecError.one("weights", f"{what} '{key}' stored in the file", f"a link elsewhere in {path}")
    return group[key]


def _read_file(f: Any, path: Path) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(layer name, [(weight name, dataset)]) for every layer with weights, in the file's
    order; the datasets stay unread (their shapes are metadata)."""
    import h5py

    from ._keras_internals import hdf5_attribute  # Keras' own reader of these attributes

    group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
    names = hdf5_attribute(group, "layer_names")
    if not names:
        raise SpecError.one(
            "weights",
            _WANTED,
            f"{path}, which has no layer_names (a Keras 3 .weights.h5?)",
            hint="Keras 3 .weights.h5 files load with model.load_weights, or export's weights= (on the command line, --weights)",
        )
    out = []
    for name in names:
        layer = _member(group, name, path, "a layer group")
        if not isinstance(layer, h5py.Group):
            raise SpecError.one("weights", f"a layer group '{name}'", f"a dataset in {path}")
        datasets = []
        for w in hdf5_attribute(layer, "weight_names"):
            ds = _member(layer, w, path, f"layer '{name}''s array")
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
                raise SpecError.one(
                    "weights", f"numbers for layer '{name}''s array '{w}'", f"another kind of data in {path}"
                )
            datasets.append((w, ds))
        if datasets:
            out.append((name, datasets))
    return out


def _imagenet(model: Any, spec_name: str | None) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Keras builds its application with weights="imagenet" (its download, its cache); we
    take the arrays from that model, in its order."""
    import keras

    if spec_name not in KERAS_APPS:
        raise SpecError.one(
            "weights",
            f"'imagenet' only for the presets {', '.join(KERAS_APPS)}",
            repr(spec_name),
            hint="for other specs pass a weight file",
        )
    builder = getattr(keras.applications, KERAS_APPS[spec_name])
    has_top = any(type(layer).__name__ == "Dense" for layer in model.layers)
    kwargs: dict[str, Any] = {"include_top": has_top, "input_shape": tuple(model.input.shape[1:])}
    if has_top:
        kwargs["classes"] = int(model.output.shape[-1])
    try:
        app = builder(weights="imagenet", **kwargs)
    except ValueError as err:  # Keras' own rules: 1000 classes, 299x299x3 with the top, ...
        raise SpecError.one(
            "weights", f"knobs that Keras' imagenet {KERAS_APPS[spec_name]} accepts", str(err)
        ) from None
    except Exception as err:  # the download: URL errors and Keras' "URL fetch failure"
        raise RuntimeError(
            f"could not download the imagenet weights of {KERAS_APPS[spec_name]} "
            f"({type(err).__name__}: {err}); "
            "offline, put Keras' weight file in ~/.keras/models or pass its path as the weights"
        ) from None
    return [
        (layer.name, [(w.path, w.numpy()) for w in _legacy_weights(layer)])
        for layer in app.layers
        if _legacy_weights(layer)
    ]


def _assign(model: Any, arrays: list[tuple[str, list[tuple[str, Any]]]], source: str) -> None:
    """Checks every layer's count and every array's shape, then assigns (arrays or datasets)."""
    import numpy as np

    layers = [layer for layer in model.layers if _legacy_weights(layer)]
    for i, (layer, (their_name, theirs)) in enumerate(zip(layers, arrays)):
        ours = _legacy_weights(layer)
        if len(ours) != len(theirs):
            raise SpecError.one(
                "weights",
                f"{len(ours)} arrays for layer #{i} '{layer.name}' ({type(layer).__name__})",
                f"{len(theirs)} from {source}'s layer '{their_name}'",
            )
        for variable, (weight_name, value) in zip(ours, theirs):
            if tuple(variable.shape) != tuple(value.shape):
                raise SpecError.one(
                    "weights",
                    f"shape {tuple(variable.shape)} for '{variable.path}' (layer #{i})",
                    f"shape {tuple(value.shape)} from {source}'s '{weight_name}'",
                    hint="the same include_top, classes and input channels as the application?",
                )
    if len(layers) != len(arrays):
        raise SpecError.one(
            "weights",
            f"{len(layers)} layers with weights, as model '{model.name}' has",
            f"{len(arrays)} in {source}",
            hint="with the top or without it? include_top must match the file",
        )
    for layer, (_, theirs) in zip(layers, arrays):
        for variable, (_, value) in zip(_legacy_weights(layer), theirs):
            variable.assign(np.asarray(value))
