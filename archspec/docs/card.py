"""Model cards: one Markdown page per spec with every figure archspec computes for it.

A card is generated, never written by hand: the per-layer table is
:func:`archspec.report.markdown_table` (the same cells ``archspec check``
prints), the expectations are the spec's own ``expect:`` entries compared with
the analysis, the warnings are :func:`archspec.diagnose.verify`'s, and the
diagram is :mod:`archspec.docs.diagram`'s. Regenerating a card after a spec or
a layer rule changes therefore updates every figure on it, and the stale-card
test catches a card that was not regenerated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archspec.analysis import Analysis, analyze
from archspec.diagnose import verify
from archspec.docs.diagram import mermaid
from archspec.layers.base import Expect, fmt_shape, published_holds
from archspec.report import human_bytes, markdown_table
from archspec.spec import validate
from archspec.spec.diagnostics import Diagnostic, Kind
from archspec.spec.loader import parse_document, read_text
from archspec.training_report import card_section as training_section

# The order verify.py compares figures in; a card lists them the same way.
EXPECT_KEYS = ("output", "params", "buffers", "connections", "macs", "flops")


@dataclass(frozen=True)
class Expectation:
    """One figure that a spec asserts, with what archspec computes for it."""

    where: str  # a layer name, or "model" for the top-level expect:
    figure: str  # one of EXPECT_KEYS
    expected: Any
    computed: Any

    @property
    def holds(self) -> bool:
        if self.figure == "output":
            return tuple(self.expected) == tuple(self.computed)
        if isinstance(self.expected, str):  # printed rounded by the source: '15.47G'
            return published_holds(self.expected, self.computed)
        return bool(self.expected == self.computed)

    def cells(self) -> tuple[str, str]:
        """Expected and computed figures as a reader wants them: shapes as 6×28×28, counts with commas."""
        if self.figure == "output":
            return fmt_shape(self.expected), fmt_shape(self.computed)
        if isinstance(self.expected, str):
            return self.expected, f"{self.computed:,}"
        return f"{self.expected:,}", f"{self.computed:,}"


def expectations(analysis: Analysis) -> list[Expectation]:
    """Every ``expect:`` figure of the spec in file order, the model's last.

    The comparison is the one :func:`archspec.diagnose.verify` makes (its
    failures are exactly the entries here that do not hold; a test keeps the
    two in step), but a card also lists the figures that do hold.
    """
    found: list[Expectation] = []
    rows = sorted(analysis.rows, key=lambda r: analysis.graph.index[r.name])
    for row in rows:
        layer = analysis.graph.layers[row.name]
        actual = {"output": row.output, **{k: getattr(row, k) for k in EXPECT_KEYS[1:]}}
        found.extend(_compare(row.name, layer.expect, actual))
    t = analysis.totals
    actual = {"output": analysis.output_shape, **{k: getattr(t, k) for k in EXPECT_KEYS[1:]}}
    found.extend(_compare("model", analysis.spec.expect, actual))
    return found


def _compare(where: str, expect: Expect | None, actual: dict[str, Any]) -> list[Expectation]:
    if expect is None:
        return []
    return [
        Expectation(where, key, getattr(expect, key), actual[key])
        for key in EXPECT_KEYS
        if getattr(expect, key) is not None
    ]


def _md(text: str) -> str:
    """Text for a Markdown table cell or paragraph: no stray table pipes or HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def _diagnostic_item(d: Diagnostic) -> str:
    where = d.file + (f":{d.position.line}:{d.position.column}" if d.position else "")
    text = d.message + (f"; {d.hint}" if d.hint else "")
    return f"- `{where}`: {d.severity.value}: {_md(text)}"


def _totals_table(analysis: Analysis) -> str:
    t = analysis.totals
    dtype = analysis.spec.input.dtype
    rows = [
        ("trainable parameters", f"{t.params:,}"),
        ("buffers (non-trainable state)", f"{t.buffers:,}"),
        ("connections (LeCun 1998)", f"{t.connections:,}"),
        ("MACs (multiply-accumulates)", f"{t.macs:,}"),
        ("FLOPs (2 × MACs)", f"{t.flops:,}"),
        (
            "torchinfo's Mult-Adds (biases counted; not MACs)",
            f"{t.mult_adds_torchinfo:,}",
        ),
        (f"weights ({dtype})", f"{t.param_bytes:,} B ({human_bytes(t.param_bytes)})"),
        (
            "peak activation memory",
            f"{t.peak_activation_bytes:,} B ({human_bytes(t.peak_activation_bytes)})",
        ),
        (
            "all layer outputs, summed",
            f"{t.activation_bytes:,} B ({human_bytes(t.activation_bytes)})",
        ),
    ]
    lines = ["| per sample (batch 1) | value |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def _expectations_section(found: list[Expectation]) -> list[str]:
    if not found:
        return ["The spec asserts no published figures (no `expect:`)."]
    held = sum(e.holds for e in found)
    lines = [
        f"{held} of {len(found)} published figures hold.",
        "",
        "| where | figure | expected | computed | holds |",
        "|---|---|---:|---:|:---:|",
    ]
    for e in found:
        expected, computed = e.cells()
        where = "model" if e.where == "model" else f"`{e.where}`"
        mark = "✓" if e.holds else "✗ **no**"
        lines.append(f"| {where} | {e.figure} | {expected} | {computed} | {mark} |")
    return lines


def model_card(
    analysis: Analysis,
    diagnostics: list[Diagnostic],
    *,
    spec_file: str,
    spec_link: str | None = None,
) -> str:
    """The Markdown card of one analysed spec.

    ``spec_file`` is the path shown (as given on the command line, or
    relative to the repository root for the shipped cards, so that the text
    does not depend on where it was generated); ``spec_link``, when the card
    is written to a file, is the spec's path relative to the card, so the
    link works on GitHub and on disk.
    """
    spec = analysis.spec
    out_shape = fmt_shape(analysis.output_shape)
    shown = f"[`{spec_file}`]({spec_link})" if spec_link else f"`{spec_file}`"
    lines = [
        f"<!-- Generated by 'archspec doc {spec_file}'; edit the spec, not this file. -->",
        f"# {_md(spec.title or spec.name)}",
        "",
        f"Model card of `{spec.name}`, generated from {shown} by archspec.",
        "",
    ]
    if spec.source:
        lines += [f"**Source:** {_md(spec.source)}", ""]
    lines += [
        f"**Input:** {fmt_shape(analysis.input_shape)} {spec.input.dtype} per sample "
        f"(the batch axis is implicit) → **output:** {out_shape}",
        "",
        "## Layers",
        "",
        "Per sample. *connections* counts, as LeCun et al. (1998) do, the inputs of every output "
        "unit with the bias as one; *MACs* are multiply-accumulates; *memory* is the layer's "
        "output; *RF* is the receptive field on the input, in pixels.",
        "",
        markdown_table(analysis),
        "",
        "## Totals",
        "",
        _totals_table(analysis),
        "",
        "## Expectations",
        "",
        *_expectations_section(expectations(analysis)),
        "",
        "## Warnings",
        "",
    ]
    # Failed expectations are in the table above; everything else verify() reports is a warning.
    warnings = [d for d in diagnostics if d.kind is not Kind.EXPECT]
    lines += [_diagnostic_item(d) for d in warnings] if warnings else ["None."]
    lines += ["", *training_section(analysis)]
    lines += ["## Graph", "", "```mermaid", mermaid(analysis).rstrip("\n"), "```", ""]
    return "\n".join(lines)


def analyse_file(path: str | os.PathLike[str], *, shown: str) -> tuple[Analysis, list[Diagnostic]]:
    """Load, analyse and verify a spec file that diagnostics will call ``shown``.

    Reading from ``path`` but reporting ``shown`` keeps diagnostics and links
    in a card independent of the working directory. Raises
    :class:`archspec.spec.SpecError` when the spec cannot be analysed.
    """
    _, text = read_text(path)
    analysis = analyze(validate(parse_document(text, shown)))
    return analysis, verify(analysis)


def card_for_file(
    path: str | os.PathLike[str], *, shown: str, out_dir: str | None
) -> tuple[str, Analysis, list[Diagnostic]]:
    """The card of a spec file (linked from ``out_dir`` when given), its analysis and diagnostics."""
    analysis, diagnostics = analyse_file(path, shown=shown)
    link = Path(os.path.relpath(shown, out_dir)).as_posix() if out_dir is not None else None
    card = model_card(analysis, diagnostics, spec_file=shown, spec_link=link)
    return card, analysis, diagnostics
