"""`archspec check` on the shipped specs: the figures of DESIGN.md, the JSON contract, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import archspec
from archspec.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

# DESIGN.md's table of shipped specs: (input, params, MACs).
DESIGN_TABLE = {
    "lenet5-lecun1998": ([1, 32, 32], 60_000, None),
    "lenet5-d2l": ([1, 28, 28], 61_706, 416_520),
    "lenet5-maxpool": ([1, 28, 28], 44_426, 281_640),
    "alexnet-krizhevsky2012": ([3, 227, 227], 60_965_224, 724_406_816),
    "alexnet": ([3, 227, 227], 62_378_344, 1_135_256_096),
    "alexnet-d2l": ([1, 224, 224], 46_764_746, 938_146_176),
    "alexnet-torchvision": ([3, 224, 224], 61_100_840, 714_188_480),
}

# LeCun et al. 1998, section II.B: (params, connections) per layer; OUTPUT's 840 are buffers.
LECUN_1998 = {
    "C1": (156, 122_304),
    "S2": (12, 5_880),
    "C3": (1_516, 151_600),
    "S4": (32, 2_000),
    "C5": (48_120, 48_120),
    "F6": (10_164, 10_164),
    "OUTPUT": (0, 840),
}


@pytest.fixture(scope="module")
def report() -> dict[str, dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "archspec.cli.main", "check", "--format", "json", str(SPECS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    return {s["name"]: s for s in doc["specs"]}


def test_every_shipped_spec_passes(report: dict[str, dict[str, object]]) -> None:
    """The seven of DESIGN.md's table and every spec added since: all their figures hold."""
    assert set(DESIGN_TABLE) <= set(report)
    assert all(s["ok"] for s in report.values())


@pytest.mark.parametrize("name", sorted(DESIGN_TABLE))
def test_design_table_totals(report: dict[str, dict[str, object]], name: str) -> None:
    shape, params, macs = DESIGN_TABLE[name]
    spec = report[name]
    totals = spec["totals"]
    assert isinstance(totals, dict)
    assert spec["input"] == shape
    assert totals["params"] == params
    if macs is not None:
        assert totals["macs"] == macs
        assert totals["flops"] == 2 * macs


def test_lecun_per_layer_figures(report: dict[str, dict[str, object]]) -> None:
    spec = report["lenet5-lecun1998"]
    layers = {row["name"]: row for row in spec["layers"]}  # type: ignore[attr-defined]
    for name, (params, connections) in LECUN_1998.items():
        assert (layers[name]["params"], layers[name]["connections"]) == (params, connections), name
    assert layers["OUTPUT"]["buffers"] == 840
    assert spec["totals"]["params"] == 60_000  # type: ignore[index]
    assert spec["totals"]["buffers"] == 840  # type: ignore[index]
    assert spec["totals"]["connections"] == 340_908  # type: ignore[index]
    assert spec["output"] == [10]


def test_json_contract_keys(report: dict[str, dict[str, object]]) -> None:
    spec = report["lenet5-lecun1998"]
    assert {"file", "name", "ok", "input", "output", "totals", "layers", "diagnostics"} <= set(spec)
    assert {
        "params",
        "buffers",
        "connections",
        "macs",
        "flops",
        "mult_adds_torchinfo",
        "param_bytes",
        "peak_activation_bytes",
    } <= set(
        spec["totals"]  # type: ignore[arg-type]
    )
    c1 = spec["layers"][0]  # type: ignore[index]
    assert "mult_adds_torchinfo" in c1  # torchinfo's figure; tests/test_torch_compile.py checks it
    assert c1 == {
        **c1,
        "name": "C1",
        "type": "conv2d",
        "inputs": ["input"],
        "output": [6, 28, 28],
        "params": 156,
        "buffers": 0,
        "connections": 122_304,
        "macs": 117_600,  # 25·6·28·28
        "flops": 235_200,
        "output_bytes": 18_816,  # 4,704 floats
        "receptive_field": 5,
        "jump": 1,
    }


def test_warnings_are_reported_in_json(report: dict[str, dict[str, object]]) -> None:
    # d2l's AlexNet: conv0 (11×11/4, no padding) and the three 3×3/2 pools each leave the
    # last row and column unread; torchvision's (padding 2) reads every pixel.
    diags = report["alexnet-d2l"]["diagnostics"]
    assert isinstance(diags, list)
    assert [(d["severity"], d["line"], d["code"]) for d in diags] == [
        ("warning", line, "unused-input") for line in (11, 12, 14, 18)
    ]
    assert report["alexnet-torchvision"]["diagnostics"] == []


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SPECS / "lenet5-lecun1998.yaml")]) == 0
    out = capsys.readouterr().out
    for figure in ("122,304", "5,880", "151,600", "2,000", "48,120", "10,164", "340,908", "60,000"):
        assert figure in out
    assert "26/26 expectations hold" in out


def test_markdown_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--format", "markdown", str(SPECS / "lenet5-d2l.yaml")]) == 0
    out = capsys.readouterr().out
    assert "| conv1 | conv2d+sigmoid | 6×28×28 | 156 |" in out  # 5·5·1·6 + 6
    assert "| **total** |" in out and "**61,706**" in out


def test_changed_expectation_exits_1_and_shows_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (SPECS / "lenet5-lecun1998.yaml").read_text()
    bad = tmp_path / "lenet.yaml"
    edited = text.replace("params: 1516, connections: 151600", "params: 1517, connections: 151600")
    bad.write_text(edited)
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "error: layer 'C3': expected params 1,517, computed 1,516 (off by -1)" in err
    line = next(i for i, ln in enumerate(edited.splitlines(), 1) if "params: 1517" in ln)
    col = edited.splitlines()[line - 1].index("1517") + 1
    assert err.startswith(f"{bad}:{line}:{col}: error:")  # points at the edited number


def test_exit_code_is_the_worst_over_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("archspec: 1\nname: x\n")
    assert main(["check", str(SPECS / "lenet5-d2l.yaml"), str(broken)]) == 2
    assert "required key 'input' is missing" in capsys.readouterr().err


def test_python_api() -> None:
    spec = archspec.load(SPECS / "lenet5-lecun1998.yaml")
    analysis, diagnostics = archspec.check(spec)
    assert diagnostics == []
    assert analysis.totals.connections == 340_908
    assert archspec.analyze(str(SPECS / "alexnet.yaml")).totals.params == 62_378_344


def test_check_imports_no_framework() -> None:
    code = (
        "import sys; from archspec.cli.main import main; rc = main(['check', '--format', 'json', 'specs']);"
        "heavy = [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules];"
        "print(heavy, file=sys.stderr); sys.exit(rc or (3 if heavy else 0))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().endswith("[]")
