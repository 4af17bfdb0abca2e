"""The second side of the verification triangle: ONNX shape inference against the calculator.

The exporter annotates values with the shapes PyTorch computed while
tracing, so reading those back would only check PyTorch against itself. We
run ONNX's own shape inference on a copy of the graph stripped of every
annotation — nodes, graph input and the small constant tensors only (shape
inference needs the target of a Reshape, not the weights) — and compare each
layer's inferred shape with :mod:`archspec.analysis`'s: a symbolic batch axis
followed by exactly the calculator's per-sample shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

    from archspec.analysis import Analysis

Dim = int | str | None
SMALL_TENSOR = 1024  # constants up to this many elements stay in the skeleton


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model's nodes without weights or shape annotations: large initializers become inputs.

    Costs kilobytes where a copy of the model would cost its whole weight
    size (240 MB for AlexNet), and shape inference reads only shapes from them.
    """
    import onnx

    graph = model.graph
    inputs = list(graph.input)
    constants = []
    for tensor in graph.initializer:
        n = 1
        for d in tensor.dims:
            n *= d
        if n <= SMALL_TENSOR:
            constants.append(tensor)
        else:
            inputs.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
            )
    outputs = [
        onnx.helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, None)
        for o in graph.output
    ]
    bare = onnx.helper.make_graph(list(graph.node), graph.name, inputs, outputs, constants)
    copy = onnx.helper.make_model(bare, opset_imports=list(model.opset_import))
    copy.ir_version = model.ir_version
    copy.functions.extend(model.functions)
    return copy


def _dims(info: onnx.ValueInfoProto) -> list[Dim] | None:
    tensor = info.type.tensor_type
    if not info.type.HasField("tensor_type") or not tensor.HasField("shape"):
        return None
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
    ]


def inferred_shapes(model: onnx.ModelProto, names: Iterable[str]) -> dict[str, list[Dim] | None]:
    """ONNX shape inference's shape of each named value (None where it infers none)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(
        skeleton(model), check_type=True, strict_mode=True, data_prop=True
    )
    g = inferred.graph
    table = {v.name: v for v in (*g.input, *g.value_info, *g.output)}
    return {n: (_dims(table[n]) if n in table else None) for n in names}


@dataclass(frozen=True)
class ShapeCheck:
    """Each layer's ONNX-inferred shape next to the calculator's, and the disagreements."""

    shapes: dict[str, list[Dim] | None]
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _show(dims: list[Dim] | None) -> str:
    return (
        "unknown"
        if dims is None
        else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
    )


def check_shapes(model: onnx.ModelProto, analysis: Analysis) -> ShapeCheck:
    """Compare every layer's ONNX-inferred shape with the calculator's; batch axis symbolic."""
    names = [row.name for row in analysis.rows]
    shapes = inferred_shapes(model, names)
    mismatches: list[str] = []
    for row in analysis.rows:
        dims = shapes[row.name]
        want = list(row.output)
        if dims is None or not dims:
            mismatches.append(
                f"{row.name}: ONNX shape inference gives no shape (calculator: {want})"
            )
        elif not isinstance(dims[0], str):
            mismatches.append(
                f"{row.name}: batch axis is {_show(dims[:1])}, not symbolic, in {_show(dims)}"
            )
        elif dims[1:] != want:
            mismatches.append(
                f"{row.name}: ONNX shape inference gives {_show(dims)}, the calculator [batch, "
                + ", ".join(map(str, want))
                + "]"
            )
    return ShapeCheck(shapes, tuple(mismatches))
