"""Pooling: max, average and adaptive average, with PyTorch's size rules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field

from archspec.layers.base import (
    Counts,
    Finding,
    IntOrPair,
    Layer,
    NonNegIntOrPair,
    ReceptiveField,
    Saved,
    Shape,
    ShapeError,
    TorchCall,
    TrainContext,
    Training,
    numel,
    pair,
    require_rank,
    spatial_out,
    torch_arg,
    window_lint,
    window_out,
)


class _Pool2d(Layer):
    """Shared by max and average pooling: a k×k window moved by its stride."""

    kernel: IntOrPair = Field(description="window size, int or [h, w]")
    stride: IntOrPair | None = Field(None, description="default: the kernel size")
    padding: NonNegIntOrPair = Field(
        0, description="implicit padding on each side, at most half the window"
    )
    ceil_mode: bool = Field(False, description="round the output size up, as PyTorch's ceil_mode")

    shape_rule = "H_out = ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1 (⌈⌉ with ceil_mode, PyTorch's rule); channels unchanged"
    count_rule = "connections = k_h·k_w·C·H·W; no params, no MACs"
    train_rule = "backward: no MACs; saves its input when a gradient flows to it"
    # Max pooling also keeps the argmax of each window, as int64 indices.
    _saves_indices: ClassVar[bool] = False

    def _stride(self) -> tuple[int, int]:
        return pair(self.stride if self.stride is not None else self.kernel)

    def _dilation(self) -> tuple[int, int]:
        return (1, 1)

    def _max_pad(self, k: int, d: int) -> int:
        return k // 2

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        require_rank(shape, 3, self.type)
        k, p, d = pair(self.kernel), pair(self.padding), self._dilation()
        for ki, pi, di in zip(k, p, d, strict=True):
            if pi > self._max_pad(ki, di):
                raise ShapeError(
                    f"padding {pi} is more than half the {ki}-wide window (PyTorch refuses it)",
                    field="padding",
                )
        h, w = spatial_out(shape, k, self._stride(), (2 * p[0], 2 * p[1]), d, self.ceil_mode)
        return (shape[0], h, w)

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        kh, kw = pair(self.kernel)
        return Counts(connections=kh * kw * numel(out))

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        if not ctx.needs_input_grad[0]:
            # on the CPU under no_grad, max pooling still computes its indices, then drops them
            if self._saves_indices and ctx.inference and ctx.device == "cpu":
                return Training(forward_workspace=(Saved("indices", numel(out), "int64"),))
            return Training()
        saved = [Saved("input")]
        if self._saves_indices:
            saved.append(Saved("indices", numel(out), "int64"))
        return Training(saved=tuple(saved))

    def receptive_field(
        self, shapes: Sequence[Shape], fields: Sequence[ReceptiveField]
    ) -> ReceptiveField:
        return fields[0].through_window(pair(self.kernel), self._stride(), self._dilation())

    def lint(self, shapes: Sequence[Shape]) -> list[Finding]:
        if self.ceil_mode:
            return []
        p = pair(self.padding)
        return window_lint(
            shapes[0], pair(self.kernel), self._stride(), (2 * p[0], 2 * p[1]), self._dilation()
        )

    def onnx_opset(self, shapes: Sequence[Shape]) -> tuple[int, str] | None:
        """Opset 22 where PyTorch's ceil_mode drops a last window that would start in the padding.

        ONNX pooling follows that rule only from opset 22; with an older opset, ONNX
        shape inference counts the window (26 wide, kernel 3, padding 1, ceil_mode:
        10 instead of 9), while PyTorch and ONNX Runtime compute 9.
        """
        if not self.ceil_mode:
            return None
        k, p, d = pair(self.kernel), pair(self.padding), self._dilation()
        for n, ki, si, pi, di in zip(shapes[0][1:], k, self._stride(), p, d, strict=True):
            span = n + 2 * pi - di * (ki - 1) - 1
            if -(-span // si) + 1 != window_out(n, ki, si, 2 * pi, di, True):
                return 22, (
                    "with ceil_mode, PyTorch drops the last window, which would start in "
                    "the padding; ONNX pooling does so only from opset 22"
                )
        return None

    def _torch_kwargs(self) -> dict[str, object]:
        kw: dict[str, object] = {"kernel_size": torch_arg(self.kernel)}
        if self.stride is not None and self.stride != self.kernel:
            kw["stride"] = torch_arg(self.stride)
        if self.padding != 0:
            kw["padding"] = torch_arg(self.padding)
        if self.ceil_mode:
            kw["ceil_mode"] = True
        return kw


class MaxPool2d(_Pool2d):
    """Max over each window (AlexNet's overlapping 3×3/2 pooling)."""

    type: Literal["maxpool2d"]
    dilation: IntOrPair = Field(1, description="spacing between window taps")

    train_rule = (
        "backward: no MACs; saves its input and the int64 index of each window's maximum "
        "(C·H·W of them) when a gradient flows to its input"
    )
    _saves_indices = True

    def _dilation(self) -> tuple[int, int]:
        return pair(self.dilation)

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        kw = self._torch_kwargs()
        if self.dilation != 1:
            kw["dilation"] = torch_arg(self.dilation)
        return TorchCall("nn.MaxPool2d", (), kw)


class AvgPool2d(_Pool2d):
    """Mean over each window (d2l's LeNet)."""

    type: Literal["avgpool2d"]
    count_include_pad: bool = Field(
        True, description="count padded zeros in the mean, as PyTorch does by default"
    )

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        kw = self._torch_kwargs()
        if not self.count_include_pad:
            kw["count_include_pad"] = False
        return TorchCall("nn.AvgPool2d", (), kw)


def _adaptive_windows(n_in: int, n_out: int) -> list[int]:
    """Window widths PyTorch uses: [⌊i·n/m⌋, ⌈(i+1)·n/m⌉) for each output i."""
    return [-(-((i + 1) * n_in) // n_out) - (i * n_in) // n_out for i in range(n_out)]


def _adaptive_sum(n_in: int, n_out: int) -> int:
    """``sum(_adaptive_windows(n, m))`` in O(1): n + m − gcd(n, m) (any output size, even 10¹²)."""
    return n_in + n_out - math.gcd(n_in, n_out)


def _adaptive_max(n_in: int, n_out: int) -> int:
    """``max(_adaptive_windows(n, m))`` in O(1): ⌊n/m⌋, +1 or +2 depending on n mod m and the gcd."""
    rem = n_in % n_out
    if rem == 0:
        return n_in // n_out
    return n_in // n_out + (1 if rem == math.gcd(n_in, n_out) else 2)


class AdaptiveAvgPool2d(Layer):
    """Average pooling to a fixed output size (torchvision's AlexNet: 6×6)."""

    type: Literal["adaptive_avgpool2d"]
    output_size: IntOrPair = Field(description="output H and W, int or [h, w]")

    shape_rule = "output = C × output_size"
    count_rule = "connections = C · Σ_i width_h(i) · Σ_j width_w(j) over PyTorch's adaptive windows; no params, no MACs"

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        require_rank(shape, 3, "adaptive_avgpool2d")
        h, w = pair(self.output_size)
        return (shape[0], h, w)

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        c, h_in, w_in = shapes[0]
        rows = _adaptive_sum(h_in, out[1])
        cols = _adaptive_sum(w_in, out[2])
        return Counts(connections=c * rows * cols)

    train_rule = (
        "backward: no MACs; saves its input when a gradient flows to it, except for a 1×1 "
        "output, which PyTorch computes as a mean that keeps no tensor"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        if not ctx.needs_input_grad[0] or out[1:] == (1, 1):
            return Training()
        return Training(saved=(Saved("input"),))

    def receptive_field(
        self, shapes: Sequence[Shape], fields: Sequence[ReceptiveField]
    ) -> ReceptiveField:
        """The widest window and the floor stride: exact when the sizes divide, an upper bound otherwise."""
        _, h_in, w_in = shapes[0]
        h, w = pair(self.output_size)
        kernel = (_adaptive_max(h_in, h), _adaptive_max(w_in, w))
        stride = (max(h_in // h, 1), max(w_in // w, 1))
        return fields[0].through_window(kernel, stride)

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.AdaptiveAvgPool2d", (torch_arg(self.output_size),))
