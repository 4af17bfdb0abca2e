"""The options several commands share, each defined and validated once, and the exit-status help.

A command adds a shared option with one call (``add_seed(p)``), so its
spelling, type, range and help read the same in every command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archspec.errors import UsageError
from archspec.vocab import PROVIDER_CHOICES

MAX_SEED = 2**64 - 1  # torch.manual_seed's range
FAILURE_2 = (
    "the input could not be used (unreadable file, bad YAML, schema or shape error, bad option)"
)


def exit_status(one: str | None) -> str:
    """The ``--help`` epilog: what each exit status means for this command."""
    if one is None:
        return f"exit status: 0 success; 2 {FAILURE_2}. It never exits 1."
    return f"exit status: 0 success; 1 {one}; 2 {FAILURE_2}."


def seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {value} is outside 0..2**64-1")
    return value


def count(text: str) -> int:
    """A non-negative count, written as people write budgets: 60000, 60_000, 60,000 or 6e4."""
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        try:
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


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer ≥ {minimum}, got {text!r}")
        return value

    return parse


def add_seed(
    p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup,
    help: str,
    default: int | None = 0,
) -> None:
    p.add_argument("--seed", type=seed, default=default, help=help)


def add_weights(p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, help: str) -> None:
    p.add_argument("--weights", metavar="FILE", help=help)


def add_max_params(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-params",
        type=count,
        metavar="N",
        help="refuse (exit 2) a spec with more than N parameter and buffer elements (1e9 works)",
    )


def add_provider(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        default="auto",
        help="ONNX Runtime provider; auto takes TensorRT, then CUDA, then CPU (default auto)",
    )


def add_format(p: argparse.ArgumentParser, choices: tuple[str, ...], help: str) -> None:
    p.add_argument("--format", choices=choices, default=choices[0], help=help)


def input_shape(text: str) -> list[int]:
    """``C,H,W`` (or any rank) as a per-sample shape of positive ints."""
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        dims = []
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"expected C,H,W (positive integers), got {text!r}")
    return dims


def add_input_shape(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input",
        metavar="C,H,W",
        type=input_shape,
        help="the input shape per sample, for a PyTorch module (required) or an .onnx "
        "whose input has no fixed shape",
    )


def add_output(p: argparse.ArgumentParser, help: str, *, required: bool = False) -> None:
    p.add_argument("-o", "--output", metavar="FILE", required=required, help=help)


def writable(path: str | None) -> str | None:
    """Check an output path before any work (one line, exit 2, if it cannot be written)."""
    if path is not None:
        from archspec.output_files import check_output_path

        check_output_path(path)
    return path


def existing_file(path: str, what: str = "spec") -> Path:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no such {what} file: {path}")
    return p


def stdout_console() -> Any:
    """The rich Console commands print tables on: see :func:`archspec.tables.console`."""
    from archspec.tables import console

    return console()


BASELINE_CHOICES = ("torch", "torch-compile")


def batch_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got {text!r}")
    return tuple(dict.fromkeys(values))


def baseline_list(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    names = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    for name in names:
        if name not in BASELINE_CHOICES:
            raise argparse.ArgumentTypeError(
                f"unknown baseline {name!r}; choose from {', '.join(BASELINE_CHOICES)} or none"
            )
    return names


def input_dims(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=D,D,...``: an ONNX input's whole shape (``--shape``)."""
    name, sep, dims = text.rpartition("=")
    try:
        values = tuple(int(d) for d in dims.split(","))
    except ValueError:
        values = ()
    if not sep or not name.strip() or not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected NAME=D,D,... (an input's name and positive sizes), got {text!r}"
        )
    return name.strip(), values


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()
