"""The roof of a roofline: the physical peak from the hardware, beside measured ceilings.

A fraction of peak is only as honest as its denominator. The first stage
divided by one torch matmul measured in the run, which varied 2.5× with the
machine's load and which ONNX Runtime beat (112 % "of peak"). Here:

- **The physical peak** is cores × FMA units × vector lanes × 2 × clock,
  each input read from the machine and named with its source
  (:func:`cpu_peak`; a GPU's from its device properties, :func:`gpu_peak`).
- **Measured ceilings** are the best of several dense GEMMs (torch, numpy,
  ONNX Runtime on a one-node MatMul model) and a streaming triad for memory
  bandwidth (:mod:`archspec.bench.probes`): what the libraries reach here.
- **The roof** the fraction divides by is the physical peak, unless the clock
  the OS reports is only nominal (a virtual machine reports its TSC rate; the
  cores boost above it) and something measured in the run went faster: then
  the fastest measured figure is the roof, and the report says so. Either way
  no fraction exceeds 1, and the reader sees which roof it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# FMA pipes per core and their width, by microarchitecture, where the ISA flags alone do
# not tell (AVX-512 on AMD Zen 4 runs on two 256-bit pipes; on Intel server cores, two
# 512-bit pipes). Keys: (vendor, family, first model, last model).
_FMA_TABLE: list[tuple[tuple[str, int, int, int], tuple[int, int, str]]] = [
    (("AuthenticAMD", 25, 0x10, 0x1F), (2, 256, "AMD Zen 4 (family 25, models 0x10–0x1f): 2 × 256-bit FMA")),
    (("AuthenticAMD", 25, 0x60, 0x7F), (2, 256, "AMD Zen 4 (family 25, models 0x60–0x7f): 2 × 256-bit FMA")),
    (("AuthenticAMD", 25, 0x00, 0x0F), (2, 256, "AMD Zen 3 (family 25): 2 × 256-bit FMA")),
    (("AuthenticAMD", 25, 0x20, 0x5F), (2, 256, "AMD Zen 3 (family 25): 2 × 256-bit FMA")),
    (("AuthenticAMD", 26, 0x00, 0xFF), (2, 512, "AMD Zen 5 (family 26): 2 × 512-bit FMA")),
    (("AuthenticAMD", 23, 0x00, 0xFF), (2, 256, "AMD Zen/Zen 2 (family 23): 2 × 256-bit FMA")),
]  # fmt: skip


@dataclass(frozen=True)
class PhysicalPeak:
    """A peak FLOP/s from the hardware's description, with every input and its source."""

    flops_per_s: float | None  # None: an input is unknown
    device: str
    precision: str
    inputs: dict[str, Any] = field(default_factory=dict)  # name → value
    sources: dict[str, str] = field(default_factory=dict)  # name → where it was read
    clock: str = "unknown"  # "maximum", "nominal" or "unknown"

    def formula(self) -> str:
        if self.device == "cpu":
            return "cores × FMA units × (vector bits / element bits) × 2 × clock"
        return "SMs × FMA per SM per cycle × 2 × clock"

    def to_json(self) -> dict[str, Any]:
        return {
            "flops_per_s": self.flops_per_s,
            "formula": self.formula(),
            "inputs": self.inputs,
            "sources": self.sources,
            "clock": self.clock,
        }


def _cpuinfo(text: str | None = None) -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _max_clock_hz() -> float | None:
    try:
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        return float(khz) * 1e3
    except (OSError, ValueError):
        return None


def cpu_peak(
    threads: int,
    precision: str = "fp32",
    *,
    cpuinfo: str | None = None,
    max_clock_hz: float | None = -1.0,
) -> PhysicalPeak:
    """The CPU's peak FLOP/s for ``threads`` cores at ``precision`` (fp32 or fp16).

    ``cpuinfo`` and ``max_clock_hz`` stand in for /proc/cpuinfo and cpufreq in tests
    (-1: read the machine's). fp16 counts as fp32 unless the CPU has native fp16 FMA
    (AVX512-FP16): the libraries convert and compute in fp32 otherwise.
    """
    info = _cpuinfo(cpuinfo)
    flags = set(info.get("flags", "").split())
    vendor = info.get("vendor_id", "")
    inputs: dict[str, Any] = {}
    sources: dict[str, str] = {}
    cores = min(threads, os.cpu_count() or threads)
    inputs["cores"] = cores
    sources["cores"] = "the threads the engines use, at most the CPUs this process may use"
    try:
        family, model = int(info.get("cpu family", "-1")), int(info.get("model", "-1"))
    except ValueError:
        family, model = -1, -1
    units, bits, why = 0, 0, ""
    for (v, f, lo, hi), (u, b, text) in _FMA_TABLE:
        if vendor == v and family == f and lo <= model <= hi:
            units, bits, why = u, b, text
            break
    if not units:
        if "avx512f" in flags:
            units, bits, why = 2, 512, "AVX-512F (flags): 2 × 512-bit FMA, as Intel's server cores"
        elif "avx2" in flags and "fma" in flags:
            units, bits, why = 2, 256, "AVX2 and FMA (flags): 2 × 256-bit FMA"
        elif "sse2" in flags or "asimd" in flags:
            units, bits, why = 1, 128, "SSE2/NEON (flags): one 128-bit multiply-add per cycle"
    inputs["fma_units"], inputs["vector_bits"] = units, bits
    sources["fma_units"] = sources["vector_bits"] = why or "unknown: no known ISA flags"
    native_fp16 = precision == "fp16" and "avx512_fp16" in flags
    element_bits = 16 if native_fp16 else 32
    inputs["element_bits"] = element_bits
    sources["element_bits"] = (
        "fp16 FMA (avx512_fp16)"
        if native_fp16
        else "fp32 (fp16 without native FMA is computed in fp32)"
    )
    clock = _max_clock_hz() if max_clock_hz == -1.0 else max_clock_hz
    kind = "maximum"
    sources["clock_hz"] = "cpufreq cpuinfo_max_freq"
    if clock is None:
        try:
            clock = float(info.get("cpu MHz", "")) * 1e6
            kind = "nominal"
            sources["clock_hz"] = (
                "/proc/cpuinfo 'cpu MHz' (no cpufreq maximum: a virtual machine reports its "
                "nominal rate, and the cores may boost above it)"
            )
        except ValueError:
            clock, kind = None, "unknown"
            sources["clock_hz"] = "unknown"
    inputs["clock_hz"] = clock
    flops = None
    if units and clock:
        flops = cores * units * (bits // element_bits) * 2 * clock
    return PhysicalPeak(flops, "cpu", precision, inputs, sources, kind)


# FMA per SM per cycle by compute capability: FP32 lanes (CUDA cores), and dense fp16
# tensor-core FMA (NVIDIA's architecture whitepapers: A100, H100).
_GPU_TABLE: dict[tuple[int, int], tuple[int, int, str]] = {
    (8, 0): (64, 1024, "Ampere GA100: 64 FP32 lanes, 1024 dense FP16 tensor FMA per SM per cycle"),
    (8, 6): (128, 512, "Ampere GA10x: 128 FP32 lanes, 512 dense FP16 tensor FMA per SM per cycle"),
    (8, 9): (128, 512, "Ada AD10x: 128 FP32 lanes, 512 dense FP16 tensor FMA per SM per cycle"),
    (9, 0): (
        128,
        2048,
        "Hopper GH100: 128 FP32 lanes, 2048 dense FP16 tensor FMA per SM per cycle",
    ),
}


def gpu_peak(
    precision: str,
    *,
    sms: int,
    capability: tuple[int, int],
    clock_hz: float | None,
    clock_source: str,
) -> PhysicalPeak:
    """A GPU's peak FLOP/s from its properties (SM count, compute capability, maximum SM clock)."""
    lanes, tensor, why = _GPU_TABLE.get(
        capability, (0, 0, f"compute capability {capability} not in the table")
    )
    per_sm = tensor if precision == "fp16" else lanes
    inputs = {"sms": sms, "fma_per_sm_per_cycle": per_sm, "clock_hz": clock_hz}
    sources = {
        "sms": "torch.cuda.get_device_properties().multi_processor_count",
        "fma_per_sm_per_cycle": why
        + (" (tensor cores)" if precision == "fp16" else " (FP32 lanes)"),
        "clock_hz": clock_source,
    }
    flops = sms * per_sm * 2 * clock_hz if per_sm and clock_hz else None
    return PhysicalPeak(
        flops, "cuda", precision, inputs, sources, "maximum" if clock_hz else "unknown"
    )


def device_peak(device: str, precision: str, threads: int) -> PhysicalPeak:
    """The physical peak of the device the benchmark runs on."""
    if device != "cuda":
        return cpu_peak(threads, precision)
    import subprocess

    import torch

    props = torch.cuda.get_device_properties(0)
    clock, source = None, "unknown (nvidia-smi not available)"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        clock = float(out.stdout.strip().splitlines()[0]) * 1e6
        source = "nvidia-smi clocks.max.sm"
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        pass
    return gpu_peak(
        precision,
        sms=props.multi_processor_count,
        capability=(props.major, props.minor),
        clock_hz=clock,
        clock_source=source,
    )


@dataclass(frozen=True)
class Roof:
    """What a roofline fraction divides by, and why that figure."""

    flops_per_s: float
    source: str  # "physical" or "measured"
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"flops_per_s": self.flops_per_s, "source": self.source, "why": self.why}


def choose_roof(physical: PhysicalPeak, measured: dict[str, float]) -> Roof:
    """The physical peak, unless it is unknown or its clock is nominal and something measured
    in this run (a GEMM probe or an engine) went faster: then the fastest measured figure."""
    name, fastest = max(measured.items(), key=lambda kv: kv[1]) if measured else ("", 0.0)
    if physical.flops_per_s is not None and physical.flops_per_s >= fastest:
        return Roof(
            physical.flops_per_s, "physical", f"{physical.formula()} ({physical.clock} clock)"
        )
    if physical.flops_per_s is None:
        why = f"the physical peak is unknown; the fastest figure measured in this run ({name})"
    else:
        why = (
            f"{name} measured {fastest / 1e9:.1f} GFLOP/s, above the physical estimate "
            f"{physical.flops_per_s / 1e9:.1f} GFLOP/s at the {physical.clock} clock the OS "
            "reports: the cores run faster than that clock, so the fastest measured figure is the roof"
        )
    return Roof(fastest, "measured", why)
