"""Protocol Buffers text format (Caffe's ``.prototxt``), parsed with line:column positions.

Caffe's own parser is protobuf's, driven by ``caffe.proto``; archspec needs no
schema to read the structure, only the positions protobuf does not keep, so
this is a small recursive-descent parser of the text format itself: fields
``name: value`` and ``name { … }`` (the colon optional before a brace),
repeated by repetition, ``#`` comments, quoted strings with C escapes, numbers
and enum identifiers. Every field remembers where it was written, so an
importer can say ``lenet.prototxt:42:3: error: …``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from archspec.spec.diagnostics import Position

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n,;]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?[fF]?(?![A-Za-z_]))
  | (?P<ident>[-+]?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[:{}<>\[\]])
    """,
    re.VERBOSE,
)


class PrototxtError(Exception):
    """A text-format syntax error, at a position."""

    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass
class Field:
    name: str
    value: Any  # str | int | float | bool | Message
    position: Position
    enum: bool = False  # an unquoted identifier (an enum value such as MAX, or true/false)


@dataclass
class Message:
    """An ordered list of fields; repeated fields appear once per value, as written."""

    fields: list[Field] = field(default_factory=list)
    position: Position = field(default_factory=lambda: Position(1, 1))

    def all(self, name: str) -> list[Field]:
        return [f for f in self.fields if f.name == name]

    def first(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def get(self, name: str, default: Any = None) -> Any:
        found = self.first(name)
        return default if found is None else found.value

    def values(self, name: str) -> list[Any]:
        return [f.value for f in self.fields if f.name == name]

    def message(self, name: str) -> Message:
        """The sub-message ``name``, or an empty one (protobuf's default) when absent."""
        value = self.get(name)
        return value if isinstance(value, Message) else Message(position=self.position)


@dataclass
class _Token:
    kind: str
    text: str
    position: Position


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    line, line_start, at = 1, 0, 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        pos = Position(line, at - line_start + 1)
        if match is None:
            raise PrototxtError(f"unexpected character {text[at]!r}", pos)
        kind = match.lastgroup or ""
        chunk = match.group()
        if kind != "space":
            tokens.append(_Token(kind, chunk, pos))
        newlines = chunk.count("\n")
        if newlines:
            line += newlines
            line_start = at + chunk.rindex("\n") + 1
        at = match.end()
    tokens.append(_Token("end", "", Position(line, at - line_start + 1)))
    return tokens


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def message(self, closing: str | None, position: Position) -> Message:
        out = Message(position=position)
        while True:
            token = self.peek()
            if token.kind == "end":
                if closing is not None:
                    raise PrototxtError(f"missing '{closing}' for the block opened here", position)
                return out
            if token.kind == "punct" and token.text == closing:
                self.take()
                return out
            if token.kind != "ident":
                raise PrototxtError(f"expected a field name, found {token.text!r}", token.position)
            name = self.take()
            colon = self.peek().kind == "punct" and self.peek().text == ":"
            if colon:
                self.take()
            value = self.peek()
            if value.kind == "punct" and value.text in "{<":
                self.take()
                inner = self.message("}" if value.text == "{" else ">", value.position)
                out.fields.append(Field(name.text, inner, name.position))
            elif value.kind == "punct" and value.text == "[" and colon:
                self.take()  # a list of scalars: name: [1, 2, 3]
                while not (self.peek().kind == "punct" and self.peek().text == "]"):
                    out.fields.append(self.scalar(name))
                self.take()
            elif colon:
                out.fields.append(self.scalar(name))
            else:
                raise PrototxtError(f"expected ':' or '{{' after '{name.text}'", value.position)

    def scalar(self, name: _Token) -> Field:
        token = self.take()
        if token.kind == "string":
            text = _unquote(token.text)
            while self.peek().kind == "string":  # adjacent strings concatenate
                text += _unquote(self.take().text)
            return Field(name.text, text, name.position)
        if token.kind == "number":
            raw = token.text.rstrip("fF")
            is_int = re.fullmatch(r"[-+]?\d+", raw) is not None
            return Field(name.text, int(raw) if is_int else float(raw), name.position)
        if token.kind == "ident":
            word = token.text
            if word in ("true", "True", "t"):
                return Field(name.text, True, name.position, enum=True)
            if word in ("false", "False", "f"):
                return Field(name.text, False, name.position, enum=True)
            if word.lstrip("+-").lower() in ("inf", "infinity", "nan"):
                return Field(name.text, float(word), name.position)
            return Field(name.text, word, name.position, enum=True)
        raise PrototxtError(
            f"expected a value for '{name.text}', found {token.text!r}", token.position
        )


def parse(text: str) -> Message:
    """Parse a whole text-format document; :class:`PrototxtError` says where it is malformed."""
    return _Parser(text).message(None, Position(1, 1))
