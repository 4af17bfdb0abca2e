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
    # a spec written with blocks comes back with blocks (the module paths repeat), and only then
    assert ("blocks:" in text) == ("blocks:" in spec_path.read_text())

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


RESNET18 = """
from torch import nn


class BasicBlock(nn.Module):
    \"\"\"torchvision's: one ReLU module called twice, a projection where the shape changes.\"\"\"

    def __init__(self, c_in: int, c: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or c_in != c:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c, 1, stride, bias=False), nn.BatchNorm2d(c)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))
"""


def test_a_repeating_module_imports_as_blocks(tmp_path: Path) -> None:
    """torchvision's ResNet-18, written here with torch.nn: the spec folds each basic
    block into a block, layer1's two identical ones into repeat: 2, and expanded it is
    the flat import — the same layers, figures and verdict."""
    path = write(tmp_path, RESNET18, "resnet.py")
    model = import_model(f"{path}:ResNet18", [3, 224, 224])
    text, flat_text = spec_text(model), spec_text(model, flat=True)
    folded, flat = loads(text, "folded.yaml"), loads(flat_text, "flat.yaml")
    assert "blocks:" in text and "blocks:" not in flat_text
    uses = [line for line in text.splitlines() if "block: " in line]
    assert [line.split(",")[0].strip(" -{") for line in uses] == [
        "name: layer1", "name: layer2.0", "name: layer2.1", "name: layer3.0", "name: layer3.1",
        "name: layer4.0", "name: layer4.1",
    ]  # fmt: skip
    assert "repeat: 2" in uses[0] and "repeat" not in "".join(uses[1:])
    assert "with: {out_channels: 256}" in uses[3]
    assert len(text.splitlines()) < 0.6 * len(flat_text.splitlines())  # 44 lines against 76
    # expanded, the same network as the flat import
    assert [la.model_dump(exclude={"expect"}) for la in folded.layers] == [
        la.model_dump(exclude={"expect"}) for la in flat.layers
    ]
    a, b = analyze(folded), analyze(flat)
    assert [(r.name, r.output, r.params, r.buffers, r.macs) for r in a.rows] == [
        (r.name, r.output, r.params, r.buffers, r.macs) for r in b.rows
    ]
    assert a.totals.params == 11_689_512  # torchvision's resnet18
    # the uses state what PyTorch states, added up, and check holds them
    assert not [d for d in verify(a) if d.severity.value == "error"]
    net = dict(_load_factory(path, "ResNet18").named_modules())
    layer3_0 = sum(p.numel() for p in net["layer3.0"].parameters())
    assert f"params: {layer3_0}," in uses[3]
    assert diff(
        str(write(tmp_path, text, "f.yaml")), str(write(tmp_path, flat_text, "g.yaml"))
    ).same
    proc = subprocess.run(
        [sys.executable, "-m", "archspec", "import", f"{path}:ResNet18", "--input", "3,224,224",
         "--flat"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == flat_text


def _load_factory(path: Path, name: str) -> torch.nn.Module:
    from archspec.importers.pytorch import resolve

    return resolve(f"{path}:{name}")()
