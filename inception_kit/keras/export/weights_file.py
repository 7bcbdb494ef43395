"""Loading a Keras 3 `.weights.h5` file into a model built from a spec, checked before anything is assigned.

Layers are matched by name (the file's ``layers/*/vars`` name attribute), every shape is
checked first in model order, and the first mismatch is the error; a file that records no
layer names is left to Keras, which matches by position. HDF5 soft and external links are
refused (h5py and Keras would follow them into another file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import SpecError


def load_weights(model: Any, path: Path) -> None:
    """Loads a Keras `.weights.h5` file layer by layer name, after checking every shape."""
    if not path.is_file():
        raise SpecError.one("weights", "a Keras .weights.h5 file", f"{path} (no such file)")
    import h5py
    import numpy as np

    try:
        f = h5py.File(path, "r")
    except OSError:
        raise SpecError.one(
            "weights", "a Keras .weights.h5 file (HDF5)", f"{path}, which is not an HDF5 file"
        ) from None
    with f:
        link = _first_link(f)
        if link is not None:  # h5py and Keras would follow it into another file
            raise SpecError.one(
                "weights",
                "a Keras .weights.h5 file without HDF5 links",
                f"{path}, which links '{link}' elsewhere",
            )
        try:
            saved = _saved_layers(f)
        except ValueError as err:
            raise SpecError.one(
                "weights", "a Keras .weights.h5 file", f"{path}, which is malformed ({err})"
            ) from None
        if saved is None:  # no layer names recorded: let Keras match by position
            try:
                model.load_weights(path)
            except ValueError as err:
                raise SpecError.one(
                    "weights", f"weights matching the architecture of '{model.name}'", f"{path}: {err}"
                ) from None
            return
        assign: list[tuple[Any, list[Any]]] = []
        for layer in model.layers:  # check everything first, in model order
            want = [tuple(int(d) for d in w.shape) for w in layer.weights]
            got = saved.pop(layer.name, None)
            have = None if got is None else [tuple(d.shape) for d in got]
            if (have or []) != want:
                raise SpecError.one(
                    f"weights: layer '{layer.name}'",
                    f"weights of shapes {_shapes(want)} (the spec's architecture)",
                    f"{_shapes(have)} in {path}"
                    if have is not None
                    else f"no layer '{layer.name}' in {path}",
                )
            if want and got is not None:
                assign.append((layer, got))
        extra = {name: ds for name, ds in saved.items() if ds}
        if extra:
            name, ds = next(iter(extra.items()))
            raise SpecError.one(
                f"weights: layer '{name}'",
                f"no such layer (the spec's model '{model.name}' has none)",
                f"weights of shapes {_shapes([tuple(d.shape) for d in ds])} in {path}",
            )
        for layer, datasets in assign:
            layer.set_weights([np.asarray(d) for d in datasets])


def _shapes(shapes: list[tuple[int, ...]] | None) -> str:
    if not shapes:
        return "none"
    return ", ".join(str(tuple(s)) for s in shapes)


def _first_link(group: Any, prefix: str = "") -> str | None:
    """The path of the first soft or external link under an HDF5 group, or None."""
    import h5py

    for key in group:
        link = group.get(key, getlink=True)
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            return f"{prefix}/{key}"
        item = group.get(key)
        if isinstance(item, h5py.Group):
            found = _first_link(item, f"{prefix}/{key}")
            if found:
                return found
    return None


def _saved_layers(f: Any) -> dict[str, list[Any]] | None:
    """{layer name: [its datasets in order]} from a Keras 3 weights file, or None."""
    import h5py

    group = f.get("layers")
    if not isinstance(group, h5py.Group):
        return None
    found: dict[str, list[Any]] = {}
    for key in group:
        sub = group[key]
        vars_ = sub.get("vars") if isinstance(sub, h5py.Group) else None
        if not isinstance(vars_, h5py.Group) or "name" not in vars_.attrs:
            return None
        name = vars_.attrs["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        if not all(k.isdigit() for k in vars_):
            raise ValueError(f"layers/{key}/vars holds keys other than 0, 1, 2, ...: {sorted(vars_)[:3]}")
        found[name] = [vars_[k] for k in sorted(vars_, key=int)]
    return found
