"""Measured ceilings beside torch's matmul: numpy's GEMM, ONNX Runtime's MatMul, a triad.

Each GEMM probe multiplies N×N matrices (N = the size torch's probe settled
on, so they compare) and keeps its fastest call: a ceiling is a maximum, and
the fastest call is the least disturbed. The triad a = b + s·c streams three
arrays far larger than the caches: memory bandwidth, the other roof of a
roofline chart (``bytes moved / s``, counting the two reads and one write).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

MIN_CALLS = 3
TRIAD_ELEMENTS = 1 << 24  # 128 MiB per float64 array: far past any cache


def _best(call: Callable[[], Any], min_time: float) -> float:
    call()  # first call: allocation, library initialisation
    best, spent, calls = float("inf"), 0.0, 0
    while calls < MIN_CALLS or spent < min_time:
        start = time.perf_counter()
        call()
        seconds = time.perf_counter() - start
        best, spent, calls = min(best, seconds), spent + seconds, calls + 1
    return best


def numpy_gemm(n: int, min_time: float) -> float:
    """FLOP/s of numpy's float32 N×N matmul (its BLAS), best call."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return 2.0 * n**3 / _best(lambda: a @ b, min_time)


def ort_gemm(n: int, min_time: float, threads: int, providers: list[Any] | None = None) -> float:
    """FLOP/s of ONNX Runtime running a one-node float32 MatMul model, best call."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "gemm",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(),
        options,
        providers=providers or ["CPUExecutionProvider"],
    )
    rng = np.random.default_rng(0)
    feed = {
        "a": rng.standard_normal((n, n), dtype=np.float32),
        "b": rng.standard_normal((n, n), dtype=np.float32),
    }
    return 2.0 * n**3 / _best(lambda: session.run(None, feed), min_time)


def triad_bandwidth(min_time: float, elements: int = TRIAD_ELEMENTS) -> float:
    """Bytes per second of a = b + s·c on float64 arrays (two reads and one write each)."""
    b = np.ones(elements)
    c = np.ones(elements)
    a = np.empty(elements)

    def triad() -> None:
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)

    # numpy makes the triad two passes over a (multiply into it, then add): 5 array sweeps
    seconds = _best(triad, min_time)
    return 5 * 8 * elements / seconds
