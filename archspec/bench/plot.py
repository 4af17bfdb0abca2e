"""Throughput against batch size, one line per engine, one subplot per spec; and the
roofline chart of ``bench --profile``, a point per layer (PNGs).

Built on ``matplotlib.figure.Figure`` with the Agg canvas rather than
``pyplot``: pyplot keeps global state and picks an interactive backend where
a display exists, neither of which a command-line tool should touch. The
file is written through :func:`archspec.output_files.write_with`, so an interrupted
run never leaves half a PNG.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from archspec.output_files import write_with

ENGINE_STYLE = {
    "onnxruntime": ("tab:blue", "o"),
    "torch": ("tab:orange", "s"),
    "torch-compile": ("tab:green", "^"),
}


def plot_throughput(doc: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a PNG of samples/s against batch for every spec × engine in a report's JSON."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    results = doc["results"]
    specs = list(dict.fromkeys(r["spec"] for r in results))
    if not specs:
        raise ValueError("the report has no results to plot")
    cols = min(3, len(specs))
    nrows = math.ceil(len(specs) / cols)
    fig = Figure(figsize=(4.8 * cols, 3.8 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax, spec in zip(axes.flat, specs, strict=False):
        mine = [r for r in results if r["spec"] == spec]
        batches = sorted({r["batch"] for r in mine})
        for key in dict.fromkeys((r["engine"], r["precision"], r.get("cuda_graph")) for r in mine):
            engine, precision, graph = key
            line = sorted(
                (r for r in mine if (r["engine"], r["precision"], r.get("cuda_graph")) == key),
                key=lambda r: r["batch"],
            )
            color, marker = ENGINE_STYLE.get(engine, (None, "x"))
            label = engine + (f" {precision}" if precision != "fp32" else "")
            label += " +graph" if graph else ""
            ax.plot(
                [r["batch"] for r in line],
                [r["throughput"] for r in line],
                marker=marker,
                color=color,
                label=label,
            )
        if len(batches) > 1:
            ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(batches))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_title(spec)
        ax.set_xlabel("batch")
        ax.set_ylabel("samples / s")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(specs) :]:
        ax.set_visible(False)
    env = doc.get("environment", {})
    device = env.get("gpu") or env.get("cpu") or "unknown device"
    threads = env.get("threads", {}).get("intra_op")
    provider = doc.get("provider", {}).get("name")
    where = f"{device}, {threads} threads" + (f", ORT provider {provider}" if provider else "")
    fig.suptitle(f"Throughput (samples/s at p50 latency) — {where}", fontsize="medium")

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=110)

    write_with(path, save)


LABELLED = 20  # layers named on a roofline chart, the slowest first


def plot_roofline(
    rows: list[dict[str, Any]],
    roof: float,
    bandwidth: float | None,
    path: str | os.PathLike[str],
    title: str,
) -> None:
    """A roofline chart: the compute roof, the bandwidth roof, a point per layer
    (``bench --profile``'s rows: layers without FLOPs, or not timed, are left out), the
    :data:`LABELLED` layers that take the most time named (all of them in a small model)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [r for r in rows if r["flops"] and r["ms"] > 0]
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    xs = [p["arithmetic_intensity"] for p in points] or [1.0]
    grid = np.geomspace(max(min(xs) / 4, 1e-2), max(xs) * 4, 200)
    ceiling = np.full_like(grid, roof)
    if bandwidth:
        ceiling = np.minimum(ceiling, bandwidth * grid)
        ax.plot(grid, bandwidth * grid / 1e9, "--", color="grey",
                label=f"memory {bandwidth / 1e9:.1f} GB/s")  # fmt: skip
    ax.plot(grid, np.full_like(grid, roof / 1e9), ":", color="grey",
            label=f"compute {roof / 1e9:.1f} GFLOP/s")  # fmt: skip
    ax.plot(grid, ceiling / 1e9, color="black", linewidth=1)
    named = {p["layer"] for p in sorted(points, key=lambda p: -p["ms"])[:LABELLED]}
    for p in points:
        ax.scatter(p["arithmetic_intensity"], p["flops_per_s"] / 1e9, s=18)
        if p["layer"] in named:
            ax.annotate(p["layer"], (p["arithmetic_intensity"], p["flops_per_s"] / 1e9),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")  # fmt: skip
    if len(points) > len(named):
        ax.text(0.01, 0.01, f"{len(named)} of {len(points)} layers named: those taking the most time",
                transform=ax.transAxes, fontsize=7, color="grey")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title(title)
    ax.legend(loc="lower right")
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
