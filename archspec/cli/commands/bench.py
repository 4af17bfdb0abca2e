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
from typing import Any

HELP = "benchmark ONNX Runtime against PyTorch (latency, throughput, FLOP/s, roofline fraction)"

BASELINE_CHOICES = ("torch", "torch-compile")


def _batches(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got {text!r}")
    return tuple(dict.fromkeys(values))


def _baselines(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    names = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    for name in names:
        if name not in BASELINE_CHOICES:
            raise argparse.ArgumentTypeError(
                f"unknown baseline {name!r}; choose from {', '.join(BASELINE_CHOICES)} or none"
            )
    return names


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer ≥ {minimum}, got {text!r}")
        return value

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (YAML)")
    p.add_argument(
        "--batch",
        type=_batches,
        default=(1, 8),
        metavar="N[,N...]",
        help="batch sizes (default 1,8)",
    )
    p.add_argument(
        "--provider",
        choices=("auto", "tensorrt", "cuda", "cpu"),
        default="auto",
        help="ONNX Runtime provider; auto takes TensorRT, then CUDA, then CPU (default auto)",
    )
    p.add_argument(
        "--baseline",
        type=_baselines,
        default=("torch",),
        metavar="NAME[,NAME]",
        help="PyTorch engines to compare with: torch, torch-compile, or none (default torch)",
    )
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    p.add_argument(
        "--warmup",
        type=_count(0),
        default=3,
        metavar="N",
        help="untimed calls per engine and batch, after the first (default 3)",
    )
    p.add_argument(
        "--min-time",
        type=_positive_float,
        default=1.0,
        metavar="S",
        help="seconds of timed calls per engine, spec and batch (default 1)",
    )
    p.add_argument(
        "--threads",
        type=_count(1),
        default=None,
        metavar="N",
        help="intra-op threads for ORT, torch and the roofline probe alike (default: all CPUs available)",
    )
    p.add_argument("--seed", type=int, default=0, help="weights and input seed (default 0)")
    p.add_argument(
        "--cuda-graph",
        action="store_true",
        help="on a GPU provider, replay captured CUDA graphs in ORT and PyTorch",
    )
    p.add_argument(
        "--ort-option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option for ORT's GPU provider, e.g. prefer_nhwc=1 (repeatable; ignored on cpu)",
    )
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the JSON report here")
    p.add_argument("--plot", metavar="FILE.png", help="write a PNG of throughput against batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_writable(path: str | None, flag: str) -> str | None:
    """A reason the output cannot be written, found before minutes of benchmarking, or None."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        return f"{flag} {path} is a directory"
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        return f"cannot write {path}: directory {parent} does not exist"
    return None


def run(args: argparse.Namespace) -> int:
    for problem in (_check_writable(args.output, "-o"), _check_writable(args.plot, "--plot")):
        if problem:
            print(f"archspec bench: error: {problem}", file=sys.stderr)
            return 2
    missing = [s for s in args.specs if not Path(s).is_file()]
    if missing:
        print(f"archspec bench: error: no such spec file: {missing[0]}", file=sys.stderr)
        return 2

    from archspec.io import write_atomic
    from archspec.runtime import RuntimeInputError
    from archspec.runtime.bench import BenchSettings, OrtTuning, run_bench
    from archspec.runtime.bench_format import markdown_table, rich_tables, summary

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
    )
    try:
        with _progress(enabled=not args.quiet) as progress:
            report = run_bench(args.specs, settings, progress=progress)
    except RuntimeInputError as exc:
        print(f"archspec bench: error: {exc}", file=sys.stderr)
        return 2
    doc = report.to_json()
    text = json.dumps(doc, indent=2) + "\n"
    if args.output:
        write_atomic(args.output, text)
    if args.plot:
        from archspec.runtime.plot import plot_throughput

        plot_throughput(doc, args.plot)
    if args.format == "json":
        sys.stdout.write(text)
    elif args.format == "markdown":
        print(markdown_table(doc))
        print(f"\n{summary(doc)}")
    else:
        from archspec.tables import console as table_console

        console = table_console()
        for table in rich_tables(doc, console):
            console.print(table, soft_wrap=True)
        console.print(summary(doc), soft_wrap=True)
    print(report.provider["description"], file=sys.stderr)
    for note in report.notes:
        print(f"archspec bench: note: {note}", file=sys.stderr)
    return 0


class _progress:
    """A rich progress bar on stderr (so JSON on stdout stays clean), as a callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task("bench", total=1.0)

        def update(description: str, fraction: float) -> None:
            self._bar.update(self._task, description=description, completed=fraction)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
