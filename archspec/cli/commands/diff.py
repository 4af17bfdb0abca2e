"""``archspec diff A B``: two models side by side, layer by layer, with what differs marked.

A and B are specs or anything ``archspec import`` reads. The table fits the
terminal like check's (figures are never cut): the rich table where it fits,
else one record per layer.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from archspec.cli.options import add_format, add_input_shape

HELP = "compare two models (specs or importable files) layer by layer"
EXIT_1 = "the two models are different networks"
NEEDS = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "a", metavar="A", help="a spec, .prototxt, .onnx or PyTorch module (pkg.module:factory)"
    )
    p.add_argument("b", metavar="B", help="the model to compare it with")
    add_input_shape(p)
    add_format(
        p, ("table", "json"), "table: side by side, for people (default); json: for programs"
    )


def run(args: argparse.Namespace) -> int:
    from archspec.diff import diff

    result = diff(args.a, args.b, args.input)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    else:
        _print(result)
    return 0 if result.same else 1


def _cells(pair: Any) -> tuple[str, ...]:
    from archspec.diff import describe

    diffs = pair.differences()
    mark = {"same": "=", "equivalent": "≡", "differs": "≠", "only_a": "<", "only_b": ">"}[
        pair.status
    ]

    def cell(key: str) -> str:
        a = getattr(pair.a, key) if pair.a else None
        b = getattr(pair.b, key) if pair.b else None
        if pair.a is None:
            return describe(b)
        if pair.b is None:
            return describe(a)
        return f"{describe(a)} → {describe(b)}" if key in diffs else describe(a)

    names = [s.name for s in (pair.a, pair.b) if s is not None]
    name = names[0] if len(set(names)) == 1 else " / ".join(n if n else "—" for n in names)
    if pair.a is None:
        name = f"— / {pair.b.name}"
    elif pair.b is None:
        name = f"{pair.a.name} / —"

    def value(v: Any) -> str:
        return "—" if v is None else describe(v)

    # an equivalent row names the kind both compute as, then the notation's differences
    notes = [f"both compute {pair.a.plain_kind}:"] if pair.status == "equivalent" else []
    attrs = "\n".join(
        notes
        + [
            f"{k[5:]} {value(v[0])} → {value(v[1])}"
            for k, v in diffs.items()
            if k.startswith("attr:")
        ]
    )
    return (mark, name, cell("kind"), cell("output"), cell("params"), cell("macs"), attrs)


def _print(result: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    from archspec.cli.options import stdout_console
    from archspec.diff import describe
    from archspec.tables import first_fitting, stacked

    out = stdout_console()
    title = (
        f"A: {result.a_file} ({result.a.spec.name})   B: {result.b_file} ({result.b.spec.name}); "
        f"aligned by {result.by}"
    )
    header = ("", "layer (A / B)", "kind", "output", "params", "MACs", "attributes that differ")
    rows = [_cells(p) for p in result.pairs]
    totals = result.totals()
    total_row = (
        "",
        "total",
        f"{totals['layers'][0]} / {totals['layers'][1]} layers",
        *(
            describe(a) if a == b else f"{describe(a)} → {describe(b)}"
            for a, b in (totals["output"], totals["params"], totals["macs"])
        ),
        ""
        if totals["input"][0] == totals["input"][1]
        else f"input {describe(totals['input'][0])} → {describe(totals['input'][1])}",
    )

    def table() -> Any:
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(header):
            t.add_column(h, justify="right" if h in ("params", "MACs") else "left", no_wrap=i < 6)
        for r in rows:
            style = "" if r[0] == "=" else "bold"
            t.add_row(*r, style=style)
        t.add_section()
        t.add_row(*total_row, style="bold")
        return t

    chosen = first_fitting(out, [table()])
    if chosen is not None:
        out.print(chosen, soft_wrap=True)
    else:
        records = [
            (
                f"{r[0]} {r[1]}  {r[2]}",
                [f"output {r[3]}", f"params {r[4]}", f"MACs {r[5]}"] + ([r[6]] if r[6] else []),
            )
            for r in [*rows, total_row]
        ]
        out.print(Text(stacked(title, records, out.width)), soft_wrap=True)
    verdict = "the same network" if result.same else "different networks"
    n_diff = sum(1 for p in result.pairs if p.status not in ("same", "equivalent"))
    n_equivalent = sum(1 for p in result.pairs if p.status == "equivalent")
    also = (
        f"; {n_equivalent} equivalent: the same computation in another notation"
        if n_equivalent
        else ""
    )
    out.print(
        f"{result.a.spec.name} vs {result.b.spec.name}: {verdict} "
        f"({n_diff} of {len(result.pairs)} rows differ{also})",
        soft_wrap=True,
    )
