"""Reusable blocks, expanded at load time into plain layers with dotted names.

A spec may define a block once under ``blocks:`` (a named list of layers with
parameters) and use it in ``layers:`` as often as it likes::

    blocks:
      basic:
        params: {channels: ~, stride: 1}          # ~ (null): the use must give it
        layers:
          - {name: conv1, type: conv2d, out_channels: $channels, kernel: 3, stride: $stride, padding: 1}
          - {name: relu, type: relu}
          - {name: add, type: add, inputs: [relu, input]}   # 'input': the block's input
    layers:
      - {name: layer1, block: basic, repeat: 2, with: {channels: 64}}

Everything after loading sees a flat list: ``layer1.0.conv1``, ``layer1.0.relu``,
…, ``layer1.1.add`` — PyTorch's module paths, so weights load by name. A later
layer that reads ``layer1`` reads the block's last layer. Expansion is bounded
(a block may not use itself, directly or through others, and the expanded spec
may not exceed :data:`MAX_EXPANDED` layers), and every expanded layer remembers
where it was defined and through which uses, so a diagnostic points at the line
in the block *and* names the use (:class:`Origin`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from archspec.layers.base import Expect
from archspec.spec.diagnostics import (
    MAX_ERRORS,
    Diagnostic,
    Kind,
    Severity,
    SpecError,
    did_you_mean,
)
from archspec.spec.loader import Document, PathKey

MAX_EXPANDED = 100_000  # layers after expansion; the largest real network has a few thousand
USE_KEYS = ("name", "block", "repeat", "with", "inputs", "expect")
BLOCK_KEYS = ("params", "layers", "doc")
# A block's parameters in one use: name → (value, where that value is written: the use's
# with: entry, or the block's default), so an error in a value points at where it was given.
Env = dict[str, tuple[Any, PathKey]]
_PARAM = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


@dataclass(frozen=True)
class Use:
    """One use of a block on the way to an expanded layer: where, as what, which block."""

    path: PathKey  # the use's mapping in the document
    prefix: str  # the dotted name its layers get (``layer1.0``)
    block: str


@dataclass(frozen=True)
class Origin:
    """Where an expanded layer was written: its mapping, and the uses that brought it in."""

    definition: PathKey
    uses: tuple[Use, ...] = ()  # outermost first
    # Fields whose value a parameter gave (path within the layer → where the value is written).
    values: tuple[tuple[PathKey, PathKey], ...] = ()


@dataclass(frozen=True)
class Group:
    """The layers one use of a block expanded to, for folded tables and ``expect:`` on a use."""

    name: str
    block: str
    members: tuple[str, ...]
    path: PathKey
    expect: Any = None


@dataclass
class Expansion:
    """What :func:`expand` adds to a document: each layer's origin, and the groups."""

    origins: list[Origin] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)


class _Expander:
    def __init__(self, doc: Document, blocks: dict[str, Any]) -> None:
        self.doc = doc
        self.blocks = blocks
        self.layers: list[Any] = []
        self.result = Expansion()
        self.errors: list[Diagnostic] = []

    # -------------------------------------------------------------------- errors

    def error(self, path: PathKey, message: str, uses: tuple[Use, ...] = (), **kw: Any) -> None:
        if len(self.errors) <= MAX_ERRORS:
            self.errors.append(
                Diagnostic(
                    Severity.ERROR,
                    Kind.INPUT,
                    message,
                    self.doc.file,
                    self.doc.position(path, key=kw.pop("key", False)),
                    kw.pop("hint", None),
                    note=self.doc.describe_uses(uses),
                )
            )

    # -------------------------------------------------------------------- walking

    def expand_list(
        self,
        items: list[Any],
        path: PathKey,
        prefix: str,
        env: Env | None,
        block_input: str | None,
        uses: tuple[Use, ...],
    ) -> str | None:
        """Append ``items`` (a spec's or a block's layers) expanded; return the last name."""
        local: dict[str, str] = {}
        last = block_input
        for i, item in enumerate(items):
            item_path = (*path, i)
            if len(self.layers) > MAX_EXPANDED:
                self.error(item_path, f"blocks expand to more than {MAX_EXPANDED:,} layers", uses)
                raise SpecError(self.errors)
            if isinstance(item, dict) and "block" in item:
                name = self.use(item, item_path, prefix, env, (last, block_input), local, uses)
            else:
                name = self.plain(item, item_path, prefix, env, block_input, local, uses)
            if name is not None:
                last = name
        return last

    def plain(
        self,
        item: Any,
        path: PathKey,
        prefix: str,
        env: Env | None,
        block_input: str | None,
        local: dict[str, str],
        uses: tuple[Use, ...],
    ) -> str | None:
        layer = item
        given: dict[PathKey, PathKey] = {}
        if isinstance(item, dict):
            layer = dict(item)
            if env is not None:
                layer = self.substitute(layer, path, env, uses, given)
            name = layer.get("name")
            if isinstance(name, str) and prefix:
                local[name] = layer["name"] = prefix + name
            elif isinstance(name, str):
                local[name] = name
            if isinstance(layer.get("inputs"), list):
                layer["inputs"] = [self.resolve(src, local, block_input) for src in layer["inputs"]]
        self.layers.append(layer)
        values = tuple((p[len(path) :], src) for p, src in given.items())
        self.result.origins.append(Origin(path, uses, values))
        name = layer.get("name") if isinstance(layer, dict) else None
        return name if isinstance(name, str) else None

    def resolve(self, src: Any, local: dict[str, str], block_input: str | None) -> Any:
        """A name as written in a scope → the expanded name it stands for."""
        if not isinstance(src, str):
            return src
        if src == "input" and block_input is not None:
            return block_input
        return local.get(src, src)

    def use(
        self,
        item: dict[str, Any],
        path: PathKey,
        prefix: str,
        env: Env | None,
        scope: tuple[str | None, str | None],
        local: dict[str, str],
        uses: tuple[Use, ...],
    ) -> str | None:
        """Expand one use; ``scope`` is (the layer before it, the enclosing block's input)."""
        previous, block_input = scope
        given: dict[PathKey, PathKey] = {}
        item = self.substitute(dict(item), path, env, uses, given) if env is not None else item
        bad = False
        for key in item:
            if key not in USE_KEYS:
                hint = did_you_mean(str(key), USE_KEYS)
                self.error(
                    (*path, key), f"unknown key '{key}' in a block use", uses, key=True, hint=hint
                )
                bad = True
        name, block = item.get("name"), item.get("block")
        if not isinstance(name, str) or not _DOTTED.match(name):
            self.error(
                (*path, "name"),
                "a block use needs a name: letters, digits and _, dotted parts allowed",
                uses,
            )
            return None
        if not isinstance(block, str) or block not in self.blocks:
            hint = did_you_mean(str(block), self.blocks) or (
                f"defined blocks: {', '.join(sorted(self.blocks))}" if self.blocks else None
            )
            self.error((*path, "block"), f"unknown block {block!r}", uses, hint=hint)
            return None
        chain = [u.block for u in uses]
        if block in chain:
            cycle = " → ".join([*chain[chain.index(block) :], block])
            what = "uses itself" if len(chain) - chain.index(block) == 1 else "is in a cycle"
            self.error((*path, "block"), f"block '{block}' {what} ({cycle})", uses)
            return None
        repeat = item.get("repeat")
        if repeat is not None and (
            isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1
        ):
            self.error(
                (*path, "repeat"), f"repeat must be a positive integer, got {repeat!r}", uses
            )
            return None
        args = self.arguments(item, path, block, uses, given)
        inputs = item.get("inputs")
        start = previous
        if inputs is not None:
            if not isinstance(inputs, list) or len(inputs) != 1:
                self.error((*path, "inputs"), "a block use reads one input: inputs: [name]", uses)
                return None
            start = self.resolve(inputs[0], local, block_input)
        raw_expect = item.get("expect")
        expect: Expect | None = None
        if raw_expect is not None:
            try:
                expect = Expect.model_validate(raw_expect)
            except ValidationError as exc:
                seen: set[PathKey] = set()
                for err in exc.errors(include_url=False)[:MAX_ERRORS]:
                    # pydantic's loc names union branches too: keep the parts in the data
                    where: PathKey = (*path, "expect")
                    node: Any = raw_expect
                    for seg in err["loc"]:
                        inside = isinstance(node, dict) and seg in node
                        inside = inside or (
                            isinstance(node, list) and isinstance(seg, int) and seg < len(node)
                        )
                        if inside:
                            node = node[seg]
                            where = (*where, seg)
                    if where in seen:
                        continue
                    seen.add(where)
                    shown = ".".join(str(p) for p in where[where.index("expect") :])
                    message = str(err["msg"]).replace("Input should be ", "expected ", 1)
                    self.error(where, f"{shown}: {message}", uses)
                return None
        if args is None or bad:
            return None
        full = prefix + name
        members_from = len(self.layers)
        last = start
        for r in range(repeat or 1):
            rep = f"{full}.{r}" if repeat is not None else full
            here = (*uses, Use(path, rep, block))
            first = len(self.layers)
            block_path: PathKey = ("blocks", block, "layers")
            last = self.expand_list(
                self.blocks[block]["layers"], block_path, rep + ".", args, last or "input", here
            )
            # The block's first layer reads the block's input when the use names one.
            if inputs is not None and r == 0 and first < len(self.layers):
                head = self.layers[first]
                if isinstance(head, dict) and head.get("inputs") is None:
                    head["inputs"] = [start]
            if repeat is not None:
                self.group(rep, block, first, path, None)
        self.group(full, block, members_from, path, expect)
        if last is not None:
            local[name] = last
        return last

    def group(self, name: str, block: str, first: int, path: PathKey, expect: Any) -> None:
        members = tuple(
            layer["name"]
            for layer in self.layers[first:]
            if isinstance(layer, dict) and isinstance(layer.get("name"), str)
        )
        self.result.groups.append(Group(name, block, members, path, expect))

    def arguments(
        self,
        item: dict[str, Any],
        path: PathKey,
        block: str,
        uses: tuple[Use, ...],
        given_at: dict[PathKey, PathKey],
    ) -> Env | None:
        """The use's values for the block's parameters, each with where it is written
        (``given_at``: where values substituted into this use itself came from)."""
        params: dict[str, Any] = self.blocks[block].get("params") or {}
        given = item.get("with") or {}
        if not isinstance(given, dict):
            self.error((*path, "with"), "with: maps the block's parameters to values", uses)
            return None
        ok = True
        for key in given:
            if key not in params:
                known = ", ".join(params) or "none"
                self.error(
                    (*path, "with", key),
                    f"block '{block}' has no parameter '{key}' (its parameters: {known})",
                    uses,
                    key=True,
                    hint=did_you_mean(str(key), params),
                )
                ok = False
        for key, default in params.items():
            if default is None and key not in given:
                self.error(
                    (*path, "block"),
                    f"block '{block}' needs parameter '{key}': add with: {{{key}: …}}",
                    uses,
                )
                ok = False
        if not ok:
            return None
        env: Env = {k: (v, ("blocks", block, "params", k)) for k, v in params.items()}
        for k, v in given.items():
            where = (*path, "with", k)
            env[k] = (v, given_at.get(where, where))
        return env

    def substitute(
        self,
        value: Any,
        path: PathKey,
        env: Env,
        uses: tuple[Use, ...],
        given: dict[PathKey, PathKey],
    ) -> Any:
        """Replace every ``$param`` value (whole values only) with the use's argument,
        recording in ``given`` where each substituted value is written."""
        if isinstance(value, dict):
            return {k: self.substitute(v, (*path, k), env, uses, given) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, (*path, i), env, uses, given) for i, v in enumerate(value)]
        if isinstance(value, str) and (match := _PARAM.match(value)):
            if match.group(1) in env:
                found, where = env[match.group(1)]
                given[path] = where
                return found
            block = uses[-1].block if uses else "?"
            known = ", ".join(f"${p}" for p in env) or "none"
            self.error(
                path,
                f"unknown parameter '{value}' in block '{block}' (its parameters: {known})",
                uses,
                hint=did_you_mean(match.group(1), env),
            )
        return value


def _check_blocks(doc: Document, blocks: Any) -> list[Diagnostic]:
    """The shape of the ``blocks:`` mapping itself, before any use is expanded."""
    found: list[Diagnostic] = []

    def err(path: PathKey, message: str, key: bool = False) -> None:
        found.append(
            Diagnostic(Severity.ERROR, Kind.INPUT, message, doc.file, doc.position(path, key=key))
        )

    if not isinstance(blocks, dict):
        err(("blocks",), "blocks: maps block names to {params, layers}")
        return found
    for name, body in blocks.items():
        where: PathKey = ("blocks", name)
        if not isinstance(name, str) or not _IDENT.match(name):
            err(where, f"{name!r} is not a valid block name: use letters, digits and _", key=True)
        if not isinstance(body, dict):
            err(where, f"block '{name}' is a mapping with params and layers")
            continue
        for key in body:
            if key not in BLOCK_KEYS:
                hint = did_you_mean(str(key), BLOCK_KEYS)
                msg = f"unknown key '{key}' in block '{name}'" + (f"; {hint}" if hint else "")
                err((*where, key), msg, key=True)
        params = body.get("params", {})
        if params is not None and not isinstance(params, dict):
            err((*where, "params"), "params: maps parameter names to defaults (~: required)")
        elif params:
            for p in params:
                if not isinstance(p, str) or not _IDENT.match(p):
                    err((*where, "params", p), f"{p!r} is not a valid parameter name", key=True)
        layers = body.get("layers")
        if not isinstance(layers, list) or not layers:
            err(
                (*where, "layers") if "layers" in body else where,
                f"block '{name}' needs layers: [...]",
            )
    return found


def expand(doc: Document) -> Expansion | None:
    """Expand every block use in ``doc.data['layers']`` in place; None when there is none.

    Raises :class:`SpecError` with located diagnostics for a malformed block,
    an unknown block or parameter, a missing argument, or a cycle of blocks.
    """
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        return None
    layers = data["layers"]
    blocks = data.get("blocks")
    uses = any(isinstance(item, dict) and "block" in item for item in layers)
    if blocks is None and not uses:
        return None
    problems = _check_blocks(doc, blocks) if blocks is not None else []
    if problems:
        raise SpecError(problems)
    expander = _Expander(doc, blocks or {})
    expander.expand_list(layers, ("layers",), "", None, None, ())
    if expander.errors:
        raise SpecError(expander.errors[:MAX_ERRORS])
    data["layers"] = expander.layers
    return expander.result
