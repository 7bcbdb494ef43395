"""The one error type for spec problems, and the one helper that words them.

Every message has the same form, so users learn to read it once:

    specs/net.yaml:12:7: layers[4].branches.b2[1].kernel: expected a positive integer or
    [height, width]; received -3

File, line and column are 1-based and present when the spec came from YAML; specs built
in Python have only the path.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Mark:
    """A place in a YAML file (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec."""

    path: str
    expected: str
    received: str | None = None
    mark: Mark | None = None
    hint: str | None = None

    def __str__(self) -> str:
        return word(self.path, self.expected, self.received, self.mark, self.hint)


def word(
    path: str,
    expected: str,
    received: str | None = None,
    mark: Mark | None = None,
    hint: str | None = None,
) -> str:
    """Words one problem as `file:line:col: path: expected ...; received ...`."""
    where = f"{mark}: " if mark is not None else ""
    text = f"{where}{path or '<spec>'}: expected {expected}"
    if received is not None:
        text += f"; received {received}"
    if hint:
        text += f" ({hint})"
    return text


def closest(word_: str, choices: Iterable[str]) -> str | None:
    """The valid choice closest to a misspelt word, if one is close enough."""
    choices = [str(c) for c in choices]
    lowered = {c.lower(): c for c in choices}
    if str(word_).lower() in lowered:  # 'Same' for 'same'
        return lowered[str(word_).lower()]
    close = difflib.get_close_matches(str(word_), sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word_: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest valid choice, if one is close enough."""
    close = closest(word_, choices)
    return f"did you mean '{close}'?" if close else None


def show(value: object) -> str:
    """A short, unambiguous rendering of a received value (never a whole config)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping with keys " + ", ".join(repr(k) for k in list(value)[:6])
    if isinstance(value, list):
        if len(value) <= 6 and all(v is None or isinstance(v, (int, float, str)) for v in value):
            return "[" + ", ".join(show(v) for v in value) + "]"  # short lists as written
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class SpecError(ValueError):
    """A spec is wrong. Holds every problem found, each with its path and place."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def one(
        cls,
        path: str,
        expected: str,
        received: str | None = None,
        mark: Mark | None = None,
        hint: str | None = None,
    ) -> SpecError:
        return cls([Problem(path, expected, received, mark, hint)])


UNSET = object()  # "no value received", as opposed to a received null


class Problems:
    """Collects problems while a spec is read, so that all of them are reported at once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(
        self,
        path: str,
        expected: str,
        received: object = UNSET,
        mark: Mark | None = None,
        hint: str | None = None,
        *,
        raw: bool = False,
    ) -> None:
        """Records a problem; `received` is shown with `show()` unless `raw` (then as is)."""
        if received is UNSET:
            text = None
        else:
            text = str(received) if raw else show(received)
        self.items.append(Problem(path, expected, text, mark, hint))

    def extend(self, other: Iterable[Problem]) -> None:
        self.items.extend(other)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(self.items)

    def sort(self) -> None:
        """Orders problems as they stand in the file; those without a place go last."""
        self.items.sort(
            key=lambda p: (p.mark is None, p.mark.line if p.mark else 0, p.mark.col if p.mark else 0)
        )


class ArgumentError(ValueError):
    """A library function was given a value it cannot use. Names the *parameter* (as a Python
    caller wrote it), never a command-line flag: the CLI maps `parameter` to its flag."""

    def __init__(
        self,
        parameter: str,
        expected: str,
        received: object = UNSET,
        hint: str | None = None,
        *,
        raw: bool = False,
    ):
        """`received` is shown with `show()` unless `raw` (a description already worded, as
        `Problems.add` takes it: "'/data', which does not exist")."""
        self.parameter, self.expected, self.hint = parameter, expected, hint
        self.received = None if received is UNSET else str(received) if raw else show(received)
        text = f"{parameter}: expected {expected}"
        if self.received is not None:
            text += f"; received {self.received}"
        super().__init__(text + (f" ({hint})" if hint else ""))

    def worded(self, name: str) -> str:
        """The message with `name` (a flag, say) in place of the parameter."""
        text = f"{name}: expected {self.expected}"
        if self.received is not None:
            text += f"; received {self.received}"
        return text + (f" ({self.hint})" if self.hint else "")


class Failure(RuntimeError):
    """An operation failed for a reason its message states whole (training diverged, an
    export did not verify): the CLI prints the message alone, without the class name."""
