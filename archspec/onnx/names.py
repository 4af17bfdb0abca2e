"""Giving every spec layer's output its layer's name inside the ONNX graph.

The exporter names values after the traced operators (``conv2d``,
``linear``, ``view``), and when a requested output name equals one of those it
happily emits two nodes writing the same value — an invalid graph (we saw
``Conv → conv2d`` followed by ``Relu → conv2d`` for a layer named
``conv2d``). So the export asks for placeholder output names that cannot
clash, and this module renames afterwards, in two steps: first any value
whose name a layer will take moves aside, then each placeholder becomes its
layer's name. Renaming rewrites every reference — node inputs and outputs,
graph inputs and outputs, initializers, value_info, and subgraphs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

PLACEHOLDER = "archspec__layer_{}"


def value_names(graph: onnx.GraphProto) -> set[str]:
    """Every value name defined or used in ``graph`` (not in its subgraphs)."""
    names = {v.name for v in graph.input} | {v.name for v in graph.output}
    names |= {t.name for t in graph.initializer} | {v.name for v in graph.value_info}
    for node in graph.node:
        names.update(n for n in node.input if n)
        names.update(n for n in node.output if n)
    return names


def rename_values(graph: onnx.GraphProto, mapping: Mapping[str, str]) -> None:
    """Rename values throughout ``graph`` and its subgraphs, in place.

    The caller guarantees the new names are free; a subgraph's references to
    outer values are renamed too, since ONNX scoping lets them see the outer graph.
    """
    if not mapping:
        return
    import onnx

    def fix(items: Iterable[onnx.ValueInfoProto | onnx.TensorProto]) -> None:
        for item in items:
            if item.name in mapping:
                item.name = mapping[item.name]

    fix(graph.input)
    fix(graph.output)
    fix(graph.initializer)
    fix(graph.value_info)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
        for i, name in enumerate(node.output):
            if name in mapping:
                node.output[i] = mapping[name]
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                rename_values(attr.g, mapping)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    rename_values(sub, mapping)


def _fresh(base: str, taken: set[str]) -> str:
    i = 0
    while f"{base}_{i}" in taken:
        i += 1
    name = f"{base}_{i}"
    taken.add(name)
    return name


def name_layer_values(
    model: onnx.ModelProto,
    placeholders: Mapping[str, str],
    keep_output: str,
    strip_prefix: str = "",
) -> None:
    """Rename placeholder outputs to layer names and keep only ``keep_output`` as a graph output.

    ``placeholders`` maps each placeholder graph output to its layer's name.
    The other layer values stay in the graph as named intermediate values,
    their type and shape moved from the graph outputs into ``value_info``.
    Initializer names lose ``strip_prefix`` (the export wrapper's attribute),
    so they read like the module's ``state_dict`` keys (``conv1.weight``).
    """
    graph = model.graph
    missing = [p for p in placeholders if p not in {o.name for o in graph.output}]
    if missing:
        raise ValueError(f"the exported graph lacks the outputs {missing}")
    taken = value_names(graph)
    layer_names = set(placeholders.values())
    reserved = taken | layer_names
    aside: dict[str, str] = {}
    for name in sorted(taken):
        if name in layer_names and name not in placeholders:
            aside[name] = _fresh(name, reserved)
    if strip_prefix:
        for tensor in graph.initializer:
            if tensor.name.startswith(strip_prefix):
                short = tensor.name[len(strip_prefix) :]
                if short not in reserved:
                    aside[tensor.name] = short
                    reserved.add(short)
    rename_values(graph, aside)
    rename_values(graph, placeholders)
    keep = [o for o in graph.output if o.name == keep_output]
    moved = [o for o in graph.output if o.name != keep_output]
    known = {v.name for v in graph.value_info}
    graph.value_info.extend(v for v in moved if v.name not in known)
    del graph.output[:]
    graph.output.extend(keep)


def with_outputs(model: onnx.ModelProto, names: Iterable[str]) -> bytes:
    """The model serialized with ``names`` added as graph outputs, for reading every layer's value.

    ORT returns only graph outputs, so verifying each layer needs them
    exposed; the model itself is restored before returning, which avoids
    copying hundreds of megabytes of weights for a second proto.
    """
    import onnx

    graph = model.graph
    existing = {o.name for o in graph.output}
    types = {v.name: v for v in graph.value_info}
    default_type = graph.input[0].type.tensor_type.elem_type
    added = 0
    for name in names:
        if name in existing:
            continue
        info = types.get(name)
        if info is not None and info.type.HasField("tensor_type"):
            elem_type = info.type.tensor_type.elem_type
        else:
            elem_type = default_type
        graph.output.append(onnx.helper.make_tensor_value_info(name, elem_type, None))
        existing.add(name)
        added += 1
    try:
        return model.SerializeToString()
    finally:
        if added:
            del graph.output[len(graph.output) - added :]


def cast_layer_values(model: onnx.ModelProto, names: Iterable[str], elem_type: int) -> list[str]:
    """Give every layer value ``elem_type`` by inserting a Cast where the exporter changed it.

    PyTorch returns a float16 tensor from ``sum`` of float16 values, but the
    exporter's decomposition accumulates in float32 and leaves the result
    there, so LeNet-5's float16 RBF output came out float32. The layer's own
    name moves to a Cast back to the model's dtype, placed right after the
    producing node so the graph stays topologically sorted. Returns the names
    cast.
    """
    import onnx

    graph = model.graph
    infos = {v.name: v for v in (*graph.value_info, *graph.output)}
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    taken = value_names(graph)
    cast: list[str] = []
    for name in names:
        info = infos.get(name)
        if info is None or name not in producer:
            continue
        current = info.type.tensor_type.elem_type
        if current in (0, elem_type):  # unknown, or already right
            continue
        raw = _fresh(f"{name}_uncast", taken)
        node = graph.node[producer[name]]
        node.output[list(node.output).index(name)] = raw
        raw_info = onnx.ValueInfoProto()
        raw_info.CopyFrom(info)
        raw_info.name = raw
        del raw_info.metadata_props[:]
        graph.value_info.append(raw_info)
        info.type.tensor_type.elem_type = elem_type  # consumers read the Cast's output
        graph.node.insert(
            producer[name] + 1, onnx.helper.make_node("Cast", [raw], [name], to=elem_type)
        )
        producer = {out: i for i, n in enumerate(graph.node) for out in n.output}
        cast.append(name)
    return cast
