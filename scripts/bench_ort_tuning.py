#!/usr/bin/env python
"""Measure what each ONNX Runtime session setting gains on this machine (CPU provider).

Every variant differs from the tuned configuration that ``archspec bench``
uses in exactly one setting; all variants and PyTorch eager run in the same
interleaved rounds (archspec.bench.run.time_engines), on the same
weights and input, with the same thread count, so the table isolates each
setting's effect. The run is repeated ``--repeat`` times; the table gives
the median p50 latency over repeats and the spread (min–max of the
repeats' p50s), because one run on a shared machine proves little.

Sessions are built here from raw ``onnxruntime.SessionOptions`` because the
point is to vary knobs that ``archspec.runtime.session.create_session``
deliberately fixes.

    python scripts/bench_ort_tuning.py specs/alexnet.yaml --batch 8 --repeat 3 --min-time 3

On a machine shared with other work, save each run (``-o run1.json``), run
again when the machine is quiet, and tabulate only the quiet repeats:

    python scripts/bench_ort_tuning.py --merge run*.json --min-share 0.9
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Variant:
    name: str
    why: str
    configure: Callable[[Any], None]  # mutates SessionOptions
    model: str = "dynamo"  # which exported file: dynamo, torchscript, fp16
    io_binding: bool = True
    fixed_batch: bool = False


def _nothing(_: Any) -> None:
    pass


def variants() -> list[Variant]:
    import onnxruntime as ort

    level = ort.GraphOptimizationLevel

    def set_(**fields: Any) -> Callable[[Any], None]:
        def apply(so: Any) -> None:
            for key, value in fields.items():
                setattr(so, key, value)

        return apply

    def config(key: str, value: str) -> Callable[[Any], None]:
        return lambda so: so.add_session_config_entry(key, value)

    return [
        Variant("tuned (archspec bench)", "graph optimisation all, IO binding", _nothing),
        Variant(
            "graph optimisation: extended",
            "no NCHWc layout transformer",
            set_(graph_optimization_level=level.ORT_ENABLE_EXTENDED),
        ),
        Variant(
            "graph optimisation: basic",
            "constant folding, redundant-node removal only",
            set_(graph_optimization_level=level.ORT_ENABLE_BASIC),
        ),
        Variant(
            "graph optimisation: disabled",
            "the exported graph as is",
            set_(graph_optimization_level=level.ORT_DISABLE_ALL),
        ),
        Variant("intra-op threads: 1", "half the cores", set_(intra_op_num_threads=1)),
        Variant(
            "execution mode: parallel",
            "ORT_PARALLEL, 2 inter-op threads",
            set_(execution_mode=ort.ExecutionMode.ORT_PARALLEL, inter_op_num_threads=2),
        ),
        Variant(
            "memory arena: off", "enable_cpu_mem_arena=False", set_(enable_cpu_mem_arena=False)
        ),
        Variant("memory pattern: off", "enable_mem_pattern=False", set_(enable_mem_pattern=False)),
        Variant(
            "spinning: off",
            "session.intra_op.allow_spinning=0",
            config("session.intra_op.allow_spinning", "0"),
        ),
        Variant(
            "weight prepacking: off",
            "session.disable_prepacking=1",
            config("session.disable_prepacking", "1"),
        ),
        Variant(
            "denormals as zero",
            "session.set_denormal_as_zero=1",
            config("session.set_denormal_as_zero", "1"),
        ),
        Variant(
            "IO binding: off", "session.run() with numpy in and out", _nothing, io_binding=False
        ),
        Variant(
            "fixed batch",
            "free-dimension override: batch fixed at session creation",
            _nothing,
            fixed_batch=True,
        ),
        Variant(
            "TorchScript-exported graph",
            "torch.onnx.export(dynamo=False)",
            _nothing,
            model="torchscript",
        ),
        Variant("fp16 model", "export_spec(fp16=True); fp16 input", _nothing, model="fp16"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="specs/alexnet.yaml")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--min-time", type=float, default=3.0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated variant names to keep")
    parser.add_argument("-o", "--output", help="write the raw figures as JSON")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="measure nothing: print the table over the repeats saved in these -o files",
    )
    parser.add_argument(
        "--min-share",
        type=float,
        default=0.0,
        help="keep only repeats where tuned ORT and torch got this CPU share (e.g. 0.9)",
    )
    args = parser.parse_args(argv)
    if args.merge:
        print(
            render(
                [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.merge],
                args.min_share,
            )
        )
        return 0

    import onnxruntime as ort
    import torch

    from archspec.bench.engines import OrtEngine, TorchEngine
    from archspec.bench.environment import available_cpus, cpu_model
    from archspec.bench.run import time_engines
    from archspec.onnx.export import export_spec
    from archspec.runtime.prepare import compile_and_export
    from archspec.spec import load

    threads = args.threads or available_cpus()
    torch.set_num_threads(threads)
    ort.set_default_logger_severity(3)
    spec = load(args.spec)
    tmp_dir = tempfile.TemporaryDirectory()
    files = {"dynamo": Path(tmp_dir.name) / "dynamo.onnx"}
    module = compile_and_export(spec, files["dynamo"], seed=0, module_dtype="float32").module
    shape = (args.batch, *module.input_shape)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    with torch.inference_mode():
        out_shape = tuple(module(torch.from_numpy(x)).shape)

    chosen = variants()
    if args.only:
        keep = {s.strip() for s in args.only.split(",")}
        chosen = [v for v in chosen if v.name in keep or v.name.startswith("tuned")]
    figures: dict[str, list[float]] = {v.name: [] for v in chosen}
    figures["torch eager"] = []
    shares: dict[str, list[float]] = {name: [] for name in figures}
    failures: dict[str, str] = {}
    with tmp_dir as tmp:
        if any(v.model == "fp16" for v in chosen):
            files["fp16"] = Path(tmp) / "fp16.onnx"
            export_spec(spec, files["fp16"], module=module, fp16=True)
        if any(v.model == "torchscript" for v in chosen):
            files["torchscript"] = Path(tmp) / "ts.onnx"
            _torchscript_export(module, files["torchscript"], shape)

        engines: list[Any] = []
        names: list[str] = []
        for v in chosen:
            so = ort.SessionOptions()
            so.log_severity_level = 3
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if v.fixed_batch:
                so.add_free_dimension_override_by_name("batch", args.batch)
            v.configure(so)
            try:
                session = ort.InferenceSession(
                    str(files[v.model]), so, providers=["CPUExecutionProvider"]
                )
                engine = OrtEngine(session, "cpu", device="cpu", io_binding=v.io_binding)
                engine.prepare(x, out_shape)
                engine.run()
            except Exception as exc:
                failures[v.name] = str(exc).splitlines()[0][:160]
                figures.pop(v.name)
                continue
            engines.append(engine)
            names.append(v.name)
        eager = TorchEngine(module, compiled=False, device="cpu")
        eager.prepare(x, out_shape)
        engines.append(eager)
        names.append("torch eager")
        for r in range(args.repeat):
            started = time.perf_counter()
            timings = time_engines(engines, warmup=args.warmup, min_time=args.min_time)
            for name, timing in zip(names, timings, strict=True):
                figures[name].append(1e3 * float(np.median(timing.seconds)))
                shares[name].append(timing.cpu_share(threads) or 0.0)
            print(
                f"repeat {r + 1}/{args.repeat} done in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )

    whys = {v.name: v.why for v in chosen}
    whys["torch eager"] = "PyTorch eager, inference_mode, same threads"
    doc = {
        "header": (
            f"{spec.name}, batch {args.batch}, {threads} threads, {cpu_model()}, "
            f"onnxruntime {ort.__version__}, torch {torch.__version__}; "
            f"{args.min_time:g} s per engine per repeat, interleaved"
        ),
        "order": names,
        "whys": whys,
        "figures_ms": figures,
        "cpu_share": shares,
        "failures": failures,
        "batch": args.batch,
        "threads": threads,
    }
    if args.output:
        from archspec.output_files import write_atomic

        write_atomic(args.output, json.dumps(doc, indent=2) + "\n")
    print(render([doc], args.min_share))
    return 0


def render(docs: list[dict[str, Any]], min_share: float = 0.0) -> str:
    """The Markdown table, over every repeat of ``docs`` in which the machine was quiet enough.

    A repeat counts when both the tuned session and torch eager got at
    least ``min_share`` of their threads' CPU time in it: on a shared
    machine, repeats taken while another process held a core measure that
    process as much as the settings (the 1-thread and no-spinning variants
    use less CPU by design, so they do not decide).
    """
    from archspec.bench.render import fmt_ms

    first = docs[0]
    order: list[str] = first["order"]
    tuned, eager = order[0], "torch eager"
    figures: dict[str, list[float]] = {name: [] for name in order}
    shares: dict[str, list[float]] = {name: [] for name in order}
    kept = total = 0
    for doc in docs:
        for r in range(len(doc["figures_ms"][tuned])):
            total += 1
            if min(doc["cpu_share"][tuned][r], doc["cpu_share"][eager][r]) < min_share:
                continue
            kept += 1
            for name in order:
                figures[name].append(doc["figures_ms"][name][r])
                shares[name].append(doc["cpu_share"][name][r])
    if not kept:
        return f"no repeat had a CPU share of at least {min_share:.0%} (of {total})"
    base = statistics.median(figures[tuned])
    torch_ms = statistics.median(figures[eager])
    lines = [
        f"{first['header']}; {kept} of {total} repeats "
        f"(those with CPU share ≥ {min_share:.0%}); p50 ms is the median over them\n",
        "| setting | what changes | p50 ms | spread of repeats "
        "| tuned is faster by | vs torch eager | CPU share |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in order:
        ms = figures[name]
        med = statistics.median(ms)
        gain = "—" if name == tuned else f"{(med / base - 1) * 100:+.0f}%"
        lines.append(
            f"| {name} | {first['whys'][name]} | {fmt_ms(med)} | {fmt_ms(min(ms))}–{fmt_ms(max(ms))} | "
            f"{gain} | {torch_ms / med:.2f}× | {100 * statistics.median(shares[name]):.0f}% |"
        )
    for name, reason in first["failures"].items():
        lines.append(f"| {name} | {first['whys'][name]} | fails: {reason} | | | | |")
    return "\n".join(lines)


def _torchscript_export(module: Any, path: Path, shape: tuple[int, ...]) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(shape),),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=18,
            dynamo=False,
        )


if __name__ == "__main__":
    sys.exit(main())
