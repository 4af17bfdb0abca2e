"""``archspec compile``: the summary, --verify's exit codes, weight files and the resource guard."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import archspec
from archspec.cli.main import main
from archspec.layers.base import Counts, Shape
from archspec.layers.linear import Linear
from archspec.layers.pool import AvgPool2d
from archspec.torch.build import compile_spec
from archspec.torch.crosscheck import verify_module

ROOT = Path(__file__).resolve().parent.parent
LENET = str(ROOT / "specs" / "lenet5-d2l.yaml")
LENET_1998 = str(ROOT / "specs" / "lenet5-lecun1998.yaml")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compile_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "compile", LENET_1998)
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "compiled lenet5-lecun1998: SpecModule with 8 layers, 60,000 parameters "
        "+ 840 buffer elements, float32, seed 0"
    ]


def test_verify_passes_on_a_shipped_spec(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "compile", LENET_1998, "--verify")
    assert code == 0 and err == ""
    assert out.splitlines()[-1].startswith("verified: 8 layers")


def test_verify_exits_1_naming_the_layer_whose_counts_disagree(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = Linear.counts

    def off_by_one(self: Linear, shapes: Sequence[Shape], out: Shape) -> Counts:
        c = real(self, shapes, out)
        return Counts(c.params + 1, c.buffers, c.connections, c.macs)

    monkeypatch.setattr(Linear, "counts", off_by_one)
    weights = tmp_path / "w.safetensors"
    code, _, err = run_cli(capsys, "compile", LENET, "--verify", "-o", str(weights))
    assert code == 1
    (line,) = err.splitlines()
    # fc1 is the first linear layer: 400·120 + 120 = 48,120 parameters in the module.
    assert "layer 'fc1': params: calculator 48,121, module 48,120" in line
    assert "and 3 more mismatches" in line  # fc2, fc3 and the total
    assert "weights not written" in line
    assert not weights.exists()


def test_verify_exits_1_naming_the_layer_whose_shape_disagrees(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def one_too_wide(self: AvgPool2d, shapes: Sequence[Shape]) -> Shape:
        c, h, w = shapes[0]
        return (c, h // 2, w // 2 + 1)

    monkeypatch.setattr(AvgPool2d, "output_shape", one_too_wide)
    code, _, err = run_cli(capsys, "compile", LENET, "--verify")
    assert code == 1
    (line,) = err.splitlines()
    assert (
        "layer 'pool1': output shape (batch first): calculator 2×6×14×15, module 2×6×14×14" in line
    )
    # Built from the wrong shapes, the module cannot even run: fc1 expects the calculator's
    # 16·5·6 = 480 inputs but gets 16·5·5 = 400. That is reported on fc1, after the cause.
    spec = archspec.load(LENET)
    analysis = archspec.analyze(spec)
    found = verify_module(analysis, compile_spec(spec, analysis=analysis))
    assert [(m.layer, m.figure) for m in found[:5]] == [
        ("pool1", "output"),
        ("conv2", "output"),  # 16×10×11 by the calculator's rule on 6×14×15
        ("pool2", "output"),
        ("flatten", "output"),
        ("fc1", "error"),
    ]
    assert "RuntimeError" in found[4].describe()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pth"])
def test_weights_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"lenet{suffix}"
    code, out, _ = run_cli(capsys, "compile", LENET_1998, "--seed", "5", "-o", str(path))
    assert code == 0
    fmt = "safetensors" if suffix == ".safetensors" else "torch"
    assert out.splitlines()[-1] == f"weights: {path} ({fmt}, {path.stat().st_size:,} bytes)"
    state = load_file(path) if fmt == "safetensors" else torch.load(path)
    expected = archspec.compile(LENET_1998, seed=5).state_dict()
    assert sorted(state) == sorted(expected)  # safetensors sorts its keys
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    fresh = archspec.compile(LENET_1998, seed=6)
    fresh.load_state_dict(state)  # strict: same names, same shapes
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_safetensors_metadata_names_spec_and_seed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "w.safetensors"
    assert run_cli(capsys, "compile", LENET, "--seed", "9", "-o", str(path))[0] == 0
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    assert header["__metadata__"]["spec"] == "lenet5-d2l"
    assert header["__metadata__"]["seed"] == "9"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-o", "w.npz"], "cannot tell the weight format of 'w.npz'"),
        (["-o", "/no/such/dir/w.pt"], "directory /no/such/dir does not exist"),
        (
            ["--max-params", "1e4"],
            "61,706 parameter and buffer elements, above --max-params 10,000",
        ),
        (["--max-params", "many"], "invalid count 'many'"),
        (["--seed", "-1"], "seed -1 is outside"),
        (["--seed", "x"], "invalid seed 'x'"),
    ],
)
def test_bad_options_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, "compile", LENET, *argv)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert message in line


def test_bad_specs_are_located_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clash = tmp_path / "clash.yaml"
    clash.write_text(
        "archspec: 1\nname: clash\ninput: {shape: [8]}\n"
        "layers:\n  - {name: eval, type: linear, out_features: 2}\n"
    )
    code, _, err = run_cli(capsys, "compile", str(clash))
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"{clash}:5:") and "layer name 'eval'" in line
    code, _, err = run_cli(capsys, "compile", str(tmp_path / "missing.yaml"))
    assert code == 2 and len(err.splitlines()) == 1


# --- the resource guard ------------------------------------------------------------------------

HUGE = {
    "conv": """
        archspec: 1
        name: huge-conv
        input: {shape: [3, 224, 224]}
        layers:
          - {name: conv, type: conv2d, out_channels: 1000000000, kernel: 3}
        """,
    "linear": """
        archspec: 1
        name: huge-linear
        input: {shape: [3, 224, 224]}
        layers:
          - {name: flatten, type: flatten}
          - {name: fc, type: linear, out_features: 1000000000}
        """,
}

# Run archspec in a child of a fresh interpreter, so that RUSAGE_CHILDREN reports that run alone.
_MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": proc.returncode, "err": proc.stderr, "out": proc.stdout, "wall": wall,
                  "cpu": use.ru_utime + use.ru_stime, "rss_kib": use.ru_maxrss}))
"""


@pytest.mark.parametrize("kind", sorted(HUGE))
def test_a_billion_channels_is_refused_at_once_without_allocating(
    tmp_path: Path, kind: str
) -> None:
    spec = tmp_path / f"{kind}.yaml"
    spec.write_text(textwrap.dedent(HUGE[kind]))
    archspec_cmd = [sys.executable, "-m", "archspec.cli.main", "compile", str(spec)]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *archspec_cmd], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    assert result["rc"] == 2 and result["out"] == ""
    (line,) = result["err"].splitlines()
    assert line.startswith("archspec: error: huge-")
    assert "nothing was allocated" in line
    # 28·10⁹ (conv) or 150,529·10⁹ (linear) float32 weights: the figure is in the message.
    assert ("28,000,000,000 weights" if kind == "conv" else "150,529,000,000,000 weights") in line
    # Under a second of CPU (wall time depends on how busy the machine is), and far below the
    # ~220 MiB that merely importing torch costs: nothing was allocated, torch never loaded.
    assert result["cpu"] < 1.0, result
    assert result["wall"] < 10.0, result
    assert result["rss_kib"] < 150 * 1024, result


def test_max_params_is_checked_before_torch_is_imported(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom archspec.cli.main import main\n"
        f"rc = main(['compile', {LENET!r}, '--max-params', '100'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "above --max-params 100" in done.stderr
