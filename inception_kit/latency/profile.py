"""The latency profile file: what `calibrate` measured and fitted, and what it is valid for.

A profile is JSON, never pickle: the fitted regressors are lists of numbers (see
`regressor`). Its `valid_for` records the machine (CPU model and flags, cores), the runtime
and its package versions, the threads and the batch sizes; `load_profile` reads at most
`MAX_BYTES`, checks every field (a hostile file names the field at fault, never runs
anything) and refuses a profile of another machine unless `allow_other_machine`. Plain
Python: no TensorFlow, no scikit-learn.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
from dataclasses import dataclass
from typing import Any

from ..errors import Mark, Problem, SpecError, show
from ..files import read_bounded
from .kernels import FEATURES, LINEAR

FORMAT = "inception-kit latency profile"
VERSION = 1
MAX_BYTES = 32 * 1024 * 1024
MAX_TREES, MAX_NODES = 256, 8191
RUNTIMES = ("tensorflow", "onnxruntime")
# The packages whose versions a profile of each runtime is valid for (importlib.metadata
# names; the first installed of each tuple).
PACKAGES: dict[str, tuple[tuple[str, ...], ...]] = {
    "tensorflow": (("tensorflow", "tensorflow-cpu"), ("keras",)),
    "onnxruntime": (("onnxruntime",), ("tf2onnx",)),
}


class ProfileError(SpecError):
    """A profile file is unreadable, malformed or for another machine: names file and field."""

    def __init__(
        self,
        source: str,
        field: str,
        expected: str,
        received: str | None = None,
        mark: Mark | None = None,
        hint: str | None = None,
    ):
        super().__init__([Problem(f"{source}: {field}" if field else source, expected, received, mark, hint)])
        self.source, self.field = source, field


def versions(runtime: str) -> dict[str, str]:
    """The installed versions of the runtime's packages, without importing them."""
    out = {}
    for names in PACKAGES[runtime]:
        for name in names:
            try:
                out[names[0]] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def this_machine() -> dict[str, Any]:
    """CPU model, flags and cores of this machine (what a profile is valid for)."""
    from ..keras.profile import cpu_fields  # plain Python: that module imports TensorFlow only to time

    fields = cpu_fields()
    cpu = fields.get("model name", "unknown")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"cpu": cpu, "flags": sorted(set(fields.get("flags", "").split())), "cores": cores}


@dataclass
class Profile:
    """A checked profile: `data` as in the file, `source` the file it came from."""

    data: dict[str, Any]
    source: str = "<profile>"

    @property
    def runtime(self) -> str:
        return str(self.data["valid_for"]["runtime"])

    @property
    def batches(self) -> list[int]:
        return list(self.data["valid_for"]["batches"])

    @property
    def threads(self) -> dict[str, Any]:
        return dict(self.data["valid_for"]["threads"])

    def overhead(self, batch: int) -> float:
        """Seconds of one call's fixed cost at `batch`."""
        return float(self.data["overhead"][str(batch)]["median_ms"]) / 1e3

    def composition(self, batch: int) -> float:
        """How much a kernel's time inside a network is of its time alone (measured; 1 if not)."""
        return float(self.data.get("composition", {}).get(str(batch), {}).get("factor", 1.0))

    def kernel(self, batch: int, kind: str) -> dict[str, Any]:
        """The regressor of `kind` at `batch`.

        Raises:
            ProfileError: the profile has none (the kind was not calibrated).
        """
        models = self.data["kernels"][str(batch)]
        if kind not in models:
            raise ProfileError(
                self.source,
                f"kernels.{batch}.{kind}",
                f"a regressor for layer kind '{kind}'",
                "none (calibrated kinds: " + ", ".join(models) + ")",
                hint="calibrate again with a registry that holds this kind",
            )
        return dict(models[kind])

    def check_machine(self, allow_other_machine: bool = False) -> list[str]:
        """The ways this machine differs from the profile's; raises unless `allow_other_machine`.

        Raises:
            ProfileError: naming the first field that differs.
        """
        valid = self.data["valid_for"]
        here = {**this_machine(), "versions": versions(self.runtime)}
        differ = []
        for key in ("cpu", "flags", "cores", "versions"):
            if valid[key] != here[key]:
                differ.append(key)
        if differ and not allow_other_machine:
            key = differ[0]
            expected, received = (here[key], valid[key])
            if key == "flags":
                missing = sorted(set(here[key]) - set(valid[key]))[:6]
                extra = sorted(set(valid[key]) - set(here[key]))[:6]
                expected = f"this machine's CPU flags (the profile lacks {missing}, has {extra} besides)"
                received = f"{len(valid[key])} other flags"
            raise ProfileError(
                self.source,
                f"valid_for.{key}",
                f"a profile measured on this machine ({_words(expected)})",
                _words(received),
                hint="a profile from another machine predicts that machine's times; pass "
                "allow_other_machine=True (on the command line, --any-machine) to use it anyway",
            )
        return differ


def _words(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)[:120]


# --------------------------------------------------------------------------- reading


def load_profile(path: str | os.PathLike[str] | Profile, allow_other_machine: bool = False) -> Profile:
    """A profile file, read bounded and checked field by field.

    Raises:
        ProfileError: the file is missing, too large, not JSON, malformed (names the field)
            or from another machine (unless `allow_other_machine`).
    """
    if isinstance(path, Profile):
        path.check_machine(allow_other_machine)
        return path
    source = os.fspath(path)
    try:
        raw = read_bounded(source, MAX_BYTES)
    except OSError as err:
        raise ProfileError(
            source,
            "",
            "a readable latency profile file (inception-kit calibrate -o FILE)",
            err.strerror or str(err),
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ProfileError(source, "", "UTF-8 JSON", "bytes that are not UTF-8") from None
    except json.JSONDecodeError as err:
        raise ProfileError(source, "", "JSON", err.msg, Mark(source, err.lineno, err.colno)) from None
    except (ValueError, RecursionError) as err:
        raise ProfileError(
            source, "", "JSON of finite numbers, nested at most a few levels", str(err)[:80]
        ) from None
    profile = Profile(check(data, source), source)
    profile.check_machine(allow_other_machine)
    return profile


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a profile holds")


def check(data: Any, source: str) -> dict[str, Any]:
    """`data` if it is a well-formed profile; raises ProfileError naming the field otherwise."""

    def bad(field: str, expected: str, value: Any) -> ProfileError:
        return ProfileError(source, field, expected, show(value))

    def need(obj: Any, field: str, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise bad(field, f"a field '{key}' ({what})", "nothing" if isinstance(obj, dict) else obj)
        value = obj[key]
        if not isinstance(value, kind) or isinstance(value, bool):  # no field of a profile is a bool
            raise bad(f"{field}.{key}".lstrip("."), what, value)
        return value

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad(
            "format",
            f"'{FORMAT}' (a file inception-kit calibrate wrote)",
            data.get("format") if isinstance(data, dict) else data,
        )
    if data.get("version") != VERSION:
        raise bad("version", f"{VERSION}", data.get("version"))
    valid = need(data, "", "valid_for", dict, "what the profile is valid for")
    need(valid, "valid_for", "cpu", str, "the CPU model")
    flags = need(valid, "valid_for", "flags", list, "the CPU flags")
    if not all(isinstance(f, str) for f in flags):
        raise bad("valid_for.flags", "a list of strings", flags)
    need(valid, "valid_for", "cores", int, "a core count")
    runtime = need(valid, "valid_for", "runtime", str, "the runtime")
    if runtime not in RUNTIMES:
        raise bad("valid_for.runtime", "one of " + ", ".join(RUNTIMES), runtime)
    vers = need(valid, "valid_for", "versions", dict, "package versions")
    if not all(isinstance(v, str) for v in vers.values()):
        raise bad("valid_for.versions", "versions as strings", vers)
    need(valid, "valid_for", "threads", dict, "the threads measured with")
    batches = need(valid, "valid_for", "batches", list, "batch sizes")
    if not batches or not all(
        isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 4096 for b in batches
    ):
        raise bad("valid_for.batches", "a list of batch sizes from 1 to 4096", batches)
    if need(data, "", "features", list, "the feature names") != list(FEATURES):
        raise bad("features", "the features " + ", ".join(FEATURES), data["features"])
    overhead = need(data, "", "overhead", dict, "the per-call overhead by batch")
    kernels = need(data, "", "kernels", dict, "the regressors by batch")
    composition = data.get("composition", {})
    if not isinstance(composition, dict):
        raise bad("composition", "a mapping of batch sizes to factors", composition)
    for b, c in composition.items():
        factor = need(c, f"composition.{b}", "factor", (int, float), "a factor")
        if not 0.2 <= _number(factor, f"composition.{b}.factor", bad) <= 5.0:
            raise bad(f"composition.{b}.factor", "a factor from 0.2 to 5", factor)
    for b in batches:
        one = need(overhead, "overhead", str(b), dict, "the overhead at this batch")
        _number(
            need(one, f"overhead.{b}", "median_ms", (int, float), "milliseconds"),
            f"overhead.{b}.median_ms",
            bad,
        )
        models = need(kernels, "kernels", str(b), dict, "the regressors at this batch")
        for kind, model in models.items():
            _model(model, f"kernels.{b}.{kind}", bad, need)
    return data


def _number(v: Any, field: str, bad: Any, low: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < low:
        raise bad(field, f"a finite number >= {low:g}", v)
    return float(v)


def _model(model: Any, field: str, bad: Any, need: Any) -> None:
    _number(
        need(model, field, "floor", (int, float), "the per-call overhead in seconds"), f"{field}.floor", bad
    )
    linear = need(model, field, "linear", list, "the linear coefficients")
    if len(linear) != len(LINEAR) + 1:
        raise bad(f"{field}.linear", f"{len(LINEAR) + 1} coefficients", linear)
    for i, c in enumerate(linear):
        _number(c, f"{field}.linear[{i}]", bad)
    forest = need(model, field, "forest", list, "the trees")
    if len(forest) > MAX_TREES:
        raise bad(f"{field}.forest", f"at most {MAX_TREES} trees", forest)
    for t, tree in enumerate(forest):
        where = f"{field}.forest[{t}]"
        cols = [
            need(tree, where, k, list, "a list") for k in ("feature", "threshold", "left", "right", "value")
        ]
        n = len(cols[0])
        if not 1 <= n <= MAX_NODES or any(len(c) != n for c in cols):
            raise bad(where, f"five lists of equal length, 1 to {MAX_NODES} nodes", [len(c) for c in cols])
        feature, threshold, left, right, value = cols
        for i in range(n):
            f = feature[i]
            if isinstance(f, bool) or not isinstance(f, int) or not -2 <= f < len(FEATURES):
                raise bad(
                    f"{where}.feature[{i}]", f"a feature index below {len(FEATURES)} (-1, -2: a leaf)", f
                )
            _number(value[i], f"{where}.value[{i}]", bad, low=-50.0)
            if f >= 0:
                _number(threshold[i], f"{where}.threshold[{i}]", bad, low=-1e30)
                for side, child in (("left", left[i]), ("right", right[i])):
                    # children come after their parent: no cycle, every walk ends
                    if isinstance(child, bool) or not isinstance(child, int) or not i < child < n:
                        raise bad(f"{where}.{side}[{i}]", f"a node index from {i + 1} to {n - 1}", child)
