"""ONNX Runtime sessions, created quietly on the chosen provider, and run once.

A session is created on the provider :func:`archspec.runtime.providers.choose`
picked. ORT may still drop a GPU provider at session creation (a missing
kernel library, out of device memory) and carry on on the CPU; we check
``get_providers()`` and raise rather than report a CPU timing as a GPU one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from archspec.capture import captured_output
from archspec.errors import RuntimeInputError, one_line
from archspec.runtime.providers import (
    QUIET_SEVERITY,
    ProviderChoice,
    ProviderError,
    preload_gpu_libraries,
    reason_from,
    tensorrt_options,
)

if TYPE_CHECKING:
    import onnxruntime

GRAPH_OPTIMIZATION = ("disable", "basic", "extended", "all")


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
    spinning: bool = True,
) -> onnxruntime.InferenceSession:
    """An InferenceSession on ``choice``'s providers, with ORT's logging kept off the terminal.

    ``graph_optimization`` is one of ``disable``, ``basic``, ``extended``,
    ``all`` (ORT's GraphOptimizationLevel); ``intra_op_threads`` bounds the
    CPU threads one operator may use (None lets ORT use every core), which
    benchmarks pin for repeatable timings; ``spinning=False`` makes those
    threads sleep between runs instead of spinning, so another engine timed
    right after ORT in the same process does not compete with them.

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
    if not spinning:  # idle intra-op threads sleep instead of spinning after a run
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
