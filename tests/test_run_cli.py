"""``archspec export`` and ``archspec run`` from the command line: output, provider line, verify.

LeNet-5 keeps these fast: one export serves the module (torch.onnx's first
export in a process costs seconds); one test runs the real console script in
a subprocess to prove the terminal sees no ONNX Runtime log.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import archspec
from archspec.cli.main import main
from archspec.onnx import model as meta
from archspec.onnx.native import seeded_state
from archspec.runtime.prepare import module_from_arrays
from archspec.runtime.providers import choose

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5-lecun1998.yaml"
LENET_D2L = ROOT / "specs" / "lenet5-d2l.yaml"


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """LeNet-5 exported once for the module with seed 3, and the command's JSON summary."""
    path = tmp_path_factory.mktemp("cli") / "lenet.onnx"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["export", str(LENET), "-o", str(path), "--seed", "3", "--format", "json"])
    assert code == 0
    return path, json.loads(buffer.getvalue())


@pytest.fixture(scope="module")
def lenet_onnx(exported: tuple[Path, dict[str, object]]) -> Path:
    return exported[0]


def test_export_summary(exported: tuple[Path, dict[str, object]]) -> None:
    path, doc = exported
    assert doc["spec"] == "lenet5-lecun1998" and doc["opset"] == 18 and doc["dtype"] == "float32"
    assert doc["values"] == [r.name for r in archspec.analyze(archspec.load(LENET)).rows]
    assert doc["size_bytes"] == path.stat().st_size
    assert doc["weights"] == "numpy-seed:3"
    assert meta.metadata(onnx.load(path))[meta.KEY_WEIGHTS] == "numpy-seed:3"


def test_top_k_is_largest_first_for_logits(capsys: pytest.CaptureFixture[str]) -> None:
    """lenet5-d2l ends in a linear layer: its best classes are its largest outputs."""
    code, out, err = cli(
        capsys, "run", LENET_D2L, "--batch", "2", "--top-k", "3", "--provider", "cpu",
        "--format", "json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["top_k_order"] == "largest first"
    for row in doc["top_k"]:
        values = [e["value"] for e in row]
        assert values == sorted(values, reverse=True)


def test_run_json_figures(
    lenet_onnx: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Top-k and verify figures agree with PyTorch's own forward pass on the same input."""
    x = np.random.default_rng(5).standard_normal((3, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, out, err = cli(
        capsys,
        "run",
        lenet_onnx,
        "--input",
        tmp_path / "x.npy",
        "--top-k",
        "3",
        "--verify",
        "--spec",
        LENET,
        "--provider",
        "cpu",
        "--format",
        "json",
    )
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["provider"] == "cpu" and doc["output"]["shape"] == [3, 10]
    with torch.inference_mode():
        # the native export's seed-3 tensors (NumPy's draw), in the compiled module
        spec = archspec.load(LENET)
        module = module_from_arrays(spec, seeded_state(spec, 3, "float32"))
        ref = module(torch.from_numpy(x)).numpy()
    # LeNet-5 1998's RBF outputs are penalties: the best class is the smallest
    want = np.argsort(ref, axis=1, kind="stable")[:, :3]
    assert doc["top_k_order"] == "smallest first"
    assert [[e["index"] for e in row] for row in doc["top_k"]] == want.tolist()
    for row, ref_row in zip(doc["top_k"], ref, strict=True):
        assert row[0]["value"] == pytest.approx(float(ref_row.min()), abs=1e-4)
    for row, ref_row in zip(doc["top_k"], ref, strict=True):
        for e in row:
            assert e["value"] == pytest.approx(float(ref_row[e["index"]]), abs=1e-4)
    verify = doc["verify"]
    assert verify["ok"] and verify["tolerance"] == 1e-4
    assert [e["name"] for e in verify["layers"]] == [
        "C1",
        "S2",
        "C3",
        "S4",
        "C5",
        "flatten",
        "F6",
        "OUTPUT",
    ]
    assert all(e["max_abs"] < 1e-4 * max(1.0, e["scale"]) for e in verify["layers"])
    lat = doc["latency"]
    assert lat["runs"] == 10 and 0 < lat["min_seconds"] <= lat["median_seconds"]


def test_run_onnx_verify_needs_matching_spec_and_seed(
    lenet_onnx: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = cli(
        capsys, "run", lenet_onnx, "--verify", "--spec", LENET, "--provider", "cpu", "--batch", "2"
    )
    assert (code, err) == (0, "")
    assert "verify: ok" in out and "weights numpy-seed:3)" in out

    code, _, err = cli(capsys, "run", lenet_onnx, "--verify")
    assert code == 2 and err.count("\n") == 1
    assert "--verify on a .onnx needs the spec it was exported from: add --spec FILE" in err
    assert "lenet5-lecun1998" in err

    code, _, err = cli(capsys, "run", lenet_onnx, "--verify", "--spec", LENET, "--seed", "4")
    assert code == 2 and "exported with weights from seed 3, not --seed 4" in err

    code, _, err = cli(capsys, "run", lenet_onnx, "--verify", "--spec", LENET_D2L)
    assert code == 2 and "is spec 'lenet5-d2l', but" in err

    # Same name, different architecture: refused by the hash.
    edited = tmp_path / "lenet.yaml"
    edited.write_text(LENET.read_text().replace("out_features: 84", "out_features: 85"))
    code, _, err = cli(capsys, "run", lenet_onnx, "--verify", "--spec", edited)
    assert code == 2 and "differs from the 'lenet5-lecun1998' spec" in err

    # Only a comment changed: the canonical hash still matches.
    commented = tmp_path / "commented.yaml"
    commented.write_text("# a new comment\n" + LENET.read_text())
    code, out, err = cli(
        capsys, "run", lenet_onnx, "--verify", "--spec", commented, "--provider", "cpu"
    )
    assert (code, err) == (0, "") and "verify: ok" in out


def test_verify_mismatch_exits_1(
    lenet_onnx: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A model whose weights differ from what its metadata records fails verification."""
    path = tmp_path / "m.onnx"
    model = onnx.load(lenet_onnx)
    for t in model.graph.initializer:
        if t.name == "F6.bias":
            bias = numpy_helper.to_array(t) + 0.5
            t.CopyFrom(numpy_helper.from_array(bias, "F6.bias"))
    onnx.save(model, path)
    capsys.readouterr()
    code, out, err = cli(capsys, "run", path, "--verify", "--spec", LENET, "--provider", "cpu")
    assert code == 1 and err == ""
    line = next(line for line in out.splitlines() if line.startswith("verify:"))
    assert line.startswith("verify: MISMATCH in 2 of 8 layers")  # F6 and OUTPUT
    assert "worst layer" in line


def test_console_script_is_quiet_on_a_cpu_only_machine() -> None:
    """The done criterion: one provider line, no ORT log, exit 0 — in a fresh process."""
    exe = Path(sys.executable).with_name("archspec")
    proc = subprocess.run(
        [str(exe), "run", str(LENET), "--provider", "auto", "--verify"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "ARCHSPEC_DEBUG": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert [line for line in lines if "provider" in line] == [lines[0]]
    assert "[E:onnxruntime" not in proc.stdout and "EP Error" not in proc.stdout
    if choose("auto").name == "cpu":
        assert lines[0].startswith("provider: cpu")
    assert lines[1].startswith("model: lenet5-lecun1998 from ")
    assert "input: input float32 [1, 1, 32, 32] (random normal, seed 0)" in lines
    assert "output: OUTPUT float32 [1, 10]" in lines
    assert any(line.startswith("latency: ") for line in lines)
    assert lines[-1].startswith("verify: ok: OUTPUT max abs error")
    assert "tolerance 0.0001 (float32" in lines[-1]


def test_command_modules_import_no_framework() -> None:
    code = (
        "import sys; from archspec.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr
