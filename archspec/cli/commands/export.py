"""``archspec export``: write a spec's model as ONNX, every layer a named value.

torch and onnx are imported inside :func:`run` only, so listing the
commands (and ``archspec check``) stays framework-free.
"""

from __future__ import annotations

import argparse
import json
import sys

from archspec.cli.options import add_format, add_max_params, add_output, add_seed, add_weights
from archspec.vocab import DEFAULT_OPSET

HELP = "export a spec's model to ONNX (dynamic batch, layer outputs named after the layers)"
EXIT_1 = None
NEEDS = "onnx"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="spec file (.yaml)")
    add_output(p, "the .onnx file to write", required=True)
    weights = p.add_mutually_exclusive_group()
    add_seed(weights, "draw the weights from this seed (default 0)")
    add_weights(
        weights,
        "load the weights from a state_dict file (.safetensors or .pt, e.g. from archspec compile -o)",
    )
    p.add_argument(
        "--opset",
        type=int,
        help=(
            f"ONNX opset (default {DEFAULT_OPSET}, or 22 for a ceil_mode pool whose last window "
            "PyTorch drops; 17 works only for specs without LRN)"
        ),
    )
    p.add_argument("--fp16", action="store_true", help="float16 weights, input and output")
    p.add_argument(
        "--via",
        choices=("native", "torch"),
        default="native",
        help="native: each layer kind emits its own ONNX, no PyTorch needed (default; seeded "
        "weights drawn with NumPy); torch: compile the PyTorch module and export it with "
        "torch.onnx (the reference path)",
    )
    add_max_params(p)
    add_format(p, ("text", "json"), "summary format (default text)")


def run(args: argparse.Namespace) -> int:
    from archspec.spec import load

    spec = load(args.spec)
    if args.via == "native":
        from archspec.onnx.native import export_native as export_spec
    else:
        from archspec.extras import require

        require("torch", "archspec export --via torch")
        from archspec.onnx.export import export_spec  # type: ignore[assignment]
    result = export_spec(
        spec,
        args.output,
        seed=args.seed,
        weights=args.weights,
        opset=args.opset,
        fp16=args.fp16,
        max_params=args.max_params,
    )
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return 0
    weights = (
        result.weights.replace("numpy-seed:", "numpy seed ")
        .replace("seed:", "seed ")
        .replace("file:", "")
    )
    print(
        f"exported {result.spec_name} to {result.path}: opset {result.opset}, {result.dtype}, "
        f"{result.nodes} nodes, {result.size_bytes / 1e6:.1f} MB, weights from {weights}, "
        f"{result.seconds:.1f} s"
    )
    print(
        f"{len(result.value_names)} layer values named; ONNX shape inference matches the "
        f"calculator on all {len(result.value_names)} (batch axis dynamic); checker: ok"
    )
    return 0
