"""``archspec run``: run a model on ONNX Runtime, GPU first, and optionally verify it against PyTorch.

The work is :func:`archspec.runtime.run.run_model`; this module parses the
options and prints its lines (text) or its report (JSON).
"""

from __future__ import annotations

import argparse
import json
import sys

from archspec.cli.options import add_format, add_provider, add_seed, add_weights

HELP = (
    "run a .onnx model or a spec on ONNX Runtime (TensorRT, CUDA or CPU); --verify against PyTorch"
)
EXIT_1 = "--verify found a layer whose ONNX Runtime value is outside the dtype's tolerance"
NEEDS = "onnx"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model", metavar="MODEL", help="a .onnx file, or a spec file to export on the fly"
    )
    p.add_argument(
        "--batch", type=int, metavar="N", help="batch size of the random input (default 1)"
    )
    p.add_argument(
        "--input",
        metavar="FILE",
        help="a .npy array of shape [N, *sample] (or one sample) in the model's dtype",
    )
    add_provider(p)
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare every layer with the PyTorch module; exit 1 on a mismatch",
    )
    p.add_argument(
        "--top-k",
        type=int,
        metavar="K",
        help="print each sample's K best classes: the largest outputs, or the smallest "
        "where the output is a distance (an rbf layer, as in LeNet-5 1998)",
    )
    add_seed(
        p,
        "weights seed for a spec MODEL (default 0), and the random input's seed; "
        "for a .onnx it must match the seed the model records",
        default=None,
    )
    p.add_argument(
        "--spec",
        metavar="FILE",
        help="the spec a .onnx MODEL was exported from (needed by --verify)",
    )
    add_weights(
        p,
        "state_dict file (.safetensors or .pt): the weights to export a spec MODEL with, or, "
        "for a .onnx exported with --weights, the same file for --verify",
    )
    p.add_argument("--fp16", action="store_true", help="spec MODEL only: export in float16")
    p.add_argument(
        "--opset",
        type=int,
        help="spec MODEL only: ONNX opset to export (default: as archspec export)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=10,
        metavar="R",
        help="timed runs after the first (default 10)",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="T",
        help="ONNX Runtime intra-op threads (default: all cores)",
    )
    add_format(p, ("text", "json"), "text lines as it goes (default), or one JSON report")


def run(args: argparse.Namespace) -> int:
    from archspec.runtime.run import RunOptions, run_model

    options = RunOptions(
        model=args.model,
        batch=args.batch,
        input=args.input,
        provider=args.provider,
        verify=args.verify,
        top_k=args.top_k,
        seed=args.seed,
        spec=args.spec,
        weights=args.weights,
        fp16=args.fp16,
        opset=args.opset,
        repeat=args.repeat,
        threads=args.threads,
    )
    text = args.format == "text"
    report, ok = run_model(options, echo=_echo if text else None)
    if not text:
        sys.stdout.write(json.dumps(report, indent=2, default=float) + "\n")
    return 0 if ok else 1


def _echo(line: str) -> None:
    print(line, flush=True)
