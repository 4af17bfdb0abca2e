"""The device's attainable peak, measured: a dense matrix multiply sized to be compute-bound.

A roofline fraction needs a roof. The vendor's datasheet peak is rarely
reachable (clock limits, turbo, a hypervisor's share of the cores, MKL's
code path on a non-Intel CPU), and it is not known for a virtual CPU at
all, so archspec measures the roof in the same process and the same run as
the engines: ``torch.matmul`` on the same device, at the same precision,
with the same number of threads. Dense GEMM is the most efficient kernel
those libraries have, so its FLOP/s is the practical ceiling for a network
made of convolutions and fully connected layers; a fraction near 1 means
the engine runs at GEMM speed, and a fraction above 1 means the engine used
a faster arithmetic than the probe (e.g. TF32 convolutions against an
exact-fp32 probe on a GPU).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# One multiply of the chosen size should take at least this long, so timer
# resolution and call overhead vanish and the kernel runs in its steady state.
TARGET_CALL_SECONDS = {"cpu": 0.1, "cuda": 0.02}
# Largest matrix side tried: bounds the probe's memory (3·N² elements).
MAX_SIZE = {"cpu": 4096, "cuda": 16384}
MIN_CALLS = 3

PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class PeakProbe:
    """The result of one probe: the best FLOP/s seen and how it was obtained."""

    flops_per_s: float
    device: str
    precision: str
    size: int  # N of the N×N @ N×N multiply
    calls: int
    threads: int
    tf32: bool | None  # whether torch allowed TF32 for fp32 matmul (GPU only)
    cpu_share: float | None = None  # process CPU time / (threads × wall) over the calls

    def to_json(self) -> dict[str, Any]:
        return {
            "flops_per_s": self.flops_per_s,
            "method": "torch.matmul N×N @ N×N, best of the calls",
            "device": self.device,
            "precision": self.precision,
            "size": self.size,
            "calls": self.calls,
            "threads": self.threads,
            "tf32": self.tf32,
            "cpu_share": self.cpu_share,
        }


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, then restore the previous count.

    torch's thread count is process-wide state; a library call that changes
    it and leaves it changed would slow down (or oversubscribe) the caller.
    """
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_peak(
    device: str = "cpu",
    precision: str = "fp32",
    *,
    threads: int | None = None,
    min_time: float = 1.0,
    size: int | None = None,
) -> PeakProbe:
    """Measure the best matmul FLOP/s on ``device`` ("cpu" or "cuda") at ``precision``.

    Without ``size``, the side N starts at 256 and doubles until one
    multiply takes ``TARGET_CALL_SECONDS``: large enough to be compute-bound
    (arithmetic intensity N/6 FLOP per byte at fp32), small enough that a
    slow path (fp16 on a CPU without native fp16 arithmetic) still finishes.
    Then it repeats the multiply for ``min_time`` seconds (at least three
    times) and keeps the fastest call: the roof is a maximum, and the
    fastest call is the one least disturbed by other processes.
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    dtype = torch.float16 if precision == "fp16" else torch.float32
    kind = "cuda" if device.startswith("cuda") else "cpu"

    def sync() -> None:
        if kind == "cuda":
            torch.cuda.synchronize()

    def timed(a: torch.Tensor, b: torch.Tensor) -> float:
        sync()
        start = time.perf_counter()
        torch.matmul(a, b)
        sync()
        return time.perf_counter() - start

    gen = torch.Generator(device="cpu").manual_seed(0)

    def operands(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
        b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
        return a, b

    with torch_threads(threads), torch.inference_mode():
        n = size or 256
        a, b = operands(n)
        timed(a, b)  # first call: library initialisation, page faults, kernel selection
        if size is None:
            while timed(a, b) < TARGET_CALL_SECONDS[kind] and n < MAX_SIZE[kind]:
                n *= 2
                a, b = operands(n)
                timed(a, b)
        best = float("inf")
        calls = 0
        spent = 0.0
        cpu = time.process_time()
        while calls < MIN_CALLS or spent < min_time:
            seconds = timed(a, b)
            best = min(best, seconds)
            spent += seconds
            calls += 1
        cpu = time.process_time() - cpu
        used_threads = torch.get_num_threads()
    tf32 = bool(torch.backends.cuda.matmul.allow_tf32) if kind == "cuda" else None
    return PeakProbe(
        flops_per_s=2.0 * n**3 / best,
        device=kind,
        precision=precision,
        size=n,
        calls=calls,
        threads=used_threads,
        tf32=tf32,
        cpu_share=cpu / (used_threads * spent) if kind == "cpu" and spent > 0 else None,
    )
