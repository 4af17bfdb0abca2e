"""ONNX Runtime sessions, created quietly, and the numeric comparison behind ``--verify``.

A session is created on the provider :func:`archspec.runtime.providers.choose`
picked. ORT may still drop a GPU provider at session creation (a missing
kernel library, out of device memory) and carry on on the CPU; we check
``get_providers()`` and raise rather than report a CPU timing as a GPU one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archspec.runtime import RuntimeInputError
from archspec.runtime.providers import (
    QUIET_SEVERITY,
    ProviderChoice,
    ProviderError,
    captured_output,
    one_line,
    preload_gpu_libraries,
    reason_from,
    tensorrt_options,
)

if TYPE_CHECKING:
    import onnxruntime

GRAPH_OPTIMIZATION = ("disable", "basic", "extended", "all")

# --verify thresholds, by the model's element type. The error of a layer is
# max|ort − torch| / max(1, max|torch|): absolute for values up to 1, relative
# above (a sum of squares of 100 has float32 ulps of 8e-6, so a fixed absolute
# bound would be unfair to large outputs and lax for small ones).
# float32: 1e-4 (measured ≤ 2.1e-6 on every layer of every shipped spec, batch 4).
# float16: 1e-2, ten float16 ulps at 1.0 (measured ≤ 8.3e-4 on LeNet-5 and AlexNet
# against a float32 reference that uses the same float16-rounded weights and input).
TOLERANCE = {"float32": 1e-4, "float64": 1e-8, "float16": 1e-2, "bfloat16": 5e-2}


class ModelError(RuntimeInputError):
    """ONNX Runtime cannot load or run the model (corrupt file, unsupported operator, bad input)."""


def create_session(
    model: str | Path | bytes,
    choice: ProviderChoice,
    *,
    intra_op_threads: int | None = None,
    inter_op_threads: int | None = None,
    graph_optimization: str = "all",
    enable_profiling: bool = False,
    profile_prefix: str | None = None,
    optimized_model_path: str | Path | None = None,
) -> onnxruntime.InferenceSession:
    """An InferenceSession on ``choice``'s providers, with ORT's logging kept off the terminal.

    ``graph_optimization`` is one of ``disable``, ``basic``, ``extended``,
    ``all`` (ORT's GraphOptimizationLevel); ``intra_op_threads`` bounds the
    CPU threads one operator may use (None lets ORT use every core), which
    benchmarks pin for repeatable timings.

    Raises :class:`ModelError` when ORT rejects the model and
    :class:`ProviderError` when the chosen GPU provider did not load.
    """
    import onnxruntime as ort

    if graph_optimization not in GRAPH_OPTIMIZATION:
        raise ValueError(
            f"graph_optimization must be one of {', '.join(GRAPH_OPTIMIZATION)}, "
            f"not {graph_optimization!r}"
        )
    ort.set_default_logger_severity(QUIET_SEVERITY)
    options = ort.SessionOptions()
    options.log_severity_level = QUIET_SEVERITY
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[graph_optimization]
    if intra_op_threads is not None:
        options.intra_op_num_threads = intra_op_threads
    if inter_op_threads is not None:
        options.inter_op_num_threads = inter_op_threads
    if enable_profiling:
        options.enable_profiling = True
        if profile_prefix:
            options.profile_file_prefix = profile_prefix
    if optimized_model_path is not None:
        options.optimized_model_filepath = os.fspath(optimized_model_path)
    if choice.name != "cpu":
        preload_gpu_libraries()
    if choice.name == "tensorrt":
        Path(tensorrt_options()["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
    source = model if isinstance(model, bytes) else os.fspath(model)
    with captured_output() as out:
        try:
            session = ort.InferenceSession(
                source, sess_options=options, providers=choice.ort_providers, enable_fallback=0
            )
        except Exception as exc:
            error = str(exc)
        else:
            error = ""
    if error:
        cause = reason_from(error) or reason_from(out.text)
        if cause is not None and choice.name != "cpu":
            raise ProviderError(f"provider {choice.name} failed to start: {cause}")
        what = "the model" if isinstance(model, bytes) else str(model)
        raise ModelError(f"ONNX Runtime cannot load {what}: {one_line(error)}")
    used = session.get_providers()
    if not used or used[0] != choice.execution_provider:
        cause = reason_from(out.text) or "ONNX Runtime fell back to the CPU"
        raise ProviderError(f"provider {choice.name} failed to start: {cause}")
    return session


def run_session(
    session: onnxruntime.InferenceSession,
    feeds: Mapping[str, np.ndarray],
    outputs: list[str] | None = None,
) -> tuple[list[np.ndarray], float]:
    """Run once; return the outputs and the wall time in seconds.

    ORT's errors for bad feeds are long, multi-line C++ messages; they become
    one :class:`ModelError` line.
    """
    start = time.perf_counter()
    try:
        result = session.run(outputs, dict(feeds))
    except Exception as exc:
        raise ModelError(f"ONNX Runtime failed to run the model: {one_line(str(exc))}") from None
    return [np.asarray(r) for r in result], time.perf_counter() - start


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
    return Parity(dtype, TOLERANCE[dtype], tuple(layers))
