"""Reading an artifact's spec, cost report and manifest back, without TensorFlow.

`inspect_artifact` finds the metadata of a SavedModel folder (``assets.extra/inception_kit/``),
of a one-file artifact (its ``.inception-kit`` sidecar) or the metadata folder itself; it reads
only regular files inside the artifact, each of at most `MAX_META_BYTES`, checks the manifest's
shape and, for a one-file artifact, that the file is the one the manifest's sha256 describes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ...errors import SpecError
from ...files import read_bounded
from .artifact import (
    MANIFEST_FILE,
    MAX_META_BYTES,
    META_DIR,
    PREVIOUS_DIR,
    REPORT_FILE,
    SIDECAR_SUFFIX,
    SPEC_FILE,
    file_sha256,
    shape_text,
    tree_bytes,
)

INSPECT_FORMATS = ("table", "markdown", "csv", "json", "yaml")


def inspect_artifact(path: str | os.PathLike[str], fmt: str = "table") -> str:
    """The spec (fmt "yaml") or cost report (table, markdown, csv, json) stored with an artifact.

    `path` is a SavedModel folder, a file written by `export` (its sidecar is beside it)
    or a metadata folder itself. Imports no TensorFlow. "json" and "yaml" return the stored
    files unchanged; the other formats render the stored report. Only regular files inside
    the artifact are read (never through a link that leads out of it), each of at most
    `MAX_META_BYTES`.

    Raises:
        SpecError: not an artifact, malformed metadata, or a sidecar that does not match its file.
    """
    if fmt not in INSPECT_FORMATS:
        raise SpecError.one("format", f"one of {', '.join(INSPECT_FORMATS)}", repr(fmt))
    path = Path(os.path.abspath(path))
    meta, artifact, root = _find_meta(path)
    manifest, spec_text, report_text, report = _read_meta(meta, root)
    stamp = manifest.get("artifact")
    if stamp and not _is_stamped(artifact, stamp):
        previous = meta / PREVIOUS_DIR  # an export replacing this pair was cut short
        older = _read_meta(previous, root) if (previous / MANIFEST_FILE).is_file() else None
        if older is None or not _is_stamped(artifact, older[0].get("artifact") or {}):
            raise SpecError.one(
                str(artifact),
                f"the file that {meta} describes (sha256 {stamp['sha256'][:12]}..., {stamp['bytes']:,} bytes)",
                "a different or missing file; the two were not written together",
            )
        manifest, spec_text, report_text, report = older
    if fmt == "yaml":
        return spec_text
    if fmt == "json":
        return report_text
    from ...report import render_data

    try:
        body = render_data(report, fmt)  # the stored report, as it was written
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise SpecError.one(
            str(meta / REPORT_FILE), "a cost report written by inception-kit", f"a report without {err}"
        ) from None
    if fmt == "csv":
        return body
    return _artifact_header(manifest, artifact or path, meta, fmt) + body


def _find_meta(path: Path) -> tuple[Path, Path | None, Path]:
    """The metadata folder, the artifact it describes, and the folder reads must stay in."""
    if (path / META_DIR / MANIFEST_FILE).is_file():
        return path / META_DIR, path, path
    if path.name:
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        if not sidecar.is_symlink() and (sidecar / MANIFEST_FILE).is_file():
            return sidecar, path, sidecar
    if (path / MANIFEST_FILE).is_file() and not path.is_symlink():  # the metadata folder itself
        if path.name.endswith(SIDECAR_SUFFIX):
            return path, path.with_name(path.name[: -len(SIDECAR_SUFFIX)]), path
        if path.parts[-2:] == META_DIR.parts:
            return path, path.parents[1], path.parents[1]
        return path, None, path
    if not path.exists():
        received = "no such file or folder"
    else:
        received = f"no {META_DIR}/ inside" + (
            f" and no {path.name}{SIDECAR_SUFFIX}/ beside it" if path.name else ""
        )
    raise SpecError.one(str(path), "an artifact written by inception-kit export", received)


def _read_meta(meta: Path, root: Path) -> tuple[dict[str, Any], str, str, dict[str, Any]]:
    """manifest (checked), spec text, report text and report (parsed) of a metadata folder."""
    texts = {}
    for name in (MANIFEST_FILE, SPEC_FILE, REPORT_FILE):
        try:
            texts[name] = read_bounded(meta / name, MAX_META_BYTES, inside=root).decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            what = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
            raise SpecError.one(
                str(meta / name),
                f"a {name} written by inception-kit export (a UTF-8 file inside the artifact)",
                what,
            ) from None
    manifest = _json(meta / MANIFEST_FILE, texts[MANIFEST_FILE])
    report = _json(meta / REPORT_FILE, texts[REPORT_FILE])
    problem = _manifest_problem(manifest)
    if problem:
        raise SpecError.one(str(meta / MANIFEST_FILE), "a manifest written by inception-kit export", problem)
    return manifest, texts[SPEC_FILE], texts[REPORT_FILE], report


def _json(path: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise SpecError.one(
            str(path), "JSON written by inception-kit export", "JSON nested too deep"
        ) from None
    except ValueError as err:
        raise SpecError.one(
            str(path), "JSON written by inception-kit export", f"invalid JSON ({err})"
        ) from None
    if not isinstance(data, dict):
        raise SpecError.one(
            str(path), "a JSON object written by inception-kit export", f"a JSON {type(data).__name__}"
        )
    return data


def _manifest_problem(m: dict[str, Any]) -> str | None:
    """What is wrong with a manifest's shape (what inspect reads from it), or None."""

    def tensor(t: Any) -> bool:
        return (
            isinstance(t, dict)
            and isinstance(t.get("name"), str)
            and isinstance(t.get("dtype"), str)
            and isinstance(t.get("shape"), list)
            and all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in t["shape"])
        )

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not isinstance(m.get("format"), str):
        return "no 'format' text"
    for key in ("input", "output"):
        if not tensor(m.get(key)):
            return f"no '{key}' with a name, a dtype and a shape list"
    w = m.get("weights")
    if not (isinstance(w, str) or (isinstance(w, dict) and isinstance(w.get("file"), str))):
        return "no 'weights' text or {file: ...}"
    v = m.get("verification")
    if v is not None and not (
        isinstance(v, dict) and number(v.get("max_abs_diff")) and number(v.get("tolerance"))
    ):
        return "a 'verification' without numbers max_abs_diff and tolerance"
    a = m.get("artifact")
    if a is not None and not (
        isinstance(a, dict) and isinstance(a.get("bytes"), int) and isinstance(a.get("sha256"), str)
    ):
        return "an 'artifact' without bytes and sha256"
    if not isinstance(m.get("versions", {}), dict):
        return "'versions' that is not a mapping"
    return None


def _is_stamped(artifact: Path | None, stamp: dict[str, Any]) -> bool:
    """Whether `artifact` is the regular file of `stamp`'s size and sha256."""
    if (
        artifact is None
        or not isinstance(stamp.get("bytes"), int)
        or not isinstance(stamp.get("sha256"), str)
    ):
        return False
    try:
        return bool(artifact.lstat().st_size == stamp["bytes"] and file_sha256(artifact) == stamp["sha256"])
    except OSError:
        return False


def _artifact_header(manifest: dict[str, Any], artifact: Path, meta: Path, fmt: str) -> str:
    i, o = manifest["input"], manifest["output"]
    check = manifest.get("verification")
    size = manifest.get("artifact", {}).get("bytes")
    if size is None and artifact.is_dir():
        size = tree_bytes(artifact)
    lines = [
        f"artifact: {artifact} ({manifest['format']}{', dynamic-range int8' if manifest.get('quantized') else ''}"
        + (f", {size:,} bytes" if size is not None else "")
        + ")",
        f"input '{i['name']}' {i['dtype']}{shape_text(i['shape'])} -> output '{o['name']}' {o['dtype']}{shape_text(o['shape'])}",
        "weights: "
        + (manifest["weights"] if isinstance(manifest["weights"], str) else manifest["weights"]["file"]),
        (
            f"verified: max abs diff {check['max_abs_diff']:.3g} (tolerance {check['tolerance']:.3g})"
            if check
            else "not verified"
        ),
        f"written by inception-kit {manifest.get('versions', {}).get('inception_kit', '?')}; metadata in {meta}",
    ]
    if fmt == "markdown":
        return "# Artifact\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n"
    return "\n".join(lines) + "\n\n"
