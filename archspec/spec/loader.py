"""Safe YAML loading that remembers where every value came from.

PyYAML's composer gives a node graph with marks; we convert it to plain
Python data ourselves so that (a) only the standard YAML tags are accepted —
no Python objects, ever — (b) each value's line:column is kept, keyed by its
path (``("layers", 3, "kernel")``), for diagnostics from every later stage, and
(c) size, depth and alias expansion are bounded *before* any work that grows
with the expansion, which is what defeats alias bombs.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archspec.spec.diagnostics import Diagnostic, Kind, Position, Severity, SpecError

MAX_BYTES = 1 << 20  # 1 MiB: the largest real spec is a few KiB; 20,000 layers fit
MAX_DEPTH = 32  # specs are at most ~5 levels deep
MAX_NODES = 500_000  # after alias expansion

PathKey = tuple[str | int, ...]

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """The safe loader with implicit-tag resolution memoised.

    Resolving a plain scalar's tag runs regexes in Python for every value
    even under libyaml; a spec repeats the same few words and numbers
    thousands of times, so a per-load cache removes most of that work.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._resolved: dict[tuple[str, tuple[bool, bool]], str] = {}

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode:
            return str(super().resolve(kind, value, implicit))
        try:
            return self._resolved[value, implicit]
        except KeyError:
            tag = self._resolved[value, implicit] = str(super().resolve(kind, value, implicit))
            return tag


# YAML 1.1 (PyYAML) reads 1e-4 and 5E3 as strings: its floats need a dot. Specs are
# written the way YAML 1.2, JSON and Python write numbers, so those are floats here too.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STD}{t}" for t in ("str", "int", "float", "bool", "null")}


@dataclass
class Document:
    """Plain data from a YAML file, plus its node tree for positions.

    Positions are looked up in the node tree only when a diagnostic needs
    one, so loading costs nothing per value beyond the data itself.
    """

    file: str
    data: Any
    root: yaml.Node | None = None
    text: str = ""
    # Per mapping node (by id), its keys → (key node, value node), built on first use:
    # scanning a mapping per lookup made thousands of diagnostics on one mapping quadratic.
    _keys: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = field(
        default_factory=dict, repr=False
    )
    # Set when blocks were expanded (archspec.spec.blocks.Expansion): where each layer of
    # the flat ``layers`` list was written, and the groups of layers each use made.
    expansion: Any = None

    def _origin(self, path: PathKey) -> tuple[PathKey, Any]:
        """A path into the expanded layers → the path where it is written, and its uses."""
        if (
            self.expansion is not None
            and len(path) >= 2
            and path[0] == "layers"
            and isinstance(path[1], int)
            and 0 <= path[1] < len(self.expansion.origins)
        ):
            origin = self.expansion.origins[path[1]]
            rest = path[2:]
            for field, written in origin.values:  # a value a block parameter gave
                if rest[: len(field)] == field:
                    return (*written, *rest[len(field) :]), origin.uses
            return (*origin.definition, *rest), origin.uses
        return path, ()

    def written_path(self, path: PathKey) -> PathKey:
        """Where the value at ``path`` (in the expanded data) is written in the file."""
        return self._origin(path)[0]

    def note(self, path: PathKey) -> str | None:
        """For a layer that a block brought in: which use (and where), else None."""
        return self.describe_uses(self._origin(path)[1])

    def describe_uses(self, uses: Any) -> str | None:
        parts = []
        for use in reversed(uses):
            pos = self.written_position(use.path)
            at = f" at {self.file}:{pos.line}:{pos.column}" if pos else ""
            parts.append(f"in block '{use.block}' used as '{use.prefix}'{at}")
        return ", ".join(parts) or None

    def _mapping(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        index = self._keys.get(id(node))
        if index is None:
            index = {}
            for key_node, value_node in node.value:
                index.setdefault(str(key_node.value), (key_node, value_node))
            self._keys[id(node)] = index
        return index

    def position(self, path: PathKey, *, key: bool = False) -> Position | None:
        """The position of the value at ``path`` (or of its key), else of its nearest ancestor.

        ``path`` may point into the expanded layers; it is looked up where it is written.
        """
        return self.written_position(self.written_path(path), key=key)

    def written_position(self, path: PathKey, *, key: bool = False) -> Position | None:
        """The position of ``path`` in the file as written (no block expansion applied)."""
        node = self.root
        if node is None:
            return None
        found = _pos(node)
        for i, seg in enumerate(path):
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                pair = self._mapping(node).get(str(seg))
                if pair is not None:
                    if key and i == len(path) - 1:
                        return _pos(pair[0])
                    child = pair[1]
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(seg, int)
                and 0 <= seg < len(node.value)
            ):
                child = node.value[seg]
            if child is None:
                break
            node = child
            found = _pos(node)
        return found


def _error(
    file: str, message: str, pos: Position | None = None, hint: str | None = None
) -> SpecError:
    return SpecError([Diagnostic(Severity.ERROR, Kind.INPUT, message, file, pos, hint)])


def _pos(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def read_text(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Read a spec file as UTF-8 text, refusing what is too large or not text."""
    file = str(path)
    p = Path(path)
    try:
        if p.is_dir():
            raise _error(file, "is a directory, not a spec file")
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise _error(
                file,
                f"file is {size:,} bytes; specs are limited to {MAX_BYTES:,} bytes (1 MiB)",
                Position(1, 1),
            )
        with p.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _error(file, f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise _error(file, f"file exceeds {MAX_BYTES:,} bytes (1 MiB)", Position(1, 1))
    return file, decode(file, raw)


def decode(file: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _error(
            file,
            f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            Position(line, col),
        ) from None


def load_document(path: str | os.PathLike[str]) -> Document:
    file, text = read_text(path)
    return parse_document(text, file)


def parse_document(text: str, file: str = "<string>") -> Document:
    """Parse YAML text into a :class:`Document`; raise :class:`SpecError` on anything unsafe."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise _error(file, f"spec text exceeds {MAX_BYTES:,} bytes (1 MiB)", Position(1, 1))
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise _error(file, "file contains a NUL byte; specs are YAML text", Position(line, 1))
    try:
        _check_depth(file, text)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(mark.line + 1, mark.column + 1) if mark else None
        problem = exc.problem or exc.context or "malformed YAML"
        raise _error(file, f"invalid YAML: {problem}", pos) from None
    except yaml.reader.ReaderError as exc:
        # A character YAML forbids (a control character): the error has an offset
        # (in bytes under libyaml), not a mark, so locate the character itself.
        char = exc.character if isinstance(exc.character, int) else -1
        at = text.find(chr(char)) if char >= 0 else -1
        pos = Position(1, 1)
        if at >= 0:
            pos = Position(text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at))
        raise _error(file, f"invalid YAML: {exc.reason} (U+{max(char, 0):04X})", pos) from None
    except yaml.YAMLError as exc:
        raise _error(file, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _error(
            file, f"YAML nesting is deeper than {MAX_DEPTH} levels", Position(1, 1)
        ) from None
    if node is None:
        raise _error(file, "file is empty; a spec starts with 'archspec: 1'", Position(1, 1))
    if "*" in text:  # only aliases can make the document bigger than the file
        _check_size(file, node)
    doc = Document(file=file, data=None, root=node, text=text)
    doc.data = _Converter(doc).convert(node, ())
    return doc


def _check_depth(file: str, text: str) -> None:
    """Refuse deep nesting before composing: libyaml's composer recurses in C, and
    some 50,000 nested ``[`` overflow the C stack (a segfault, not a RecursionError).
    The event parser keeps its own stack, so this scan is safe at any depth.

    libyaml (PyYAML >= 6.0.2) may stop first, with a nesting limit of its own,
    while it looks ahead for simple keys; then the text up to where it stopped
    is scanned again by the pure-Python parser, which has no such limit, so
    the user reads archspec's rule and position whichever parser gives up first.
    """
    try:
        _scan_depth(file, text, _Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if _Loader is yaml.SafeLoader or mark is None or mark.index <= 0:
            raise
        # The prefix ends mid-construct, so it is bad YAML too; only the depth rule matters.
        with contextlib.suppress(yaml.YAMLError):
            _scan_depth(file, text[: mark.index], yaml.SafeLoader)
        raise


def _scan_depth(file: str, text: str, loader: type) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                pos = Position(mark.line + 1, mark.column + 1) if mark else None
                raise _error(file, f"YAML nesting is deeper than {MAX_DEPTH} levels", pos)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_size(file: str, root: yaml.Node) -> None:
    """Count the nodes the document would expand to, without expanding it.

    Aliases make the composed graph a DAG (or worse, a cycle); memoising the
    count per node keeps this linear in the *file*, not in its expansion.
    """
    counts: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            in_progress.discard(key)
            total = 1 + sum(counts[id(c)] for c in _children(node))
            counts[key] = total
            if total > MAX_NODES:
                raise _error(
                    file,
                    f"document expands to more than {MAX_NODES:,} values "
                    "(aliases repeated too often: an alias bomb?)",
                    _pos(node),
                )
            continue
        if key in counts:
            continue
        if key in in_progress:
            raise _error(file, "recursive alias: a node contains itself", _pos(node))
        if depth > MAX_DEPTH:
            raise _error(file, f"YAML nesting is deeper than {MAX_DEPTH} levels", _pos(node))
        in_progress.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) not in counts:
                stack.append((child, depth + 1, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


_SLOW = object()
_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(
    r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
)


def _fast_scalar(node: yaml.ScalarNode) -> Any:
    """The common scalar forms without PyYAML's general constructor (which dominates load time).

    Anything unusual (0x1F, 1_000, .inf, yes/no) returns _SLOW and goes to PyYAML.
    """
    tag, value = node.tag, node.value
    if tag == f"{_STD}str":
        return value
    if tag == f"{_STD}int" and _PLAIN_INT.fullmatch(value):
        return int(value)
    if tag == f"{_STD}float" and _PLAIN_FLOAT.fullmatch(value):
        return float(value)
    if tag == f"{_STD}bool" and value in ("true", "false"):
        return value == "true"
    if tag == f"{_STD}null":
        return None
    return _SLOW


class _Converter:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.constructor = yaml.constructor.SafeConstructor()

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        if len(path) > MAX_DEPTH:
            raise _error(
                self.doc.file, f"YAML nesting is deeper than {MAX_DEPTH} levels", _pos(node)
            )
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, f"{_STD}map")
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node, path, as_key=True)
                if isinstance(key, (dict, list)) or not isinstance(key, (str, int, float, bool)):
                    raise _error(self.doc.file, "mapping keys must be plain words", _pos(key_node))
                if key in out:
                    raise _error(self.doc.file, f"duplicate key '{key}'", _pos(key_node))
                out[key] = self.convert(value_node, (*path, str(key)))
            return out
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, f"{_STD}seq")
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: PathKey, as_key: bool = False) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            if as_key:
                raise _error(self.doc.file, "mapping keys must be plain words", _pos(node))
            return self.convert(node, path)
        if node.tag not in _SCALAR_TAGS:
            self._check_tag(node, None)
        fast = _fast_scalar(node)
        if fast is not _SLOW:
            return fast
        try:
            return self.constructor.yaml_constructors[node.tag](self.constructor, node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            raise _error(self.doc.file, f"bad scalar {node.value!r}: {exc}", _pos(node)) from None

    def _check_tag(self, node: yaml.Node, expected: str | None) -> None:
        if node.tag != expected:
            tag = node.tag.replace(_STD, "!!")
            raise _error(
                self.doc.file,
                f"YAML tag '{tag}' is not allowed; specs use plain YAML values only",
                _pos(node),
            )
