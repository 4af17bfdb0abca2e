"""ONNX ``.onnx`` → spec, from the graph itself.

Which archspec kind a run of nodes becomes is each kind's own declaration
(:attr:`~archspec.layers.base.Layer.onnx_patterns` and ``from_onnx``); this
module only walks the graph. It sets aside what is constant (initializers,
``Constant`` nodes, anything computed from them alone, and ``Shape``, whose
value is static once the input is), matches chains of the remaining nodes —
each node read only by the next — against the kinds' patterns, longest
first, folds an activation into the layer before it where that kind takes
``activation:``, and writes into ``expect:`` only what the file states: the
elements of each layer's initializers and the shapes ONNX shape inference
finds. It never reads the spec that ``archspec export`` embeds in the
metadata: what is imported is the graph.

An op that no kind maps is an error at that node, ``FILE: error: node 'NAME'
(#INDEX, OpType) …``, exit status 2 (a protobuf has no line numbers).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.importers.emit import Imported, identifier, layer_entry
from archspec.layers import LAYER_KINDS
from archspec.layers.base import RESERVED_NAMES, ForeignError, Layer
from archspec.spec.diagnostics import Diagnostic, Kind, Severity, SpecError

if TYPE_CHECKING:
    import numpy as np
    import onnx

KIND_NAMES = {cls: name for name, cls in LAYER_KINDS.items()}
# Where archspec's export lists each layer's output value (archspec.onnx.model.KEY_LAYERS);
# the importer reads only these names, never the spec stored beside them.
LAYER_VALUES_KEY = "archspec.layers"
FLOAT_TYPES = frozenset({1, 10, 11, 16})  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
# TorchScript-exported value names: "/features/features.0/Conv_output_0" → "features.0"
_SCOPED = re.compile(r"^/(?:.*/)?([^/]+)/[A-Za-z]+_output_\d+$")


def _error(file: str, message: str, hint: str | None = None) -> SpecError:
    return SpecError([Diagnostic(Severity.ERROR, Kind.INPUT, message, file, None, hint)])


@dataclass
class _Graph:
    """The graph as the chains see it: constants, producers, consumers, shapes."""

    model: onnx.ModelProto
    constants: dict[str, onnx.TensorProto] = field(default_factory=dict)  # stated tensors
    constant_values: set[str] = field(default_factory=set)  # every value computed from them
    producer: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, list[int]] = field(default_factory=dict)
    shapes: dict[str, list[int | None]] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    # Values the file names as layer outputs (archspec's export lists them in its
    # metadata): a chain never runs through one, so two layers never merge into one.
    boundaries: set[str] | None = None


class Chain:
    """A run of ONNX nodes that one layer may be: what a kind's ``from_onnx`` reads."""

    def __init__(self, graph: _Graph, indices: list[int], in_shapes: list[tuple[int, ...]]):
        self._graph = graph
        self.nodes = [graph.model.graph.node[i] for i in indices]
        self.ops = tuple(n.op_type for n in self.nodes)
        self.in_shapes = in_shapes
        self.graph_outputs = graph.outputs
        # whether the file states where layers end (else a chain of Adds is not one layer)
        self.grouped = graph.boundaries is not None
        self.boundaries = graph.boundaries
        self.opset = next(
            (o.version for o in graph.model.opset_import if o.domain in ("", "ai.onnx")), 1
        )

    def attr(self, i: int, name: str, default: Any = None) -> Any:
        """Node ``i``'s attribute ``name`` (strings decoded), or ``default``."""
        import onnx

        for a in self.nodes[i].attribute:
            if a.name == name:
                value = onnx.helper.get_attribute_value(a)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def const(self, value: str) -> np.ndarray | None:
        """The constant ``value`` (an initializer or a Constant node's), else None."""
        from onnx import numpy_helper

        tensor = self._graph.constants.get(value)
        return None if tensor is None else numpy_helper.to_array(tensor)

    def scalar(self, i: int) -> float | None:
        """The one constant operand of node ``i`` when it holds a single number."""
        for name in self.nodes[i].input:
            array = self.const(name)
            if array is not None and array.size == 1:
                return float(array.reshape(()))
        return None

    def is_constant(self, value: str) -> bool:
        return value in self._graph.constant_values

    def producer(self, value: str) -> onnx.NodeProto | None:
        index = self._graph.producer.get(value)
        return None if index is None else self._graph.model.graph.node[index]

    def value_shape(self, value: str) -> list[int | None] | None:
        """``value``'s full shape (batch axis included) as ONNX states or infers it."""
        tensor = self._graph.constants.get(value)
        if tensor is not None:
            return list(tensor.dims)
        return self._graph.shapes.get(value)

    @property
    def out_shape(self) -> tuple[int, ...] | None:
        """The chain's output shape per sample, where ONNX knows it."""
        shape = self._graph.shapes.get(self.nodes[-1].output[0])
        if shape is None or len(shape) < 1 or any(d is None for d in shape[1:]):
            return None
        return tuple(int(d) for d in shape[1:])  # type: ignore[arg-type]

    def data_inputs(self) -> list[str]:
        """The values the chain reads that are neither constant nor its own: a single
        node's in order, repeats kept (Concat of a value with itself), else each once."""
        inside = {o for n in self.nodes for o in n.output}
        found: list[str] = []
        for node in self.nodes:
            for name in node.input:
                if not name or name in inside or self.is_constant(name):
                    continue
                if len(self.nodes) == 1 or name not in found:
                    found.append(name)
        return found

    def weight_elements(self, *, only: tuple[tuple[int, int], ...] | None = None) -> int:
        """Elements of the float tensors (rank ≥ 1) the chain reads, through constant
        subgraphs too (a scattered kernel): what the file states the layer holds. ``only``
        limits it to (node, input) positions."""
        seen: set[str] = set()
        total = 0
        starts = (
            [self.nodes[i].input[j] for i, j in only if j < len(self.nodes[i].input)]
            if only is not None
            else [name for node in self.nodes for name in node.input]
        )
        stack = [s for s in starts if s]
        while stack:
            name = stack.pop()
            if name in seen or not self.is_constant(name):
                continue
            seen.add(name)
            tensor = self._graph.constants.get(name)
            if tensor is not None:
                if tensor.data_type in FLOAT_TYPES and len(tensor.dims) >= 1:
                    n = 1
                    for d in tensor.dims:
                        n *= int(d)
                    total += n
                continue
            node = self.producer(name)
            if node is not None and node.op_type != "Shape":
                stack.extend(i for i in node.input if i)
        return total


def _load(path: str) -> onnx.ModelProto:
    import onnx

    try:
        model = onnx.load(path, load_external_data=False)
    except FileNotFoundError:
        raise _error(path, f"cannot read {path}: no such file") from None
    except Exception as exc:  # a truncated or foreign file: protobuf's DecodeError and others
        raise _error(path, f"cannot read {path} as an ONNX model: {exc}") from None
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inference is a help, not a requirement: keep what the file states
        return model


def _graph(model: onnx.ModelProto) -> _Graph:
    import onnx

    g = _Graph(model)
    graph = model.graph
    for tensor in graph.initializer:
        g.constants[tensor.name] = tensor
        g.constant_values.add(tensor.name)
    for i, node in enumerate(graph.node):
        for out in node.output:
            g.producer[out] = i
        for name in node.input:
            if name:
                g.consumers.setdefault(name, []).append(i)
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    g.constants[node.output[0]] = a.t
        inputs = [n for n in node.input if n]
        if node.op_type in ("Constant", "Shape", "Size") or (
            inputs and all(n in g.constant_values for n in inputs)
        ):
            g.constant_values.update(node.output)
    for info in (*graph.value_info, *graph.output, *graph.input):
        t = info.type.tensor_type
        if t.HasField("shape"):
            g.shapes[info.name] = [
                d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim
            ]
    g.outputs = {o.name for o in graph.output}
    for prop in model.metadata_props:
        if prop.key == LAYER_VALUES_KEY:
            try:
                names = json.loads(prop.value)
            except ValueError:
                continue
            if isinstance(names, list):
                g.boundaries = {str(n) for n in names}
    return g


def _patterns() -> dict[str, list[tuple[tuple[str, ...], type[Layer]]]]:
    """First op → (pattern, kind), longest patterns first."""
    table: dict[str, list[tuple[tuple[str, ...], type[Layer]]]] = {}
    for cls in LAYER_KINDS.values():
        for pattern in cls.onnx_patterns:
            table.setdefault(pattern[0], []).append((pattern, cls))
    for entries in table.values():
        entries.sort(key=lambda e: -len(e[0]))
    return table


def _chain(g: _Graph, start: int, pattern: tuple[str, ...], used: set[int]) -> list[int] | None:
    """Node indices from ``start`` following ``pattern``, each read only by the next."""
    nodes = g.model.graph.node
    indices = [start]
    for op in pattern[1:]:
        out = nodes[indices[-1]].output[0]
        readers = sorted(set(g.consumers.get(out, [])))  # a Mul of d by d reads d once
        if len(readers) != 1 or out in g.outputs or out in (g.boundaries or ()):
            return None
        nxt = readers[0]
        if nxt in used or nodes[nxt].op_type != op:
            return None
        indices.append(nxt)
    return indices


def layer_name(value: str, op: str) -> str:
    """A readable layer name for an ONNX value (the scope of a TorchScript export's name)."""
    m = _SCOPED.match(value)
    if m:
        return m.group(1)
    if value.startswith("/"):
        return op.lower()
    return value


@dataclass
class _State:
    file: str
    layers: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[type[Layer]] = field(default_factory=list)
    value: dict[str, str] = field(default_factory=dict)  # ONNX value → layer (or 'input')
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # layer → output shape
    taken: set[str] = field(default_factory=set)
    readers: dict[str, int] = field(default_factory=dict)  # ONNX value → non-constant readers
    named: set[str] = field(default_factory=set)  # layers whose value the file names a layer's


def import_onnx(path: str | Path, input_shape: list[int] | None = None) -> Imported:
    """Read an ONNX model; raise :class:`SpecError` for what no kind maps, at the node."""
    file = str(path)
    model = _load(file)
    g = _graph(model)
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in g.constants]
    if len(inputs) != 1:
        raise _error(file, f"the graph has {len(inputs)} data inputs; archspec specs take one")
    stated = g.shapes.get(inputs[0].name) or []
    if input_shape is None:
        if len(stated) < 2 or any(d is None or d <= 0 for d in stated[1:]):
            raise _error(
                file,
                f"the input '{inputs[0].name}' has no fixed per-sample shape",
                hint="give it with --input C,H,W",
            )
        input_shape = [int(d) for d in stated[1:]]  # type: ignore[arg-type]
    state = _State(file)
    state.value[inputs[0].name] = "input"
    state.shapes["input"] = tuple(input_shape)
    for node in graph.node:
        if node.op_type not in ("Constant", "Shape", "Size"):
            for name in node.input:
                if name and name not in g.constant_values:
                    state.readers[name] = state.readers.get(name, 0) + 1
    table = _patterns()
    used: set[int] = set()
    for i, node in enumerate(graph.node):
        if i in used or any(o in g.constant_values for o in node.output):
            continue
        _import_at(state, g, table, i, used)
    if not state.layers:
        raise _error(file, "the graph has no layers archspec can import")
    if len(graph.output) != 1:
        raise _error(file, f"the graph has {len(graph.output)} outputs; archspec specs have one")
    _output_last(state, graph.output[0].name)
    name = identifier(Path(file).stem, set()).replace("_", "-").strip("-")
    if not name[:1].isalpha():
        name = "m" + name
    return Imported(
        name=name,
        title=graph.name if graph.name and graph.name != name else None,
        source=f"imported from {Path(file).name} (ONNX, the graph) by archspec import",
        input_shape=list(input_shape),
        layers=state.layers,
        values={v: layer for v, layer in state.value.items() if layer != "input"},
    )


def _import_at(
    state: _State,
    g: _Graph,
    table: dict[str, list[tuple[tuple[str, ...], type[Layer]]]],
    start: int,
    used: set[int],
) -> None:
    node = g.model.graph.node[start]
    where = f"node '{node.name or node.output[0]}' (#{start}, {node.op_type})"
    for pattern, cls in table.get(node.op_type, []):
        indices = _chain(g, start, pattern, used)
        if indices is None:
            continue
        chain = Chain(g, indices, [])
        sources = chain.data_inputs()
        missing = [s for s in sources if s not in state.value]
        if missing:
            raise _error(state.file, f"{where} reads '{missing[0]}', which no layer computes")
        chain.in_shapes = [state.shapes[state.value[s]] for s in sources]
        try:
            fields = cls.from_onnx(chain)
        except ForeignError as exc:
            raise _error(state.file, f"{where}: {exc.message} cannot be imported") from None
        if fields is None:
            continue
        used.update(indices)
        _add(state, chain, cls, fields, [state.value[s] for s in sources], where)
        return
    known = ", ".join(sorted(table))
    raise _error(
        state.file,
        f"{where}, which archspec cannot import",
        hint=f"importable ops: {known}",
    )


def _add(
    state: _State,
    chain: Chain,
    kind: type[Layer],
    fields: dict[str, Any],
    sources: list[str],
    where: str,
) -> None:
    out_value = chain.nodes[-1].output[0]
    type_name = KIND_NAMES[kind]
    expect: dict[str, Any] = dict(kind.onnx_expect(chain, fields))
    if chain.out_shape is not None:
        expect = {"output": list(chain.out_shape), **expect}
    prev = state.layers[-1] if state.layers else None
    # An activation right after a layer that takes activation:, and its only reader: fold it.
    if (
        prev is not None
        and not fields
        and sources == [prev["name"]]
        and state.readers.get(chain.nodes[0].input[0], 0) == 1
        and "activation" not in prev
        and chain.nodes[0].input[0] not in chain.graph_outputs
        and prev["name"] not in state.named  # the file says these are two layers
        and type_name != "identity"
        and state.kinds[-1].takes_activation(type_name)
    ):
        # The layer takes the activation's value name (conv1 = Relu(conv2d)).
        old = prev["name"]
        state.taken.discard(old)
        new = identifier(
            layer_name(out_value, chain.ops[-1]), state.taken, RESERVED_NAMES, dots=True
        )
        if out_value in (chain.boundaries or ()):
            state.named.add(new)
        prev["name"] = new
        prev["activation"] = type_name
        if "expect" in prev and "output" in expect:
            prev["expect"] = {**prev["expect"], "output": expect["output"]}
        state.shapes[new] = state.shapes.pop(old)
        for value, layer in list(state.value.items()):
            if layer == old:
                state.value[value] = new
        state.value[out_value] = new
        _reorder(prev)
        return
    twice = next((s for s in sources if sources.count(s) > 1), None)
    if twice is not None:
        raise _error(state.file, f"{where} reads '{twice}' twice, which a spec cannot state")
    name = identifier(layer_name(out_value, chain.ops[-1]), state.taken, RESERVED_NAMES, dots=True)
    previous = state.layers[-1]["name"] if state.layers else "input"
    try:
        entry, out = layer_entry(
            kind, name, type_name, fields, list(sources), state.shapes, previous, expect
        )
    except ForeignError as exc:
        raise _error(state.file, f"{where}: {exc.message}") from None
    state.layers.append(entry)
    state.kinds.append(kind)
    state.shapes[name] = out
    if out_value in (chain.boundaries or ()):
        state.named.add(name)
    for node in chain.nodes:
        for o in node.output:
            state.value[o] = name


def _output_last(state: _State, value: str) -> None:
    """Make the layer computing the graph's output the spec's last (a spec's output is its
    last layer's); the nodes' order may have put a side branch after it."""
    name = state.value.get(value)
    if name is None or name == "input":
        raise _error(state.file, f"the graph's output '{value}' is computed by no layer")
    at = next(i for i, entry in enumerate(state.layers) if entry["name"] == name)
    later = state.layers[at + 1 :]
    if any(name in entry.get("inputs", []) for entry in later) or (
        later and "inputs" not in later[0]
    ):
        raise _error(state.file, f"the graph's output '{value}' is read by a later layer")
    if not later:
        return
    entry = state.layers.pop(at)
    state.kinds.append(state.kinds.pop(at))
    before = state.layers[at - 1]["name"] if at else "input"
    if "inputs" not in entry:
        entry["inputs"] = [before]
    if entry["inputs"] == [state.layers[-1]["name"]]:
        del entry["inputs"]
    state.layers.append(entry)
    _reorder(entry)


def _reorder(entry: dict[str, Any]) -> None:
    """Keep inputs and expect last, as people write them."""
    for key in ("inputs", "expect"):
        if key in entry:
            entry[key] = entry.pop(key)
