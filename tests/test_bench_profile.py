"""bench --profile: every layer's time on each engine, its work, and the roofline chart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import archspec
from archspec.bench.profile import layer_rows, layer_work, profile_spec

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "specs" / "lenet5-lecun1998.yaml"


def test_layer_work_by_hand() -> None:
    work = layer_work(archspec.analyze(LENET), batch=2)
    # C1: 156 weights; 2 × (1×32×32 input + 6×28×28 output) values; float32
    assert work["C1"] == (2 * 2 * 117_600, 4 * (156 + 2 * (1024 + 4704)))
    # OUTPUT (RBF): 840 fixed centres (a buffer), 84 in, 10 out
    assert work["OUTPUT"] == (2 * 2 * 840, 4 * (840 + 2 * (84 + 10)))


def test_every_layer_is_timed_on_both_engines() -> None:
    spec = archspec.load(LENET)
    profile = profile_spec(spec, batch=1, threads=1, runs=3)
    layers = [r.name for r in archspec.analyze(spec).rows]
    assert sorted(profile["torch"]) == sorted(layers)
    # every ONNX Runtime node is attributed to a spec layer (its output values carry the names)
    assert profile["onnxruntime_unattributed_s"] == 0
    assert set(profile["onnxruntime"]) == set(layers) - {"flatten"} or set(
        profile["onnxruntime"]
    ) == set(layers)
    rows = layer_rows(profile, "onnxruntime", roof=1e11)
    for r in rows:
        assert r["arithmetic_intensity"] == r["flops"] / r["bytes_moved"]
        assert 0 <= r["fraction_of_roof"] <= 1


def test_cli_profile_writes_the_json_and_the_roofline_chart(tmp_path: Path) -> None:
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    proc = subprocess.run(
        [sys.executable, "-m", "archspec.cli.main", "bench", str(LENET), "--batch", "1",
         "--provider", "cpu", "--min-time", "0.1", "--threads", "1", "--quiet", "--profile",
         "-o", str(out), "--plot", str(plot)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "lenet5-lecun1998, onnxruntime, batch 1: per layer" in proc.stdout
    doc = json.loads(out.read_text())
    layers = [r["layer"] for r in doc["profile"]["lenet5-lecun1998"]["torch"]]
    assert layers[:2] == ["C1", "S2"]
    chart = tmp_path / "r-lenet5-lecun1998-roofline.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
