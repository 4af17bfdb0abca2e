"""Diagrams of a spec's layer graph: Mermaid (for Markdown) and Graphviz DOT (for images).

Both are drawn from one networkx graph, :func:`diagram_graph`, built from the
analysis: the edges are exactly the graph that :mod:`archspec.graph` checked
and ordered, and each node carries what a reader needs to follow the data —
the layer's name, its kind (with its ``activation:`` shorthand) and its output
shape. Node order is the analysis order (the file's order wherever the edges
allow), so the text of a diagram changes only when the spec does.

Rendering an image needs Graphviz's ``dot`` program. It is optional: without
it :func:`render` raises :class:`RenderError` with a message that says how to
get it, and the CLI turns that into one line and exit code 2.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from archspec.analysis import Analysis
from archspec.graph import INPUT
from archspec.layers.base import fmt_shape
from archspec.output_files import atomic_path

RENDER_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
"""Image file suffixes ``--render`` understands, and the ``dot -T`` format of each."""

RENDER_TIMEOUT_S = 60


class RenderError(Exception):
    """The diagram could not be rendered (no Graphviz, unknown format, dot failed): one line, exit 2."""


def diagram_graph(analysis: Analysis) -> nx.DiGraph:
    """The spec's DAG with a diagram's labels: ``lines`` (name, kind, shape) and ``role`` per node.

    ``role`` is ``input``, ``output`` (the layer whose result the model
    returns) or ``layer``; the emitters choose node shapes from it.
    """
    spec = analysis.spec
    g = nx.DiGraph(name=spec.name)
    g.add_node(
        INPUT,
        role="input",
        lines=(INPUT, f"{fmt_shape(analysis.input_shape)} {spec.input.dtype}"),
    )
    for row in analysis.rows:
        kind = f"{row.type}+{row.activation}" if row.activation else row.type
        role = "output" if row.name == analysis.graph.output else "layer"
        g.add_node(row.name, role=role, lines=(row.name, kind, fmt_shape(row.output)))
    for row in analysis.rows:
        for src in row.inputs:
            g.add_edge(src, row.name)
    return g


def _edges_in_order(g: nx.DiGraph) -> Iterable[tuple[str, str]]:
    """Edges grouped by target in node order, sources in the order the layer reads them."""
    for target in g.nodes:
        for src in g.predecessors(target):
            yield src, target


# --------------------------------------------------------------------------- Mermaid

_MERMAID_SHAPES = {"input": ('[/"', '"/]'), "output": ('(["', '"])'), "layer": ('["', '"]')}


def _mermaid_id(node: str) -> str:
    """A Mermaid node id that can never be a keyword (``end``, ``graph``, ``style``, ...);
    a block's dotted name (``layer1.0.conv1``) has its dots, which Mermaid ids cannot hold,
    written as ``__``."""
    return f"n_{node.replace('.', '__')}"


def _mermaid_text(text: str) -> str:
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def to_mermaid(g: nx.DiGraph) -> str:
    """A Mermaid ``flowchart`` of a diagram graph; GitHub renders it inside a ```mermaid block."""
    lines = ["flowchart TD"]
    for node, data in g.nodes(data=True):
        left, right = _MERMAID_SHAPES[data["role"]]
        label = "<br/>".join(_mermaid_text(part) for part in data["lines"])
        lines.append(f"    {_mermaid_id(node)}{left}{label}{right}")
    for src, dst in _edges_in_order(g):
        lines.append(f"    {_mermaid_id(src)} --> {_mermaid_id(dst)}")
    return "\n".join(lines) + "\n"


def mermaid(analysis: Analysis) -> str:
    return to_mermaid(diagram_graph(analysis))


# --------------------------------------------------------------------------- Graphviz DOT

_DOT_SHAPES = {"input": "parallelogram", "output": "box", "layer": "box"}
_DOT_STYLES = {"input": "solid", "output": "rounded,bold", "layer": "rounded"}


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string: only backslash and double quote need escaping."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: nx.DiGraph) -> str:
    """Graphviz DOT text of a diagram graph (``dot -Tsvg`` renders it).

    Written directly rather than through pydot or pygraphviz: the format
    needs only quoting, and the extra dependency would buy nothing here.
    """
    out = [
        f"digraph {_dot_quote(str(g.graph.get('name', 'model')))} {{",
        "    graph [rankdir=TB];",
        '    node [shape=box, style=rounded, fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica"];',
    ]
    for node, data in g.nodes(data=True):
        label = _dot_quote("\n".join(data["lines"])).replace("\n", "\\n")
        role = data["role"]
        out.append(
            f"    {_dot_quote(node)} [label={label}, shape={_DOT_SHAPES[role]}, "
            f'style="{_DOT_STYLES[role]}"];'
        )
    for src, dst in _edges_in_order(g):
        out.append(f"    {_dot_quote(src)} -> {_dot_quote(dst)};")
    out.append("}")
    return "\n".join(out) + "\n"


def dot(analysis: Analysis) -> str:
    return to_dot(diagram_graph(analysis))


# --------------------------------------------------------------------------- rendering


def render_format(path: str | Path) -> str:
    """The ``dot -T`` format for an image path, or :class:`RenderError` naming the choices."""
    suffix = Path(path).suffix.lower()
    if suffix not in RENDER_FORMATS:
        choices = ", ".join(RENDER_FORMATS)
        raise RenderError(f"cannot render to '{path}': the file name must end in {choices}")
    return RENDER_FORMATS[suffix]


def find_dot() -> str:
    """The path of Graphviz's ``dot``, or :class:`RenderError` saying how to install it."""
    exe = shutil.which("dot")
    if exe is None:
        raise RenderError(
            "rendering needs Graphviz's 'dot' program, which is not on PATH; install Graphviz "
            "(e.g. 'apt-get install graphviz' or 'brew install graphviz'), or write DOT text "
            "with '--format dot' and render it elsewhere"
        )
    return exe


def render(dot_text: str, path: str | Path) -> None:
    """Render DOT text to an image with Graphviz, atomically: a failure leaves no partial file."""
    fmt = render_format(path)
    exe = find_dot()
    with atomic_path(path) as tmp:
        try:
            proc = subprocess.run(
                [exe, f"-T{fmt}", "-o", str(tmp)],
                input=dot_text.encode("utf-8"),
                capture_output=True,
                timeout=RENDER_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RenderError(f"Graphviz's dot took more than {RENDER_TIMEOUT_S} s") from None
        except OSError as exc:
            raise RenderError(f"cannot run Graphviz's dot ({exe}): {exc.strerror or exc}") from None
        if proc.returncode != 0:
            first = next(iter(proc.stderr.decode("utf-8", "replace").strip().splitlines()), "")
            raise RenderError(
                f"Graphviz's dot failed (exit {proc.returncode}): {first}".rstrip(": ")
            )
