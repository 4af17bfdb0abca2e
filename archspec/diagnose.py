"""Diagnosing a finished analysis: the sources' figures (``expect:``) that fail, and lint warnings."""

from __future__ import annotations

from typing import Any

from archspec.analysis import Analysis
from archspec.layers.base import Expect, fmt_shape, published_holds
from archspec.spec import diagnostic
from archspec.spec.diagnostics import Diagnostic, Kind, Severity

_FIGURES = ("params", "buffers", "connections", "macs", "flops")


def verify(analysis: Analysis) -> list[Diagnostic]:
    """Every expectation that fails (errors, exit 1) and every lint (warnings), in file order."""
    spec = analysis.spec
    out: list[Diagnostic] = list(analysis.graph.diagnostics)
    for row in analysis.rows:
        i = analysis.graph.index[row.name]
        layer = analysis.graph.layers[row.name]
        if layer.expect is not None:
            actual = {"output": row.output, **{f: getattr(row, f) for f in _FIGURES}}
            out.extend(
                _compare(
                    analysis, ("layers", i, "expect"), f"layer '{row.name}'", layer.expect, actual
                )
            )
        for finding in layer.lint(row.input_shapes):
            path: tuple[str | int, ...] = ("layers", i)
            if finding.field:
                path = (*path, finding.field)
            out.append(
                diagnostic(
                    spec,
                    path,
                    f"layer '{row.name}': {finding.message}",
                    kind=Kind.LINT,
                    severity=Severity.WARNING,
                    hint=finding.hint,
                    code=finding.lint,
                )
            )
    out.extend(_block_expectations(analysis))
    if spec.expect is not None:
        t = analysis.totals
        actual = {"output": analysis.output_shape, **{f: getattr(t, f) for f in _FIGURES}}
        out.extend(_compare(analysis, ("expect",), "model", spec.expect, actual))
    out.sort(key=lambda d: d.position.line if d.position else 0)
    return out


def _block_expectations(analysis: Analysis) -> list[Diagnostic]:
    """``expect:`` on a block use: the figures of all the layers it expanded to, added up,
    and the output of its last layer (a paper's per-stage table, ResNet's conv2_x, say)."""
    doc = analysis.spec.document
    if doc is None or doc.expansion is None:
        return []
    rows = {r.name: r for r in analysis.rows}
    found: list[Diagnostic] = []
    for group in doc.expansion.groups:
        if group.expect is None or not group.members:
            continue
        members = [rows[m] for m in group.members]
        actual: dict[str, Any] = {"output": members[-1].output}
        for figure in _FIGURES:
            actual[figure] = sum(getattr(r, figure) for r in members)
        found.extend(
            _compare(
                analysis,
                (*group.path, "expect"),
                f"block use '{group.name}'",
                group.expect,
                actual,
                written=True,
            )
        )
    return found


def _compare(
    analysis: Analysis,
    path: tuple[str | int, ...],
    who: str,
    expect: Expect,
    actual: dict[str, Any],
    written: bool = False,
) -> list[Diagnostic]:
    found = []
    for key in ("output", *_FIGURES):
        want = getattr(expect, key)
        if want is None:
            continue
        got = actual[key]
        if key == "output":
            if tuple(want) == tuple(got):
                continue
            msg = f"{who}: expected output {fmt_shape(want)}, computed {fmt_shape(got)}"
        elif isinstance(want, str):
            if published_holds(want, got):
                continue
            msg = f"{who}: expected {key} {want} (as published, rounded), computed {got:,}"
        else:
            if want == got:
                continue
            msg = f"{who}: expected {key} {want:,}, computed {got:,} (off by {got - want:+,})"
        found.append(
            diagnostic(analysis.spec, (*path, key), msg, kind=Kind.EXPECT, written=written)
        )
    return found
