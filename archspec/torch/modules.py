"""PyTorch modules for the layer kinds torch.nn lacks.

The code generator copies these classes verbatim into generated files, so
each one must stand alone: it may use only ``torch``, ``nn``, ``F`` and
``math``, and no other name from this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from archspec.vocab import ACTIVATIONS as ACTIVATION_FORMS


def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    """LeCun 1998 (Appendix A): f(a) = A·tanh(S·a) with A = 1.7159, S = 2/3."""
    return 1.7159 * torch.tanh(x * (2.0 / 3.0))


def identity(x: torch.Tensor) -> torch.Tensor:
    """x itself: ``activation: identity`` says "no activation here" explicitly."""
    return x


class ScaledTanh(nn.Module):
    """1.7159·tanh(2x/3) as a module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class PaddedConv2d(nn.Conv2d):
    """A convolution with TensorFlow's 'same' padding where it is uneven: the extra row and
    column go at the bottom and right (PyTorch's padding='same' takes stride 1 only).

    A subclass of nn.Conv2d, so its weights are named and initialised like one's.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        pads: tuple[int, int, int, int] = (0, 0, 0, 0),
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.pads = pads  # F.pad's order: left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))


class PaddedMaxPool2d(nn.Module):
    """Max pooling with TensorFlow's 'same' padding where it is uneven: the padding is −∞,
    so it never wins a window, as in TensorFlow."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        pads: tuple[int, int, int, int],
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.pads = kernel_size, stride, pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, self.pads, value=float("-inf"))
        return F.max_pool2d(padded, self.kernel_size, self.stride)


class PaddedAvgPool2d(nn.Module):
    """Average pooling with TensorFlow's 'same' padding where it is uneven: each window's mean
    over its real elements only (TensorFlow never counts the padding)."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        pads: tuple[int, int, int, int],
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.pads = kernel_size, stride, pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sums = F.avg_pool2d(F.pad(x, self.pads), self.kernel_size, self.stride)
        real = F.avg_pool2d(
            F.pad(torch.ones_like(x[:1, :1]), self.pads), self.kernel_size, self.stride
        )
        return sums / real  # both are means over the whole window: their ratio is the real mean


class Subsample(nn.Module):
    """LeNet-5's S2/S4: each window's sum times a per-channel coefficient, plus a per-channel bias.

    Two trainable numbers per channel, as in the paper. Weights start
    uniformly in ±2.4/F with F the window's fan-in (the paper's rule).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.area = kh * kw
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        bound = 2.4 / self.area
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = F.avg_pool2d(x, self.kernel_size, self.stride) * self.area
        return window_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class MappedConv2d(nn.Module):
    """A convolution whose output map j reads only the input maps ``input_maps[j]`` (LeNet-5's C3).

    Only the connected kernels are parameters — ``weight`` has one k_h×k_w
    kernel per table entry — so C3 has exactly 1,516 trainable elements. The
    forward pass scatters them into a dense kernel (zeros elsewhere) and runs
    one ordinary convolution, which exports to ONNX as a plain Conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        input_maps: list[list[int]],
        stride: int | tuple[int, int] = 1,
        padding: int | str | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.input_maps = [list(m) for m in input_maps]
        # Flat positions in the dense (out, in) kernel grid, kept as plain ints:
        # a registered buffer would count as model state, and the table is not state.
        self._slots = [j * in_channels + i for j, maps in enumerate(self.input_maps) for i in maps]
        self.weight = nn.Parameter(torch.empty(len(self._slots), kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # nn.Conv2d's default rule, U(±1/√fan_in) for weights and bias, with each
        # output map's own fan-in: C3's 3-map units get wider bounds than its 6-map one.
        with torch.no_grad():
            start = 0
            for j, maps in enumerate(self.input_maps):
                bound = 1.0 / math.sqrt(len(maps) * kh * kw)
                self.weight[start : start + len(maps)].uniform_(-bound, bound)
                if self.bias is not None:
                    self.bias[j].uniform_(-bound, bound)
                start += len(maps)

    def dense_weight(self) -> torch.Tensor:
        kh, kw = self.weight.shape[1:]
        index = torch.tensor(self._slots, device=self.weight.device)
        dense = self.weight.new_zeros(self.out_channels * self.in_channels, kh, kw)
        dense = dense.index_copy(0, index, self.weight)
        return dense.view(self.out_channels, self.in_channels, kh, kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias, self.stride, self.padding, self.dilation)


class RBF(nn.Module):
    """LeNet-5's Euclidean RBF units: y_j = Σ_i (x_i − c_ji)².

    The paper fixes the 84-dimensional centres to stylised ±1 bitmaps of the
    characters; we draw random ±1 centres (seeded) and keep them as a buffer —
    fixed state saved in the state_dict — unless ``trainable``.
    """

    def __init__(self, in_features: int, out_features: int, trainable: bool = False) -> None:
        super().__init__()
        centres = torch.randint(0, 2, (out_features, in_features)).float() * 2 - 1
        if trainable:
            self.centres = nn.Parameter(centres)
        else:
            self.register_buffer("centres", centres)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(-2) - self.centres).pow(2).sum(-1)


class Concat(nn.Module):
    """torch.cat over the inputs, as a module so the graph treats every layer alike."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class Add(nn.Module):
    """Elementwise sum of the inputs (residual connections)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Mul(nn.Module):
    """Elementwise product of the inputs, broadcasting (squeeze-and-excitation)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


# The ``activation:`` shorthand, applied in forward without adding state (archspec.vocab's table).
# Each form's torch expression names a function of F, torch or this module.
_OWNERS = {"F": vars(F), "torch": vars(torch), "": globals()}
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    name: _OWNERS[form.torch.rpartition(".")[0]][form.torch.rpartition(".")[2]]
    for name, form in ACTIVATION_FORMS.items()
}
