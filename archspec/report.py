"""Rendering an analysis for people (rich and Markdown tables) and programs (JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archspec.analysis import Analysis, Row
from archspec.layers.base import fmt_shape
from archspec.spec.diagnostics import Diagnostic, Kind, Severity
from archspec.tables import first_fitting, stacked


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def spec_json(
    file: str, analysis: Analysis | None, diagnostics: list[Diagnostic], strict: bool
) -> dict[str, Any]:
    """The per-spec document of DESIGN.md's JSON contract (keys may be added, never renamed)."""
    failed = any(
        d.severity is Severity.ERROR or (strict and d.severity is Severity.WARNING)
        for d in diagnostics
    )
    doc: dict[str, Any] = {"file": file, "name": None, "ok": analysis is not None and not failed}
    if analysis is not None:
        spec = analysis.spec
        doc.update(
            name=spec.name,
            title=spec.title,
            source=spec.source,
            input=list(analysis.input_shape),
            dtype=spec.input.dtype,
            output=list(analysis.output_shape),
            totals=analysis.totals.to_json(),
            layers=[r.to_json() for r in analysis.rows],
            expectations=count_expectations(analysis),
        )
    doc["diagnostics"] = [d.to_json() for d in diagnostics]
    return doc


def count_expectations(analysis: Analysis) -> int:
    """How many published figures the spec asserts (each key of each ``expect:``)."""
    total = 0
    for layer in analysis.spec.layers:
        if layer.expect is not None:
            total += len(layer.expect.model_fields_set)
    if analysis.spec.expect is not None:
        total += len(analysis.spec.expect.model_fields_set)
    doc = analysis.spec.document
    if doc is not None and doc.expansion is not None:
        total += sum(len(g.expect.model_fields_set) for g in doc.expansion.groups if g.expect)
    return total


COLUMNS = ("layer", "type", "output", "params", "connections", "MACs", "memory", "RF")
NUMERIC = frozenset({"params", "connections", "MACs", "memory", "RF"})
OPTIONAL = ("memory", "RF")
"""Columns a narrow terminal may leave out (JSON and Markdown keep them); the rest always show."""


def _folded(analysis: Analysis, depth: int) -> list[tuple[str, str, list[Row]]]:
    """Consecutive layers whose dotted names share their first ``depth`` parts, as one group:
    (name, what it is, its layers), like torchinfo's ``depth``."""
    doc = analysis.spec.document
    blocks = {g.name: g.block for g in doc.expansion.groups} if doc and doc.expansion else {}
    groups: list[tuple[str, str, list[Row]]] = []
    for r in analysis.rows:
        key = ".".join(r.name.split(".")[:depth])
        if groups and groups[-1][0] == key and key != r.name:
            groups[-1][2].append(r)
        else:
            groups.append((key, blocks.get(key, ""), [r]))
    return groups


def table_rows(analysis: Analysis, depth: int | None = None) -> list[tuple[str, ...]]:
    """The per-layer cells shared by the terminal and Markdown tables.

    With ``depth``, layers are folded by the first ``depth`` parts of their
    dotted names (what blocks expand to): a folded row adds up its layers'
    params, connections and MACs and shows the last layer's output.
    """
    show_buffers = analysis.totals.buffers > 0
    if depth is None:
        groups = [(r.name, "", [r]) for r in analysis.rows]
    else:
        groups = _folded(analysis, depth)
    rows: list[tuple[str, ...]] = []
    for name, block, members in groups:
        r = members[-1]
        if len(members) == 1 and name == r.name:
            kind = r.type if not r.activation else f"{r.type}+{r.activation}"
        else:
            kind = f"{block or 'group'} ({len(members)} layers)"
        n_params = sum(m.params for m in members)
        n_buffers = sum(m.buffers for m in members)
        params = f"{n_params:,}"
        if show_buffers and n_buffers:
            params += f" (+{n_buffers:,} buf)"
        rf = (
            "×".join(map(str, r.field.size))
            if r.field.size[0] != r.field.size[1]
            else str(r.field.size[0])
        )
        rows.append(
            (
                name,
                kind,
                fmt_shape(r.output),
                params,
                f"{sum(m.connections for m in members):,}",
                f"{sum(m.macs for m in members):,}",
                human_bytes(r.output_bytes),
                rf,
            )
        )
    return rows


def totals_cells(analysis: Analysis) -> tuple[str, ...]:
    t = analysis.totals
    params = f"{t.params:,}" + (f" (+{t.buffers:,} buf)" if t.buffers else "")
    return (
        "total",
        "",
        fmt_shape(analysis.output_shape),
        params,
        f"{t.connections:,}",
        f"{t.macs:,}",
        f"peak {human_bytes(t.peak_activation_bytes)}",
        "",
    )


def summary_line(analysis: Analysis, diagnostics: list[Diagnostic]) -> str:
    t = analysis.totals
    n_expect = count_expectations(analysis)
    failed = sum(1 for d in diagnostics if d.kind is Kind.EXPECT)
    warnings = sum(1 for d in diagnostics if d.severity is Severity.WARNING)
    status = (
        f"{n_expect - failed}/{n_expect} expectations hold"
        if n_expect
        else "no expectations to verify"
    )
    if warnings:
        status += f", {warnings} warning{'s' if warnings > 1 else ''}"
    return (
        f"{analysis.spec.name}: {t.params:,} params"
        + (f" (+{t.buffers:,} buffers)" if t.buffers else "")
        + f", {t.connections:,} connections, {t.macs:,} MACs, {t.flops:,} FLOPs, "
        f"weights {human_bytes(t.param_bytes)}, peak activations {human_bytes(t.peak_activation_bytes)}; {status}"
    )


def markdown_table(analysis: Analysis, depth: int | None = None) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    align = "|" + "|".join("---:" if c in NUMERIC else "---" for c in COLUMNS) + "|"
    lines = [head, align]
    for cells in table_rows(analysis, depth):
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    lines.append("| " + " | ".join(f"**{c}**" if c else "" for c in totals_cells(analysis)) + " |")
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _column_sets() -> list[tuple[str, ...]]:
    """Every column, then without RF, without memory, without both: richest first."""
    drops: list[tuple[str, ...]] = [(), ("RF",), ("memory",), OPTIONAL]
    return [tuple(c for c in COLUMNS if c not in drop) for drop in drops]


def _title(analysis: Analysis) -> str:
    spec = analysis.spec
    return f"{spec.title or spec.name} — {spec.name}, input {fmt_shape(analysis.input_shape)} {spec.input.dtype}"


def _left_out_note(left_out: list[str]) -> str:
    return f"not shown at this width: {', '.join(left_out)} (--format markdown or json has it)"


def _fold(column: str, cell: str) -> str:
    """A cell broken into lines where it reads naturally, for a narrow terminal.

    ``conv2d+scaled_tanh`` folds after the ``+``, ``0 (+840 buf)`` before the
    buffers, ``peak 23.0 KiB`` after ``peak``: a figure itself never folds.
    """
    if column == "type":
        return cell.replace("+", "+\n")
    if column == "params":
        return cell.replace(" (+", "\n(+")
    if column == "memory":
        return cell.replace("peak ", "peak\n")
    return cell


def rich_table(
    analysis: Analysis,
    *,
    compact: bool = False,
    fold: bool = False,
    columns: Sequence[str] = COLUMNS,
    depth: int | None = None,
) -> Any:
    """The per-layer table: boxed, or ``compact`` (light rules, narrow gaps), cells folded or not.

    Every column is ``no_wrap``: a table rich would have to shrink is never
    printed (see :func:`terminal_table`), so no figure is ever cut.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    style: dict[str, Any] = (
        {"box": box.SIMPLE_HEAD, "pad_edge": False, "collapse_padding": True, "show_edge": False}
        if compact
        else {}
    )
    table = Table(title=Text(_title(analysis)), title_justify="left", show_footer=False, **style)
    picked = [COLUMNS.index(c) for c in columns]
    # Cells are Text, not markup: a figure or a name is shown as written (a '[' in a
    # title or name is not a style), and archspec.tables measures Text without rendering it.
    for c in columns:
        table.add_column(Text(c), justify="right" if c in NUMERIC else "left", no_wrap=True)
    left_out = [c for c in COLUMNS if c not in columns]
    if left_out:
        table.caption = Text(_left_out_note(left_out))
        table.caption_justify = "left"

    def cells(row: tuple[str, ...]) -> list[Text]:
        return [Text(_fold(COLUMNS[i], row[i]) if fold else row[i]) for i in picked]

    for row in table_rows(analysis, depth):
        table.add_row(*cells(row))
    table.add_section()
    table.add_row(*cells(totals_cells(analysis)), style="bold")
    return table


def terminal_table(analysis: Analysis, out: Any, depth: int | None = None) -> Any:
    """What ``archspec check`` prints on the console ``out``: every figure whole, at any width.

    The boxed table where it fits (160 columns, wide terminals); else the
    compact table: with every column, its cells on one line and then folded
    (see :func:`_fold`); then leaving out RF, memory, both (keeping a column
    beats keeping a row on one line); else the stacked layout.
    Long models (over :data:`RICH_MAX_ROWS` layers) get the plain-text forms.
    """
    from rich.text import Text

    if len(analysis.rows) > RICH_MAX_ROWS:
        return Text(plain_table(analysis, out.width, depth))
    layouts = (
        rich_table(analysis, compact=compact, fold=fold, columns=columns, depth=depth)
        for compact, fold, columns in [
            (False, False, COLUMNS),
            *((True, fold, columns) for columns in _column_sets() for fold in (False, True)),
        ]
    )
    table = first_fitting(out, layouts)
    return table if table is not None else Text(stacked_table(analysis, out.width, depth))


def stacked_table(analysis: Analysis, width: int, depth: int | None = None) -> str:
    """Each layer as ``name  type`` and then ``label figure`` items: the layout of last resort."""
    labels = ("output", "params", "connections", "MACs", "memory", "RF")
    records = [
        (
            f"{row[0]}  {row[1]}",
            [f"{label} {cell}" for label, cell in zip(labels, row[2:], strict=True)],
        )
        for row in table_rows(analysis, depth)
    ]
    _, _, output, params, connections, macs, peak, _ = totals_cells(analysis)
    peak = peak.removeprefix("peak ")
    figures = zip(
        ("output", "params", "connections", "MACs", "peak memory"),
        (output, params, connections, macs, peak),
        strict=True,
    )
    records.append(("total", [f"{label} {cell}" for label, cell in figures]))
    return stacked(_title(analysis), records, width)


RICH_MAX_ROWS = 1_000  # rich measures every cell; past this a plain table is ~50× faster


def plain_table(analysis: Analysis, width: int | None = None, depth: int | None = None) -> str:
    """The same cells as :func:`rich_table`, aligned in plain text, for very long models.

    With ``width``, the richest set of columns that fits it (see
    :func:`rich_table`), else the stacked layout: figures are never cut.
    """
    full = [COLUMNS, *table_rows(analysis, depth), totals_cells(analysis)]
    for columns in _column_sets():
        picked = [COLUMNS.index(c) for c in columns]
        rows = [tuple(r[i] for i in picked) for r in full]
        widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
        if width is None or sum(widths) + 2 * (len(widths) - 1) <= width:
            text = _plain(rows, widths, [c in NUMERIC for c in columns])
            left_out = [c for c in COLUMNS if c not in columns]
            return text + (f"\n{_left_out_note(left_out)}" if left_out else "")
    assert width is not None  # no width: the first set, every column, was taken
    return stacked_table(analysis, width, depth)


def _plain(rows: list[tuple[str, ...]], widths: list[int], numeric: list[bool]) -> str:
    lines = []
    for n, r in enumerate(rows):
        cells = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(r, widths, numeric, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
