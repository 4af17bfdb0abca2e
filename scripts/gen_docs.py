#!/usr/bin/env python3
"""Regenerate every generated documentation file: the JSON Schema, the spec reference and the model cards.

    python scripts/gen_docs.py              # rewrite what is out of date, list it
    python scripts/gen_docs.py --check      # change nothing; exit 1 if anything is out of date
    python scripts/gen_docs.py --examples   # also rerun docs/tutorial.md and README.md and
                                            # rewrite the command output they show

The list of generated files and their text come from
:mod:`archspec.docs.generate`, which the stale-doc tests use too. The
examples are run by tests/runnable_docs.py, as tests/test_tutorial.py
runs them; review the diff after ``--examples``: a changed output may be a
regression rather than an improvement.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from archspec.docs.generate import stale, write_all

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from runnable_docs import DocumentError, run, update

from archspec.output_files import OutputError
from archspec.spec.diagnostics import SpecError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {  # document → what its scratch directory starts with
    ROOT / "docs" / "tutorial.md": [],
    ROOT / "README.md": ["specs"],
}


def refresh_examples() -> int:
    """Rerun each executable document and rewrite the output it shows where that changed."""
    code = 0
    for doc, seed in EXAMPLES.items():
        with tempfile.TemporaryDirectory(prefix="archspec-docs-") as scratch:
            for name in seed:
                shutil.copytree(ROOT / name, Path(scratch) / name)
            try:
                outcomes = run(doc, Path(scratch))
            except DocumentError as exc:
                print(f"{doc.relative_to(ROOT)}: {exc}", file=sys.stderr)
                code = 2
                continue
        if update(doc, outcomes):
            print(f"updated the examples of {doc.relative_to(ROOT)}")
        stuck = [o for o in outcomes if not o.matches]
        for o in stuck:  # only outputs with a '...' elision are left mismatched
            print(
                f"{doc.relative_to(ROOT)}:{o.command.line}: edit by hand (it elides lines with '...')"
            )
            code = max(code, 1)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only report; exit 1 if anything is stale"
    )
    parser.add_argument(
        "--examples", action="store_true", help="also refresh the tutorial's and README's output"
    )
    args = parser.parse_args(argv)
    try:
        result = stale(ROOT) if args.check else write_all(ROOT)
    except SpecError as exc:
        for d in exc.diagnostics:
            print(d.render(), file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"gen_docs: error: {exc}", file=sys.stderr)
        return 2
    verb = ("stale", "orphaned") if args.check else ("wrote", "removed")
    for rel in result.changed:
        print(f"{verb[0]} {rel}")
    for rel in result.orphans:
        print(f"{verb[1]} {rel}")
    if not result:
        print("generated docs are up to date")
    code = 1 if args.check and result else 0
    if args.examples and not args.check:
        code = max(code, refresh_examples())
    return code


if __name__ == "__main__":
    sys.exit(main())
