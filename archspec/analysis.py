"""The static calculator: one walk over the graph, exact integers throughout.

It never allocates a tensor, so a spec with 10¹² channels costs the same
as one with 6.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from archspec.graph import INPUT, Graph, build_graph
from archspec.layers.base import Layer, ReceptiveField, Shape, ShapeError, numel
from archspec.spec import Spec, diagnostic
from archspec.spec.diagnostics import SpecError
from archspec.vocab import DTYPES


@dataclass(frozen=True)
class Row:
    """Every figure of one layer, per sample."""

    name: str
    type: str
    inputs: tuple[str, ...]
    input_shapes: tuple[Shape, ...]
    output: Shape
    params: int
    buffers: int
    connections: int
    macs: int
    mult_adds_torchinfo: int  # torchinfo's "Mult-Adds" for the compiled module (see Layer)
    output_bytes: int
    field: ReceptiveField
    activation: str | None

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "inputs": list(self.inputs),
            "output": list(self.output),
            "params": self.params,
            "buffers": self.buffers,
            "connections": self.connections,
            "macs": self.macs,
            "flops": self.flops,
            "mult_adds_torchinfo": self.mult_adds_torchinfo,
            "output_bytes": self.output_bytes,
            "receptive_field": max(self.field.size),
            "jump": max(self.field.jump),
            "receptive_field_hw": list(self.field.size),
            "jump_hw": list(self.field.jump),
            "activation": self.activation,
        }


@dataclass(frozen=True)
class Totals:
    params: int
    buffers: int
    connections: int
    macs: int
    mult_adds_torchinfo: int  # torchinfo.summary's total_mult_adds at batch 1
    param_bytes: int  # params and buffers, at the input dtype
    peak_activation_bytes: int  # live tensors at the worst step of one inference pass
    activation_bytes: int  # every layer's output added up (no reuse)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_json(self) -> dict[str, int]:
        return {
            "params": self.params,
            "buffers": self.buffers,
            "connections": self.connections,
            "macs": self.macs,
            "flops": self.flops,
            "mult_adds_torchinfo": self.mult_adds_torchinfo,
            "param_bytes": self.param_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "activation_bytes": self.activation_bytes,
        }


@dataclass(frozen=True)
class Analysis:
    spec: Spec
    graph: Graph
    rows: tuple[Row, ...]  # in graph order
    totals: Totals

    @property
    def input_shape(self) -> Shape:
        return tuple(self.spec.input.shape)

    @property
    def output_shape(self) -> Shape:
        return self.row(self.graph.output).output

    def row(self, name: str) -> Row:
        return self.rows[self._index[name]]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {r.name: i for i, r in enumerate(self.rows)}


def analyze(spec: Spec, graph: Graph | None = None) -> Analysis:
    """Compute every layer's figures; raise :class:`SpecError` at the first layer whose input it cannot take."""
    graph = graph or build_graph(spec)
    itemsize = DTYPES[spec.input.dtype].bytes
    shapes: dict[str, Shape] = {INPUT: tuple(spec.input.shape)}
    fields: dict[str, ReceptiveField] = {INPUT: ReceptiveField()}
    rows: list[Row] = []
    for name in graph.order:
        layer = graph.layers[name]
        srcs = graph.inputs[name]
        in_shapes = [shapes[s] for s in srcs]
        try:
            out = tuple(layer.output_shape(in_shapes))
            counts = layer.counts(in_shapes, out)
            mult_adds_torchinfo = layer.mult_adds_torchinfo(in_shapes, out, counts)
        except ShapeError as exc:
            raise SpecError([_shape_diagnostic(spec, graph, layer, in_shapes, exc)]) from None
        shapes[name] = out
        fields[name] = layer.receptive_field(in_shapes, [fields[s] for s in srcs])
        rows.append(
            Row(
                name=name,
                type=layer.type,
                inputs=tuple(srcs),
                input_shapes=tuple(in_shapes),
                output=out,
                params=counts.params,
                buffers=counts.buffers,
                connections=counts.connections,
                macs=counts.macs,
                mult_adds_torchinfo=mult_adds_torchinfo,
                output_bytes=numel(out) * itemsize,
                field=fields[name],
                activation=layer.activation_name,
            )
        )
    params = sum(r.params for r in rows)
    buffers = sum(r.buffers for r in rows)
    totals = Totals(
        params=params,
        buffers=buffers,
        connections=sum(r.connections for r in rows),
        macs=sum(r.macs for r in rows),
        mult_adds_torchinfo=sum(r.mult_adds_torchinfo for r in rows),
        param_bytes=(params + buffers) * itemsize,
        peak_activation_bytes=_peak_bytes(graph, rows, numel(spec.input.shape) * itemsize),
        activation_bytes=sum(r.output_bytes for r in rows),
    )
    return Analysis(spec, graph, tuple(rows), totals)


def _shape_diagnostic(
    spec: Spec, graph: Graph, layer: Layer, in_shapes: list[Shape], exc: ShapeError
) -> Any:
    i = graph.index[layer.name]
    path: tuple[str | int, ...] = ("layers", i)
    if exc.field and exc.field in layer.model_fields_set | {"type", "name"}:
        path = (*path, exc.field)
    elif exc.field == "inputs" and layer.inputs is not None:
        path = (*path, "inputs")
    shown = ", ".join("×".join(map(str, s)) for s in in_shapes)
    return diagnostic(
        spec,
        path,
        f"layer '{layer.name}' ({layer.type}) on input {shown}: {exc.message}",
        hint=exc.hint,
    )


def _peak_bytes(graph: Graph, rows: list[Row], input_bytes: int) -> int:
    """Largest sum of live tensors while running the layers in order.

    A tensor lives from the step that makes it until its last reader has run;
    the model's output lives to the end. During a step its inputs and its
    output are all live.
    """
    step = {r.name: i for i, r in enumerate(rows)}
    last_use = {INPUT: -1}
    for r in rows:
        for src in r.inputs:
            last_use[src] = max(last_use.get(src, -1), step[r.name])
    last_use[graph.output] = len(rows)
    sizes = {INPUT: input_bytes, **{r.name: r.output_bytes for r in rows}}
    frees: dict[int, list[str]] = {}
    for name, when in last_use.items():
        frees.setdefault(when, []).append(name)
    live = input_bytes if last_use[INPUT] >= 0 else 0
    peak = live
    for i, r in enumerate(rows):
        live += r.output_bytes
        peak = max(peak, live)
        for name in frees.get(i, []):
            live -= sizes[name]
    return peak
