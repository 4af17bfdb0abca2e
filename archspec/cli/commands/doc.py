"""``archspec doc``: write a spec's model card (Markdown).

A card holds every figure ``archspec check`` computes, whether each published
figure (``expect:``) holds, the lint warnings and a Mermaid diagram of the
graph. Given a directory of specs and an output directory it writes one card
per spec, ``<spec-file-stem>.md``, which is how ``docs/models/`` is made.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from archspec.errors import OutputError, UsageError

if TYPE_CHECKING:
    from archspec.spec.diagnostics import Diagnostic

HELP = "write a Markdown model card: figures, published figures checked, warnings, diagram"
EXIT_1 = "a published figure (expect:) failed (the card is written and says so)"
NEEDS = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="SPEC",
        help="spec files, or directories of *.yaml / *.yml specs",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="the card's file, or a directory to write <spec-file-stem>.md cards into "
        "(created if missing; needed for several specs); default: stdout",
    )


def run(args: argparse.Namespace) -> int:
    from archspec.cli.commands.check import spec_files
    from archspec.docs.card import card_for_file
    from archspec.output_files import write_atomic
    from archspec.spec.diagnostics import Severity, SpecError, exit_code

    files = spec_files(args.paths)
    if not files:
        raise UsageError(f"no *.yaml or *.yml specs under {' '.join(args.paths)}")
    out = Path(args.output) if args.output else None
    to_dir = out is not None and (
        out.is_dir() or len(files) > 1 or args.output.endswith(("/", "\\"))
    )
    if out is None and len(files) > 1:
        raise UsageError(
            f"{len(files)} specs make {len(files)} cards; name a directory for them with -o DIR"
        )
    if to_dir and out is not None and not out.is_dir():
        if out.exists():
            raise UsageError(f"-o {args.output}: not a directory")
        try:
            out.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"cannot create {out}: {exc.strerror or exc}") from None
    code = 0
    for spec in files:
        target = (out / f"{spec.stem}.md") if to_dir and out is not None else out
        link_from = str(target.parent) if target is not None else None
        try:
            card, _, diagnostics = card_for_file(spec, shown=str(spec), out_dir=link_from)
        except SpecError as exc:
            _report(exc.diagnostics)
            code = 2
            continue
        # The card lists warnings; failed expectations also decide the exit code, so say so here.
        _report([d for d in diagnostics if d.severity is Severity.ERROR])
        code = max(code, exit_code(diagnostics))
        if target is None:
            sys.stdout.write(card)
        else:
            write_atomic(target, card)
    return code


def _report(diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        print(d.render(), file=sys.stderr)
