"""Parity: how far ONNX Runtime's value of each layer is from the PyTorch reference's.

The error of a layer is max|ort − torch| / max(1, max|torch|): absolute for
values up to 1, relative above (a sum of squares of 100 has float32 ulps of
8e-6, so a fixed absolute bound would be unfair to large outputs and lax for
small ones). The threshold is the dtype's ``tolerance`` in
:data:`archspec.vocab.DTYPES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from archspec.vocab import DTYPES

if TYPE_CHECKING:
    from archspec.runtime.prepare import Loaded
    from archspec.runtime.providers import ProviderChoice


@dataclass(frozen=True)
class LayerError:
    """How far one value computed by ONNX Runtime is from the PyTorch reference."""

    name: str
    max_abs: float  # max |ort − ref|
    max_rel: float  # max |ort − ref| / max |ref|
    scale: float  # max |ref|
    error: float  # max_abs / max(1, scale): the figure the tolerance applies to
    shape_ok: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "scale": self.scale,
            "error": self.error,
            "shape_ok": self.shape_ok,
        }


@dataclass(frozen=True)
class Parity:
    """Every compared value's error, against the tolerance of the model's dtype."""

    dtype: str
    tolerance: float
    layers: tuple[LayerError, ...]  # in graph order; the model output last

    @property
    def worst(self) -> LayerError:
        return max(self.layers, key=lambda e: (not e.shape_ok, e.error))

    @property
    def ok(self) -> bool:
        return all(e.shape_ok and e.error <= self.tolerance for e in self.layers)

    def failures(self) -> list[LayerError]:
        return [e for e in self.layers if not e.shape_ok or e.error > self.tolerance]


def compare(
    actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], dtype: str
) -> Parity:
    """Compare ORT's values with the reference's, name by name, in float64.

    Non-finite values count as a mismatch (NaN compares unequal to
    everything, so a NaN-producing graph must not pass by accident).
    """
    layers: list[LayerError] = []
    for name, ref_raw in expected.items():
        got = np.asarray(actual[name], dtype=np.float64)
        ref = np.asarray(ref_raw, dtype=np.float64)
        if got.shape != ref.shape:
            layers.append(LayerError(name, float("inf"), float("inf"), 0.0, float("inf"), False))
            continue
        if got.size == 0:
            layers.append(LayerError(name, 0.0, 0.0, 0.0, 0.0, True))
            continue
        if not (np.all(np.isfinite(got)) and np.all(np.isfinite(ref))):
            inf = float("inf")
            layers.append(LayerError(name, inf, inf, inf, inf, True))
            continue
        max_abs = float(np.max(np.abs(got - ref)))
        scale = float(np.max(np.abs(ref)))
        max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        layers.append(LayerError(name, max_abs, max_rel, scale, max_abs / max(1.0, scale), True))
    return Parity(dtype, DTYPES[dtype].tolerance, tuple(layers))


def layer_parity(
    loaded: Loaded, choice: ProviderChoice, x: np.ndarray, threads: int | None = None
) -> Parity:
    """Run every layer on ORT (a second session exposing them) and in PyTorch; compare."""
    import torch

    from archspec.onnx.names import with_outputs
    from archspec.runtime.session import create_session, run_session

    assert loaded.reference is not None
    names = list(loaded.layers)
    session = create_session(with_outputs(loaded.model, names), choice, intra_op_threads=threads)
    values, _ = run_session(session, {loaded.info.input_name: x}, names)
    with torch.inference_mode():
        # float16 models are checked against float32 arithmetic on the same rounded weights
        xt = torch.from_numpy(x)
        ref = loaded.reference.forward_layers(xt.float() if xt.dtype == torch.float16 else xt)
    expected = {n: ref[n].numpy() for n in names}
    return compare(dict(zip(names, values, strict=True)), expected, loaded.info.input_dtype)


def parity_line(parity: Parity, output: str) -> str:
    """The one line ``run --verify`` prints: the output's error, the worst layer's, the tolerance."""
    out = next((e for e in parity.layers if e.name == output), parity.layers[-1])
    worst = parity.worst
    status = (
        "ok"
        if parity.ok
        else f"MISMATCH in {len(parity.failures())} of {len(parity.layers)} layers"
    )
    line = (
        f"verify: {status}: {out.name} max abs error {out.max_abs:.2g}, max rel error {out.max_rel:.2g}; "
        f"worst layer {worst.name} {worst.error:.2g}; tolerance {parity.tolerance:g} ({parity.dtype}, "
        f"error = max abs / max(1, max |ref|)) over {len(parity.layers)} layers"
    )
    if not worst.shape_ok:
        line += f"; {worst.name} has the wrong shape"
    return line
