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
    add_output(p, "the .onnx file to write (or give --triton REPO)")
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
    triton = p.add_argument_group("Triton model repository")
    triton.add_argument(
        "--triton",
        metavar="REPO",
        help="write REPO/<name>/config.pbtxt and REPO/<name>/1/model.onnx (onnxruntime_onnx)",
    )
    triton.add_argument(
        "--max-batch-size", type=int, default=64, metavar="N", help="Triton's max_batch_size (64)"
    )
    triton.add_argument("--instances", type=int, default=1, metavar="N", help="instances (1)")
    triton.add_argument("--kind", choices=("gpu", "cpu"), default="gpu", help="instance kind")
    triton.add_argument(
        "--tensorrt",
        nargs="?",
        const="fp32",
        choices=("fp32", "fp16"),
        help="the TensorRT execution accelerator (fp32, or fp16), with optimisation profile "
        "shapes from the spec's input for batch 1 … max_batch_size",
    )
    add_max_params(p)
    add_format(p, ("text", "json"), "summary format (default text)")


def run(args: argparse.Namespace) -> int:
    from archspec.errors import UsageError
    from archspec.spec import load

    if (args.output is None) == (args.triton is None):
        raise UsageError("export needs -o FILE or --triton REPO (one of them)")
    options = None
    if args.triton is not None:
        from archspec.onnx.triton import TritonOptions

        options = TritonOptions(args.max_batch_size, args.instances, args.kind, args.tensorrt)
        options.check()
    spec = load(args.spec)
    output = args.output
    if args.triton is not None:
        from archspec.onnx.triton import model_dir

        version = model_dir(args.triton, spec.name) / "1"
        version.mkdir(parents=True, exist_ok=True)
        output = str(version / "model.onnx")
    if args.via == "native":
        from archspec.onnx.native import export_native as export_spec
    else:
        from archspec.extras import require

        require("torch-onnx", "archspec export --via torch")
        from archspec.onnx.export import export_spec  # type: ignore[assignment]
    result = export_spec(
        spec,
        output,
        seed=args.seed,
        weights=args.weights,
        opset=args.opset,
        fp16=args.fp16,
        max_params=args.max_params,
        keep_model=options is not None,
    )
    config = None
    if options is not None:
        from archspec.onnx.triton import write_config

        assert result.model is not None
        config = write_config(args.triton, spec.name, result.model, options)
    if args.format == "json":
        doc = result.to_json()
        if config is not None:
            doc["triton_config"] = str(config)
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
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
    if config is not None:
        print(f"Triton model repository: {config} and {result.path}")
    return 0
