"""The custom PyTorch layers against hand-worked examples, and the LRN convention.

Every expected number here is worked out by hand from the layer's definition
(LeCun et al. 1998 for scaled tanh, subsampling, C3's table and the RBF
output; Krizhevsky et al. 2012 and Caffe for LRN), not read from archspec.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import archspec
from archspec.spec import SpecError
from archspec.torch.build import compile_spec
from archspec.torch.modules import (
    ACTIVATIONS,
    RBF,
    Add,
    Concat,
    MappedConv2d,
    ScaledTanh,
    Subsample,
    scaled_tanh,
)
from archspec.torch.names import MODEL_ATTRIBUTES, MODULE_ATTRIBUTES, check_layer_names

SPECS = Path(__file__).resolve().parent.parent / "specs"

# LeNet-5's C3 (Table I of the paper): column j lists the S2 maps that C3 map j reads.
TABLE_I = [
    [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0], [5, 0, 1],
    [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 0], [4, 5, 0, 1], [5, 0, 1, 2],
    [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5], [0, 1, 2, 3, 4, 5],
]  # fmt: skip


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def n_buffers(module: nn.Module) -> int:
    return sum(b.numel() for b in module.buffers())


def test_scaled_tanh_maps_plus_minus_one_to_itself() -> None:
    # LeCun 1998, Appendix A: A = 1.7159 and S = 2/3 are chosen so that f(±1) = ±1
    # and the slope at 0 is A·S ≈ 1.1439.
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    y = scaled_tanh(x)
    assert y[1].item() == 0.0
    assert y[2].item() == pytest.approx(1.0, abs=1e-4)
    assert y[0].item() == pytest.approx(-1.0, abs=1e-4)
    (slope,) = torch.autograd.grad(y[1], x)
    assert slope[1].item() == pytest.approx(1.7159 * 2 / 3)
    assert torch.equal(ScaledTanh()(x.detach()), scaled_tanh(x.detach()))
    assert ACTIVATIONS["scaled_tanh"] is scaled_tanh


def test_subsample_is_window_sum_times_coefficient_plus_bias() -> None:
    layer = Subsample(2, kernel_size=2)
    assert n_params(layer) == 4  # 2 per channel, as S2 (12 for 6 maps) in the paper
    # The paper's initialisation: uniform in ±2.4/F, F = 4 inputs per unit.
    assert layer.weight.abs().max().item() <= 0.6
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, -1.0]))
        layer.bias.copy_(torch.tensor([1.0, 0.0]))
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(1, 2, 1, 1)
    # Window sums of 0..15 in a 4×4 grid: 0+1+4+5 = 10, 2+3+6+7 = 18, 8+9+12+13 = 42, 10+11+14+15 = 50.
    sums = torch.tensor([[10.0, 18.0], [42.0, 50.0]])
    expected = torch.stack([0.5 * sums + 1.0, -1.0 * sums])
    assert torch.allclose(layer(x)[0], expected)


def test_subsample_with_stride() -> None:
    layer = Subsample(1, kernel_size=2, stride=1)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(0.0)
    x = torch.arange(9.0).view(1, 1, 3, 3)
    # Overlapping 2×2 windows of 0..8: 0+1+3+4 = 8, 1+2+4+5 = 12, 3+4+6+7 = 20, 4+5+7+8 = 24.
    assert torch.equal(layer(x)[0, 0], torch.tensor([[8.0, 12.0], [20.0, 24.0]]))


def test_mapped_conv_has_only_the_table_kernels() -> None:
    c3 = MappedConv2d(6, 16, kernel_size=5, input_maps=TABLE_I)
    # 6 maps read 3 inputs, 9 read 4, 1 reads 6: 18 + 36 + 6 = 60 kernels of 25 weights, 16 biases.
    assert n_params(c3) == 60 * 25 + 16 == 1516
    assert n_buffers(c3) == 0
    # Initial bounds: 1/√(fan-in) per output map (75 for 3-map units, 150 for the 6-map one).
    assert c3.weight[:3].abs().max().item() <= 1 / math.sqrt(75)
    assert c3.weight[-6:].abs().max().item() <= 1 / math.sqrt(150)
    assert c3.bias is not None
    assert c3.bias[15].abs().item() <= 1 / math.sqrt(150)


def test_mapped_conv_hand_example() -> None:
    conv = MappedConv2d(2, 2, kernel_size=1, input_maps=[[0], [0, 1]])
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, 3.0, 5.0]).view(3, 1, 1))  # a; b, c
        assert conv.bias is not None
        conv.bias.copy_(torch.tensor([1.0, -1.0]))
    x = torch.tensor([[[[1.0, 2.0]], [[10.0, 20.0]]]])  # map 0: 1, 2; map 1: 10, 20
    y = conv(x)
    # y0 = 2·x0 + 1 ignores map 1; y1 = 3·x0 + 5·x1 − 1.
    assert torch.equal(y[0, 0, 0], torch.tensor([3.0, 5.0]))
    assert torch.equal(y[0, 1, 0], torch.tensor([52.0, 105.0]))


def test_mapped_conv_output_ignores_unconnected_maps() -> None:
    torch.manual_seed(0)
    c3 = MappedConv2d(6, 16, kernel_size=5, input_maps=TABLE_I)
    x = torch.randn(1, 6, 14, 14)
    bumped = x.clone()
    bumped[:, 5] += 1.0  # map 5 feeds C3 maps whose table lists it, and no others
    delta = (c3(bumped) - c3(x)).abs().amax(dim=(0, 2, 3))
    for j, maps in enumerate(TABLE_I):
        assert (delta[j] > 0) == (5 in maps), j


def test_mapped_conv_accepts_stride_padding_and_no_bias() -> None:
    conv = MappedConv2d(
        3, 2, kernel_size=(3, 1), input_maps=[[0, 2], [1]], stride=2, padding=1, bias=False
    )
    assert n_params(conv) == 3 * 3  # three kernels of 3×1, no bias
    assert conv(torch.randn(2, 3, 9, 9)).shape == (2, 2, 5, 6)


def test_rbf_hand_example_and_fixed_centres() -> None:
    rbf = RBF(2, 2)
    assert n_params(rbf) == 0 and n_buffers(rbf) == 4
    assert set(rbf.centres.unique().tolist()) <= {-1.0, 1.0}
    rbf.centres.copy_(torch.tensor([[1.0, 1.0], [-1.0, 0.0]]))
    # x = (1, 0): (1−1)² + (0−1)² = 1 and (1+1)² + (0−0)² = 4.
    assert torch.equal(rbf(torch.tensor([[1.0, 0.0]])), torch.tensor([[1.0, 4.0]]))
    # LeNet-5's output layer: 84 × 10 fixed centres, 840 buffer elements.
    assert n_buffers(RBF(84, 10)) == 840
    trainable = RBF(84, 10, trainable=True)
    assert n_params(trainable) == 840 and n_buffers(trainable) == 0


def test_concat_and_add() -> None:
    a, b = torch.ones(2, 1, 3), torch.zeros(2, 2, 3)
    assert Concat(dim=1)(a, b).shape == (2, 3, 3)
    assert torch.equal(Add()(a, a, a), torch.full((2, 1, 3), 3.0))


def _lrn_by_hand(a: torch.Tensor, n: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    """b_c = a_c / (k + alpha/n · Σ_{j=c−n/2}^{c+n/2} a_j²)^β, the window clipped at the edges."""
    out = torch.empty_like(a)
    channels = a.shape[1]
    for c in range(channels):
        lo, hi = max(0, c - n // 2), min(channels - 1, c + n // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(dim=1)
        out[:, c] = a[:, c] / (k + alpha / n * s) ** beta
    return out


def test_torch_lrn_divides_alpha_by_the_window_like_caffe() -> None:
    torch.manual_seed(0)
    a = torch.randn(2, 7, 3, 3, dtype=torch.float64) * 10
    # Caffe's bvlc_alexnet: local_size 5, alpha 1e-4, beta 0.75, k 1 (α divided by n).
    caffe = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
    assert torch.allclose(caffe(a), _lrn_by_hand(a, 5, 1e-4, 0.75, 1.0))
    # The paper writes α without the division: its α = 1e-4, k = 2 is torch's alpha = 5e-4.
    paper = nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    by_paper = torch.empty_like(a)
    for c in range(7):
        lo, hi = max(0, c - 2), min(6, c + 2)
        by_paper[:, c] = a[:, c] / (2.0 + 1e-4 * (a[:, lo : hi + 1] ** 2).sum(dim=1)) ** 0.75
    assert torch.allclose(paper(a), by_paper)


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    spec = archspec.load(SPECS / "lenet5-lecun1998.yaml")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = compile_spec(spec, seed=7).state_dict()
    assert torch.equal(torch.rand(1), before)  # compiling drew from a forked generator
    second = compile_spec(spec, seed=7).state_dict()
    other = compile_spec(spec, seed=8).state_dict()
    assert first.keys() == second.keys() == other.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["C3.weight"], other["C3.weight"])


def test_compiled_module_is_in_eval_mode_with_spec_names() -> None:
    module = archspec.compile(SPECS / "lenet5-lecun1998.yaml")
    assert not module.training
    assert list(module.state_dict()) == [
        "C1.weight", "C1.bias", "S2.weight", "S2.bias", "C3.weight", "C3.bias",
        "S4.weight", "S4.bias", "C5.weight", "C5.bias", "F6.weight", "F6.bias", "OUTPUT.centres",
    ]  # fmt: skip


def test_reserved_name_snapshot_covers_installed_torch() -> None:
    module = archspec.compile(SPECS / "lenet5-d2l.yaml")
    live = {n for n in dir(module) if n.isidentifier()} - set(module._modules)
    missing = {n for n in live if not (n.startswith("__") and n.endswith("__"))} - (
        MODULE_ATTRIBUTES | MODEL_ATTRIBUTES
    )
    assert not missing, f"add these to archspec/torch/names.py: {sorted(missing)}"


@pytest.mark.parametrize("name", ["eval", "buffers", "to", "plan", "__init__", "_modules"])
def test_layer_named_like_a_module_attribute_is_a_located_error(name: str) -> None:
    spec = archspec.loads(
        "archspec: 1\nname: clash\ninput: {shape: [4]}\n"
        f"layers:\n  - {{name: {name}, type: linear, out_features: 2}}\n"
    )
    with pytest.raises(SpecError) as err:
        check_layer_names(spec)
    (diag,) = err.value.diagnostics
    assert diag.position is not None and diag.position.line == 5
    assert f"layer name '{name}'" in diag.message
    with pytest.raises(SpecError):
        compile_spec(spec)
