"""``archspec check``: analyse and verify specs without importing any framework."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.cli.options import add_format, stdout_console
from archspec.cli.train_options import add_setup_arguments, setup_from_args, setup_given
from archspec.errors import UsageError

if TYPE_CHECKING:
    from archspec.analysis import Analysis
    from archspec.spec.diagnostics import Diagnostic

HELP = "compute and verify every layer's shape, parameters, connections, MACs, memory and receptive field"
EXIT_1 = "a published figure (expect:) failed, or a warning under --strict"
NEEDS = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="spec files, or directories of *.yaml / *.yml specs",
    )
    add_format(
        p,
        ("table", "json", "markdown"),
        "table: one per spec, for people (default); json: one document for programs "
        "(DESIGN.md's contract); markdown: tables to paste",
    )
    p.add_argument("--strict", action="store_true", help="treat warnings as failures (exit 1)")
    p.add_argument(
        "--depth",
        type=_positive,
        metavar="N",
        help="fold the table by the first N parts of dotted layer names (blocks); JSON stays flat",
    )
    p.add_argument(
        "--train",
        action="store_true",
        help="add one training step's figures: backward FLOPs, saved bytes, memory and its peak "
        "(implied by --batch, --optimizer, --precision, --device)",
    )
    add_setup_arguments(p)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


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
    from archspec.analysis import analyze
    from archspec.diagnose import verify
    from archspec.spec import load
    from archspec.spec.diagnostics import SpecError

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
            # Everything made meanwhile sits in the youngest generation, and the first
            # allocation after enabling would scan all of it (about 5 ms, at exit too). Move
            # it to the oldest instead (freeze, then unfreeze): later full collections scan
            # it as usual.
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    from archspec.report import markdown_table, spec_json, summary_line
    from archspec.spec.diagnostics import exit_code

    files = spec_files(args.paths)
    if not files:
        raise UsageError(f"no *.yaml or *.yml specs under {' '.join(args.paths)}")
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
                print(markdown_table(analysis, args.depth) + "\n")
                print(summary_line(analysis, diags) + "\n")
                train(None, analysis, "markdown")
            for d in diags:
                print(f"- {d.render()}")
            print()
        return code
    _print_tables(results, train, args.depth)
    return code


def _training_hook(args: argparse.Namespace) -> Any:
    """With --train, a function that adds the training figures to one spec's output; else a no-op."""
    if not (args.train or setup_given(args)):
        return lambda doc, analysis, fmt="json": doc
    from archspec.training_report import renderer

    return renderer(setup_from_args(args))


def _print_tables(
    results: list[tuple[str, Analysis | None, list[Diagnostic]]], train: Any, depth: int | None
) -> None:
    from archspec.report import summary_line, terminal_table

    out = stdout_console()
    for _, analysis, diags in results:
        if analysis is not None:
            out.print(terminal_table(analysis, out, depth), soft_wrap=True)
            out.print(summary_line(analysis, diags), soft_wrap=True)
            out.print()
            train(out, analysis, "table")
        for d in diags:
            print(d.render(), file=sys.stderr)
