"""The training set-up options shared by ``check --train`` and ``fit``."""

from __future__ import annotations

import argparse

from archspec.training import DEVICES, OPTIMIZERS, PRECISIONS, Setup


def _batch(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch must be at least 1, got {value}")
    return value


def add_setup_arguments(p: argparse.ArgumentParser, *, batch: bool = True) -> None:
    if batch:
        p.add_argument("--batch", type=_batch, default=1, help="samples per step (default 1)")
    p.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adam", help="default adam")
    p.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default="fp32",
        help="fp32, or torch.autocast to float16 / bfloat16 with float32 weights (default fp32)",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="cuda",
        help="whose kernels to model (dropout's mask, autocast's lists, CPU workspaces; default cuda)",
    )


def setup_from_args(args: argparse.Namespace, batch: int | None = None) -> Setup:
    return Setup(
        batch=batch if batch is not None else args.batch,
        optimizer=args.optimizer,
        precision=args.precision,
        device=args.device,
    )
