"""Writing an imported model as a spec that reads like a hand-written one.

One layer per line in YAML flow style, keys in the order people write them
(name, type, the kind's fields, inputs, expect), the schema line on top so
editors validate it, the notes the importer made as comments, and ``blocks:``
where the model repeats itself (:mod:`archspec.importers.fold`; ``flat=True``
writes every layer instead). A folded spec is written only when, expanded, it
is the flat one: the same layers, the same figures, and check's verdict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from archspec.layers.base import ForeignError, Layer, ShapeError

SCHEMA_LINE = "# yaml-language-server: $schema=https://archspec.dev/schema/spec-v1.json"
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}
_PARAM_REF = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_]*$")  # a block parameter: $channels


@dataclass
class Imported:
    """A model read from a foreign format, ready to be written as a spec."""

    name: str
    title: str | None
    source: str
    input_shape: list[int]
    layers: list[dict[str, Any]]
    expect: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # the source's value names → the layer computing each (an ONNX graph's node outputs),
    # so a profile of the source's nodes reads as the spec's layers; empty where unknown
    values: dict[str, str] = field(default_factory=dict)


def scalar(value: Any) -> str:
    """A YAML flow scalar (or list) that loads back as exactly ``value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        # YAML 1.1 needs a dot in a float; archspec's loader also reads 1e-4 (see the loader).
        return (
            text if any(c in text for c in ".e") or "inf" in text or "nan" in text else text + ".0"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if (_PLAIN.match(text) and text.lower() not in _YAML_WORDS) or _PARAM_REF.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def layer_line(layer: dict[str, Any]) -> str:
    return "  - " + scalar(layer)


def spec_text(model: Imported, comments: Sequence[str] = (), *, flat: bool = False) -> str:
    """The spec's text: with blocks where the model repeats itself, unless ``flat``."""
    text = _text(model, comments, model.layers)
    if flat:
        return text
    return _folded(model, comments, text) or text


def _folded(model: Imported, comments: Sequence[str], flat_text: str) -> str | None:
    """The spec with blocks, or None where the model repeats nothing, or where the folded
    spec would not expand to the flat one (a guard: it always should)."""
    from archspec.analysis import analyze
    from archspec.diagnose import verify
    from archspec.importers.fold import fold
    from archspec.spec import SpecError, loads

    try:
        flat = analyze(loads(flat_text, model.source))
    except SpecError:
        return None  # the importer's own validation reports it
    computed = {r.name: (r.params, r.buffers) for r in flat.rows}
    result = fold(model.layers, [computed[layer["name"]] for layer in model.layers])
    if result is None:
        return None
    blocks, entries = result
    text = _text(model, comments, entries, blocks)
    try:
        folded = analyze(loads(text, model.source))
    except SpecError:
        return None

    def layers(spec: Any) -> list[dict[str, Any]]:
        return [layer.model_dump(exclude={"expect"}) for layer in spec.layers]

    def rows(analysis: Any) -> list[tuple[Any, ...]]:
        return [(r.name, r.output, r.params, r.buffers, r.macs) for r in analysis.rows]

    def errors(analysis: Any) -> int:
        return sum(1 for d in verify(analysis) if d.severity.value == "error")

    if (
        layers(folded.spec) != layers(flat.spec)
        or rows(folded) != rows(flat)
        or errors(folded) > errors(flat)
    ):
        return None
    return text


def _text(
    model: Imported,
    comments: Sequence[str],
    entries: Sequence[dict[str, Any]],
    blocks: Sequence[Any] = (),
) -> str:
    lines = [SCHEMA_LINE]
    lines += [f"# {c}" for c in comments]
    lines += [f"# note: {n}" for n in model.notes]
    lines += [
        "archspec: 1",
        f"name: {scalar(model.name)}",
    ]
    if model.title:
        lines.append(f"title: {scalar(model.title)}")
    lines += [
        f"source: {scalar(model.source)}",
        f"input: {{shape: {scalar(model.input_shape)}, dtype: float32}}",
    ]
    if blocks:
        lines.append("blocks:")
    for block in blocks:
        params = ", ".join(
            f"{k}: {'~' if v is None else scalar(v)}" for k, v in block.params.items()
        )
        lines += [f"  {block.name}:", f"    params: {{{params}}}", "    layers:"]
        lines += ["    " + layer_line(layer) for layer in block.layers]
    lines.append("layers:")
    lines += [layer_line(entry) for entry in entries]
    if model.expect:
        lines.append(f"expect: {scalar(model.expect)}")
    return "\n".join(lines) + "\n"


_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


def layer_entry(
    kind: type[Layer],
    name: str,
    type_name: str,
    fields: dict[str, Any],
    sources: list[str],
    shapes: dict[str, tuple[int, ...]],
    previous: str,
    expect: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], tuple[int, ...]]:
    """A layer as the spec will state it (``inputs`` only where it does not read the layer
    before it), validated by its kind, and its output shape.

    What the kind refuses (a field, a shape) is a ForeignError with the kind's own words,
    for the importer to place in its file.
    """
    entry: dict[str, Any] = {"name": name, "type": type_name, **fields}
    if sources != [previous]:
        entry["inputs"] = sources
    if expect:
        entry["expect"] = expect
    try:
        built = kind.model_validate({k: v for k, v in entry.items() if k != "expect"})
        out = tuple(built.output_shape([shapes[s] for s in sources]))
    except (ValidationError, ShapeError) as exc:
        text = exc.message if isinstance(exc, ShapeError) else exc.errors()[0]["msg"]
        raise ForeignError(text) from None
    return entry, out


def identifier(
    raw: str, taken: set[str], reserved: frozenset[str] = frozenset(), *, dots: bool = False
) -> str:
    """A foreign layer name as an archspec name: invalid characters become _, and a name
    already taken (or reserved) gets a numeric suffix. With ``dots``, a dotted module
    path (``layer1.0.conv1``) stays one, as blocks name their layers."""
    name = re.sub(r"[^A-Za-z0-9_.]" if dots else r"[^A-Za-z0-9_]", "_", raw) or "layer"
    if dots and not _DOTTED.match(name):
        name = name.replace(".", "_")
    if not re.match(r"[A-Za-z_]", name):
        name = "_" + name
    base, n = name, 1
    while name in taken or name in reserved:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name
