"""``archspec compile``: build the PyTorch module, optionally cross-check it and save its weights.

torch is imported only after the spec has been analysed and its weights
found to fit: a spec that is too large is refused in a fraction of a second,
with nothing allocated and torch never loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archspec.cli.options import add_max_params, add_output, add_seed, writable
from archspec.errors import UsageError

HELP = "build the spec's PyTorch module (seeded weights), verify it, save its weights"
EXIT_1 = "--verify found a layer whose shape, parameters or buffers differ from the calculator's"
NEEDS = "torch"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="the spec file")
    add_seed(p, "weights are a function of the seed (default 0)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="run a batch of 2 and check every layer's output shape, params and buffers "
        "against the calculator (exit 1 naming the first layer that disagrees)",
    )
    add_max_params(p)
    add_output(
        p, "write the weights (state_dict) to FILE: .safetensors, or .pt / .pth for torch.save"
    )


def run(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze
    from archspec.resources import check_fits
    from archspec.spec import load
    from archspec.torch.weights import WEIGHT_FORMATS, weight_format

    if args.output is not None and weight_format(args.output) is None:
        raise UsageError(
            f"cannot tell the weight format of {args.output!r}: "
            f"use a file name ending in {', '.join(WEIGHT_FORMATS)}"
        )
    writable(args.output)
    spec = load(args.spec)
    analysis = analyze(spec)
    check_fits(analysis, args.max_params)  # before torch is even imported

    from archspec.torch.build import compile_spec
    from archspec.torch.crosscheck import verify_module
    from archspec.torch.weights import save_weights

    module = compile_spec(spec, seed=args.seed, analysis=analysis, max_params=args.max_params)
    totals = analysis.totals
    buffers = f" + {totals.buffers:,} buffer elements" if totals.buffers else ""
    print(
        f"compiled {spec.name}: {type(module).__name__} with {len(analysis.rows)} layers, "
        f"{totals.params:,} parameters{buffers}, {spec.input.dtype}, seed {args.seed}"
    )
    if args.verify:
        mismatches = verify_module(analysis, module, batch=2)
        if mismatches:
            more = len(mismatches) - 1
            tail = f" (and {more} more mismatch{'es' if more > 1 else ''})" if more else ""
            kept = "; weights not written" if args.output else ""
            print(
                f"archspec: error: {args.spec}: verification failed: "
                f"{mismatches[0].describe()}{tail}{kept}",
                file=sys.stderr,
            )
            return 1
        print(
            f"verified: {len(analysis.rows)} layers' output shapes, parameters and buffers "
            "match the calculator (batch 2)"
        )
    if args.output is not None:
        fmt = save_weights(module, args.output, metadata={"spec": spec.name, "seed": args.seed})
        size = Path(args.output).stat().st_size
        print(f"weights: {args.output} ({fmt}, {size:,} bytes)")
    return 0
