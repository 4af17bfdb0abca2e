"""What goes into a run and what is read out of it: the input batch, and each sample's best classes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from archspec.errors import RuntimeInputError

if TYPE_CHECKING:
    import onnx

    from archspec.onnx.model import ModelInfo


def input_batch(
    info: ModelInfo, path: str | None, *, batch: int | None = None, seed: int | None = None
) -> tuple[np.ndarray, str]:
    """The input batch: --input's array (checked), or a seeded standard-normal batch."""
    sample = info.sample_shape
    shown = "[N, " + ", ".join(map(str, sample)) + "]"
    if path:
        file = Path(path)
        try:
            x = np.load(file, allow_pickle=False)
        except FileNotFoundError:
            raise RuntimeInputError(f"{file}: no such file") from None
        except IsADirectoryError:
            raise RuntimeInputError(f"{file}: is a directory, not a .npy file") from None
        except Exception as exc:
            raise RuntimeInputError(
                f"{file}: not a readable .npy array ({' '.join(str(exc).split())})"
            ) from None
        if not isinstance(x, np.ndarray):
            raise RuntimeInputError(f"{file}: holds several arrays (.npz); give one .npy array")
        if x.dtype != np.dtype(info.input_dtype):
            raise RuntimeInputError(
                f"{file} holds {x.dtype} values; the model takes {info.input_dtype} "
                f"(convert with x.astype('{info.input_dtype}'))"
            )
        if tuple(x.shape) == sample:
            x = x[None]
        if tuple(x.shape[1:]) != sample or x.shape[0] < 1:
            raise RuntimeInputError(f"{file} has shape {list(x.shape)}; the model takes {shown}")
        if batch is not None and batch != x.shape[0]:
            raise RuntimeInputError(f"{file} holds a batch of {x.shape[0]}, but --batch is {batch}")
        note = f"from {file}"
    else:
        n = batch or 1
        seed = 0 if seed is None else seed
        x = np.random.default_rng(seed).standard_normal((n, *sample)).astype(info.input_dtype)
        note = f"random normal, seed {seed}"
    if isinstance(info.batch, int) and info.batch not in (0, x.shape[0]):
        raise RuntimeInputError(
            f"the model's batch axis is fixed at {info.batch}; this input has {x.shape[0]}"
        )
    return np.ascontiguousarray(x), note


def check_top_k(k: int | None, model: onnx.ModelProto) -> None:
    """Refuse --top-k larger than the output's per-sample size before running, where it is known."""
    if k is None:
        return
    dims = model.graph.output[0].type.tensor_type.shape.dim[1:]
    if all(d.HasField("dim_value") for d in dims):
        size = 1
        for d in dims:
            size *= d.dim_value
        if k > size:
            raise RuntimeInputError(
                f"--top-k {k} exceeds the {size} values of each sample's output"
            )


def top_k(output: np.ndarray, k: int, *, smallest: bool = False) -> list[list[dict[str, float]]]:
    """The k best values of each sample's output (flattened), best first.

    Best is largest for logits and probabilities; for a distance output (the
    metadata's output order is ascending) it is smallest, else LeNet-5's top-1
    would be the class it considers least likely.
    """
    flat = output.reshape(output.shape[0], -1).astype(np.float64)
    if k > flat.shape[1]:
        raise RuntimeInputError(
            f"--top-k {k} exceeds the {flat.shape[1]} values of each sample's output"
        )
    order = np.argsort(flat if smallest else -flat, axis=1, kind="stable")[:, :k]
    return [
        [{"index": int(i), "value": float(row[i])} for i in idx]
        for row, idx in zip(flat, order, strict=True)
    ]
