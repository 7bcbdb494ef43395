"""The presets: the canonical specs, reachable by name (`googlenet`, `inception_v3`, ...).

The specs live once, in the repository's top-level `specs/` folder. setup.cfg installs that
folder as the data package `inception_kit.presets` (`package_dir`), so an installed
inception-kit finds them beside its modules and a source checkout finds them in `specs/`.
Plain Python: no TensorFlow here.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SpecError, did_you_mean

_PACKAGE = Path(__file__).resolve().parent.parent  # inception_kit/
# An installed package first (the wheel's inception_kit/presets/), then a source checkout.
_FOLDERS = (_PACKAGE / "presets", _PACKAGE.parent / "specs")
SUFFIX = ".yaml"


def presets_folder() -> Path:
    """The folder the presets are read from."""
    for folder in _FOLDERS:
        if folder.is_dir() and any(folder.glob(f"*{SUFFIX}")):
            return folder
    raise FileNotFoundError(f"no presets found in {' or '.join(str(f) for f in _FOLDERS)}")


def list_presets() -> list[str]:
    """The names of the shipped specs, sorted: each one works wherever a spec path does."""
    return sorted(p.stem for p in presets_folder().glob(f"*{SUFFIX}"))


def preset_path(name: str) -> Path:
    """The file of a preset. Raises SpecError, with a did-you-mean, for an unknown name."""
    names = list_presets()
    if name not in names:
        hint = did_you_mean(name, names) or "presets: " + ", ".join(names)
        raise SpecError.one("<spec>", "a spec file or a preset name", repr(name), hint=hint)
    return presets_folder() / f"{name}{SUFFIX}"


def is_preset_name(source: str | os.PathLike[str]) -> bool:
    """True where `source` reads as a preset name rather than a path: no folder separator,
    no .yaml/.yml ending, and no file of that name in the working folder."""
    text = os.fspath(source)
    if os.path.exists(text) or not text:
        return False
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return not any(s in text for s in separators) and not text.endswith((".yaml", ".yml"))


def resolve(source: str | os.PathLike[str]) -> str:
    """A spec argument as a file path: preset names become their file, paths stay as given."""
    return str(preset_path(os.fspath(source))) if is_preset_name(source) else os.fspath(source)
