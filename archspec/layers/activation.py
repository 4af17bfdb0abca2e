"""Elementwise activations (and softmax) as standalone layers.

``conv2d``, ``linear`` and ``subsample`` also take ``activation:`` as a
shorthand; these classes are for when the activation is a layer of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from archspec.layers.base import (
    Layer,
    Saved,
    Shape,
    ShapeError,
    TorchCall,
    TrainContext,
    Training,
    numel,
)


class _SavesOutput(Layer):
    """An elementwise kind whose backward reads its own output (PyTorch saves ``result``)."""

    train_rule = "backward: no MACs; saves its output when a gradient flows to its input"

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        return Training(saved=(Saved("output"),) if ctx.needs_input_grad[0] else ())


class ReLU(_SavesOutput):
    """max(0, x)."""

    type: Literal["relu"]

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.ReLU")


class Sigmoid(_SavesOutput):
    """1 / (1 + e^−x)."""

    type: Literal["sigmoid"]

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Sigmoid")


class Tanh(_SavesOutput):
    """tanh(x)."""

    type: Literal["tanh"]

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Tanh")


class ScaledTanh(_SavesOutput):
    """LeCun 1998's squashing function 1.7159·tanh(2x/3) (Appendix A)."""

    type: Literal["scaled_tanh"]

    train_rule = (
        "backward: no MACs; saves tanh(2x/3), the intermediate before the 1.7159 scaling "
        "(not its output), when a gradient flows to its input"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        if not ctx.needs_input_grad[0]:
            return Training()
        return Training(saved=(Saved("tanh", numel(out), "input"),))

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("ScaledTanh")


class Softmax(_SavesOutput):
    """exp(x_i) / Σ_j exp(x_j) along one per-sample axis."""

    type: Literal["softmax"]
    axis: int = Field(-1, description="per-sample axis (0 is the first axis after the batch)")

    train_rule = (
        "backward: no MACs; saves its output when a gradient flows to its input "
        "(float32 under CUDA autocast, which runs softmax in float32; the input's type on the CPU)"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        fp32 = ctx.autocast and ctx.device == "cuda"
        return Training(
            saved=(Saved("output"),) if ctx.needs_input_grad[0] else (),
            output_dtype="float32" if fp32 else "input",
        )

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if not -len(shape) <= self.axis < len(shape):
            raise ShapeError(
                f"axis {self.axis} is out of range for a rank-{len(shape)} input", field="axis"
            )
        return shape

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Softmax", (), {"dim": self.axis if self.axis < 0 else self.axis + 1})
