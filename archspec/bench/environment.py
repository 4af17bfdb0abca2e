"""What a benchmark ran on: CPU, GPU and driver, thread counts, library versions.

A figure without its machine cannot be compared with anything, so every
benchmark report carries this record. Everything here is read from the
system (``/proc``, the libraries' own version strings); nothing is guessed,
and a field that cannot be read is ``None`` rather than a placeholder.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow).

    ``os.cpu_count()`` reports the host's CPUs even where this process is
    confined to two of them; sizing thread pools from it oversubscribes.
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_model() -> str | None:
    """The CPU's marketing name from /proc/cpuinfo (``model name``), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def cpu_flags() -> list[str]:
    """The vector extensions that decide which kernels the libraries pick (AVX2, AVX-512, AMX...)."""
    wanted = (
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512_bf16",
        "avx512_fp16",
        "amx_bf16",
        "amx_fp16",
    )
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []


def gpu_driver_version() -> str | None:
    """The NVIDIA kernel driver's version, from /proc or nvidia-smi; None where there is none."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as fh:
            first = fh.readline()
        # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar ..."
        for token in first.split():
            if token[:1].isdigit() and "." in token:
                return token
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = out.stdout.strip().splitlines()
    return version[0].strip() if out.returncode == 0 and version else None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def collect_environment(
    *, threads: int, device: str, ort_providers: list[str] | None = None
) -> dict[str, Any]:
    """The environment record of a benchmark report.

    ``device`` is ``"cpu"`` or ``"cuda"``: the GPU fields are filled only
    when the run used a GPU, so a CPU run on a GPU host does not claim one.
    Call it after the engines ran, so torch reports the thread counts in force.
    """
    import numpy
    import onnxruntime
    import torch

    gpu: str | None = None
    cuda_runtime: str | None = None
    if device == "cuda" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        cuda_runtime = torch.version.cuda
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpus_available": available_cpus(),
        "cpus_online": os.cpu_count(),
        "gpu": gpu,
        "gpu_driver": gpu_driver_version() if device == "cuda" else None,
        "cuda_runtime": cuda_runtime,
        "threads": {
            "intra_op": threads,
            "onnxruntime_inter_op": 1,
            "torch_num_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
        },
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "onnx": _version("onnx"),
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": ort_providers
        if ort_providers is not None
        else onnxruntime.get_available_providers(),
        "numpy": numpy.__version__,
        "archspec": _version("archspec"),
    }
