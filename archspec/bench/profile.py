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
from archspec.bench.model_file import ModelFile
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


def attainable(
    row: dict[str, Any], roof: float | None, bandwidth: float | None
) -> tuple[str, float | None]:
    """Which roof binds a layer in the roofline model, and the fraction of it the layer reached.

    A layer's attainable rate is the lower of the compute roof and bandwidth × intensity:
    AlexNet's fc6 (0.5 FLOP per byte) can reach 22 GFLOP/s at 44 GB/s, so its 19.8 GFLOP/s
    is 90 % of what memory allows, not the 9 % of the compute roof it also is. A layer faster
    than memory allows read its bytes from cache ("cache"): the compute roof binds it.
    """
    if not row.get("flops") or not roof:
        return "—", None
    rate = float(row["flops_per_s"])
    memory = bandwidth * float(row["arithmetic_intensity"]) if bandwidth else None
    if memory is None or memory >= roof:
        return "compute", rate / roof
    if rate <= memory:
        return "memory", rate / memory
    return "cache", rate / roof


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


def fused_work(analysis: Analysis, batch: int, timed: set[str]) -> dict[str, dict[str, Any]]:
    """Per layer an engine timed: the layers it ran as one fused kernel, and their FLOPs and
    bytes moved together (weights, the inputs from outside the group, the last output).

    ONNX Runtime fuses a convolution with the batch norm and activation after it and writes
    the activation layer's output: that node's time is theirs together. A layer with no time
    of its own, read only by the next layer of the group, belongs to that group (a no-op a
    graph drops, a flatten, joins its reader the same way). The timed layer comes last."""
    item = DTYPES[analysis.spec.input.dtype].bytes
    rows = {r.name: r for r in analysis.rows}
    order = {name: i for i, name in enumerate(rows)}
    readers: dict[str, int] = defaultdict(int)
    for r in analysis.rows:
        for source in r.inputs:
            readers[source] += 1
    sizes = {"input": int(np.prod(analysis.input_shape))}
    sizes.update({r.name: int(np.prod(r.output)) for r in analysis.rows})
    claimed: set[str] = set()
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(timed & rows.keys(), key=order.__getitem__):
        members, frontier = [name], [name]
        while frontier:
            for source in rows[frontier.pop()].inputs:
                if (
                    source in rows
                    and source not in timed
                    and source not in claimed
                    and readers[source] == 1
                ):
                    members.append(source)
                    frontier.append(source)
                    claimed.add(source)
        members.sort(key=order.__getitem__)
        inside = set(members)
        outside = {s for m in members for s in rows[m].inputs if s not in inside}
        weights = sum(rows[m].params + rows[m].buffers for m in members)
        moved = weights + batch * (sum(sizes[s] for s in outside) + sizes[name])
        out[name] = {
            "layers": members,
            "flops": sum(rows[m].flops for m in members) * batch,
            "bytes_moved": moved * item,
        }
    return out


def group_label(layers: list[str]) -> str:
    """``conv1.{conv,bn,relu}`` for layers sharing a dotted prefix, else ``a+b``; one layer as is."""
    if len(layers) == 1:
        return layers[0]
    heads = [name.rpartition(".") for name in layers]
    if len({h for h, _, _ in heads}) == 1 and heads[0][0]:
        return f"{heads[0][0]}.{{{','.join(t for _, _, t in heads)}}}"
    return "+".join(layers)


def _node_layers(model_path: str, layers: set[str], values: dict[str, str]) -> dict[str, str]:
    """ONNX node name → the spec layer it computes (see the module docstring). ``values`` maps
    value names to layers where they differ (an imported graph's). A node none of those name
    belongs to the layer whose output its result flows into first (ORT's optimized graph keeps
    the layer's output value on the fused node that writes it)."""
    import onnx

    def layer_of(value: str) -> str | None:
        name = values.get(value, value)
        return name if name in layers else None

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
            layer = next((found for o in node.output if (found := layer_of(o))), None)
        if layer is not None:
            owner[node.name] = layer
    for node in model.graph.node:
        frontier, seen = list(node.output), set[str]()
        while node.name not in owner and frontier and len(seen) < 64:
            value = frontier.pop(0)
            if found := layer_of(value):
                owner[node.name] = found
            seen.add(value)
            for reader in readers[value]:
                frontier += [o for o in reader.output if o not in seen]
    return owner


@dataclass(frozen=True)
class Profiled:
    """One engine's seconds per call by layer (or by node, where there are no layers), the
    time no layer claims, and the CPU share of its threads while it ran (below ~0.8: busy)."""

    times: dict[str, float]
    unattributed: float
    cpu_share: float | None


def _share(cpu: float, wall: float, threads: int) -> float | None:
    return cpu / (threads * wall) if wall > 0 else None


def profile_ort(
    model_path: str,
    feeds: dict[str, np.ndarray],
    layers: set[str],
    threads: int,
    runs: int = 20,
    values: dict[str, str] | None = None,
) -> Profiled:
    """Each layer's seconds per call under ONNX Runtime's profiler; with no ``layers`` (a file
    archspec cannot read as a spec), each node's, named ``NODE (OpType)``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_profiling = True
    values = values or {}
    with tempfile.TemporaryDirectory(prefix="archspec-profile-") as tmp:
        options.profile_file_prefix = str(Path(tmp) / "ort")
        optimized = str(Path(tmp) / "optimized.onnx")  # the graph whose nodes the profile names
        options.optimized_model_filepath = optimized
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        for _ in range(3):
            session.run(None, feeds)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(runs):
            session.run(None, feeds)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        trace = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
        # the exported graph's names first; ORT's own nodes (layout reorders) by where they flow
        owner = {
            **_node_layers(optimized, layers, values),
            **_node_layers(model_path, layers, values),
        }
    per: dict[str, float] = defaultdict(float)
    rest = 0.0
    node_events = [
        e for e in trace if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
    ]
    skip = len(node_events) * 3 // (runs + 3)  # the untimed warm-up calls come first
    for event in node_events[skip:]:
        node = event["name"].removesuffix("_kernel_time")
        seconds = event["dur"] / 1e6 / runs
        if not layers:
            per[f"{node} ({event.get('args', {}).get('op_name', '?')})"] += seconds
            continue
        # ORT names the nodes it makes after what they replace: "fused node_linear",
        # "conv1_nchwc" (the blocked-layout twin of the node writing conv1)
        plain = node.removeprefix("fused ").removesuffix("_nchwc")
        layer = plain if plain in layers else owner.get(plain) or owner.get(node)
        layer = layer or (values[plain] if values.get(plain) in layers else None)
        if layer is None:
            rest += seconds
        else:
            per[layer] += seconds
    return Profiled(dict(per), rest, _share(cpu, wall, threads))


def profile_torch(
    module: Any, analysis: Analysis, batch: int, runs: int = 20, threads: int = 1
) -> Profiled:
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
    dtype = next(module.parameters()).dtype
    x = torch.randn(batch, *analysis.input_shape, dtype=dtype)
    with torch.inference_mode():
        for _ in range(3):
            module(x)
        total.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(runs):
            module(x)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for h in handles:
        h.remove()
    return Profiled({k: v / runs for k, v in total.items()}, 0.0, _share(cpu, wall, threads))


def profile_spec(spec: Spec, batch: int, threads: int, runs: int = 20) -> dict[str, Any]:
    """Both engines' per-layer times for one spec and batch, with the work of every layer."""
    from archspec.runtime.prepare import compile_and_export

    analysis = analyze(spec)
    with tempfile.TemporaryDirectory(prefix="archspec-profile-") as tmp:
        path = str(Path(tmp) / f"{spec.name}.onnx")
        module = compile_and_export(spec, path, analysis=analysis).module.eval()
        feeds = {
            _input_name(path): np.random.default_rng(0).standard_normal(
                (batch, *analysis.input_shape), dtype=np.float32
            )
        }
        layers = [r.name for r in analysis.rows]
        return _profile(path, feeds, batch, threads, runs, layers, analysis, module, {})


def profile_model_file(item: ModelFile, batch: int, threads: int, runs: int = 20) -> dict[str, Any]:
    """An ONNX file's profile: per layer where archspec reads it as a spec (its FLOPs and
    bytes beside each time; PyTorch too where it has a reference), per layer without FLOPs
    where archspec exported it, else per ORT node."""
    return _profile(
        item.path,
        item.feeds(batch),
        batch,
        threads,
        runs,
        list(item.layers),
        item.analysis,
        item.reference,
        item.values,
    )


def _input_name(path: str) -> str:
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    return next(i.name for i in graph.input if i.name not in initializers)


def _profile(
    path: str,
    feeds: dict[str, np.ndarray],
    batch: int,
    threads: int,
    runs: int,
    layers: list[str],
    analysis: Analysis | None,
    module: Any | None,
    values: dict[str, str],
) -> dict[str, Any]:
    import torch

    from archspec.bench.roofline import torch_threads

    with torch_threads(threads):
        ort = profile_ort(path, feeds, set(layers), threads, runs, values)
        eager = None
        if module is not None and analysis is not None:
            eager = profile_torch(module.eval(), analysis, batch, runs, threads)
    torch.set_num_threads(threads)
    return {
        "batch": batch,
        "work": {} if analysis is None else layer_work(analysis, batch),
        "onnxruntime_groups": {}
        if analysis is None
        else fused_work(analysis, batch, set(ort.times)),
        "onnxruntime": {k: ort.times[k] for k in [*layers, *ort.times] if k in ort.times},
        "onnxruntime_unattributed_s": ort.unattributed,
        "torch": {} if eager is None else eager.times,
        "cpu_share": {
            "onnxruntime": ort.cpu_share,
            **({} if eager is None else {"torch": eager.cpu_share}),
        },
    }


def layer_rows(profile: dict[str, Any], engine: str, roof: float) -> list[dict[str, Any]]:
    """The per-layer rows of one engine, in layer order, for tables, JSON and plots; where
    there are no layers (an ONNX file archspec cannot read), one row per node, no FLOPs."""
    if not profile["work"]:
        return [
            {"layer": name, "ms": seconds * 1e3, "flops": None, "bytes_moved": None,
             "arithmetic_intensity": None, "flops_per_s": None, "fraction_of_roof": None}
            for name, seconds in profile[engine].items()
        ]  # fmt: skip
    rows = []
    if groups := profile.get(f"{engine}_groups"):  # what the engine fused, counted together
        for name, group in groups.items():
            label = group_label(group["layers"])
            fused = LayerTime(label, profile[engine][name], group["flops"], group["bytes_moved"])
            rows.append({**fused.to_json(roof), "layers": group["layers"]})
        return rows
    for name, (flops, moved) in profile["work"].items():
        seconds = profile[engine].get(name)
        if seconds is None:
            continue  # not run by the engine (dropped as a no-op)
        rows.append({**LayerTime(name, seconds, flops, moved).to_json(roof), "layers": [name]})
    return rows


ENGINES = ("onnxruntime", "torch")


def layer_roof(physical: Any, doc: dict[str, Any], profile: dict[str, Any]) -> dict[str, Any]:
    """The roof per-layer fractions divide by: the run's, unless a layer went faster (the
    physical peak at a nominal clock is a lower bound): then, as for whole models
    (:func:`archspec.bench.peak.choose_roof`), the fastest figure measured, so none exceeds 1."""
    from archspec.bench.peak import PhysicalPeak, choose_roof

    run = doc.get("roof") or {"flops_per_s": doc["peak_flops_per_s"], "source": "measured",
                              "why": "the run's roof"}  # fmt: skip
    rates = {
        f"{engine} on layer {r['layer']}": r["flops_per_s"]
        for engine in ENGINES
        for r in layer_rows(profile, engine, 1.0)
        if r["flops_per_s"]
    }
    if not rates or max(rates.values()) <= run["flops_per_s"]:
        return dict(run)
    if not isinstance(physical, PhysicalPeak):
        name = max(rates, key=rates.__getitem__)
        return {"flops_per_s": rates[name], "source": "measured", "why": name}
    return choose_roof(physical, {"the run's roof": run["flops_per_s"], **rates}).to_json()


def profile_report(report: Any, doc: dict[str, Any], plot: str | None = None) -> None:
    """``bench --profile``: profile each spec and ONNX file at its first batch into
    ``doc["profile"]``, and draw each one's roofline chart beside ``plot`` (``--plot``). A
    profile whose engine got under BUSY_SHARE of its threads' CPU time is marked
    unreliable, as the bench's results are."""
    from archspec.bench.model_file import is_onnx, read_model_file
    from archspec.bench.plot import plot_roofline
    from archspec.bench.run import BUSY_SHARE
    from archspec.spec import load

    settings = report.settings
    threads = settings.threads or 1
    doc["profile"] = {}
    doc["command"] = report.command + " --profile"
    for file in report.files:
        if is_onnx(file):
            item = read_model_file(
                file,
                settings.shapes,
                spec_file=settings.spec,
                reference=bool(settings.baselines),
                others=True,
            )
            name, batch = item.name, item.batches(settings.batches)[0]
            prof = profile_model_file(item, batch, threads)
        else:
            spec = load(file)
            name, batch = spec.name, settings.batches[0]
            prof = profile_spec(spec, batch, threads)
        roof_json = layer_roof(report.physical, doc, prof)
        shares = prof["cpu_share"]
        busy = {e: s for e, s in shares.items() if s is not None and s < BUSY_SHARE}
        entry = {
            "batch": batch,
            "onnxruntime_unattributed_ms": prof["onnxruntime_unattributed_s"] * 1e3,
            **{e: layer_rows(prof, e, roof_json["flops_per_s"]) for e in ENGINES},
            "roof": roof_json,
            "cpu_share": shares,
            "reliable": not busy,
            "unreliable_reasons": [
                f"{e} got {100 * s:.0f}% of its threads' CPU time (other processes took the cores)"
                for e, s in busy.items()
            ],
        }
        doc["profile"][name] = entry
        if plot and any(r["flops"] for r in entry["onnxruntime"]):
            stem = Path(plot)
            out = stem.with_name(f"{stem.stem}-{name}-roofline.png")
            title = f"{name}, batch {batch}: layers on ONNX Runtime against the roof"
            plot_roofline(
                entry["onnxruntime"],
                roof_json["flops_per_s"],
                doc.get("bandwidth_bytes_per_s"),
                str(out),
                title,
            )
