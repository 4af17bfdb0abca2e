"""``archspec check``: analyse and verify specs without importing any framework."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import Any

from archspec.analysis import Analysis, analyze
from archspec.cli.train_options import add_setup_arguments, setup_from_args, setup_given
from archspec.report import (
    RICH_MAX_ROWS,
    markdown_table,
    plain_table,
    rich_table,
    spec_json,
    summary_line,
)
from archspec.spec import load
from archspec.spec.diagnostics import Diagnostic, SpecError, exit_code
from archspec.verify import verify

HELP = "compute and verify every layer's shape, parameters, connections, MACs, memory and receptive field"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="spec files, or directories of *.yaml specs"
    )
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    p.add_argument("--strict", action="store_true", help="treat warnings as failures (exit 1)")
    p.add_argument(
        "--train",
        action="store_true",
        help="add one training step's figures: backward FLOPs, saved bytes, memory and its peak "
        "(implied by --batch, --optimizer, --precision, --device)",
    )
    add_setup_arguments(p)


def spec_files(paths: list[str]) -> list[Path]:
    """Expand directories to their *.yaml / *.yml files, sorted; keep files as given."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")])
            files.extend(found)
        else:
            files.append(p)
    return files


def check_file(path: Path) -> tuple[Analysis | None, list[Diagnostic]]:
    try:
        analysis = analyze(load(path))
    except SpecError as exc:
        return None, exc.diagnostics
    return analysis, verify(analysis)


def run(args: argparse.Namespace) -> int:
    # A spec is at most 1 MiB, so memory is bounded; the cyclic collector would
    # only rescan the growing heap again and again (a 20,000-layer spec took 2×
    # longer than linear). Pause it for this command and restore it after.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(args)
    finally:
        if was_enabled:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    files = spec_files(args.paths)
    if not files:
        print(f"archspec check: no *.yaml specs under {' '.join(args.paths)}", file=sys.stderr)
        return 2
    results = [(str(f), *check_file(f)) for f in files]
    code = max(exit_code(diags, args.strict) for _, _, diags in results)
    train = _training_hook(args)
    if args.format == "json":
        doc = {"specs": [train(spec_json(f, a, d, args.strict), a) for f, a, d in results]}
        # Pretty for people at a terminal; compact (and ~5× faster to encode) for programs.
        indent = 2 if sys.stdout.isatty() else None
        sys.stdout.write(json.dumps(doc, indent=indent) + "\n")
        return code
    if args.format == "markdown":
        for f, analysis, diags in results:
            print(f"## {analysis.spec.name if analysis else f}\n")
            if analysis is not None:
                print(markdown_table(analysis) + "\n")
                print(summary_line(analysis, diags) + "\n")
                train(None, analysis, "markdown")
            for d in diags:
                print(f"- {d.render()}")
            print()
        return code
    _print_tables(results, train)
    return code


def _training_hook(args: argparse.Namespace) -> Any:
    """With --train, a function that adds the training figures to one spec's output; else a no-op."""
    if not (args.train or setup_given(args)):
        return lambda doc, analysis, fmt="json": doc
    from archspec.training_report import renderer

    return renderer(setup_from_args(args))


def _print_tables(results: list[tuple[str, Analysis | None, list[Diagnostic]]], train: Any) -> None:
    from rich.console import Console

    out = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    for _, analysis, diags in results:
        if analysis is not None:
            if len(analysis.rows) > RICH_MAX_ROWS:
                out.print(plain_table(analysis), markup=False, highlight=False, soft_wrap=True)
            else:
                out.print(rich_table(analysis))
            out.print(summary_line(analysis, diags), soft_wrap=True)
            out.print()
            train(out, analysis, "table")
        for d in diags:
            print(d.render(), file=sys.stderr)
