"""``archspec compile``: build the PyTorch module, optionally verify it and save its weights.

torch is imported inside :func:`run`, and only after the spec has been
analysed and its weights found to fit: a spec that is too large is refused in
a fraction of a second, with nothing allocated and torch never loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "build the spec's PyTorch module (seeded weights), verify it, save its weights"

WEIGHT_FORMATS = {".safetensors": "safetensors", ".pt": "torch", ".pth": "torch"}
MAX_SEED = 2**64 - 1  # torch.manual_seed's range


def _seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {value} is outside 0..2**64-1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        try:  # 1e9 is a natural way to write a budget
            as_float = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid count {text!r}") from None
        if not as_float.is_integer():
            raise argparse.ArgumentTypeError(
                f"invalid count {text!r}: not a whole number"
            ) from None
        value = int(as_float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: negative")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="the spec file")
    p.add_argument(
        "--seed", type=_seed, default=0, help="weights are a function of the seed (default 0)"
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="run a batch of 2 and check every layer's output shape, params and buffers "
        "against the calculator (exit 1 naming the first layer that disagrees)",
    )
    p.add_argument(
        "--max-params",
        type=_count,
        metavar="N",
        help="refuse (exit 2) a spec with more than N parameter and buffer elements",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the weights (state_dict) to FILE: .safetensors, or .pt / .pth for torch.save",
    )


def weight_format(path: str) -> str | None:
    """The format a weights path asks for, by its suffix; None for a suffix we do not write."""
    return WEIGHT_FORMATS.get(Path(path).suffix.lower())


def run(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze
    from archspec.resources import check_fits
    from archspec.spec import load

    if args.output is not None:
        if weight_format(args.output) is None:
            known = ", ".join(WEIGHT_FORMATS)
            print(
                f"archspec compile: cannot tell the weight format of {args.output!r}: "
                f"use a file name ending in {known}",
                file=sys.stderr,
            )
            return 2
        parent = Path(args.output).parent
        if not parent.is_dir():
            print(
                f"archspec compile: cannot write {args.output}: directory {parent} does not exist",
                file=sys.stderr,
            )
            return 2

    spec = load(args.spec)
    analysis = analyze(spec)
    check_fits(analysis, args.max_params)  # before torch is even imported

    from archspec.torch.build import compile_spec
    from archspec.torch.verify import verify_module

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
                f"archspec compile: {args.spec}: verification failed: "
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


def save_weights(module: Any, path: str, metadata: dict[str, Any]) -> str:
    """Write ``module.state_dict()`` atomically in the format the suffix names; return the format."""
    from archspec import __version__
    from archspec.io import write_with

    fmt = weight_format(path)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    meta = {"archspec": __version__, **{k: str(v) for k, v in metadata.items()}}
    if fmt == "safetensors":
        from safetensors.torch import save_file

        write_with(path, lambda tmp: save_file(state, str(tmp), metadata=meta))
    elif fmt == "torch":
        import torch

        write_with(path, lambda tmp: torch.save(state, tmp))
    else:
        raise ValueError(f"unknown weight format for {path}")
    return str(fmt)
