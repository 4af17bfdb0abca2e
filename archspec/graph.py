"""The spec's layers as a graph (a networkx DiGraph), checked and ordered.

A layer reads the previous layer unless it names ``inputs:``; those edges can
make any DAG. Everything later walks :attr:`Graph.order`, a topological order
that keeps the file's order wherever the edges allow.

networkx is imported when a graph algorithm is needed: to order a spec in
which some layer reads a later one (and find a cycle there), and to hand the
DiGraph to whoever asks for :attr:`Graph.digraph`. When every layer reads
earlier ones (every shipped spec), the file's order already is that
topological order, and ``archspec check`` saves networkx's 0.1 s import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from archspec.layers.base import RESERVED_NAMES, Layer
from archspec.lints import declare
from archspec.spec import Spec, diagnostic, locate
from archspec.spec.diagnostics import (
    MAX_ERRORS,
    Diagnostic,
    Kind,
    Severity,
    SpecError,
    did_you_mean,
    more_errors,
)
from archspec.spec.loader import PathKey

if TYPE_CHECKING:
    import networkx as nx

UNUSED_OUTPUT = declare(
    "unused-output",
    "a layer other than the last one has an output that no layer reads, so it cannot change "
    "the model's output (PyTorch still computes it)",
    "tests/test_lint_unused_output.py::test_unused_layer_cannot_change_the_output_in_pytorch",
)

INPUT = "input"
# did_you_mean compares a name with every layer's: hint only the first few dangling
# inputs, so a spec with thousands of them stays linear.
MAX_HINTS = 10


@dataclass
class Graph:
    spec: Spec
    layers: dict[str, Layer]
    index: dict[str, int]  # position of each layer in the file
    inputs: dict[str, list[str]]  # each layer's inputs, in the order it reads them
    order: list[str]  # topological order of layer names ("input" excluded)
    output: str  # the layer whose result is the model's output: the last in the file
    diagnostics: list[Diagnostic] = field(default_factory=list)  # warnings

    @cached_property
    def digraph(self) -> nx.DiGraph:
        """The layers (and ``input``) as nodes, an edge from each input to its reader."""
        return _digraph(self.layers, self.inputs)


def _digraph(layers: dict[str, Layer], inputs: dict[str, list[str]]) -> nx.DiGraph:
    import networkx as nx

    g = nx.DiGraph()
    g.add_node(INPUT)
    g.add_nodes_from(layers)
    g.add_edges_from((src, name) for name, srcs in inputs.items() for src in srcs)
    return g


def build_graph(spec: Spec) -> Graph:
    layers: dict[str, Layer] = {}
    index: dict[str, int] = {}
    errors: list[Diagnostic] = []
    omitted: list[PathKey] = []  # errors beyond MAX_ERRORS: counted, not described

    def report(path: PathKey, message: str, hint: str | None = None) -> None:
        if len(errors) < MAX_ERRORS:
            errors.append(diagnostic(spec, path, message, hint=hint))
        elif not omitted:
            omitted.append(path)
        else:
            omitted.append(())

    def fail() -> SpecError:
        if omitted:
            errors.append(more_errors(*locate(spec, omitted[0]), len(omitted)))
        return SpecError(errors)

    for i, layer in enumerate(spec.layers):
        if layer.name in RESERVED_NAMES:
            report(("layers", i, "name"), f"'{layer.name}' is a reserved name")
        elif layer.name in layers:
            first = index[layer.name]
            report(
                ("layers", i, "name"),
                f"duplicate layer name '{layer.name}' (first used by layers[{first}])",
            )
        else:
            layers[layer.name] = layer
            index[layer.name] = i
    if errors:
        raise fail()

    inputs: dict[str, list[str]] = {}
    read: set[str] = set()  # layers some layer reads
    forward = False  # whether some layer reads a later one
    previous = INPUT
    hints = 0
    for i, layer in enumerate(spec.layers):
        names = layer.inputs if layer.inputs is not None else [previous]
        lo, hi = layer.arity
        if not lo <= len(names) <= (hi if hi is not None else len(names)):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            report(
                ("layers", i, "inputs") if layer.inputs is not None else ("layers", i, "type"),
                f"layer '{layer.name}' ({layer.type}) takes {want} input{'s' if want != '1' else ''}, "
                f"got {len(names)}",
                hint="name them with inputs: [a, b]" if layer.inputs is None else None,
            )
        seen: set[str] = set()
        for j, src in enumerate(names):
            if src == layer.name:
                report(("layers", i, "inputs", j), f"layer '{layer.name}' reads itself")
            elif src != INPUT and src not in layers:
                hints += 1
                report(
                    ("layers", i, "inputs", j),
                    f"layer '{layer.name}' reads '{src}', which is not a layer",
                    hint=did_you_mean(src, [INPUT, *layers]) if hints <= MAX_HINTS else None,
                )
            elif src in seen:
                report(("layers", i, "inputs", j), f"layer '{layer.name}' lists '{src}' twice")
            else:
                read.add(src)
                forward = forward or (src != INPUT and index[src] > i)
            seen.add(src)
        inputs[layer.name] = list(names)
        previous = layer.name
    if errors:
        raise fail()

    order = _order(spec, layers, index, inputs) if forward else list(layers)
    output = spec.layers[-1].name
    warnings = []
    for name in order:
        if name != output and name not in read:
            warnings.append(
                diagnostic(
                    spec,
                    ("layers", index[name], "name"),
                    f"the output of layer '{name}' is never used",
                    kind=Kind.LINT,
                    severity=Severity.WARNING,
                    hint=f"the model's output is the last layer, '{output}'",
                    code=UNUSED_OUTPUT.code,
                )
            )
    return Graph(spec, layers, index, inputs, order, output, warnings)


def _order(
    spec: Spec, layers: dict[str, Layer], index: dict[str, int], inputs: dict[str, list[str]]
) -> list[str]:
    """A topological order that keeps the file's order where it can; SpecError for a cycle."""
    import networkx as nx

    g = _digraph(layers, inputs)
    try:
        return [
            n
            for n in nx.lexicographical_topological_sort(
                g, key=lambda n: -1 if n == INPUT else index[n]
            )
            if n != INPUT
        ]
    except nx.NetworkXUnfeasible:
        cycle = [u for u, _ in nx.find_cycle(g)]
        where = min(cycle, key=lambda n: index[n])
        raise SpecError(
            [
                diagnostic(
                    spec,
                    ("layers", index[where], "inputs"),
                    f"the layers form a cycle: {' → '.join([*cycle, cycle[0]])}",
                )
            ]
        ) from None
