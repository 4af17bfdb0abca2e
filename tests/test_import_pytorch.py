"""archspec import of PyTorch modules traced with torch.fx: functional calls are layers,
names follow the module paths, expect: holds PyTorch's own counts, and every shipped spec
round-trips through codegen → import with the same figures (diff exits 0)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from archspec.analysis import analyze
from archspec.diagnose import verify
from archspec.diff import canonical, diff
from archspec.importers import import_model, spec_text
from archspec.spec import SpecError, load, loads
from archspec.torch.codegen import class_name, generate

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

NET = """
import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.conv2(y) + x)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(Block(8), Block(8))
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.head = nn.Linear(8 * 4 * 4, 10)
        self.drop = nn.Dropout(0.2)

    def forward(self, x):
        x = self.pool(self.layer1(self.stem(x)))
        x = torch.flatten(x, 1)
        return torch.softmax(self.head(self.drop(x)), dim=-1)


def make():
    return Net()
"""


def write(tmp_path: Path, text: str, name: str = "net.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_module_with_functional_calls(tmp_path: Path) -> None:
    path = write(tmp_path, NET)
    text = spec_text(import_model(f"{path}:make", [3, 17, 17]))
    spec = loads(text, "net.yaml")
    analysis = analyze(spec)
    assert not [d for d in verify(analysis) if d.severity.value == "error"]
    rows = {r.name: r for r in analysis.rows}
    assert list(rows) == [
        "stem.0", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu", "layer1.0.conv2",
        "layer1.0.add", "layer1.0.relu_2", "layer1.1.conv1", "layer1.1.bn1", "layer1.1.relu",
        "layer1.1.conv2", "layer1.1.add", "layer1.1.relu_2", "pool", "flatten", "drop",
        "head", "softmax",
    ]  # fmt: skip
    assert rows["stem.0"].activation == "relu"  # nn.ReLU folded into the conv
    assert rows["layer1.0.add"].inputs == ("layer1.0.conv2", "stem.0")  # x + y, traced
    assert rows["layer1.1.add"].inputs == ("layer1.1.conv2", "layer1.0.relu_2")
    assert rows["pool"].output == (8, 4, 4)  # ceil_mode
    # expect: is PyTorch's own count, and the calculator agrees with it (check passed)
    net = {n: m for n, m in _load(path).named_modules()}
    bn = spec.layers[[layer.name for layer in spec.layers].index("layer1.0.bn1")]
    assert bn.expect is not None and bn.expect.buffers == sum(
        b.numel() for b in net["layer1.0.bn1"].buffers()
    )
    assert analysis.totals.params == sum(p.numel() for p in _load(path).parameters())


def _load(path: Path) -> torch.nn.Module:
    from archspec.importers.pytorch import resolve

    return resolve(f"{path}:make")()


def test_a_module_that_cannot_be_imported_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, NET.replace("nn.ReLU(inplace=True)", "nn.Softplus()"))
    with pytest.raises(SpecError, match=r"module 'stem.1' \(Softplus\), which archspec cannot"):
        import_model(f"{path}:make", [3, 17, 17])
    proc = subprocess.run(
        [sys.executable, "-m", "archspec", "import", f"{path}:make", "--input", "3,17,17"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"{path}:make: error: module 'stem.1' (Softplus), which archspec cannot import"
    ]


def test_a_module_needs_input(tmp_path: Path) -> None:
    path = write(tmp_path, NET)
    with pytest.raises(SpecError, match="--input"):
        import_model(f"{path}:make")


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_codegen_round_trip(spec_path: Path, tmp_path: Path) -> None:
    """spec → codegen → import of the generated module: the same figures at every layer, and
    diff exits 0 for every shipped spec (alexnet-tflearn's lrn_tf rows equivalent)."""
    spec = load(spec_path)
    path = write(tmp_path, generate(spec), "model.py")
    text = spec_text(import_model(f"{path}:{class_name(spec.name)}", list(spec.input.shape)))
    imported = loads(text, "imported.yaml")
    assert not [d for d in verify(analyze(imported)) if d.severity.value == "error"]

    def figures(s):  # type: ignore[no-untyped-def]
        return {x.name: (x.output, x.params, x.buffers, x.macs) for x in canonical(analyze(s))}

    assert figures(imported) == figures(spec)
    (tmp_path / "imported.yaml").write_text(text)
    result = diff(str(spec_path), str(tmp_path / "imported.yaml"))
    assert result.same, [p.differences() for p in result.pairs if p.status != "same"]
    assert all(p.a and p.b for p in result.pairs)
    # lrn_tf compiles to nn.LocalResponseNorm: it comes back as the lrn it is, equivalent
    equivalent = {(p.a.kind, p.b.kind) for p in result.pairs if p.status == "equivalent"}  # type: ignore[union-attr]
    tf = any(layer.type == "lrn_tf" for layer in spec.layers)
    assert equivalent == ({("lrn_tf", "lrn")} if tf else set())
