"""Weights files: a module's ``state_dict`` saved and loaded, in one place.

``.safetensors`` (safetensors) or ``.pt`` / ``.pth`` (``torch.save``); the
suffix names the format. Saving is atomic; loading checks every key and shape
first and never runs code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import RuntimeInputError, one_line
from archspec.output_files import write_with
from archspec.version import __version__

if TYPE_CHECKING:
    import torch

WEIGHT_FORMATS = {".safetensors": "safetensors", ".pt": "torch", ".pth": "torch"}


class WeightsError(RuntimeInputError):
    """A weights file that cannot be read, or whose tensors do not fit the spec's module."""


def weight_format(path: str | os.PathLike[str]) -> str | None:
    """The format a weights path asks for, by its suffix; None for a suffix we do not write."""
    return WEIGHT_FORMATS.get(Path(path).suffix.lower())


def save_weights(module: Any, path: str | os.PathLike[str], metadata: dict[str, Any]) -> str:
    """Write ``module.state_dict()`` atomically in the format the suffix names; return the format."""
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


def load_weights(
    module: torch.nn.Module, path: str | os.PathLike[str], spec_name: str = ""
) -> None:
    """Load a ``state_dict`` file (.safetensors, or .pt/.pth from torch.save) into ``module``.

    Checks keys and shapes first, so a mismatch is one line naming the first
    offending tensor instead of load_state_dict's multi-line report. ``.pt``
    files load with ``weights_only=True``: a weights file must never run code.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: no such weights file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(os.fspath(p))
        elif suffix in (".pt", ".pth"):
            state = torch.load(os.fspath(p), map_location="cpu", weights_only=True)
        else:
            raise WeightsError(f"{p}: unknown weights format '{suffix}'; use .safetensors or .pt")
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"{p}: cannot read weights ({one_line(str(exc), 120)})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsError(f"{p}: not a state_dict (a mapping of tensor names to tensors)")
    target = module.state_dict()
    fits = f"the module of {spec_name}" if spec_name else "the module"
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + _few(missing))
        if unexpected:
            parts.append("unexpected " + _few(unexpected))
        raise WeightsError(f"{p}: does not fit {fits}: {'; '.join(parts)}")
    for key, want in target.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape):
            raise WeightsError(
                f"{p}: {key} has shape {list(got.shape)}, {fits} needs {list(want.shape)}"
            )
        # weights and running statistics are floating point; a counter (batch norm's
        # num_batches_tracked) is an integer in the module and must be one in the file
        if got.is_floating_point() != want.is_floating_point():
            kind = "floating-point numbers" if want.is_floating_point() else "integers"
            raise WeightsError(f"{p}: {key} holds {got.dtype}, not {kind}")
    module.load_state_dict(state, strict=True)


def _few(names: list[str], n: int = 3) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" (and {len(names) - n} more)" if len(names) > n else "")
