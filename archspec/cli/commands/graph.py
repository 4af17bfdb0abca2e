"""``archspec graph``: draw a spec's layer graph as Mermaid or Graphviz DOT, or render it.

Mermaid pastes into Markdown (GitHub renders it); DOT feeds Graphviz, and
``--render`` runs Graphviz's ``dot`` for an SVG, PNG or PDF when it is
installed. Only the spec's own analysis is needed, never a framework.
"""

from __future__ import annotations

import argparse
import sys

from archspec.errors import UsageError

HELP = "draw a spec's layer graph as Mermaid or Graphviz DOT, or render it to an image"
EXIT_1 = None
NEEDS = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="a spec file")
    p.add_argument(
        "--format",
        choices=("mermaid", "dot"),
        default="mermaid",
        help="diagram text (default: mermaid)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the diagram text to FILE instead of stdout"
    )
    p.add_argument(
        "--render",
        metavar="IMAGE",
        help="render the graph with Graphviz's dot to IMAGE (.svg, .png or .pdf)",
    )


def run(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze
    from archspec.docs.diagram import (
        RenderError,
        diagram_graph,
        find_dot,
        render,
        render_format,
        to_dot,
        to_mermaid,
    )
    from archspec.output_files import write_atomic
    from archspec.spec import load

    try:
        if args.render:  # fail before writing anything when the image cannot be made
            render_format(args.render)
            find_dot()
        graph = diagram_graph(analyze(load(args.spec)))
        text = to_mermaid(graph) if args.format == "mermaid" else to_dot(graph)
        if args.output:
            write_atomic(args.output, text)
        elif not args.render:
            sys.stdout.write(text)
        if args.render:
            render(to_dot(graph), args.render)
    except RenderError as exc:
        raise UsageError(str(exc)) from None
    return 0
