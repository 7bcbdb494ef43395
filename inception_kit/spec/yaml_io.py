"""Safe YAML reading that remembers where every value came from.

Only the YAML core schema is accepted (strings, numbers, booleans, null, mappings,
sequences, anchors, aliases and `<<` merge keys). Anything else is a spec error:
Python object tags, other custom tags, duplicate keys, and documents that grow too large
when their aliases are expanded ("billion laughs"). Limits are module constants so that
the README can quote them and tests can reach them.
"""

from __future__ import annotations

import copy
import os
import re
import stat
import unicodedata
from typing import Any, BinaryIO

import yaml

from ..errors import Mark, SpecError

MAX_FILE_BYTES = 1_000_000
# Values written, and values after alias expansion. GoogLeNet has about 1,500; the bound
# keeps the pure-Python parser well under a second on any file (benchmarks/refusals.py).
MAX_NODES = 20_000
MAX_DEPTH = 64
STDIN = "-"  # the path that means standard input

_CORE_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_NUMBER_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_OCTAL = re.compile(r"[-+]?0[0-7_]+")


class YDict(dict[Any, Any]):
    """A mapping read from YAML: `mark` of the mapping, and of each key and value."""

    def __init__(self, *args: Any, mark: Mark | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mark = mark
        self.key_marks: dict[Any, Mark] = {}
        self.value_marks: dict[Any, Mark | None] = {}


class YList(list[Any]):
    """A sequence read from YAML: `mark` of the sequence and of each item."""

    def __init__(self, *args: Any, mark: Mark | None = None) -> None:
        super().__init__(*args)
        self.mark = mark
        self.item_marks: list[Mark | None] = []


def copy_tree(value: Any) -> Any:
    """A copy of a YAML tree: new containers with their marks, the (immutable) marks and
    scalars shared. What a template instance expands from; copy.deepcopy did the same work
    several times slower, copying every Mark."""
    if isinstance(value, YDict):
        mapping = YDict({k: copy_tree(v) for k, v in value.items()}, mark=value.mark)
        mapping.key_marks, mapping.value_marks = dict(value.key_marks), dict(value.value_marks)
        return mapping
    if isinstance(value, YList):
        items = YList((copy_tree(v) for v in value), mark=value.mark)
        items.item_marks = list(value.item_marks)
        return items
    if isinstance(value, (dict, list, set)):
        return copy.deepcopy(value)
    return value


def mark_of(container: Any, key: Any = None) -> Mark | None:
    """The mark of `container[key]` (or of the container itself when key is None)."""
    if key is None:
        return getattr(container, "mark", None)
    if isinstance(container, YDict):
        return container.value_marks.get(key, container.mark)
    if isinstance(container, YList) and isinstance(key, int) and key < len(container.item_marks):
        return container.item_marks[key]
    return getattr(container, "mark", None)


def key_mark_of(container: Any, key: Any) -> Mark | None:
    if isinstance(container, YDict):
        return container.key_marks.get(key, container.mark)
    return getattr(container, "mark", None)


class _Loader(yaml.SafeLoader):
    """SafeLoader used only to compose nodes and construct plain scalars.

    It counts values and nesting while it composes: PyYAML's composer recurses once per
    level and is slow per value, so `[` nested 5,000 deep or a 200,000-item list
    must be refused before they are composed, not after."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)  # raises ReaderError on control characters
        self.file = file
        self.depth = 0
        self.written = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):  # an alias adds no value here; expansion is checked later
            return super().compose_node(parent, index)
        mark = _mark(self.file, self.peek_event().start_mark)  # type: ignore[no-untyped-call]
        self.depth += 1
        self.written += 1
        try:
            if self.depth > MAX_DEPTH + 1:  # the root is level 0, as in _Converter
                raise SpecError.one(
                    "<file>", f"nesting at most {MAX_DEPTH} levels deep", "deeper nesting", mark
                )
            if self.written > MAX_NODES:
                raise SpecError.one(
                    "<file>",
                    f"at most {MAX_NODES:,} values in a spec",
                    f"more (this is value {self.written:,})",
                    mark,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _mark(file: str, m: Any) -> Mark:
    return Mark(file, m.line + 1, m.column + 1)


def read_text(path: str | os.PathLike[str]) -> str:
    """Reads a spec file as UTF-8 text, with one clear error for each way that fails.

    At most MAX_FILE_BYTES + 1 bytes are read from anything (a size reported by the file
    system is not trusted: /dev/zero reports 0, a pipe has none), and a FIFO without a
    writer reads as empty instead of waiting."""
    name = os.fspath(path)

    def fail(expected: str, received: str) -> SpecError:
        return SpecError.one("<file>", expected, received, Mark(name, 1, 1))

    if name == STDIN:
        raise fail("a spec file ('-', standard input, is read by validate and report only)", "'-'")
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise fail("an existing spec file", "a path that does not exist") from None
    except IsADirectoryError:
        raise fail("a spec file", "a directory") from None
    except OSError as err:
        raise fail("a readable spec file", err.strerror or type(err).__name__) from None
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise fail("a spec file", "a directory")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # non-blocking only to open a FIFO without waiting
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = read_bounded(handle)
    except IsADirectoryError:
        raise fail("a spec file", "a directory") from None
    finally:
        os.close(fd)
    return decode(data, name)


def read_bounded(stream: BinaryIO) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes of a binary stream: enough to know it is too long."""
    chunks, size = [], 0
    while size <= MAX_FILE_BYTES:
        chunk = stream.read(MAX_FILE_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def decode(data: bytes, name: str) -> str:
    """Spec bytes as text: refuses too many bytes, a byte-order mark and non-UTF-8 bytes."""

    def fail(expected: str, received: str) -> SpecError:
        return SpecError.one("<file>", expected, received, Mark(name, 1, 1))

    if len(data) > MAX_FILE_BYTES:
        raise fail(f"a spec of at most {MAX_FILE_BYTES:,} bytes", "more")
    if data.startswith(b"\xef\xbb\xbf"):
        raise fail("UTF-8 text without a byte-order mark", "a file starting with a BOM")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError.one(
            "<file>", "UTF-8 text", f"byte 0x{data[err.start]:02x}", Mark(name, line, col)
        ) from None


def load_yaml(text: str, file: str = "<string>") -> Any:
    """Parses one YAML document into YDict/YList/scalars, enforcing the limits above."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise SpecError.one("<file>", f"a spec of at most {MAX_FILE_BYTES:,} bytes", "more", Mark(file, 1, 1))
    try:
        loader = _Loader(text, file)
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (NUL, ESC, ...)
        raise _reader_error(err, text, file) from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        raise _syntax_error(err, file) from None
    except yaml.reader.ReaderError as err:
        raise _reader_error(err, text, file) from None
    except yaml.YAMLError as err:
        raise SpecError.one("<file>", "valid YAML", str(err).splitlines()[0], Mark(file, 1, 1)) from None
    finally:
        loader.dispose()
    if node is None:
        raise SpecError.one("<file>", "a YAML mapping (the spec)", "an empty file", Mark(file, 1, 1))
    _check_expansion(node, file)
    return _Converter(loader, file).convert(node, 0)


def _reader_error(err: yaml.reader.ReaderError, text: str, file: str) -> SpecError:
    """A character YAML refuses, named by its code point, at its line and column."""
    pos = err.position if isinstance(err.position, int) else 0
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    code = ord(text[pos]) if pos < len(text) else 0
    what = "the control character" if unicodedata.category(chr(code)) == "Cc" else "the character"
    return SpecError.one("<file>", "printable text", f"{what} U+{code:04X}", Mark(file, line, col))


_EXPECTED_FOUND = re.compile(r"expected (.+?),? but (?:found|got) (.+)", re.S)


def _syntax_error(err: yaml.MarkedYAMLError, file: str) -> SpecError:
    """PyYAML's parse errors, reworded as `expected ...; received ...` at the right place."""
    mark = _mark(file, err.problem_mark) if err.problem_mark else Mark(file, 1, 1)
    problem = (err.problem or "invalid YAML").strip()
    context = (err.context or "").strip()
    if "\t" in problem or "'\\t'" in problem:
        return SpecError.one("<file>", "valid YAML", "a tab character (YAML indents with spaces only)", mark)
    if context.startswith("expected a single document"):
        return SpecError.one("<file>", "a single YAML document", "a second document after '---'", mark)
    found = _EXPECTED_FOUND.match(problem)
    if context.startswith("while parsing a flow") and err.context_mark is not None:
        opener = "[" if "sequence" in context else "{"
        closer = "]" if opener == "[" else "}"
        got = found.group(2) if found else problem
        return SpecError.one(
            "<file>",
            f"a '{closer}' closing this '{opener}'",
            f"{got} at line {mark.line}, column {mark.col}",
            _mark(file, err.context_mark),
        )
    if found:
        return SpecError.one("<file>", found.group(1), found.group(2), mark)
    return SpecError.one("<file>", "valid YAML", problem, mark)


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuses documents whose aliases expand past MAX_NODES ("billion laughs"), before
    expanding anything, and points at the deepest key whose value alone is too large."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > MAX_DEPTH:
            raise SpecError.one(
                "<file>",
                f"nesting at most {MAX_DEPTH} levels deep",
                "deeper nesting",
                _mark(file, node.start_mark),
            )
        sizes[id(node)] = 1  # a recursive alias counts once while it is being sized
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item, depth + 1) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(1 + size(v, depth + 1) for _, v in node.value)
        sizes[id(node)] = min(total, 10 * MAX_NODES)  # enough to know it is too large
        return sizes[id(node)]

    if size(root, 0) <= MAX_NODES:
        return
    node, where = root, root.start_mark
    while True:  # descend to the deepest entry that is too large by itself
        children = (
            [(k.start_mark, v) for k, v in node.value]
            if isinstance(node, yaml.MappingNode)
            else [(v.start_mark, v) for v in node.value]
            if isinstance(node, yaml.SequenceNode)
            else []
        )
        big = [(m, v) for m, v in children if sizes.get(id(v), 0) > MAX_NODES]
        if not big:
            break
        where, node = big[0]
    raise SpecError.one(
        "<file>",
        f"at most {MAX_NODES:,} values after expanding anchors and aliases",
        "more: aliases nested inside aliases multiply (a 'billion laughs' document?)",
        _mark(file, where),
    )


class _Converter:
    def __init__(self, loader: _Loader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.count = 0

    def fail(self, node: yaml.Node, expected: str, received: str, hint: str | None = None) -> SpecError:
        return SpecError.one("<file>", expected, received, _mark(self.file, node.start_mark), hint)

    def convert(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                node,
                f"at most {MAX_NODES:,} values after expanding aliases",
                "more (are anchors and aliases nested too deeply?)",
            )
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nesting at most {MAX_DEPTH} levels deep", "deeper nesting")
        if node.tag == _TIMESTAMP_TAG and isinstance(node, yaml.ScalarNode) and node.style is None:
            raise self.fail(
                node,
                "plain YAML values",
                f"{node.value}, which YAML reads as a date",
                f"write '{node.value}' in quotes for text",
            )
        if node.tag not in _CORE_TAGS:
            raise self.fail(node, "plain YAML values (no tags)", f"the tag '{node.tag}'")
        mark = _mark(self.file, node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            value = self.loader.construct_object(node)
            if node.style is None and node.tag in _NUMBER_TAGS:
                self.check_number(node, value)
            return value
        if isinstance(node, yaml.SequenceNode):
            out = YList(mark=mark)
            for item in node.value:
                out.append(self.convert(item, depth + 1))
                out.item_marks.append(_mark(self.file, item.start_mark))
            return out
        assert isinstance(node, yaml.MappingNode)  # yaml's composer makes only these three
        return self.mapping(node, depth, mark)

    def check_number(self, node: yaml.ScalarNode, value: Any) -> None:
        """Refuses YAML 1.1's surprising number forms: `1:00` is 60 and `010` is 8."""
        form = "base 60" if ":" in node.value else "octal" if _OCTAL.fullmatch(node.value) else None
        if form is None:
            return
        raise self.fail(
            node,
            "a plain number",
            f"{node.value}, which YAML 1.1 reads as {value} ({form})",
            f"write {value}, or '{node.value}' in quotes for text",
        )

    def mapping(self, node: yaml.MappingNode, depth: int, mark: Mark) -> YDict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, "a plain key", "a mapping or list used as a key")
            key = self.loader.construct_object(key_node)
            if key in seen:
                first = _mark(self.file, seen[key].start_mark)
                raise self.fail(
                    key_node, f"each key once (first '{key}' at line {first.line})", f"'{key}' again"
                )
            seen[key] = key_node
        merges = [v for k, v in node.value if k.tag == _MERGE_TAG]
        try:
            self.loader.flatten_mapping(node)  # resolves `<<` merge keys, explicit keys win
        except yaml.MarkedYAMLError:
            merged = merges[0]
            got = (
                repr(merged.value) if isinstance(merged, yaml.ScalarNode) else "a list holding something else"
            )
            raise self.fail(merged, "a mapping or a list of mappings after '<<'", got) from None
        out = YDict(mark=mark)
        for key_node, value_node in node.value:
            self.count += 1
            key = self.loader.construct_object(key_node)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise self.fail(key_node, "a plain key", repr(key))
            out[key] = self.convert(value_node, depth + 1)
            out.key_marks[key] = _mark(self.file, key_node.start_mark)
            out.value_marks[key] = _mark(self.file, value_node.start_mark)
        return out


def reads_as_number(text: str) -> bool:
    """Whether YAML reads `text`, written without quotes, as an int or a float."""
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) in _NUMBER_TAGS  # type: ignore[no-untyped-call]


_RESOLVER = yaml.resolver.Resolver()  # the implicit types SafeLoader resolves


class Flow(dict):  # type: ignore[type-arg]
    """A mapping `dump_yaml` writes on one line (a layer's fields: `{filters: 64, kernel: [1, 7]}`)."""


class _Dumper(yaml.SafeDumper):
    """SafeDumper, writing `Flow` mappings on one line."""


_Dumper.add_representer(
    Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)
)


def dump_yaml(data: Any, width: int = 100) -> str:
    """Writes plain data as block-style YAML, keys in the order given; lists and mappings of
    plain values, and `Flow` mappings, on one line."""
    return yaml.dump(plain(data), Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=width)


def plain(data: Any) -> Any:
    """Plain dicts and lists (tuples as lists), so Python- and YAML-made data compare and dump alike."""
    if isinstance(data, Flow):
        return Flow({k: plain(v) for k, v in data.items()})
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain(v) for v in data]
    return data
