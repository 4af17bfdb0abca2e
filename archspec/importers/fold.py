"""Blocks where an imported model repeats itself, as a person writes them.

A model's layers arrive flat, named by their module paths (``layer1.0.conv1``,
``layer1.1.conv1``, … from PyTorch; the same from an archspec export's ONNX value
names). A person writing that model as a spec would define the repeated part once
under ``blocks:`` and use it (``repeat:`` where copies in a row are identical). This
module finds such parts and writes them so: a *unit* is the run of layers under one
dotted prefix that reads a single value from outside it; units whose layers match
one for one — local names, kinds, connections, which fields are unset — up to the
values of a few fields are uses of one block, and the fields whose values differ
between them are the block's parameters. Units are chosen from the outside in (a
repeated stage is one block, not its repeated parts), and a unit whose like no other
chosen unit is stays flat.

Only names and connections are written differently: expanded, the folded spec has
exactly the flat one's layers, which :func:`fold` checks before it answers. ``expect:``
keeps what the source states: a block's layers keep their figures where every use
states the same ones; otherwise each use carries the output of its last layer and its
layers' parameters (and buffers) added up, where every layer states them or has none.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticUndefined

from archspec.layers import LAYER_KINDS

MAX_PARAMS = 8  # more differing values than this, and the units are not one block
FIXED = ("name", "type", "inputs", "expect")
_INDEX = re.compile(r"^[0-9]+$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Unit:
    """The layers under one dotted prefix, written in the prefix's own terms."""

    prefix: str
    start: int  # index of its first layer in the flat list
    end: int  # one past its last
    source: str  # the one value outside it that it reads ('input': the model's input)
    local: list[dict[str, Any]]  # its layers: local names and inputs, no expect
    signature: tuple[Any, ...] = ()

    @property
    def depth(self) -> int:
        return self.prefix.count(".") + 1


@dataclass
class Block:
    """One block: its name, parameters (name → default, None: required) and layers."""

    name: str
    members: list[Unit]
    params: dict[str, Any] = field(default_factory=dict)
    slots: dict[tuple[int, str], str] = field(default_factory=dict)  # (layer, key) → param
    layers: list[dict[str, Any]] = field(default_factory=list)
    inner_expect: bool = False

    def arguments(self, unit: Unit) -> dict[str, Any]:
        """The use's ``with:``: the parameters whose value is not the default."""
        out: dict[str, Any] = {}
        for (i, key), param in self.slots.items():
            value = _full(unit.local[i]).get(key)
            if param not in out and value != self.params[param]:
                out[param] = value
        return {p: out[p] for p in self.params if p in out}


def _full(layer: dict[str, Any]) -> dict[str, Any]:
    """A layer's fields with the kind's defaults filled in, so an unset stride and
    ``stride: 1`` are one value (name, type, inputs and expect left out)."""
    kind = LAYER_KINDS[layer["type"]]
    out: dict[str, Any] = {}
    for key, info in kind.model_fields.items():
        if key in FIXED:
            continue
        if key in layer:
            out[key] = layer[key]
        elif info.default is not PydanticUndefined:
            out[key] = info.default
    return out


def _reads(layers: Sequence[dict[str, Any]]) -> list[list[str]]:
    out: list[list[str]] = []
    previous = "input"
    for layer in layers:
        out.append(list(layer.get("inputs") or [previous]))
        previous = layer["name"]
    return out


def _units(layers: list[dict[str, Any]]) -> list[Unit]:
    """Every dotted prefix whose layers are a contiguous run of two or more that reads one
    outside value, and is no layer's own name."""
    names = [layer["name"] for layer in layers]
    taken = set(names)
    where: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        parts = name.split(".")
        for k in range(1, len(parts)):
            where.setdefault(".".join(parts[:k]), []).append(i)
    reads = _reads(layers)
    units = []
    for prefix, indices in where.items():
        start, end = indices[0], indices[-1] + 1
        if len(indices) < 2 or end - start != len(indices) or prefix in taken:
            continue
        inside = {names[i]: names[i][len(prefix) + 1 :] for i in range(start, end)}
        if "input" in inside.values():
            continue  # 'input' in a block is the block's input
        if all(_INDEX.match(local.split(".")[0]) for local in inside.values()):
            continue  # a sequence (layer1: layer1.0, layer1.1): its items are the units
        outside = {s for i in range(start, end) for s in reads[i] if s not in inside}
        if len(outside) != 1:
            continue
        source = outside.pop()
        local: list[dict[str, Any]] = []
        for n, i in enumerate(range(start, end)):
            entry = {k: v for k, v in layers[i].items() if k != "expect"}
            entry["name"] = inside[names[i]]
            srcs = [inside.get(s, "input") for s in reads[i]]
            default = ["input"] if n == 0 else [local[-1]["name"]]
            entry.pop("inputs", None)
            if srcs != default:
                entry["inputs"] = srcs
            local.append(entry)
        unit = Unit(prefix, start, end, source, local)
        unit.signature = tuple(
            (
                e["name"],
                e["type"],
                tuple(e.get("inputs") or ()),
                tuple(sorted(k for k, v in _full(e).items() if v is None)),
            )
            for e in local
        )
        units.append(unit)
    return units


def _slots(members: list[Unit]) -> list[tuple[int, str]]:
    """The (layer, field) places whose value differs between the members."""
    first = members[0]
    out = []
    for i in range(len(first.local)):
        values = [_full(m.local[i]) for m in members]
        for key in values[0]:
            if any(v[key] != values[0][key] for v in values[1:]):
                out.append((i, key))
    return out


def _param_groups(members: list[Unit]) -> list[list[tuple[int, str]]]:
    """The differing places, grouped where every member gives them one value (a block's
    out_channels in two convolutions is one parameter)."""
    groups: dict[tuple[Any, ...], list[tuple[int, str]]] = {}
    for i, key in _slots(members):
        vector = tuple(repr(_full(m.local[i])[key]) for m in members)
        groups.setdefault(vector, []).append((i, key))
    return list(groups.values())


def _choose(units: list[Unit]) -> list[list[Unit]]:
    """The units to write as block uses, grouped by block: outermost first, each with at
    least one like it among the chosen, at most :data:`MAX_PARAMS` parameters."""
    alike: dict[tuple[Any, ...], list[Unit]] = {}
    for unit in units:
        alike.setdefault(unit.signature, []).append(unit)
    excluded: set[tuple[Any, ...]] = set()
    while True:
        chosen: list[Unit] = []
        # the chosen unit each layer lies in (prefixes nest or are disjoint, so a unit lies
        # in a chosen one exactly when its first layer does)
        owner: dict[int, Unit] = {}
        for unit in sorted(units, key=lambda u: (u.depth, u.start)):
            if unit.signature in excluded or unit.start in owner:
                continue
            if any(
                (u.end <= unit.start or u.start >= unit.end) and owner.get(u.start, u) is u
                for u in alike[unit.signature]
            ):  # another unit like it, not inside a chosen one
                chosen.append(unit)
                owner.update(dict.fromkeys(range(unit.start, unit.end), unit))
        classes: dict[tuple[Any, ...], list[Unit]] = {}
        for unit in chosen:
            classes.setdefault(unit.signature, []).append(unit)
        lonely = {
            sig
            for sig, members in classes.items()
            if len(members) < 2 or len(_param_groups(members)) > MAX_PARAMS
        }
        if not lonely:
            return sorted(
                (sorted(m, key=lambda u: u.start) for m in classes.values()),
                key=lambda m: m[0].start,
            )
        excluded |= lonely


def _block_name(prefix: str, taken: set[str]) -> str:
    """``layer1.0`` → ``layer``, ``inception3a`` → ``inception``: the last word of the
    path, without its index; numbered where two blocks would share it."""
    words = [p for p in prefix.split(".") if not _INDEX.match(p)]
    word = re.sub(r"[0-9].*$", "", words[-1]) if words else ""
    name = _numbered(word if _IDENT.match(word) else "block", taken)
    taken.add(name)
    return name


def _numbered(base: str, taken: Collection[str]) -> str:
    """``base``, or ``base_2``, ``base_3``, … : the first that is not taken."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _param_names(groups: list[list[tuple[int, str]]], local: list[dict[str, Any]]) -> list[str]:
    """A parameter is named after its field (``out_channels``, ``stride``); where several
    parameters set one field, each is named after its first layer too
    (``branch2_0_conv_out_channels``)."""
    keys = Counter(group[0][1] for group in groups)
    names: list[str] = []
    for group in groups:
        i, key = group[0]
        base = key if keys[key] == 1 else f"{local[i]['name']}_{key}".replace(".", "_")
        names.append(_numbered(base, names))
    return names


def _blocks(classes: list[list[Unit]], layers: list[dict[str, Any]]) -> list[Block]:
    names: set[str] = set()
    blocks = []
    for members in classes:
        block = Block(_block_name(members[0].prefix, names), members)
        groups = _param_groups(members)
        for group, param in zip(groups, _param_names(groups, members[0].local), strict=True):
            i, key = group[0]
            values = [_full(m.local[i])[key] for m in members]
            info = LAYER_KINDS[members[0].local[i]["type"]].model_fields[key]
            default = info.default if info.default is not PydanticUndefined else None
            block.params[param] = default if default is not None and default in values else None
            for slot in group:
                block.slots[slot] = param
        expects = [
            [layers[m.start + i].get("expect") for m in members]
            for i in range(len(members[0].local))
        ]
        block.inner_expect = all(all(e == row[0] for e in row) for row in expects)
        for i, first in enumerate(members[0].local):
            entry: dict[str, Any] = {"name": first["name"], "type": first["type"]}
            written = [k for m in members for k in m.local[i] if k not in FIXED]
            for key in dict.fromkeys(written):  # in the order people wrote them, once
                given_by = block.slots.get((i, key))
                entry[key] = f"${given_by}" if given_by else _full(first)[key]
            if "inputs" in first:
                entry["inputs"] = first["inputs"]
            if block.inner_expect and expects[i][0] is not None:
                entry["expect"] = expects[i][0]
            block.layers.append(entry)
        blocks.append(block)
    return blocks


@dataclass
class Use:
    """One line of ``layers:`` that uses a block."""

    block: Block
    units: list[Unit]  # one, or the copies of a repeat
    name: str
    repeat: int | None


def _uses(blocks: list[Block], layers: list[dict[str, Any]]) -> dict[int, Use]:
    """The uses, by the index of their first layer: consecutive units of one block named
    ``R.0`` … ``R.n-1``, that are all of ``R``, each reading the one before, with the same
    arguments, are one use with ``repeat: n``."""
    names = {layer["name"] for layer in layers}
    under = Counter(
        ".".join(layer["name"].split(".")[:k])
        for layer in layers
        for k in range(1, layer["name"].count(".") + 1)
    )
    by_start = {u.start: (b, u) for b in blocks for u in b.members}
    uses: dict[int, Use] = {}
    i = 0
    order = sorted(by_start)
    while i < len(order):
        block, unit = by_start[order[i]]
        run = [unit]
        parent, _, index = unit.prefix.rpartition(".")
        if parent and index == "0" and parent not in names:
            while i + len(run) < len(order):
                nxt_block, nxt = by_start[order[i + len(run)]]
                last = layers[run[-1].end - 1]["name"]
                if (
                    nxt_block is not block
                    or nxt.start != run[-1].end
                    or nxt.prefix != f"{parent}.{len(run)}"
                    or nxt.source != last
                    or block.arguments(nxt) != block.arguments(unit)
                ):
                    break
                run.append(nxt)
        if len(run) > 1 and under[parent] == sum(u.end - u.start for u in run):
            uses[unit.start] = Use(block, run, parent, len(run))
            i += len(run)
        else:
            uses[unit.start] = Use(block, [unit], unit.prefix, None)
            i += 1
    return uses


def _use_expect(
    use: Use, layers: list[dict[str, Any]], computed: Sequence[tuple[int, int]]
) -> dict[str, Any]:
    """What the source states of the whole use: its last layer's output, and each of
    params and buffers added up where every layer states it or has none."""
    start, end = use.units[0].start, use.units[-1].end
    stated = [layers[i].get("expect") or {} for i in range(start, end)]
    out: dict[str, Any] = {}
    if "output" in stated[-1]:
        out["output"] = stated[-1]["output"]
    for k, key in enumerate(("params", "buffers")):
        known = all(key in s or computed[start + j][k] == 0 for j, s in enumerate(stated))
        total = sum(s.get(key, 0) for s in stated)
        if known and any(key in s for s in stated):
            out[key] = total
    return out


def fold(
    layers: list[dict[str, Any]], computed: Sequence[tuple[int, int]]
) -> tuple[list[Block], list[dict[str, Any]]] | None:
    """The blocks and the ``layers:`` entries (layers and uses) for ``layers``; None where
    the model repeats nothing. ``computed``: each layer's (params, buffers) as archspec
    counts them, only to tell a layer that states no parameters from one that has none."""
    classes = _choose(_units(layers))
    if not classes:
        return None
    blocks = _blocks(classes, layers)
    uses = _uses(blocks, layers)
    names = [layer["name"] for layer in layers]
    entries: list[dict[str, Any]] = []
    i = 0
    while i < len(layers):
        use = uses.get(i)
        if use is None:
            entries.append(layers[i])
            i += 1
            continue
        first = use.units[0]
        entry: dict[str, Any] = {"name": use.name, "block": use.block.name}
        if use.repeat is not None:
            entry["repeat"] = use.repeat
        arguments = use.block.arguments(first)
        if arguments:
            entry["with"] = arguments
        if first.source != (names[first.start - 1] if first.start else "input"):
            entry["inputs"] = [first.source]
        if not use.block.inner_expect:
            expect = _use_expect(use, layers, computed)
            if expect:
                entry["expect"] = expect
        entries.append(entry)
        i = use.units[-1].end
    return blocks, entries
