"""The verification triangle, part 1: the compiled module against the static calculator.

For every shipped spec, a batch of two runs through the compiled module and
each layer's real output shape and parameter/buffer counts must equal the
calculator's; the totals must equal the figures the sources publish; and
torchinfo, a third, independent counter, must agree on parameters, relate
to archspec's MACs by the documented convention (docs/pytorch.md) and report
exactly the Mult-Adds archspec states for it (``mult_adds_torchinfo``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchinfo
from spec_sets import ALL_NAMES, ORIGINAL, heavy_params
from torch import nn

import archspec
from archspec.analysis import Analysis
from archspec.torch.build import SpecModule, compile_spec
from archspec.torch.crosscheck import Mismatch, state_counts, verify_module

SPECS = Path(__file__).resolve().parent.parent / "specs"
NAMES = heavy_params()  # the original seven and the small new specs; ARCHSPEC_ALL_SPECS=1: all

# Trainable and buffer elements as the sources publish them (DESIGN.md's table):
# LeCun 1998 §II.B, d2l, the MXNet code of seed 004, Caffe's bvlc_alexnet,
# seed 000, d2l's AlexNet and torchvision's model documentation.
PUBLISHED = {
    "lenet5-lecun1998": (60_000, 840),
    "lenet5-d2l": (61_706, 0),
    "lenet5-maxpool": (44_426, 0),
    "alexnet-krizhevsky2012": (60_965_224, 0),
    "alexnet": (62_378_344, 0),
    "alexnet-d2l": (46_764_746, 0),
    "alexnet-torchvision": (61_100_840, 0),
    # torchvision's model documentation publishes num_params, not buffers (None: not published).
    "squeezenet1.0": (1_248_424, None),
    "squeezenet1.1": (1_235_496, None),
    "resnet18": (11_689_512, None),
    "resnet50": (25_557_032, None),
    "googlenet": (6_624_904, None),
    "vgg11": (132_863_336, None),
    "vgg16": (138_357_544, None),
    "vgg19": (143_667_240, None),
    "vgg16-bn": (138_365_992, None),
}


def test_every_shipped_spec_is_covered() -> None:
    """The original seven, and every spec whose source publishes its parameter count."""
    assert set(ORIGINAL) <= set(PUBLISHED) <= set(ALL_NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_layers_match_the_calculator(
    name: str, built: Callable[[str], tuple[Analysis, SpecModule]]
) -> None:
    analysis, module = built(name)
    with torch.no_grad():
        outputs = module.forward_layers(torch.randn(2, *analysis.input_shape))
    assert list(outputs) == [row.name for row in analysis.rows]
    for row in analysis.rows:
        sub = module.get_submodule(row.name)
        assert tuple(outputs[row.name].shape) == (2, *row.output), row.name
        assert sum(p.numel() for p in sub.parameters()) == row.params, row.name
        assert sum(b.numel() for b in sub.buffers()) == row.buffers, row.name
    params, buffers = PUBLISHED.get(name, (analysis.totals.params, analysis.totals.buffers))
    assert sum(p.numel() for p in module.parameters()) == params
    if buffers is not None:
        assert sum(b.numel() for b in module.buffers()) == buffers
    assert outputs[analysis.graph.output].shape[1:] == analysis.output_shape


@pytest.mark.parametrize("name", NAMES)
def test_verify_module_finds_no_mismatch(
    name: str, built: Callable[[str], tuple[Analysis, SpecModule]]
) -> None:
    analysis, module = built(name)
    assert verify_module(analysis, module, batch=2) == []
    assert not module.training  # verify leaves the mode as it found it


def test_published_per_layer_figures_of_lenet5_1998(
    built: Callable[[str], tuple[Analysis, SpecModule]],
) -> None:
    # LeCun et al. 1998, §II.B: trainable parameters per layer.
    _, module = built("lenet5-lecun1998")
    per_layer = {name: state_counts(sub) for name, sub in module.named_children()}
    assert per_layer == {
        "C1": (156, 0),
        "S2": (12, 0),
        "C3": (1516, 0),
        "S4": (32, 0),
        "C5": (48120, 0),
        "flatten": (0, 0),
        "F6": (10164, 0),
        "OUTPUT": (0, 840),
    }


def test_alexnet_two_towers_shapes(built: Callable[[str], tuple[Analysis, SpecModule]]) -> None:
    # Krizhevsky et al. 2012, figure 2 (227 input as in Caffe): 55×55×96 after conv1,
    # 27×27×256 after conv2, 13×13×384/384/256, 6×6×256 pooled, 4096, 4096, 1000.
    _, module = built("alexnet-krizhevsky2012")
    with torch.no_grad():
        out = module.forward_layers(torch.randn(2, 3, 227, 227))
    shapes = {k: tuple(v.shape[1:]) for k, v in out.items()}
    assert shapes["conv1"] == (96, 55, 55)
    assert shapes["conv2"] == (256, 27, 27)
    assert (shapes["conv3"], shapes["conv4"], shapes["conv5"]) == (
        (384, 13, 13),
        (384, 13, 13),
        (256, 13, 13),
    )
    assert shapes["pool5"] == (256, 6, 6)
    assert (shapes["fc6"], shapes["fc7"], shapes["prob"]) == ((4096,), (4096,), (1000,))
    assert torch.allclose(out["prob"].sum(dim=1), torch.ones(2))  # softmax over classes


# --- torchinfo --------------------------------------------------------------------------------

# torchinfo's Mult-Adds, worked out by hand. For nn.Conv2d it counts every parameter (bias
# included) once per output position, for nn.Linear once per sample: that is archspec's MACs
# plus one per bias per output position. alexnet-torchvision: the five convolutions' biases at
# 64·55², 192·27², 384·13², 256·13², 256·13² positions = 484,992, and the classifier's
# 4,096 + 4,096 + 1,000 = 9,192, on top of 714,188,480 MACs.
TORCHINFO_MULT_ADDS = {
    "alexnet-torchvision": 714_188_480 + 484_992 + 9_192,
    # conv1 6·28², conv2 16·10², fc 120 + 84 + 10 bias positions on top of 416,520 MACs.
    "lenet5-d2l": 416_520 + 4_704 + 1_600 + 214,
    # Custom layers: MappedConv2d's class name contains "Conv", so C3 counts as a convolution
    # (its 1,516 parameters × 100 positions = the paper's 151,600 connections); Subsample
    # counts its parameters once (12 and 32); the RBF has no parameters, so 0. With C1, C5
    # and F6 at their connection counts: 122,304 + 12 + 151,600 + 32 + 48,120 + 10,164.
    "lenet5-lecun1998": 122_304 + 12 + 151_600 + 32 + 48_120 + 10_164,
}


def _torchinfo(module: nn.Module, analysis: Analysis) -> torchinfo.ModelStatistics:
    return torchinfo.summary(module, input_size=(1, *analysis.input_shape), device="cpu", verbose=0)


def _bias_positions(analysis: Analysis) -> int:
    """One per bias per output position: numel of the output of every conv2d/linear with a bias."""
    total = 0
    for row in analysis.rows:
        layer = analysis.graph.layers[row.name]
        if row.type in ("conv2d", "linear") and getattr(layer, "bias", False):
            n = 1
            for d in row.output:
                n *= d
            total += n
    return total


def _has_custom_layers(analysis: Analysis) -> bool:
    """Whether any layer is built from archspec.torch.modules rather than torch.nn."""
    graph = analysis.graph
    calls = [graph.layers[r.name].torch_call(r.input_shapes) for r in analysis.rows]
    return any(not call.callable.startswith("nn.") for call in calls)


@pytest.mark.parametrize("name", NAMES)
def test_torchinfo_agrees(name: str, built: Callable[[str], tuple[Analysis, SpecModule]]) -> None:
    analysis, module = built(name)
    stats = _torchinfo(module, analysis)
    # torchinfo counts parameters only; buffers (the RBF centres) are not in its total.
    assert (
        stats.total_params
        == stats.trainable_params
        == PUBLISHED.get(name, (analysis.totals.params,))[0]
        == analysis.totals.params
    )
    if not _has_custom_layers(analysis):
        assert stats.total_mult_adds == analysis.totals.macs + _bias_positions(analysis)
    if name in TORCHINFO_MULT_ADDS:
        assert stats.total_mult_adds == TORCHINFO_MULT_ADDS[name]
    assert not module.training


def _torchinfo_per_layer(stats: torchinfo.ModelStatistics) -> dict[str, int]:
    """torchinfo's own Mult-Adds of each layer's module, keyed by its path in the model
    (a block's layers are nested: layer1.0.conv1); the containers themselves left out."""
    root = stats.summary_list[0].module
    path = {id(m): n for n, m in root.named_modules()}
    return {
        path[id(info.module)]: info.macs
        for info in stats.summary_list
        if info.depth >= 1 and not info.children
    }


@pytest.mark.parametrize("name", NAMES)
def test_mult_adds_torchinfo_is_torchinfos(
    name: str, built: Callable[[str], tuple[Analysis, SpecModule]]
) -> None:
    # The static figure archspec check states as mult_adds_torchinfo is what torchinfo
    # itself reports for the compiled module: the total and every layer's own entry.
    analysis, module = built(name)
    stats = _torchinfo(module, analysis)
    assert analysis.totals.to_json()["mult_adds_torchinfo"] == stats.total_mult_adds
    per_layer = {row.name: row.to_json()["mult_adds_torchinfo"] for row in analysis.rows}
    assert per_layer == _torchinfo_per_layer(stats)
    # ... and it is not archspec's MACs: torchinfo counts biases (and more for LeNet-5).
    assert stats.total_mult_adds > analysis.totals.macs


@pytest.mark.parametrize("trainable", [False, True])
def test_mult_adds_torchinfo_of_a_linear_on_feature_maps_and_an_rbf(trainable: bool) -> None:
    # Two rules the shipped specs do not exercise: torchinfo multiplies a linear layer's
    # parameters by the batch only, however many rows it runs on, and skips a trainable
    # RBF's centres (a parameter, but not named weight or bias).
    spec = archspec.loads(
        "archspec: 1\nname: t\ninput: {shape: [3, 4, 5]}\nlayers:\n"
        "  - {name: fc, type: linear, out_features: 7, activation: relu}\n"
        "  - {name: flat, type: flatten}\n"
        f"  - {{name: out, type: rbf, out_features: 2, trainable: {str(trainable).lower()}}}\n",
        "<test>",
    )
    analysis = archspec.analyze(spec)
    module = compile_spec(spec, analysis=analysis)
    stats = _torchinfo(module, analysis)
    per_layer = _torchinfo_per_layer(stats)
    assert {r.name: r.mult_adds_torchinfo for r in analysis.rows} == per_layer
    assert analysis.totals.mult_adds_torchinfo == stats.total_mult_adds
    # fc runs on 3·4 rows (420 MACs), but torchinfo counts its 5·7 + 7 parameters once.
    assert per_layer["fc"] == 5 * 7 + 7 < analysis.row("fc").macs == 3 * 4 * 5 * 7
    assert per_layer["out"] == 0


# --- verify_module catches disagreements -------------------------------------------------------


def _with_row(analysis: Analysis, name: str, **changes: object) -> Analysis:
    rows = tuple(dataclasses.replace(r, **changes) if r.name == name else r for r in analysis.rows)
    return dataclasses.replace(analysis, rows=rows)


def test_verify_module_reports_the_first_disagreeing_layer(
    built: Callable[[str], tuple[Analysis, SpecModule]],
) -> None:
    analysis, module = built("lenet5-lecun1998")
    wrong = _with_row(analysis, "C3", params=1500, output=(16, 9, 9))
    wrong = _with_row(wrong, "OUTPUT", buffers=84)
    found = verify_module(wrong, module)
    assert [(m.layer, m.figure) for m in found] == [
        ("C3", "output"),
        ("C3", "params"),
        ("OUTPUT", "buffers"),
    ]
    assert found[0] == Mismatch("C3", "output", (2, 16, 9, 9), (2, 16, 10, 10))
    assert found[1].describe() == "layer 'C3': params: calculator 1,500, module 1,516 (off by +16)"


def test_verify_module_reports_state_outside_the_layers(
    built: Callable[[str], tuple[Analysis, SpecModule]],
) -> None:
    analysis, _ = built("lenet5-d2l")
    module = compile_spec(analysis.spec, analysis=analysis)
    module.register_parameter("stray", nn.Parameter(torch.zeros(3)))
    module.register_buffer("counter", torch.zeros(2))
    assert verify_module(analysis, module) == [
        Mismatch(None, "params", 61_706, 61_709),
        Mismatch(None, "buffers", 0, 2),
    ]
    module.fc2.weight.requires_grad_(False)  # a frozen parameter counts as non-trainable state
    found = verify_module(analysis, module)
    assert Mismatch("fc2", "params", 10_164, 84) in found
    assert Mismatch("fc2", "buffers", 0, 10_080) in found


def test_verify_module_reports_a_missing_layer(
    built: Callable[[str], tuple[Analysis, SpecModule]],
) -> None:
    analysis, _ = built("lenet5-d2l")
    module = nn.Sequential()  # nothing named like the spec's layers
    found = verify_module(analysis, module)
    assert found[0].layer == "conv1" and found[0].figure == "missing"
    assert "no such submodule" in found[0].describe()
