"""``archspec import``: a model that exists elsewhere (a Caffe prototxt, an ONNX file, a
PyTorch module) as a spec.

The spec is validated before it is written, so an import never leaves a file
that ``archspec check`` refuses; notes (layers skipped as training-only) go to
standard error and into the spec as comments.
"""

from __future__ import annotations

import argparse
import sys

from archspec.cli.options import add_input_shape, add_output, writable

HELP = "write a spec for a model in another format (.prototxt, .onnx, a PyTorch module)"
EXIT_1 = None
NEEDS = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="a Caffe .prototxt (deploy version), an .onnx, or a PyTorch module: "
        "pkg.module:factory or file.py:name (called with no arguments)",
    )
    add_input_shape(p)
    add_output(p, "write the spec to FILE instead of stdout")
    p.add_argument(
        "--flat",
        action="store_true",
        help="every layer on its own line, each with the figures the source states "
        "(default: blocks: where the model repeats itself, as a person writes them)",
    )


def run(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze
    from archspec.importers import import_model, spec_text
    from archspec.output_files import write_atomic
    from archspec.spec import loads

    writable(args.output)
    model = import_model(args.source, args.input)
    text = spec_text(model, flat=args.flat)
    analysis = analyze(loads(text, args.output or "<import>"))
    for note in model.notes:
        print(f"{args.source}: note: {note}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    write_atomic(args.output, text)
    print(
        f"wrote {args.output}: {model.name}, {len(analysis.rows)} layers, "
        f"{analysis.totals.params:,} parameters, output {'×'.join(map(str, analysis.output_shape))}"
    )
    return 0
