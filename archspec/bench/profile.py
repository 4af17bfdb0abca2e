"""Layer by layer: where the time goes, against each layer's exact FLOPs and bytes.

ONNX Runtime's profiler times every node of the graph it runs (after its own
fusions); each node is mapped back to the spec layer it computes — by its
name, by the module path torch.onnx records on it (its ``namespace`` metadata),
or by the layer output it writes (archspec names every layer's output value
after the layer). PyTorch eager is timed per layer with forward hooks (a
synchronous CPU run; on a GPU each hook synchronises first). Beside each
time: the calculator's FLOPs, the bytes the layer must move (its weights,
inputs and output, once each), the arithmetic intensity, the FLOP/s reached
and the fraction of the roof — the points of a roofline chart.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archspec.analysis import Analysis, analyze
from archspec.spec import Spec
from archspec.vocab import DTYPES


@dataclass(frozen=True)
class LayerTime:
    """One layer's time per call and what it computes."""

    name: str
    seconds: float
    flops: int
    bytes_moved: int

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes_moved if self.bytes_moved else 0.0

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.seconds if self.seconds > 0 else 0.0

    def to_json(self, roof: float) -> dict[str, Any]:
        return {
            "layer": self.name,
            "ms": self.seconds * 1e3,
            "flops": self.flops,
            "bytes_moved": self.bytes_moved,
            "arithmetic_intensity": self.intensity,
            "flops_per_s": self.flops_per_s,
            "fraction_of_roof": self.flops_per_s / roof if roof else None,
        }


def layer_work(analysis: Analysis, batch: int) -> dict[str, tuple[int, int]]:
    """Per layer: FLOPs and bytes moved (weights + inputs + output) for ``batch`` samples."""
    item = DTYPES[analysis.spec.input.dtype].bytes
    sizes = {"input": int(np.prod(analysis.input_shape))}
    out: dict[str, tuple[int, int]] = {}
    for row in analysis.rows:
        sizes[row.name] = int(np.prod(row.output))
        moved = (row.params + row.buffers) + batch * (
            sum(sizes[s] for s in row.inputs) + sizes[row.name]
        )
        out[row.name] = (row.flops * batch, moved * item)
    return out


def _node_layers(model_path: str, layers: set[str]) -> dict[str, str]:
    """ONNX node name → the spec layer it computes (see the module docstring). A node none
    of those name belongs to the layer whose output its result flows into first (ORT's
    optimized graph keeps the layer's output value on the fused node that writes it)."""
    import onnx

    model = onnx.load(model_path, load_external_data=False)
    owner: dict[str, str] = {}
    readers: dict[str, list[Any]] = defaultdict(list)
    for node in model.graph.node:
        for value in node.input:
            readers[value].append(node)
    for node in model.graph.node:
        layer = node.name if node.name in layers else None
        if layer is None:
            for prop in node.metadata_props:
                # torch.onnx's module path: "…/model.conv1: torch.nn.modules.conv.Conv2d/…"
                if prop.key == "namespace":
                    paths = re.findall(r"/model\.([A-Za-z0-9_.]+): ", prop.value)
                    layer = next((p for p in reversed(paths) if p in layers), None)
        if layer is None:
            layer = next((o for o in node.output if o in layers), None)
        if layer is not None:
            owner[node.name] = layer
    for node in model.graph.node:
        frontier, seen = list(node.output), set[str]()
        while node.name not in owner and frontier and len(seen) < 64:
            value = frontier.pop(0)
            if value in layers:
                owner[node.name] = value
            seen.add(value)
            for reader in readers[value]:
                frontier += [o for o in reader.output if o not in seen]
    return owner


def profile_ort(
    analysis: Analysis, model_path: str, batch: int, threads: int, runs: int = 20
) -> tuple[dict[str, float], float]:
    """Seconds per call of each layer under ONNX Runtime's profiler, and the unattributed rest."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="archspec-profile-") as tmp:
        options.profile_file_prefix = str(Path(tmp) / "ort")
        optimized = str(Path(tmp) / "optimized.onnx")  # the graph whose nodes the profile names
        options.optimized_model_filepath = optimized
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal(
            (batch, *analysis.input_shape), dtype=np.float32
        )
        for _ in range(3):
            session.run(None, {name: x})
        for _ in range(runs):
            session.run(None, {name: x})
        trace = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
        layers = {r.name for r in analysis.rows}
        # the exported graph's names first; ORT's own nodes (layout reorders) by where they flow
        owner = {**_node_layers(optimized, layers), **_node_layers(model_path, layers)}
    per: dict[str, float] = defaultdict(float)
    rest = 0.0
    node_events = [
        e for e in trace if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
    ]
    skip = len(node_events) * 3 // (runs + 3)  # the untimed warm-up calls come first
    for event in node_events[skip:]:
        node = event["name"].removesuffix("_kernel_time")
        seconds = event["dur"] / 1e6 / runs
        # ORT names the nodes it makes after what they replace: "fused node_linear",
        # "conv1_nchwc" (the blocked-layout twin of the node writing conv1)
        plain = node.removeprefix("fused ").removesuffix("_nchwc")
        layer = plain if plain in layers else owner.get(plain) or owner.get(node)
        if layer is None:
            rest += seconds
        else:
            per[layer] += seconds
    return dict(per), rest


def profile_torch(module: Any, analysis: Analysis, batch: int, runs: int = 20) -> dict[str, float]:
    """Seconds per call of each layer's module in PyTorch eager, by forward hooks."""
    import torch

    started: dict[str, float] = {}
    total: dict[str, float] = defaultdict(float)
    handles = []
    for row in analysis.rows:
        sub = module.get_submodule(row.name)

        def pre(_m: Any, _a: Any, name: str = row.name) -> None:
            started[name] = time.perf_counter()

        def post(_m: Any, _a: Any, _o: Any, name: str = row.name) -> None:
            total[name] += time.perf_counter() - started[name]

        handles += [sub.register_forward_pre_hook(pre), sub.register_forward_hook(post)]
    x = torch.randn(batch, *analysis.input_shape)
    with torch.inference_mode():
        for _ in range(3):
            module(x)
        total.clear()
        for _ in range(runs):
            module(x)
    for h in handles:
        h.remove()
    return {k: v / runs for k, v in total.items()}


def profile_spec(spec: Spec, batch: int, threads: int, runs: int = 20) -> dict[str, Any]:
    """Both engines' per-layer times for one spec and batch, with the work of every layer."""
    import torch

    from archspec.bench.roofline import torch_threads
    from archspec.runtime.prepare import compile_and_export

    analysis = analyze(spec)
    work = layer_work(analysis, batch)
    with tempfile.TemporaryDirectory(prefix="archspec-profile-") as tmp, torch_threads(threads):
        path = str(Path(tmp) / f"{spec.name}.onnx")
        module = compile_and_export(spec, path, analysis=analysis).module.eval()
        ort_times, rest = profile_ort(analysis, path, batch, threads, runs)
        torch_times = profile_torch(module, analysis, batch, runs)
        del module
    torch.set_num_threads(threads)
    return {
        "batch": batch,
        "work": work,
        "onnxruntime": ort_times,
        "onnxruntime_unattributed_s": rest,
        "torch": torch_times,
    }


def layer_rows(profile: dict[str, Any], engine: str, roof: float) -> list[dict[str, Any]]:
    """The per-layer rows of one engine, in layer order, for tables, JSON and plots."""
    rows = []
    for name, (flops, moved) in profile["work"].items():
        seconds = profile[engine].get(name)
        if seconds is None:
            continue  # fused into a neighbour by the engine (its time is the neighbour's)
        rows.append(LayerTime(name, seconds, flops, moved).to_json(roof))
    return rows


def plot_roofline(
    rows: list[dict[str, Any]], roof: float, bandwidth: float | None, path: str, title: str
) -> None:
    """A roofline chart: the compute roof, the bandwidth roof, a labelled point per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from archspec.output_files import write_with

    points = [r for r in rows if r["flops"] > 0 and r["ms"] > 0]
    fig, ax = plt.subplots(figsize=(9, 6))
    xs = [p["arithmetic_intensity"] for p in points] or [1.0]
    lo, hi = max(min(xs) / 4, 1e-2), max(xs) * 4
    grid = np.geomspace(lo, hi, 200)
    ceiling = np.full_like(grid, roof)
    if bandwidth:
        ceiling = np.minimum(ceiling, bandwidth * grid)
        ax.plot(
            grid,
            bandwidth * grid / 1e9,
            "--",
            color="grey",
            label=f"memory {bandwidth / 1e9:.1f} GB/s",
        )
    ax.plot(
        grid,
        np.full_like(grid, roof / 1e9),
        ":",
        color="grey",
        label=f"compute {roof / 1e9:.1f} GFLOP/s",
    )
    ax.plot(grid, ceiling / 1e9, color="black", linewidth=1)
    for p in points:
        ax.scatter(p["arithmetic_intensity"], p["flops_per_s"] / 1e9, s=18)
        ax.annotate(p["layer"], (p["arithmetic_intensity"], p["flops_per_s"] / 1e9), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def profile_report(report: Any, doc: dict[str, Any], args: Any, console: Any | None) -> None:
    """``bench --profile``: profile each spec at the first batch, add it to the JSON (and
    the file ``-o`` wrote), print a table per engine, draw the roofline with ``--plot``."""
    from archspec.bench.render import profile_table
    from archspec.output_files import write_atomic
    from archspec.spec import load

    roof = doc["peak_flops_per_s"]
    batch = report.settings.batches[0]
    threads = report.settings.threads or 1
    doc["profile"] = {}
    for file in report.files:
        spec = load(file)
        prof = profile_spec(spec, batch, threads)
        entry = {
            "batch": batch,
            "onnxruntime_unattributed_ms": prof["onnxruntime_unattributed_s"] * 1e3,
            **{e: layer_rows(prof, e, roof) for e in ("onnxruntime", "torch")},
        }
        doc["profile"][spec.name] = entry
        if console is not None:
            for engine in ("onnxruntime", "torch"):
                console.print(
                    profile_table(spec.name, engine, batch, entry[engine]), soft_wrap=True
                )
        if args.plot:
            stem = Path(args.plot)
            out = stem.with_name(f"{stem.stem}-{spec.name}-roofline.png")
            title = f"{spec.name}, batch {batch}: layers on ONNX Runtime against the roof"
            plot_roofline(
                entry["onnxruntime"], roof, doc.get("bandwidth_bytes_per_s"), str(out), title
            )
    if args.output:
        write_atomic(args.output, json.dumps(doc, indent=2) + "\n")
    if args.format == "json":
        print(json.dumps({"profile": doc["profile"]}))
