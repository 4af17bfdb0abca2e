"""The benchmark's parts: interleaving, statistics, the roofline probe, memory, rendering, plot.

Fake engines make the scheduling tests exact and instant; the real engines
run LeNet-5 only. No test asserts a speed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archspec.bench.engines import Engine, MemoryMeter, OrtEngine, TorchEngine
from archspec.bench.environment import available_cpus, collect_environment, cpu_model
from archspec.bench.render import markdown_table, rows, speedups, summary
from archspec.bench.roofline import measure_peak
from archspec.bench.run import (
    BenchError,
    BenchSettings,
    Latency,
    run_bench,
    time_engines,
)
from archspec.spec import load

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "specs" / "lenet5-lecun1998.yaml"


class FakeEngine(Engine):
    """Sleeps ``seconds`` per call and logs its name, to check the schedule."""

    def __init__(self, name: str, seconds: float, log: list[str]) -> None:
        self.name = name
        self.provider = "cpu"
        self.seconds = seconds
        self.log = log
        self.meter = MemoryMeter("rss")

    def run(self) -> None:
        self.log.append(self.name)
        time.sleep(self.seconds)


def test_rounds_interleave_engines() -> None:
    log: list[str] = []
    engines = [
        FakeEngine("A", 0.002, log),
        FakeEngine("B", 0.002, log),
        FakeEngine("C", 0.002, log),
    ]
    timings = time_engines(engines, warmup=2, min_time=0.03)
    timed = log[6:]  # after 2 warm-up calls each
    assert log[:6] == ["A", "A", "B", "B", "C", "C"]
    # Blocks of A's, then B's, then C's, repeated: every round visits every engine once.
    blocks = [name for i, name in enumerate(timed) if i == 0 or timed[i - 1] != name]
    assert blocks[:6] == ["A", "B", "C", "A", "B", "C"]
    assert len(blocks) % 3 == 0 and len(blocks) >= 9  # at least three rounds
    for t in timings:
        assert sum(t.seconds) >= 0.03
        assert all(s >= 0.002 for s in t.seconds)


def test_slow_engine_gets_one_call_per_round_fast_engine_many() -> None:
    log: list[str] = []
    fast, slow = FakeEngine("fast", 0.001, log), FakeEngine("slow", 0.02, log)
    timings = time_engines([fast, slow], warmup=1, min_time=0.05)
    assert len(timings[0].seconds) > len(timings[1].seconds) >= 3


def test_latency_percentiles() -> None:
    lat = Latency.of([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert lat.p50 == pytest.approx(50.5)
    assert lat.p90 == pytest.approx(90.1)
    assert lat.p99 == pytest.approx(99.01)
    assert lat.min == pytest.approx(1.0) and lat.mean == pytest.approx(50.5)


def test_peak_probe_is_positive_and_restores_threads() -> None:
    import torch

    before = torch.get_num_threads()
    probe = measure_peak("cpu", "fp32", threads=1, min_time=0.01, size=256)
    assert probe.flops_per_s > 0 and probe.size == 256 and probe.threads == 1
    assert probe.calls >= 3
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        measure_peak("cpu", "int8")


def test_memory_meter_sees_an_allocation() -> None:
    meter = MemoryMeter("rss")
    meter.reset()
    block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
    peak, increase = meter.read()
    del block
    assert peak is not None and peak > 64 * 1024 * 1024
    if meter.source == "process-rss-peak":  # the high-water mark could be reset
        assert increase is not None and increase >= 48 * 1024 * 1024


def test_environment_names_the_machine() -> None:
    env = collect_environment(threads=2, device="cpu")
    assert env["cpu"] == cpu_model()
    assert env["gpu"] is None and env["gpu_driver"] is None
    assert env["threads"]["intra_op"] == 2
    for key in ("python", "torch", "onnx", "onnxruntime"):
        assert isinstance(env[key], str) and env[key]
    assert available_cpus() >= 1


def test_settings_are_validated_before_work() -> None:
    for bad in (
        BenchSettings(batches=()),
        BenchSettings(batches=(0,)),
        BenchSettings(baselines=("jax",)),
        BenchSettings(precision="int8"),
        BenchSettings(min_time=0),
        BenchSettings(provider="tpu"),
    ):
        with pytest.raises(BenchError):
            run_bench([LENET], bad)


def test_run_bench_on_a_loaded_spec_ort_only() -> None:
    import torch

    before = torch.get_num_threads()
    seen: list[float] = []
    report = run_bench(
        [load(LENET)],
        BenchSettings(
            batches=(3,), provider="cpu", baselines=(), min_time=0.02, warmup=0, threads=1
        ),
        progress=lambda _desc, fraction: seen.append(fraction),
    )
    assert torch.get_num_threads() == before  # the caller's thread count is restored
    assert [r.engine for r in report.results] == ["onnxruntime"]
    r = report.results[0]
    assert r.batch == 3 and r.file is None and r.max_abs_diff is None  # no torch to compare with
    assert r.samples >= 3
    assert report.environment["threads"]["intra_op"] == 1
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    doc = report.to_json()
    assert doc["settings"]["threads"] == 1
    assert doc["results"][0]["latency_ms"]["p50"] == r.latency.p50


def test_ort_engine_without_io_binding_matches_torch() -> None:
    import tempfile

    from archspec.onnx.export import export_spec
    from archspec.runtime.providers import choose
    from archspec.runtime.session import create_session
    from archspec.torch.build import compile_spec

    spec = load(LENET)
    module = compile_spec(spec, 0)
    x = np.random.default_rng(1).standard_normal((2, 1, 32, 32), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_spec(spec, path, module=module)
        session = create_session(path, choose("cpu"), intra_op_threads=1)
        outputs = []
        for binding in (True, False):
            engine = OrtEngine(session, "cpu", device="cpu", io_binding=binding)
            engine.prepare(x, (2, 10))
            engine.run()
            outputs.append(engine.output())
    eager = TorchEngine(module, compiled=False, device="cpu")
    eager.prepare(x, (2, 10))
    eager.run()
    for out in outputs:
        np.testing.assert_allclose(out, eager.output(), rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError):
        OrtEngine(session, "cpu", device="cpu").run()  # not prepared


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("ARCHSPEC_SLOW_TESTS"),
    reason="torch.compile takes a minute on a small CPU; set ARCHSPEC_SLOW_TESTS=1",
)
def test_torch_compile_engine_matches_eager() -> None:
    from archspec.torch.build import compile_spec

    module = compile_spec(load(LENET), 0)
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32), dtype=np.float32)
    outs = []
    for compiled in (False, True):
        engine = TorchEngine(module, compiled=compiled, device="cpu")
        engine.prepare(x, (2, 10))
        engine.run()
        outs.append(engine.output())
    assert engine.name == "torch-compile"
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4)


def _doc() -> dict[str, Any]:
    def result(spec: str, engine: str, batch: int, p50: float) -> dict[str, Any]:
        return {
            "spec": spec,
            "engine": engine,
            "provider": "cpu",
            "batch": batch,
            "precision": "fp32",
            "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2},
            "throughput": batch / (p50 / 1e3),
            "flops_per_s": 1e9,
            "roofline_fraction": 0.25,
            "peak_memory_bytes": 3 * 1024**2,
        }

    return {
        "environment": {"cpu": "Test CPU", "gpu": None, "threads": {"intra_op": 2}},
        "peak_flops_per_s": 4e9,
        "roofline": {"precision": "fp32", "size": 2048},
        "results": [
            result("a", "onnxruntime", 1, 1.0),
            result("a", "torch", 1, 2.0),
            result("a", "onnxruntime", 8, 4.0),
            result("a", "torch", 8, 4.0),
            result("b", "onnxruntime", 1, 10.0),
            result("b", "torch-compile", 1, 5.0),
        ],
    }


def test_speedups_are_against_torch_eager_at_the_same_batch() -> None:
    assert speedups(_doc()["results"]) == [2.0, 1.0, 1.0, 1.0, None, None]


def test_markdown_table_renders_every_result() -> None:
    text = markdown_table(_doc())
    lines = text.splitlines()
    assert lines[0].startswith("| spec | engine | provider | batch |")
    assert len(lines) == 2 + 6
    assert (
        "| a | onnxruntime | cpu | 1 | fp32 | 1.00 | 1.10 | 1.20 | 1,000 | 1.0 | 25.0% | — "
        "| 3.0 MiB | 2.00× | — | — | — |" in text  # a report from before the GEMM fraction
    )
    assert len(rows(_doc())[0]) == len(lines[0].split("|")) - 2
    assert "Test CPU, 2 threads; roof 4.0 GFLOP/s" in summary(_doc())


def test_markdown_table_has_the_gemm_ratio_interval_and_reliability() -> None:
    doc = _doc()
    first, second = doc["results"][0], doc["results"][4]
    first.update(
        gemm_ratio=0.5,
        cpu_share=0.61,
        vs_torch={"ratio": 2.0, "ci_low": 1.234, "ci_high": 2.5},
        reliable=False,
        unreliable_reasons=["busy"],
    )
    # an ONNX file whose FLOPs archspec cannot count: no FLOP/s, no fraction
    second.update(flops_per_s=None, roofline_fraction=None, gemm_ratio=None, reliable=True)
    head, _, *lines = markdown_table(doc).splitlines()
    assert head.endswith(
        "| roofline | vs GEMM | peak memory | vs torch | 95% CI | CPU share | reliable |"
    )
    assert lines[0].endswith("| 1.0 | 25.0% | 0.50× | 3.0 MiB | 2.00× ! | 1.23–2.50× | 61% | no |")
    assert lines[4].endswith("| 100 | n/a | n/a | n/a | 3.0 MiB | — | — | — | yes |")


def test_plot_writes_a_png_atomically(tmp_path: Path) -> None:
    from archspec.bench.plot import plot_throughput

    target = tmp_path / "t.png"
    plot_throughput(_doc(), target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]
    with pytest.raises(ValueError):
        plot_throughput({"results": []}, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_pivot_table_has_a_column_per_batch_and_precision() -> None:
    from archspec.bench.render import pivot_markdown

    doc = _doc()
    fp16 = {**doc, "results": [{**r, "precision": "fp16"} for r in doc["results"]]}
    text = pivot_markdown([doc, fp16], (1, 8, 64))
    lines = text.splitlines()
    assert lines[0] == (
        "| spec | engine | fp32 b1 | fp32 b8 | fp32 b64 | fp16 b1 | fp16 b8 | fp16 b64 | best roofline |"
    )
    assert lines[2] == "| a | onnxruntime | 1,000 | 2,000 | — | 1,000 | 2,000 | — | 25.0% |"
    assert len(lines) == 2 + 4  # a/onnxruntime, a/torch, b/onnxruntime, b/torch-compile


def test_command_line_spells_out_every_setting() -> None:
    from archspec.bench.run import OrtTuning, command_line

    settings = BenchSettings(
        batches=(1, 8),
        provider="cpu",
        baselines=(),
        threads=2,
        cuda_graph=True,
        ort=OrtTuning(provider_options=(("prefer_nhwc", "1"),)),
    )
    assert command_line(["specs/a b.yaml"], settings) == (
        "archspec bench 'specs/a b.yaml' --batch 1,8 --provider cpu --baseline none "
        "--precision fp32 --warmup 3 --min-time 1 --threads 2 --cuda-graph "
        "--ort-option prefer_nhwc=1"
    )


def test_bench_all_rewrites_only_the_marked_region() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_all", ROOT / "scripts" / "bench_all.py")
    assert spec is not None and spec.loader is not None
    bench_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_all)
    text = "intro\n<!-- bench:cpu:begin -->\nold\n<!-- bench:cpu:end -->\noutro\n"
    doc = {**_doc(), "command": "archspec bench x.yaml", "wall_s": 3.0}
    out = bench_all.replace_region(text, "cpu", bench_all.cpu_section(doc))
    assert out.startswith("intro\n<!-- bench:cpu:begin -->\nProduced by:")
    assert out.endswith("<!-- bench:cpu:end -->\noutro\n")
    assert "archspec bench x.yaml" in out and "| a | torch | cpu | 8 |" in out and "old" not in out
    with pytest.raises(SystemExit):
        bench_all.replace_region("no markers", "gpu", "x")
