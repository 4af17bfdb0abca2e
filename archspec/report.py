"""Rendering an analysis for people (rich and Markdown tables) and programs (JSON)."""

from __future__ import annotations

from typing import Any

from archspec.analysis import Analysis
from archspec.layers.base import fmt_shape
from archspec.spec.diagnostics import Diagnostic, Kind, Severity


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
    return total


COLUMNS = ("layer", "type", "output", "params", "connections", "MACs", "memory", "RF")


def table_rows(analysis: Analysis) -> list[tuple[str, ...]]:
    """The per-layer cells shared by the terminal and Markdown tables."""
    show_buffers = analysis.totals.buffers > 0
    rows: list[tuple[str, ...]] = []
    for r in analysis.rows:
        kind = r.type if not r.activation else f"{r.type}+{r.activation}"
        params = f"{r.params:,}"
        if show_buffers and r.buffers:
            params += f" (+{r.buffers:,} buf)"
        rf = (
            "×".join(map(str, r.field.size))
            if r.field.size[0] != r.field.size[1]
            else str(r.field.size[0])
        )
        rows.append(
            (
                r.name,
                kind,
                fmt_shape(r.output),
                params,
                f"{r.connections:,}",
                f"{r.macs:,}",
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


def markdown_table(analysis: Analysis) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    align = (
        "|"
        + "|".join(
            "---:" if c in ("params", "connections", "MACs", "memory", "RF") else "---"
            for c in COLUMNS
        )
        + "|"
    )
    lines = [head, align]
    for cells in table_rows(analysis):
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    lines.append("| " + " | ".join(f"**{c}**" if c else "" for c in totals_cells(analysis)) + " |")
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def rich_table(analysis: Analysis) -> Any:
    from rich.table import Table

    spec = analysis.spec
    title = f"{spec.title or spec.name} — {spec.name}, input {fmt_shape(analysis.input_shape)} {spec.input.dtype}"
    table = Table(title=title, title_justify="left", show_footer=False)
    for c in COLUMNS:
        numeric = c in ("params", "connections", "MACs", "memory", "RF")
        table.add_column(c, justify="right" if numeric else "left", no_wrap=True)
    for cells in table_rows(analysis):
        table.add_row(*cells)
    table.add_section()
    table.add_row(*totals_cells(analysis), style="bold")
    return table


RICH_MAX_ROWS = 1_000  # rich measures every cell; past this a plain table is ~50× faster


def plain_table(analysis: Analysis) -> str:
    """The same cells as :func:`rich_table`, aligned in plain text, for very long models."""
    rows = [COLUMNS, *table_rows(analysis), totals_cells(analysis)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    numeric = {
        i for i, c in enumerate(COLUMNS) if c in ("params", "connections", "MACs", "memory", "RF")
    }
    lines = []
    for n, r in enumerate(rows):
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
