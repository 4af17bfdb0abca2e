"""Comparing two models layer by layer (``archspec diff A B``).

Either side is a spec or anything ``archspec import`` reads. Both are
analysed, then put in one canonical form before they are aligned: a
standalone activation that only follows a layer taking ``activation:`` is
folded into it (PyTorch's ``nn.ReLU`` modules against a spec's
``conv2d+relu``), and each layer's fields are the kind's canonical ones (a
pool's default stride is its kernel). Layers are aligned by name where the two
sides share most names, else by structure (kind and output shape), with
difflib's longest-matching-blocks alignment; a pair that differs only in name
is the same layer, renamed.

Each layer also has a plain form (``Layer.plain``: the kind that states its
computation most plainly on its input, with that kind's canonical fields). Two
layers written differently whose plain forms and figures agree — TensorFlow's
LRN and the ``lrn`` it is, an adaptive pool and the fixed pool it equals at
that input size — are *equivalent*: the same network, with the notation's
difference still shown, because export and import cannot keep a notation that
no file format has.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archspec.analysis import Analysis, Row, analyze
from archspec.layers.base import Layer, fmt_shape
from archspec.spec import Spec, load, loads

FIGURES = ("kind", "output", "params", "macs")


@dataclass(frozen=True)
class Side:
    """One layer of one model, in canonical form."""

    name: str
    kind: str  # type, with +activation
    attributes: dict[str, Any]
    output: tuple[int, ...]
    params: int
    buffers: int
    macs: int
    # The plain form (Layer.plain): the kind that states the computation most plainly
    # (with +activation) and its canonical fields.
    plain_kind: str = ""
    plain: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pair:
    """An aligned row: a layer of A, of B, or of both."""

    a: Side | None
    b: Side | None

    @property
    def status(self) -> str:
        if self.a is None:
            return "only_b"
        if self.b is None:
            return "only_a"
        diffs = self.differences()
        if not diffs:
            return "same"
        figures = ("output", "params", "buffers", "macs")
        if (self.a.plain_kind, self.a.plain) == (self.b.plain_kind, self.b.plain) and not any(
            k in diffs for k in figures
        ):
            return "equivalent"  # one computation in two notations
        return "differs"

    def differences(self) -> dict[str, tuple[Any, Any]]:
        """Figure or attribute → (A's, B's), for everything that differs (names never count)."""
        if self.a is None or self.b is None:
            return {}
        out: dict[str, tuple[Any, Any]] = {}
        for key in ("kind", "output", "params", "buffers", "macs"):
            va, vb = getattr(self.a, key), getattr(self.b, key)
            if va != vb:
                out[key] = (va, vb)
        for key in sorted(set(self.a.attributes) | set(self.b.attributes)):
            va, vb = self.a.attributes.get(key), self.b.attributes.get(key)
            if va != vb:
                out[f"attr:{key}"] = (va, vb)
        return out

    def to_json(self) -> dict[str, Any]:
        def side(s: Side | None) -> dict[str, Any] | None:
            if s is None:
                return None
            return {
                "name": s.name,
                "kind": s.kind,
                "output": list(s.output),
                "params": s.params,
                "buffers": s.buffers,
                "macs": s.macs,
                "attributes": s.attributes,
            }

        out = {
            "status": self.status,
            "a": side(self.a),
            "b": side(self.b),
            "differences": {k: [_plain(v[0]), _plain(v[1])] for k, v in self.differences().items()},
        }
        if out["status"] == "equivalent" and self.a is not None:
            out["computes"] = {"kind": self.a.plain_kind, "attributes": self.a.plain}
        return out


@dataclass
class Diff:
    a: Analysis
    b: Analysis
    a_file: str
    b_file: str
    by: str  # "name" or "structure"
    pairs: list[Pair] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """The same network: the same input and every row the same or equivalent."""
        return self.a.input_shape == self.b.input_shape and all(
            p.status in ("same", "equivalent") for p in self.pairs
        )

    def totals(self) -> dict[str, tuple[Any, Any]]:
        ta, tb = self.a.totals, self.b.totals
        return {
            "input": (self.a.input_shape, self.b.input_shape),
            "output": (self.a.output_shape, self.b.output_shape),
            "params": (ta.params, tb.params),
            "buffers": (ta.buffers, tb.buffers),
            "macs": (ta.macs, tb.macs),
            "layers": (len(self.a.rows), len(self.b.rows)),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "a": {"file": self.a_file, "name": self.a.spec.name},
            "b": {"file": self.b_file, "name": self.b.spec.name},
            "aligned_by": self.by,
            "same": self.same,
            "totals": {k: [_plain(v[0]), _plain(v[1])] for k, v in self.totals().items()},
            "layers": [p.to_json() for p in self.pairs],
        }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def load_model(source: str, input_shape: list[int] | None = None) -> Spec:
    """A spec file, or any source ``archspec import`` reads, as a validated spec
    (``input_shape``: C, H, W for a PyTorch module or an ONNX input without one)."""
    suffix = Path(source).suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        return load(source)
    from archspec.importers import import_model, spec_text

    return loads(spec_text(import_model(source, input_shape), flat=True), source)


def canonical(analysis: Analysis) -> list[Side]:
    """Every layer as a :class:`Side`, standalone activations folded into the layer before."""
    layers = analysis.graph.layers
    readers: dict[str, int] = {}
    for row in analysis.rows:
        for src in row.inputs:
            readers[src] = readers.get(src, 0) + 1
    sides: list[Side] = []
    by_name: dict[str, int] = {}
    for row in analysis.rows:
        layer: Layer = layers[row.name]
        folded = _fold_target(row, sides, by_name, readers, layers)
        if folded is not None:
            i = folded
            prev = sides[i]
            sides[i] = Side(
                prev.name,
                f"{prev.kind}+{row.type}",
                prev.attributes,
                row.output,
                prev.params + row.params,
                prev.buffers + row.buffers,
                prev.macs + row.macs,
                f"{prev.plain_kind}+{row.type}",
                prev.plain,
            )
            by_name[row.name] = i
            continue
        suffix = f"+{row.activation}" if row.activation else ""
        attributes = layer.canonical(row.input_shapes)
        attributes.pop("activation", None)
        plain = layer.plain(row.input_shapes)
        plain_fields = plain.canonical(row.input_shapes)
        plain_fields.pop("activation", None)
        by_name[row.name] = len(sides)
        sides.append(
            Side(
                row.name,
                row.type + suffix,
                attributes,
                row.output,
                row.params,
                row.buffers,
                row.macs,
                plain.type + suffix,
                plain_fields,
            )
        )
    return sides


def _fold_target(
    row: Row,
    sides: list[Side],
    by_name: dict[str, int],
    readers: dict[str, int],
    layers: dict[str, Layer],
) -> int | None:
    """The side an activation layer folds into: a parameterless layer with the same output,
    whose only input is a layer that takes this activation as ``activation:`` and has none."""
    if len(row.inputs) != 1 or row.params or row.buffers or row.macs:
        return None
    src = row.inputs[0]
    if src not in by_name or readers.get(src, 0) != 1:
        return None
    target = layers[src]
    if target.activation_name is not None:
        return None
    i = by_name[src]
    if "+" in sides[i].kind or not type(target).takes_activation(row.type):
        return None
    return i


def _structure(side: Side) -> str:
    """What aligns layers when names do not: the kind (with its activation), so a
    changed layer still pairs with its counterpart and shows what changed."""
    return side.kind


def diff(a_source: str, b_source: str, input_shape: list[int] | None = None) -> Diff:
    """Load, analyse, canonicalise and align two models."""
    a = analyze(load_model(a_source, input_shape))
    b = analyze(load_model(b_source, input_shape))
    sa, sb = canonical(a), canonical(b)
    shared = {s.name for s in sa} & {s.name for s in sb}
    by = "name" if len(shared) * 2 >= min(len(sa), len(sb)) else "structure"
    keys_a = [s.name if by == "name" else _structure(s) for s in sa]
    keys_b = [s.name if by == "name" else _structure(s) for s in sb]
    matcher = difflib.SequenceMatcher(a=keys_a, b=keys_b, autojunk=False)
    pairs: list[Pair] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pairs.extend(
                Pair(sa[i], sb[j]) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
            continue
        # A gap: pair what lines up structurally (renamed layers), in order; the rest is one-sided.
        left, right = list(range(i1, i2)), list(range(j1, j2))
        gap = difflib.SequenceMatcher(
            a=[_structure(sa[i]) for i in left],
            b=[_structure(sb[j]) for j in right],
            autojunk=False,
        )
        for gop, gi1, gi2, gj1, gj2 in gap.get_opcodes():
            if gop in ("equal", "replace") and gi2 - gi1 == gj2 - gj1:
                pairs.extend(
                    Pair(sa[left[i]], sb[right[j]])
                    for i, j in zip(range(gi1, gi2), range(gj1, gj2), strict=True)
                )
            else:
                pairs.extend(Pair(sa[left[i]], None) for i in range(gi1, gi2))
                pairs.extend(Pair(None, sb[right[j]]) for j in range(gj1, gj2))
    return Diff(a, b, a_source, b_source, by, pairs)


def describe(value: Any) -> str:
    if isinstance(value, tuple):
        return fmt_shape(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
