"""The training set-up options shared by ``check --train`` and ``fit``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from archspec.vocab import DEVICES, OPTIMIZERS, PRECISIONS

if TYPE_CHECKING:
    from archspec.training import Setup


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
        p.add_argument("--batch", type=_batch, help="samples per step (default 1)")
    p.add_argument("--optimizer", choices=tuple(OPTIMIZERS), help="default adam")
    p.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        help="fp32, or torch.autocast to float16 / bfloat16 with float32 weights (default fp32)",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        help="whose kernels to model (dropout's mask, autocast's lists, CPU workspaces; default cuda)",
    )


def setup_given(args: argparse.Namespace) -> bool:
    """Whether any set-up option was given (they imply --train)."""
    return any(
        getattr(args, k, None) is not None for k in ("batch", "optimizer", "precision", "device")
    )


def setup_from_args(args: argparse.Namespace, batch: int | None = None) -> Setup:
    from archspec.training import Setup

    default = Setup()
    return Setup(
        batch=batch or getattr(args, "batch", None) or default.batch,
        optimizer=args.optimizer or default.optimizer,
        precision=args.precision or default.precision,
        device=args.device or default.device,
    )
