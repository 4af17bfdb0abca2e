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


def test_fused_layers_share_a_row_with_their_work_counted_together() -> None:
    from archspec.bench.profile import fused_work, group_label

    analysis = archspec.analyze(ROOT / "specs" / "resnet18.yaml")
    rows = {r.name: r for r in analysis.rows}
    # ONNX Runtime ran conv1, bn1 and relu as one node, timed as 'relu'; maxpool on its own
    groups = fused_work(analysis, 2, {"relu", "maxpool"})
    assert groups["relu"]["layers"] == ["conv1", "bn1", "relu"]
    # conv1: 64 × 3 × 7 × 7 weights over 112 × 112 outputs; 2 FLOPs a MAC; batch 2
    assert groups["relu"]["flops"] == 2 * 2 * 64 * 3 * 49 * 112 * 112
    weights = sum(rows[n].params + rows[n].buffers for n in ("conv1", "bn1"))
    # float32: weights once, the 3×224×224 input and the 64×112×112 output per sample
    assert groups["relu"]["bytes_moved"] == 4 * (weights + 2 * (3 * 224 * 224 + 64 * 112 * 112))
    assert groups["maxpool"]["layers"] == ["maxpool"]
    assert group_label(["layer1.0.conv1", "layer1.0.bn1"]) == "layer1.0.{conv1,bn1}"
    assert group_label(["conv1", "bn1", "relu"]) == "conv1+bn1+relu"
    profile = {
        "work": {"relu": (1, 1)},
        "onnxruntime": {"relu": 0.004, "maxpool": 0.001},
        "onnxruntime_groups": groups,
    }
    (fused, pool) = layer_rows(profile, "onnxruntime", roof=1e12)
    assert fused["layer"] == "conv1+bn1+relu" and fused["layers"] == ["conv1", "bn1", "relu"]
    assert fused["flops_per_s"] == groups["relu"]["flops"] / 0.004
    assert pool["layer"] == "maxpool"


def test_a_layer_faster_than_the_roof_raises_it() -> None:
    """At a nominal clock the physical peak is a lower bound; no layer's fraction exceeds 1."""
    from archspec.bench.profile import layer_roof

    profile = {"work": {"a": (2_000_000_000, 10**6)}, "onnxruntime": {"a": 0.005}, "torch": {}}
    doc = {"peak_flops_per_s": 1.6e11, "roof": None}
    roof = layer_roof(None, doc, profile)
    assert roof == {"flops_per_s": 4e11, "source": "measured", "why": "onnxruntime on layer a"}
    assert layer_rows(profile, "onnxruntime", roof["flops_per_s"])[0]["fraction_of_roof"] == 1.0
    slower = {**profile, "onnxruntime": {"a": 0.02}}  # 100 GFLOP/s: the run's roof stands
    assert layer_roof(None, doc, slower)["flops_per_s"] == 1.6e11


def test_the_roofline_model_places_each_layer_under_its_binding_roof() -> None:
    """Derived by hand from the roofline model: attainable = min(roof, bandwidth × FLOP/B)."""
    from archspec.bench.profile import attainable

    roof, bandwidth = 200e9, 40e9
    # AlexNet's fc6 shape: 0.5 FLOP/B can reach 20 GFLOP/s from memory; 18 is 90 % of it
    fc = {"flops": 75_500_000, "flops_per_s": 18e9, "arithmetic_intensity": 0.5}
    assert attainable(fc, roof, bandwidth) == ("memory", 18e9 / 20e9)
    # a convolution at 75 FLOP/B: memory would allow 3,000 GFLOP/s, the compute roof binds
    conv = {"flops": 299_000_000, "flops_per_s": 150e9, "arithmetic_intensity": 75.0}
    assert attainable(conv, roof, bandwidth) == ("compute", 150e9 / 200e9)
    # faster than its bytes could come from memory: they came from cache; compute binds
    small = {"flops": 1_000_000, "flops_per_s": 30e9, "arithmetic_intensity": 0.5}
    assert attainable(small, roof, bandwidth) == ("cache", 30e9 / 200e9)
    # no FLOPs (a pool, a flatten), or no roof: nothing to place
    assert attainable(
        {"flops": 0, "flops_per_s": 0.0, "arithmetic_intensity": 0.0}, roof, bandwidth
    ) == ("—", None)
    assert attainable(conv, roof, None) == ("compute", 150e9 / 200e9)
