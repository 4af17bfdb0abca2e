"""Elementwise activations (and softmax) as standalone layers.

``conv2d``, ``linear`` and ``subsample`` also take ``activation:`` as a
shorthand; these classes are for when the activation is a layer of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from archspec.layers.base import Layer, Shape, ShapeError, TorchCall


class ReLU(Layer):
    """max(0, x)."""

    type: Literal["relu"]

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.ReLU")


class Sigmoid(Layer):
    """1 / (1 + e^−x)."""

    type: Literal["sigmoid"]

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Sigmoid")


class Tanh(Layer):
    """tanh(x)."""

    type: Literal["tanh"]

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Tanh")


class ScaledTanh(Layer):
    """LeCun 1998's squashing function 1.7159·tanh(2x/3) (Appendix A)."""

    type: Literal["scaled_tanh"]

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("ScaledTanh")


class Softmax(Layer):
    """exp(x_i) / Σ_j exp(x_j) along one per-sample axis."""

    type: Literal["softmax"]
    axis: int = Field(-1, description="per-sample axis (0 is the first axis after the batch)")

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if not -len(shape) <= self.axis < len(shape):
            raise ShapeError(
                f"axis {self.axis} is out of range for a rank-{len(shape)} input", field="axis"
            )
        return shape

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Softmax", (), {"dim": self.axis if self.axis < 0 else self.axis + 1})
