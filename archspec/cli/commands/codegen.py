"""``archspec codegen``: readable, standalone PyTorch source for a spec.

Generating source needs no torch (the generator only emits text), so this
command runs where torch is not installed; the file it writes needs only torch.
"""

from __future__ import annotations

import argparse
import sys

HELP = "write standalone PyTorch source (one nn.Module class) for a spec"
EXIT_1 = None
NEEDS = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="the spec file")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the source to FILE instead of stdout"
    )


def run(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze
    from archspec.output_files import write_atomic
    from archspec.spec import load
    from archspec.torch.codegen import class_name, generate

    spec = load(args.spec)
    analysis = analyze(spec)
    source = generate(spec, analysis)
    if args.output is None:
        sys.stdout.write(source)
        return 0
    write_atomic(args.output, source)
    print(
        f"wrote {args.output}: class {class_name(spec.name)}, {len(analysis.rows)} layers, "
        f"{analysis.totals.params:,} parameters"
    )
    return 0
