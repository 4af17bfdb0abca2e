"""Benchmarks that say when they cannot be trusted: intervals from the rounds, and marks."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from archspec.bench.run import Latency, ratio_interval, reliability

ROOT = Path(__file__).resolve().parents[1]


def test_the_interval_is_tight_for_steady_rounds_and_wide_for_noisy_ones() -> None:
    rng = np.random.default_rng(1)
    torch_rounds = 3.0 + 0.01 * rng.standard_normal(40)
    ort_rounds = 1.0 + 0.01 * rng.standard_normal(40)
    ratio, lo, hi = ratio_interval(torch_rounds, ort_rounds)
    assert lo <= ratio <= hi and abs(ratio - 3.0) < 0.05 and hi / lo < 1.05
    noisy = np.where(rng.random(40) < 0.5, 3.0, 300.0)  # half the rounds slowed 100×
    ratio, lo, hi = ratio_interval(noisy, ort_rounds)
    assert hi / lo > 10


def _result(**changes: object) -> object:
    from dataclasses import replace

    from archspec.bench.run import BenchResult

    base = BenchResult(
        spec="s",
        file=None,
        engine="onnxruntime",
        provider="cpu",
        batch=1,
        precision="fp32",
        latency=Latency(p50=1.0, p90=1.1, p99=1.2, mean=1.0, min=0.9),
        samples=100,
        throughput=1000.0,
        flops_per_s=1e9,
        roofline_fraction=0.5,
        peak_memory_bytes=None,
        peak_memory_source="",
        memory_increase_bytes=None,
        max_abs_diff=0.0,
        cuda_graph=False,
        cpu_share=0.97,
        vs_torch=(3.0, 2.9, 3.1),
    )
    return replace(base, **changes)


def test_each_reason_marks_a_result() -> None:
    steady = {"torch matmul": 1.6e11, "numpy matmul": 1.7e11}
    assert reliability(_result(), steady) == ()  # type: ignore[arg-type]
    (busy,) = reliability(_result(cpu_share=0.3), steady)  # type: ignore[arg-type]
    assert "30% of its threads' CPU time" in busy
    (wide,) = reliability(_result(vs_torch=(3.0, 1.9, 141.0)), steady)  # type: ignore[arg-type]
    assert "95% interval 1.90–141.00×" in wide
    slow_tail = _result(latency=Latency(p50=1.0, p90=123.0, p99=164.0, mean=40.0, min=0.9))
    (spread,) = reliability(slow_tail, steady)  # type: ignore[arg-type]
    assert "p90 123 ms" in spread
    (probes,) = reliability(_result(), {"torch matmul": 5e10, "numpy matmul": 1.7e11})  # type: ignore[arg-type]
    assert "GEMM probes disagree" in probes


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1


def test_a_bench_against_cpu_burners_is_marked_unreliable_and_strict_exits_1() -> None:
    """Two busy processes take the 2 cores: the engines' CPU share drops, so every result
    is marked, the table says so ('!'), and --strict exits 1."""
    burners = [multiprocessing.Process(target=_burn, args=(60.0,)) for _ in range(2)]
    for p in burners:
        p.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "archspec.cli.main", "bench", str(ROOT / "specs" / "lenet5-d2l.yaml"),
             "--batch", "1", "--provider", "cpu", "--min-time", "0.2", "--threads", "2",
             "--quiet", "--strict"],
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
    finally:
        for p in burners:
            p.terminate()
            p.join()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "archspec: note: unreliable: lenet5-d2l onnxruntime batch 1:" in proc.stderr
    assert " !" in proc.stdout
