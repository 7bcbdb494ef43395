"""How YAML documents become spec objects: only parsing.

The YAML language is the Python objects written down: a model has `layers` and a `head`,
each item one layer (`{conv: {filters: 64, kernel: 3}}`), a block (`{block: {...}}`),
a GoogLeNet table row (`{inception: {1x1: 64, ...}}`) or a template instance
(`{NAME: {arg: value}}`). Templates and table rows are expanded here, so everything
after this module sees only LayerSpecs and BlockSpecs. Field values are checked by the
planner, so that specs written in Python get exactly the same checks; loading a spec
(parse, then plan, once) is `planner.load_plan`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ..errors import Mark, Problems, SpecError, closest, did_you_mean
from ..kinds import get_kind, list_kinds
from .types import NAME_RULE, AuxHead, BlockSpec, LayerSpec, ModelSpec, Node, Origin, valid_name
from .yaml_io import YDict, YList, copy_tree, key_mark_of, load_yaml, mark_of

MAX_REPEAT = 1_000
MAX_EXPANDED_NODES = 20_000  # InceptionResNetV2 has about 400
MAX_BLOCK_DEPTH = 16  # the YAML nesting limit allows about as many blocks written out
TABLE_COLUMNS = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")
MODEL_KEYS = ("name", "input", "defaults", "templates", "layers", "head", "aux")
AUX_KEYS = ("at", "layers", "weight")
BLOCK_KEYS = ("name", "branches", "merge", "scale", "activation", "repeat")
TEMPLATE_KEYS = ("args", "branches", "merge", "scale", "activation")


def parse_collecting(data: Any, file: str) -> tuple[ModelSpec, Problems]:
    """Turns parsed YAML into a Model, expanding templates; the structure problems found are
    returned, not raised, so that the planner can add its own and all are reported together."""
    problems = Problems()
    return _Parser(problems, file).model(data), problems


def parse_text(text: str, file: str = "<string>") -> tuple[ModelSpec, Problems]:
    """Like `parse_collecting`, from YAML text (read bounded: see yaml_io)."""
    return parse_collecting(load_yaml(text, file), file)


def parse_plain(data: Mapping[str, Any]) -> tuple[ModelSpec, Problems]:
    """Like `parse_collecting`, from plain data (the form `Model.to_data` writes)."""
    return parse_collecting(_to_y(data), "<data>")


def parse(data: Any, file: str = "<string>") -> ModelSpec:
    """Turns parsed YAML into a Model, expanding templates; structure problems only."""
    problems = Problems()
    model = _Parser(problems, file).model(data)
    problems.raise_if_any()
    return model


class _Parser:
    def __init__(self, problems: Problems, file: str) -> None:
        self.p = problems
        self.file = file
        self.templates: dict[str, YDict] = {}
        self.template_marks: dict[str, Mark | None] = {}
        self.default_marks: dict[str, Origin] = {}
        self.instances: Counter[str] = Counter()
        self.broken: set[str] = set()  # templates with problems already reported
        self.expanding: list[str] = []  # templates being expanded, to catch recursion
        self.created = 0  # nodes made, bounded by MAX_EXPANDED_NODES
        self.depth = 0  # blocks inside blocks, bounded by MAX_BLOCK_DEPTH

    # -- helpers ---------------------------------------------------------------------

    def unknown_keys(
        self, data: dict[Any, Any], allowed: Iterable[str], path: str, what: str, note: str | None = None
    ) -> set[str]:
        """Reports keys not in `allowed`; returns the keys suggested instead (a misspelt
        key is then not reported as missing too)."""
        allowed = list(allowed)
        suggested: set[str] = set()
        for key in data:
            if key not in allowed:
                close = closest(str(key), allowed)
                if close:
                    suggested.add(close)
                hints = [h for h in (did_you_mean(str(key), allowed), note) if h]
                self.p.add(
                    _join(path, str(key)),
                    f"one of the {what} keys: " + ", ".join(allowed),
                    key,
                    key_mark_of(data, key),
                    "; ".join(hints) or None,
                )
        return suggested

    def mapping(self, value: Any, path: str, mark: Mark | None, expected: str) -> YDict | None:
        if isinstance(value, dict):
            return value if isinstance(value, YDict) else YDict(value)
        self.p.add(path, expected, value, mark)
        return None

    # -- model -------------------------------------------------------------------------

    def model(self, data: Any) -> ModelSpec:
        top = Mark(self.file, 1, 1)
        doc = self.mapping(data, "<spec>", mark_of(data) or top, "a mapping with name, input and layers")
        if doc is None:
            raise SpecError(self.p.items)
        suggested = self.unknown_keys(doc, MODEL_KEYS, "", "model")
        stem = os.path.splitext(os.path.basename(self.file))[0]
        name = doc.get("name", stem if valid_name(stem) else "model")
        if not valid_name(name):
            self.p.add("name", NAME_RULE, name, mark_of(doc, "name"))
            name = "model"
        shape = self.input_shape(doc, suggested)
        defaults = self.defaults(doc.get("defaults", YDict()), mark_of(doc, "defaults"))
        templates = doc.get("templates", YDict())
        if (
            self.mapping(
                templates, "templates", mark_of(doc, "templates"), "a mapping of template names to templates"
            )
            is not None
        ):
            for tname, body in templates.items():
                self.template(str(tname), body, mark_of(templates, tname), key_mark_of(templates, tname))
        if "layers" not in doc and "layers" not in suggested:
            self.p.add(
                "layers", "a list of layers and blocks", mark=doc.mark or top, hint="'layers' is missing"
            )
        layers = self.nodes(doc.get("layers", YList()), "layers", mark_of(doc, "layers"), None)
        head = self.nodes(doc.get("head", YList()), "head", mark_of(doc, "head"), None)
        aux = self.aux(doc.get("aux", YDict()), mark_of(doc, "aux"))
        model = ModelSpec(name, shape, layers, head, defaults, source=self.file, aux=aux)
        model.origins = {k: (mark_of(doc, k), None) for k in doc}
        model.origins.update(self.default_marks)
        return model

    def aux(self, data: Any, mark: Mark | None) -> dict[str, AuxHead]:
        """`aux: {NAME: {at: LAYER, layers: [...], weight: 0.3}}` (names and shapes: aux.plan_aux)."""
        data = self.mapping(data, "aux", mark, "a mapping of auxiliary head names to {at, layers, weight}")
        out: dict[str, AuxHead] = {}
        for name, body in (data or {}).items():
            path = f"aux.{name}"
            if not valid_name(name):
                self.p.add(path, NAME_RULE, name, key_mark_of(data, name))
                continue
            body = self.mapping(body, path, mark_of(data, name), "an auxiliary head: {at, layers, weight}")
            if body is None:
                continue
            suggested = self.unknown_keys(body, AUX_KEYS, path, "auxiliary head")
            for key in ("at", "layers"):
                if key not in body and key not in suggested:
                    self.p.add(
                        path,
                        f"an auxiliary head with '{key}'",
                        mark=body.mark or mark,
                        hint=f"'{key}' is missing",
                    )
            at, weight = body.get("at", ""), body.get("weight", 0.3)
            if "at" in body and (not isinstance(at, str) or not at):
                self.p.add(f"{path}.at", "the name of a top-level layer or block", at, mark_of(body, "at"))
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1e6:
                self.p.add(
                    f"{path}.weight", "a loss weight, a number from 0", weight, mark_of(body, "weight")
                )
                weight = 0.3
            layers = self.nodes(body.get("layers", YList()), f"{path}.layers", mark_of(body, "layers"), None)
            out[str(name)] = AuxHead(str(at) if isinstance(at, str) else "", layers, float(weight))
            out[str(name)].origins = {k: mark_of(body, k) for k in body}
        return out

    def input_shape(self, doc: YDict, suggested: set[str]) -> tuple[int, ...]:
        value = doc.get("input")
        if value is None:
            if "input" in suggested:
                return (1, 1, 1)
            self.p.add("input", "[height, width, channels]", mark=doc.mark, hint="'input' is missing")
            return (1, 1, 1)
        ok = (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
        )
        if not ok:
            self.p.add(
                "input", "[height, width, channels] as positive integers", value, mark_of(doc, "input")
            )
            return (1, 1, 1)
        return tuple(value)

    def defaults(self, data: Any, mark: Mark | None) -> dict[str, dict[str, Any]]:
        data = self.mapping(data, "defaults", mark, "a mapping from layer kind to field defaults")
        out: dict[str, dict[str, Any]] = {}
        for kind, fields in (data or {}).items():
            path = f"defaults.{kind}"
            if kind not in list_kinds():
                self.p.add(
                    path,
                    "a layer kind: " + ", ".join(list_kinds()),
                    kind,
                    key_mark_of(data, kind),
                    did_you_mean(str(kind), list_kinds()),
                )
                continue
            fields = self.mapping(fields, path, mark_of(data, kind), f"a mapping of {kind} fields")
            if fields is None:
                continue
            out[kind] = dict(fields)  # fields and values are checked in plan, like layers'
            for k in out[kind]:
                known = k in get_kind(kind).fields
                self.default_marks[f"defaults.{kind}.{k}"] = (
                    mark_of(fields, k) if known else key_mark_of(fields, k),
                    None,
                )
        return out

    # -- templates -----------------------------------------------------------------------

    def template(self, name: str, body: Any, mark: Mark | None, key_mark: Mark | None) -> None:
        path = f"templates.{name}"
        if name in list_kinds() or name in ("block", "inception"):
            self.p.add(
                path, "a template name that is not a layer kind, 'block' or 'inception'", name, key_mark
            )
            return
        if not valid_name(name):
            self.p.add(path, NAME_RULE, name, key_mark)
            return
        self.broken.add(name)  # until it proves sound
        body = self.mapping(body, path, mark, "a template: args, branches and merge")
        if body is None:
            return
        self.unknown_keys(body, TEMPLATE_KEYS, path, "template")
        args = body.get("args", YList())
        if not isinstance(args, list) or not all(
            isinstance(a, str) or (isinstance(a, dict) and len(a) == 1) for a in args
        ):
            self.p.add(
                f"{path}.args", "a list of argument names (or {name: default})", args, mark_of(body, "args")
            )
            return
        self.broken.discard(name)
        self.templates[name] = body
        self.template_marks[name] = key_mark
        params = self.template_params(name)
        for container, key, ref in _refs(body):  # checked once here, not at every use
            if ref[1:] not in params:
                self.p.add(
                    path + _format_keys([*_key_path(body, container), key]),
                    "a reference to one of the template's args: " + ", ".join(f"${a}" for a in params),
                    ref,
                    mark_of(container, key),
                    did_you_mean(ref, [f"${a}" for a in params]),
                )
                self.broken.add(name)

    def template_params(self, name: str) -> dict[str, tuple[Any, Mark | None]]:
        """Argument name -> (default or _REQUIRED, the default's mark)."""
        out: dict[str, tuple[Any, Mark | None]] = {}
        for item in self.templates[name].get("args", []):
            if isinstance(item, dict):
                ((key, default),) = item.items()
                out[str(key)] = (default, mark_of(item, key))
            else:
                out[str(item)] = (_REQUIRED, None)
        return out

    def instance(self, name: str, args: Any, path: str, mark: Mark | None) -> list[Node]:
        args = self.mapping(
            args if args is not None else YDict(), path, mark, f"a mapping of arguments of template '{name}'"
        )
        if args is None:
            return []
        if name in self.broken:
            return []
        if name in self.expanding:
            chain = " → ".join([*self.expanding, name])
            self.p.add(
                f"templates.{name}",
                "a template that does not use itself",
                chain,
                self.template_marks[name],
                raw=True,
            )
            self.broken.add(name)
            return []
        params = self.template_params(name)
        before = len(self.p.items)
        suggested = self.unknown_keys(args, [*params, "name", "repeat"], path, f"'{name}' template argument")
        values: dict[str, tuple[Any, Mark | None]] = {}
        for param, (default, default_mark) in params.items():
            if param in args:
                values[param] = (args[param], mark_of(args, param))
            elif default is _REQUIRED:
                if param not in suggested:
                    self.p.add(
                        _join(path, param),
                        f"a value for argument '{param}' of template '{name}'",
                        mark=args.mark or mark,
                        hint=f"'{param}' is missing",
                    )
            else:
                values[param] = (default, default_mark)
        if len(self.p.items) > before:
            return []  # expanding with wrong arguments would only repeat the problem
        body = copy_tree(self.templates[name])
        tmark = self.template_marks[name]
        note = f"in template '{name}'" + (f" at line {tmark.line}" if tmark else "")
        if mark is not None:
            note += f", used at line {mark.line}"
        body = self.substitute(body, values)
        block = YDict({k: v for k, v in body.items() if k != "args"}, mark=body.mark)
        block.value_marks = dict(body.value_marks)
        block.key_marks = dict(body.key_marks)
        for key in ("name", "repeat"):
            if key in args:
                block[key] = args[key]
                block.value_marks[key] = mark_of(args, key)
        times = self.repeat(block, path)  # checked once, here
        if "name" not in block:  # named now (template_1, ...), so the written-out spec keeps it
            block["name"] = name
            times = Repeat(times.times, times.first if times.explicit else self.instances[name] + 1, True)
            self.instances[name] = max(self.instances[name], times.first + times.times - 1)
        self.expanding.append(name)
        try:
            return self.block(block, path, mark, note, times)
        finally:
            self.expanding.pop()

    def substitute(self, value: Any, values: dict[str, tuple[Any, Mark | None]]) -> Any:
        """Replaces every `$arg` in a template body (all checked to exist); marks follow."""
        for container, key, ref in list(_refs(value)):
            arg_value, arg_mark = values[ref[1:]]
            container[key] = arg_value  # shared, like repeated layers' values
            if arg_mark is not None:
                marks = container.value_marks if isinstance(container, YDict) else None
                if marks is not None:
                    marks[key] = arg_mark
                elif isinstance(container, YList):
                    container.item_marks[key] = arg_mark
        return value

    # -- nodes ------------------------------------------------------------------------------

    def nodes(self, data: Any, path: str, mark: Mark | None, note: str | None) -> list[Node]:
        if not isinstance(data, list):
            self.p.add(path, "a list of layers and blocks", data, mark)
            return []
        out: list[Node] = []
        for i, item in enumerate(data):
            nodes = self.node(item, f"{path}[{i}]", mark_of(data, i), note)
            for node in nodes:  # repeats share their item's path
                node.source_path = f"{path}[{i}]"
            out.extend(nodes)
        return out

    def node(self, item: Any, path: str, mark: Mark | None, note: str | None) -> list[Node]:
        if isinstance(item, str):
            item = YDict({item: None}, mark=mark)
            item.key_marks[next(iter(item))] = mark
        if not isinstance(item, dict) or len(item) != 1:
            self.p.add(
                path,
                "one layer or block: a mapping with a single key such as conv, block or a template name",
                item,
                mark,
            )
            return []
        if not isinstance(item, YDict):
            item = YDict(item)
        ((kind, body),) = item.items()
        body_mark = mark_of(item, kind)
        if kind == "block":
            body = self.mapping(body, path, body_mark, "a block: a mapping with branches")
            return self.block(body, path, body_mark, note) if body is not None else []
        if kind == "inception":
            return self.table(body, path, body_mark, note)
        if kind in self.templates or kind in self.broken:
            return self.instance(kind, body, path, body_mark)
        if kind in list_kinds():
            return self.layer(kind, body, path, body_mark, note)
        choices = [*list_kinds(), "block", "inception", *self.templates]
        hints = [h for h in (did_you_mean(str(kind), choices), note) if h]
        self.p.add(
            path,
            "a layer kind, 'block', 'inception' or a template: " + ", ".join(choices),
            kind,
            key_mark_of(item, kind),
            "; ".join(hints) or None,
        )
        return []

    def repeat(self, body: YDict, path: str) -> Repeat:
        """`repeat: N` or `repeat: {times: N, first: K}` (copies named NAME_K, NAME_K+1, ...)."""
        value = body.get("repeat", 1)
        where, mark = _join(path, "repeat"), mark_of(body, "repeat")
        first, explicit = 1, False
        if isinstance(value, dict):
            self.unknown_keys(value, ("times", "first"), where, "repeat")
            first, explicit = value.get("first", 1), "first" in value
            if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= MAX_REPEAT:
                self.p.add(
                    _join(where, "first"),
                    f"a whole number from 0 to {MAX_REPEAT:,}",
                    first,
                    mark_of(value, "first"),
                )
                first = 1
            mark, where, value = mark_of(value, "times"), _join(where, "times"), value.get("times", 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPEAT:
            self.p.add(where, f"a whole number from 1 to {MAX_REPEAT:,}", value, mark)
            value = 1
        return Repeat(value, first, explicit)

    def count(self, n: int, path: str, mark: Mark | None) -> None:
        """Stops expansion that would build an absurd number of layers (nested repeats)."""
        self.created += n
        if self.created > MAX_EXPANDED_NODES:
            self.p.add(
                path,
                f"a spec that expands to at most {MAX_EXPANDED_NODES:,} layers and blocks",
                "more (check nested repeats)",
                mark,
                raw=True,
            )
            raise SpecError(self.p.items)

    def layer(self, kind: str, body: Any, path: str, mark: Mark | None, note: str | None) -> list[Node]:
        spec = get_kind(kind)
        if body is None:
            body = YDict(mark=mark)
        elif not isinstance(body, dict):
            if spec.shorthand is None:
                self.p.add(
                    path,
                    f"a mapping of {kind} fields: " + ", ".join(spec.fields)
                    if spec.fields
                    else f"nothing after '{kind}'",
                    body,
                    mark,
                )
                return []
            value = body
            body = YDict({spec.shorthand: value}, mark=mark)
            body.value_marks[spec.shorthand] = mark
        elif not isinstance(body, YDict):
            body = YDict(body)
        # Field names and values are checked by the planner, for Python-made specs too.
        name = body.get("name")
        if name is not None and not valid_name(name):
            self.p.add(_join(path, "name"), NAME_RULE, name, mark_of(body, "name"))
            name = None
        args = {k: v for k, v in body.items() if k not in ("name", "repeat")}
        out: list[Node] = []
        times = self.repeat(body, path)
        self.count(times.times, path, mark)
        for i in range(times.times):
            # copies share their values (nothing changes them), so a large value costs once
            layer = LayerSpec(kind, name=times.name(name, i), **args)
            # a field's value, or for a key the kind lacks, the key itself
            layer.origins = {
                k: (mark_of(body, k) if k in spec.fields else key_mark_of(body, k), note) for k in body
            }
            layer.origins[""] = (mark, note)
            out.append(layer)
        return out

    def block(
        self, body: YDict, path: str, mark: Mark | None, note: str | None, times: Repeat | None = None
    ) -> list[Node]:
        """A general block, repeated as `times` says (read from the body when None)."""
        suggested = self.unknown_keys(body, BLOCK_KEYS, path, "block", note)
        name = body.get("name")
        if name is not None and not valid_name(name):
            self.p.add(_join(path, "name"), NAME_RULE, name, mark_of(body, "name"))
            name = None
        merge = body.get("merge", "concat")  # merge, scale and activation are checked in plan()
        scale = body.get("scale")
        if "branches" not in body:
            if "branches" not in suggested:
                self.p.add(
                    path, "a block with branches", mark=body.mark or mark, hint="'branches' is missing"
                )
            return []
        branches_data = self.mapping(
            body["branches"],
            _join(path, "branches"),
            mark_of(body, "branches"),
            "a mapping of branch names to lists of layers",
        )
        if branches_data is None:
            return []
        if not branches_data:
            self.p.add(
                _join(path, "branches"),
                "at least one branch",
                "none",
                mark_of(body, "branches") or mark,
                raw=True,
            )
            return []
        times = times or self.repeat(body, path)
        if self.depth >= MAX_BLOCK_DEPTH:  # deeper nesting comes only through templates
            chain = list(self.expanding)
            shown = chain if len(chain) <= 5 else [*chain[:2], "...", *chain[-2:]]
            expected = f"blocks nested at most {MAX_BLOCK_DEPTH} deep (a template counts as a block)"
            received = "one nested deeper" + (", through " + " → ".join(shown) if chain else "")
            self.p.add(path, expected, received, mark, note, raw=True)
            raise SpecError(self.p.items)
        self.count(times.times, path, mark)
        out: list[Node] = []
        for i in range(times.times):
            branches: dict[str, list[Node]] = {}
            for bname, nodes in branches_data.items():
                bpath = f"{_join(path, 'branches')}.{bname}"
                if not valid_name(bname):
                    self.p.add(bpath, NAME_RULE, bname, key_mark_of(branches_data, bname))
                    continue
                self.depth += 1
                try:
                    items = nodes if nodes is not None else YList()
                    branches[str(bname)] = self.nodes(items, bpath, mark_of(branches_data, bname), note)
                finally:
                    self.depth -= 1
            block = BlockSpec(
                times.name(name, i),
                branches,
                merge,
                scale,
                body.get("activation"),
            )
            block.origins.update({k: (mark_of(body, k), note) for k in body})
            block.origins[""] = (mark, note)
            out.append(block)
        return out

    def table(self, body: Any, path: str, mark: Mark | None, note: str | None) -> list[Node]:
        """The GoogLeNet table row: {1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj}."""
        body = self.mapping(body, path, mark, "a mapping with the columns " + ", ".join(TABLE_COLUMNS))
        if body is None:
            return []
        self.unknown_keys(body, [*TABLE_COLUMNS, "name", "pool", "repeat"], path, "inception table", note)
        missing = [col for col in TABLE_COLUMNS if col not in body]
        for col in missing:
            self.p.add(
                _join(path, col),
                f"a value for column '{col}' (output channels)",
                mark=body.mark or mark,
                hint=f"'{col}' is missing",
            )
        if missing:
            return []
        pool = body.get("pool", "max")
        if pool not in ("max", "avg"):
            self.p.add(_join(path, "pool"), "max or avg", pool, mark_of(body, "pool"))
            pool = "max"

        def conv(col: str, kernel: int) -> LayerSpec:
            layer = LayerSpec("conv", filters=body.get(col), kernel=kernel)
            layer.origins = {"filters": (mark_of(body, col), note), "": (mark_of(body, col), note)}
            layer.paths = {"filters": _join(path, col)}
            return layer

        def pool_layer() -> LayerSpec:
            layer = LayerSpec(f"{pool}pool", pool=3, strides=1)
            layer.origins = {"": (mark, note)}
            return layer

        out: list[Node] = []
        times = self.repeat(body, path)
        self.count(times.times * 8, path, mark)  # each row: a block of 7 layers
        name = body.get("name")
        if name is not None and not valid_name(name):
            self.p.add(_join(path, "name"), NAME_RULE, name, mark_of(body, "name"))
            name = None
        for i in range(times.times):
            branches: dict[str, list[Node]] = {
                "b1": [conv("1x1", 1)],
                "b2": [conv("3x3_reduce", 1), conv("3x3", 3)],
                "b3": [conv("5x5_reduce", 1), conv("5x5", 5)],
                "b4": [pool_layer(), conv("pool_proj", 1)],
            }
            block = BlockSpec(times.name(name, i), branches)
            block.origins = {"": (mark, note)}
            out.append(block)
        return out


_REQUIRED = object()


class Repeat(NamedTuple):
    """How many copies of an item, and how they are numbered."""

    times: int
    first: int = 1
    explicit: bool = False  # numbered even when there is one copy

    def name(self, name: str | None, i: int) -> str | None:
        """Copy i's name: `{i}` in the name is replaced by its number, else `_N` is added."""
        if name and "{i}" in name:
            return name.replace("{i}", str(self.first + i))
        return f"{name}_{self.first + i}" if name and (self.times > 1 or self.explicit) else name


def _refs(value: Any) -> Iterable[tuple[Any, Any, str]]:
    """Every `$arg` string in a template body, as (container, key, ref)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if _is_ref(item):
            yield value, key, item
        else:
            yield from _refs(item)


def _format_keys(keys: list[Any]) -> str:
    """Keys as a spec path: `.branches.a[0].filters` (a node's kind key is left out)."""
    out, prev = "", None
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif not isinstance(prev, int):
            out += f".{key}"
        prev = key
    return out


def _key_path(root: Any, target: Any) -> list[Any]:
    """Keys leading from root to the target container (for error paths in templates)."""
    if root is target:
        return []
    items = root.items() if isinstance(root, dict) else enumerate(root) if isinstance(root, list) else ()
    for key, item in items:
        if isinstance(item, (dict, list)):
            sub = _key_path(item, target)
            if sub is not None:
                return [key, *sub]
    return None  # type: ignore[return-value]


def _is_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$") and len(value) > 1


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _to_y(data: Any) -> Any:
    if isinstance(data, dict):
        return YDict({k: _to_y(v) for k, v in data.items()})
    if isinstance(data, (list, tuple)):
        out = YList(_to_y(v) for v in data)
        out.item_marks = [None] * len(out)
        return out
    return data
