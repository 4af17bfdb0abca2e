"""``archspec schema``: print (or write) the JSON Schema of the spec language.

Editors use it through the ``# yaml-language-server: $schema=...`` line that
every spec starts with; it is generated from the pydantic models that
validate specs, so what the editor flags and what ``archspec check`` rejects
are the same rules.
"""

from __future__ import annotations

import argparse
import sys

HELP = "print the JSON Schema of spec files (for editors and validators)"
EXIT_1 = None
NEEDS = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the schema to FILE instead of stdout"
    )


def run(args: argparse.Namespace) -> int:
    from archspec.docs.schema import schema_text
    from archspec.output_files import write_atomic

    text = schema_text()
    if args.output:
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
