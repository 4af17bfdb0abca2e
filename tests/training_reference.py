"""Reference implementations that FlopCounterMode counts the way archspec's convention does.

FlopCounterMode counts matrix products and convolutions only (aten.mm, addmm,
bmm, convolution and its backward, attention). Three of archspec's kinds it
counts differently, legitimately, and one it miscounts:

- ``conv2d`` with ``input_maps`` (MappedConv2d) convolves a dense masked
  kernel, so PyTorch does (and FlopCounterMode counts) C_out·C_in·k² MACs per
  position where the connection table has Σ|maps_j|·k²;
- ``subsample`` is an average pool times a per-channel coefficient:
  elementwise work that FlopCounterMode does not count at all;
- ``rbf`` is Σ(x − w)², elementwise too;
- a grouped ``conv2d``: FlopCounterMode's weight-gradient formula takes the
  full C_in where each group sees C_in/g, counting g times the work.

For each, a module here computes the same function with the products
archspec counts spelled out as separate matmuls or convolutions, so that
FlopCounterMode on the reference gives archspec's figure exactly; the tests
also check that each reference computes what the compiled module computes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MappedReference(nn.Module):
    """LeNet's table convolution as one small convolution per output map (its own maps only)."""

    def __init__(self, mapped: nn.Module) -> None:
        super().__init__()
        self.maps = mapped.input_maps
        self.stride, self.padding, self.dilation = mapped.stride, mapped.padding, mapped.dilation
        self.weight = mapped.weight
        self.bias = mapped.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs, start = [], 0
        for j, maps in enumerate(self.maps):
            w = self.weight[start : start + len(maps)].unsqueeze(0)
            b = self.bias[j : j + 1] if self.bias is not None else None
            outs.append(F.conv2d(x[:, maps], w, b, self.stride, self.padding, self.dilation))
            start += len(maps)
        return torch.cat(outs, dim=1)


class GroupedReference(nn.Module):
    """A grouped convolution as g ordinary convolutions on the groups' channel slices."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        g = c.groups
        xs = x.chunk(g, dim=1)
        ws = c.weight.chunk(g, dim=0)
        bs = c.bias.chunk(g) if c.bias is not None else [None] * g
        return torch.cat(
            [
                F.conv2d(xi, wi, bi, c.stride, c.padding, c.dilation)
                for xi, wi, bi in zip(xs, ws, bs, strict=True)
            ],
            dim=1,
        )


class SubsampleReference(nn.Module):
    """Window sums (a sum pool, no MACs) times each channel's coefficient as a batched matmul.

    Per channel c: (B·H·W × 1) @ (1 × 1), so one MAC per output unit, counted
    by FlopCounterMode as bmm. (A depthwise 1×1 convolution would say the same,
    but FlopCounterMode counts a grouped weight gradient g times.)
    """

    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub = sub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sub
        sums = F.avg_pool2d(x, s.kernel_size, s.stride) * s.area
        n, c, h, w = sums.shape
        cols = sums.permute(1, 0, 2, 3).reshape(c, n * h * w, 1)
        scaled = torch.bmm(cols, s.weight.view(c, 1, 1)).view(c, n, h, w).permute(1, 0, 2, 3)
        return scaled + s.bias.view(1, c, 1, 1)


class RBFReference(nn.Module):
    """Σ_i (x_i − w_ji)² as ‖x‖² − 2·x·Wᵀ + ‖w_j‖²: the in·out MACs are one matmul."""

    def __init__(self, rbf: nn.Module) -> None:
        super().__init__()
        self.rbf = rbf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.rbf.centres
        return (x * x).sum(-1, keepdim=True) - 2 * (x @ w.t()) + (w * w).sum(-1)


def reference(row_type: str, layer: object, module: nn.Module) -> tuple[nn.Module, str]:
    """The module FlopCounterMode should count as archspec does, and why it differs (or "")."""
    if row_type == "conv2d" and getattr(layer, "input_maps", None) is not None:
        return MappedReference(module), "dense masked kernel"
    if row_type == "conv2d" and getattr(layer, "groups", 1) > 1:
        return GroupedReference(module), "grouped weight gradient counted g times"  # type: ignore[arg-type]
    if row_type == "subsample":
        return SubsampleReference(module), "elementwise, not counted"
    if row_type == "rbf":
        return RBFReference(module), "elementwise, not counted"
    return module, ""
