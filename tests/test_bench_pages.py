"""docs/profiles and docs/benchmarks.md from saved reports: what each page states, and when
scripts/bench_all.py measures again. Reports are built here; nothing is timed."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from archspec.bench.pages import profile_index, profile_page, reliability_note, roof_line

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "archspec bench specs/m.yaml --batch 1 --provider cpu --profile"


def _row(layer: str, ms: float, flops: int, moved: int) -> dict[str, Any]:
    return {
        "layer": layer,
        "ms": ms,
        "flops": flops,
        "bytes_moved": moved,
        "arithmetic_intensity": flops / moved,
        "flops_per_s": flops / (ms / 1e3),
        "fraction_of_roof": flops / (ms / 1e3) / 1.6e11,
    }


def _result(engine: str, p50: float, share: float, reasons: list[str]) -> dict[str, Any]:
    return {
        "spec": "m",
        "engine": engine,
        "provider": "cpu",
        "batch": 1,
        "precision": "fp32",
        "latency_ms": {"p50": p50, "p90": p50, "p99": p50},
        "throughput": 1e3 / p50,
        "flops_per_s": 2e9 / (p50 / 1e3),
        "roofline_fraction": 2e9 / (p50 / 1e3) / 1.6e11,
        "gemm_ratio": 0.5,
        "peak_memory_bytes": 300 * 1024**2,
        "cpu_share": share,
        "vs_torch": {"ratio": 2.0, "ci_low": 1.9, "ci_high": 2.1} if engine != "torch" else None,
        "reliable": not reasons,
        "unreliable_reasons": reasons,
    }


def report(busy: bool = False) -> dict[str, Any]:
    why = ["the engine got 40% of its threads' CPU time (other processes took the cores)"]
    return {
        "command": COMMAND,
        "environment": {
            "cpu": "Test CPU",
            "threads": {"intra_op": 2},
            "python": "3.11",
            "torch": "2.13",
            "onnx": "1.23",
            "onnxruntime": "1.31",
            "platform": "Linux",
        },
        "peak_flops_per_s": 1.6e11,
        "roof": {"flops_per_s": 1.6e11, "source": "physical", "why": "the formula"},
        "physical_peak": {
            "flops_per_s": 1.6e11,
            "inputs": {
                "cores": 2,
                "fma_units": 2,
                "vector_bits": 256,
                "element_bits": 32,
                "clock_hz": 2.5e9,
            },
            "clock": "nominal",
        },
        "gemm_probes": {"torch matmul": 9e10, "numpy matmul": 9.5e10},
        "bandwidth_bytes_per_s": 4e10,
        "wall_s": 12.0,
        "results": [
            _result("onnxruntime", 20.0, 0.4 if busy else 0.99, why if busy else []),
            _result("torch", 40.0, 0.98, []),
        ],
        "profile": {
            "m": {
                "batch": 1,
                "onnxruntime_unattributed_ms": 0.25,
                "onnxruntime": [_row("conv1", 12.5, 2_000_000_000, 4_000_000)],
                "torch": [_row("conv1", 30.0, 2_000_000_000, 4_000_000)],
                "cpu_share": {"onnxruntime": 0.99, "torch": 0.97},
                "reliable": True,
                "unreliable_reasons": [],
            }
        },
    }


def test_a_page_states_command_machine_roof_and_both_engines_layers() -> None:
    page = profile_page(report(), "m", "m-roofline.png", "python scripts/bench_all.py profiles")
    assert f"```sh\n{COMMAND}\n```" in page
    assert "Machine: Test CPU, 2 threads; roof 160.0 GFLOP/s" in page
    assert "Python 3.11, torch 2.13, onnx 1.23, onnxruntime 1.31; Linux." in page
    assert (
        "Physical peak: 2 cores × 2 FMA units × (256 / 32 lanes) × 2 × 2.500 GHz (nominal clock) "
        "= 160.0 GFLOP/s. Best GEMM measured: numpy matmul, 95.0 GFLOP/s. "
        "Memory bandwidth (triad): 40.0 GB/s."
    ) in page
    assert "![m: layers on ONNX Runtime against the roofs](m-roofline.png)" in page
    # conv1 on ORT: 2 GFLOP in 12.5 ms = 160 GFLOP/s, all of the roof; intensity 500 FLOP/B
    assert "| conv1 | 12.500 | 2,000.0 | 3,906 | 500.0 | 160.0 | 100.0% |" in page
    assert "| conv1 | 30.000 | 2,000.0 | 3,906 | 500.0 | 66.7 | 41.7% |" in page
    assert "Sum of the layers: 12.50 ms per call; 0.250 ms in nodes no layer claims." in page
    assert "## PyTorch eager, per layer" in page
    assert "unreliable" not in page  # a quiet run says nothing about reliability
    assert "| m | onnxruntime | cpu | 1 | fp32 | 20.00 |" in page  # the whole-model table


def test_the_tools_own_marks_decide_the_busy_machine_banner() -> None:
    assert reliability_note(report()) is None
    note = reliability_note(report(busy=True))
    assert note is not None
    assert note.startswith("> **Measured on a busy machine: these figures are marked unreliable.**")
    assert "> - m onnxruntime batch 1: the engine got 40% of its threads' CPU time" in note
    # a busy profile alone marks the page too
    doc = report()
    doc["profile"]["m"]["unreliable_reasons"] = ["torch got 50% of its threads' CPU time"]
    note = reliability_note(doc)
    assert note is not None and "> - m profile at batch 1: torch got 50%" in note
    page = profile_page(report(busy=True), "m", None, "x")
    assert "Measured on a busy machine" in page and "## Roofline" not in page


def test_the_index_has_a_row_per_model() -> None:
    quiet, busy = report(), report(busy=True)
    text = profile_index({"a": quiet, "b": busy}, "python scripts/bench_all.py profiles")
    assert "| [a](a.md) | 20.00 | 40.00 | 2.00× | 1.90–2.10× | 62.5% | yes |" in text
    assert "| [b](b.md) | 20.00 | 40.00 | 2.00× | 1.90–2.10× | 62.5% | no |" in text
    assert "1 of 2 pages carry reliability marks (see each page): b." in text
    assert roof_line({}) == ""


def _bench_all() -> Any:
    spec = importlib.util.spec_from_file_location("bench_all", ROOT / "scripts" / "bench_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_profiles_renders_pages_and_measures_only_what_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench_all = _bench_all()
    spec = "specs/lenet5-maxpool.yaml"
    argv = ["bench", spec, *bench_all.PROFILE_OPTIONS, "--profile", "--format", "json", "--quiet"]
    doc = copy.deepcopy(report())
    doc["profile"] = {"lenet5-maxpool": doc["profile"].pop("m")}
    doc["page"] = {"argv": argv, "spec_sha256": bench_all._sha256(spec)}
    (tmp_path / "lenet5-maxpool.json").write_text(json.dumps(doc))
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        fresh = {**doc, "command": "measured again"}
        return subprocess.CompletedProcess(cmd, 0, json.dumps(fresh), "")

    monkeypatch.setattr(bench_all.subprocess, "run", fake_run)
    args = ["profiles", "--specs", str(ROOT / spec), "--out", str(tmp_path)]
    assert bench_all.main(args) == 0
    assert calls == []  # the saved report is current: nothing measured
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "README.md",
        "lenet5-maxpool-roofline.png",
        "lenet5-maxpool.json",
        "lenet5-maxpool.md",
    ]
    assert (tmp_path / "lenet5-maxpool-roofline.png").read_bytes()[:4] == b"\x89PNG"
    assert "[lenet5-maxpool](lenet5-maxpool.md)" in (tmp_path / "README.md").read_text()
    assert bench_all.main([*args, "--force"]) == 0
    assert calls == [["archspec", *argv]]
    saved = json.loads((tmp_path / "lenet5-maxpool.json").read_text())
    assert saved["command"] == "measured again" and saved["page"]["argv"] == argv
    assert "measured again" in (tmp_path / "lenet5-maxpool.md").read_text()


def test_docs_writes_the_new_columns_and_keeps_the_gpu_table_marked(tmp_path: Path) -> None:
    bench_all = _bench_all()
    page = tmp_path / "benchmarks.md"
    page.write_text((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8"))
    saved = tmp_path / "cpu.json"
    saved.write_text(json.dumps(report(busy=True)))
    assert bench_all.main(["docs", "--cpu", str(saved), "--page", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    cpu = text.split("<!-- bench:cpu:begin -->")[1].split("<!-- bench:cpu:end -->")[0]
    assert f"```sh\n{COMMAND}\n```" in cpu
    assert "| roofline | vs GEMM | peak memory | vs torch | 95% CI | CPU share | reliable |" in cpu
    assert "| 2.00× ! | 1.90–2.10× | 40% | no |" in cpu
    assert "**Measured on a busy machine: these figures are marked unreliable.**" in cpu
    gpu = text.split("<!-- bench:gpu:begin -->")[1].split("<!-- bench:gpu:end -->")[0]
    assert gpu.lstrip().startswith("**Not measured (no GPU lent).**")
