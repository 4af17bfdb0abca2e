"""``archspec bench``: ONNX Runtime against PyTorch on the same weights, with a measured roofline.

torch, onnx and onnxruntime are imported inside :func:`run` only, so that
``archspec check`` (which imports every command module to build its parser)
stays framework-free.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from archspec.cli.options import (
    add_format,
    add_output,
    add_provider,
    add_seed,
    at_least,
    baseline_list,
    batch_list,
    input_dims,
    key_value,
    seconds,
    stdout_console,
    writable,
)
from archspec.errors import UsageError

HELP = (
    "benchmark ONNX Runtime against PyTorch (latency, throughput, FLOP/s, roofline fraction); "
    "specs or .onnx files"
)
EXIT_1 = "with --strict, a result is marked unreliable"
NEEDS = "onnx"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "specs",
        nargs="+",
        metavar="MODEL",
        help="spec files (YAML), exported and compared with PyTorch; or .onnx files, timed as "
        "they are (PyTorch only for a file archspec exported)",
    )
    p.add_argument(
        "--batch",
        type=batch_list,
        default=(1, 8),
        metavar="N[,N...]",
        help="batch sizes (default 1,8); a .onnx whose first axis is fixed runs at its own",
    )
    p.add_argument(
        "--shape",
        type=input_dims,
        action="append",
        default=[],
        metavar="NAME=D,D,...",
        help="a .onnx input's whole shape, fixing its free axes (repeatable); a free first "
        "axis takes --batch instead",
    )
    p.add_argument(
        "--spec",
        metavar="FILE",
        help="for a .onnx archspec exported: the spec it records, for its FLOPs and PyTorch module",
    )
    add_provider(p)
    p.add_argument(
        "--baseline",
        type=baseline_list,
        default=("torch",),
        metavar="NAME[,NAME]",
        help="PyTorch engines to compare with: torch, torch-compile, or none (default torch)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "fp16"),
        default="fp32",
        help="fp32 (default), or fp16: a float16 export for ORT and float16 weights for torch",
    )
    p.add_argument(
        "--warmup",
        type=at_least(0),
        default=3,
        metavar="N",
        help="untimed calls per engine and batch, after the first (default 3)",
    )
    p.add_argument(
        "--min-time",
        type=seconds,
        default=1.0,
        metavar="S",
        help="seconds of timed calls per engine, spec and batch (default 1)",
    )
    p.add_argument(
        "--threads",
        type=at_least(1),
        default=None,
        metavar="N",
        help="intra-op threads for ORT, torch and the roofline probe alike (default: all CPUs available)",
    )
    add_seed(p, "weights and input seed (default 0)")
    p.add_argument(
        "--cuda-graph",
        action="store_true",
        help="on a GPU provider, replay captured CUDA graphs in ORT and PyTorch",
    )
    p.add_argument(
        "--ort-option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option for ORT's GPU provider, e.g. prefer_nhwc=1 (repeatable; ignored on cpu)",
    )
    add_format(p, ("table", "json", "markdown"), "how to print the results (default table)")
    add_output(p, "also write the JSON report here")
    p.add_argument("--plot", metavar="FILE.png", help="write a PNG of throughput against batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a result is marked unreliable (busy machine, wide interval, spread, "
        "probes that disagree)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also time every layer (ORT's profiler, torch hooks) at the first batch, with its "
        "FLOPs, bytes and intensity; with --plot, a roofline chart per spec",
    )


def run(args: argparse.Namespace) -> int:
    from archspec.extras import require

    require("torch-onnx", "archspec bench (its reference engines are PyTorch)")
    writable(args.output)
    writable(args.plot)
    missing = [s for s in args.specs if not Path(s).is_file() and Path(s).suffix.lower() != ".onnx"]
    if missing:
        raise UsageError(f"no such spec file: {missing[0]}")
    if args.plot:
        require("plot", "archspec bench --plot")

    from archspec.bench import render
    from archspec.bench.progress import ProgressBar
    from archspec.bench.run import BenchSettings, OrtTuning, run_bench
    from archspec.output_files import write_atomic

    settings = BenchSettings(
        batches=args.batch,
        provider=args.provider,
        baselines=args.baseline,
        precision=args.precision,
        warmup=args.warmup,
        min_time=args.min_time,
        threads=args.threads,
        seed=args.seed,
        cuda_graph=args.cuda_graph,
        ort=OrtTuning(provider_options=tuple(args.ort_option)),
        shapes=tuple(args.shape),
        spec=args.spec,
    )
    with ProgressBar(enabled=not args.quiet) as progress:
        report = run_bench(args.specs, settings, progress=progress)
    doc = report.to_json()
    if args.profile:  # into the same document: -o and --format json hold it
        from archspec.bench.profile import profile_report

        profile_report(report, doc, args.plot)
    text = json.dumps(doc, indent=2) + "\n"
    if args.output:
        write_atomic(args.output, text)
    if args.plot:
        from archspec.bench.plot import plot_throughput

        plot_throughput(doc, args.plot)
    if args.format == "json":
        sys.stdout.write(text)
    elif args.format == "markdown":
        print(render.markdown_table(doc))
        print(f"\n{render.summary(doc)}")
        for title, table in render.profile_markdowns(doc):
            print(f"\n{title}\n\n{table}")
    else:
        console = stdout_console()
        for table in [
            *render.rich_tables(doc, console),
            render.summary(doc),
            *render.profile_tables(doc),
        ]:
            console.print(table, soft_wrap=True)
    print(report.provider["description"], file=sys.stderr)
    for note in [*report.notes, *render.doubts(doc)]:
        print(f"archspec: note: {note}", file=sys.stderr)
    return 1 if render.doubts(doc) and args.strict else 0
