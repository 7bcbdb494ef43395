"""Writes constraints.txt: the versions `make` installs, read from a working environment.

setup.cfg states lower bounds (what inception-kit needs); constraints.txt pins what CI tested,
so a fresh clone gets the same stack. Run it with the Python of an environment where the tests
pass (`make constraints` uses .venv's): it pins every requirement of setup.cfg's install_requires
and of the extras given, with their own requirements, as that environment has them.
"""

from __future__ import annotations

import argparse
import configparser
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
HEADER = """\
# The versions CI tests, for `pip install -c constraints.txt` (make does this).
# setup.cfg states only lower bounds. Regenerate from a passing .venv: make constraints
"""


def declared(extras: list[str]) -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += cfg["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.strip().startswith("#")]


def closure(roots: list[Requirement], also: list[str]) -> dict[str, str]:
    """name -> installed version, for the roots, the extra names in `also`, and what they require."""
    env = default_environment()
    pins: dict[str, str] = {}
    todo = [(r.name, set(r.extras)) for r in roots] + [(name, set()) for name in also]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), frozenset(extras))
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(name)
        pins[canonicalize_name(name)] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in extras or {""}):
                todo.append((req.name, set(req.extras)))
    return pins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extras", help="comma-separated extras of setup.cfg, as make installs them")
    parser.add_argument("--also", default="", help="comma-separated distributions make installs beside them")
    parser.add_argument("--out", default=str(ROOT / "constraints.txt"))
    args = parser.parse_args()
    also = [n for n in args.also.split(",") if n]
    pins = closure(declared([e for e in args.extras.split(",") if e]), also)
    if "tensorflow-cpu" in pins:  # the GPU-capable wheel (make TENSORFLOW=tensorflow) at the same release
        pins.setdefault("tensorflow", pins["tensorflow-cpu"])
    text = HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {len(pins)} pins", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
