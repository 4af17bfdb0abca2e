"""Refusing work that would not fit, before anything is allocated."""

from __future__ import annotations

import os

from archspec.analysis import Analysis
from archspec.errors import ResourceError
from archspec.vocab import DTYPES


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(
    analysis: Analysis,
    max_params: int | None = None,
    dtype: str | None = None,
    *,
    copies: int = 1,
    purpose: str | None = None,
) -> None:
    """Raise :class:`ResourceError` if the weights exceed ``max_params`` or the memory available now.

    ``copies`` is how many times the weights are held at once by the job asking:
    one to build a module, more to export it (see ``EXPORT_COPIES``), so a job
    that would be killed half-way by the OOM killer is refused up front instead.
    """
    elements = analysis.totals.params + analysis.totals.buffers
    itemsize = DTYPES[dtype or analysis.spec.input.dtype].bytes
    name = analysis.spec.name
    if max_params is not None and elements > max_params:
        raise ResourceError(
            f"{name} has {elements:,} parameter and buffer elements, above --max-params {max_params:,}"
        )
    need = elements * itemsize * copies
    free = available_memory()
    if free is not None and need > free:
        held = (
            f"{copies} copies of {elements:,} weights"
            if copies > 1
            else f"its {elements:,} weights"
        )
        raise ResourceError(
            f"{name} needs {need:,} bytes for {held}{f' to {purpose}' if purpose else ''}, "
            f"but only {free:,} bytes of memory are available; nothing was allocated"
        )
