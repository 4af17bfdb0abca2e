"""``archspec fit``: the largest batch whose predicted peak memory fits a budget."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archspec.cli.train_options import add_setup_arguments, setup_from_args

HELP = "the largest batch whose predicted peak memory fits a budget, for training or inference"
EXIT_1 = "the budget is too small even for batch 1"
NEEDS = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="SPEC", help="a spec file")
    p.add_argument(
        "--memory",
        required=True,
        metavar="SIZE",
        help="the budget: 24GiB, 24GB, 512MiB, 512MB or bytes",
    )
    p.add_argument("--train", action="store_true", help="a training step (default: inference)")
    add_setup_arguments(p, batch=False)


def run(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze
    from archspec.report import human_bytes
    from archspec.spec import load
    from archspec.training import Setup, analyze_training, fit, parse_size

    try:
        budget = parse_size(args.memory)
    except ValueError as exc:
        print(f"archspec: error: {exc}", file=sys.stderr)
        return 2
    analysis = analyze(load(Path(args.path)))
    device = args.device or "cuda"
    name = analysis.spec.name
    if args.train:
        setup = setup_from_args(args, batch=1)
        what = f"training ({setup.optimizer}, {setup.precision}, {setup.device})"
        snapshots = analyze_training(analysis, setup).snapshots
    else:
        setup = Setup()
        what = f"inference ({analysis.spec.input.dtype}, no gradients, {device})"
        from archspec.training import inference_snapshots

        snapshots = tuple(inference_snapshots(analysis, device))
    result = fit(snapshots, budget)
    shown = f"{human_bytes(budget)} ({budget:,} B)"
    if result.batch is None:
        print(
            f"{name}: {what} does not fit {shown} even at batch 1: its peak is "
            f"{human_bytes(result.peak)} ({result.peak:,} B, at {result.moment})",
            file=sys.stderr,
        )
        return 1
    print(
        f"{name}: {what} fits batch {result.batch:,} in {shown}: peak "
        f"{human_bytes(result.peak)} ({result.peak:,} B, at {result.moment}); batch "
        f"{result.batch + 1:,} would need {result.next_peak:,} B"
    )
    return 0
