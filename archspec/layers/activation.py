"""Elementwise activations (and softmax) as standalone layers.

``conv2d``, ``linear`` and ``subsample`` also take ``activation:`` as a
shorthand; these classes are for when the activation is a layer of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from archspec.layers.base import ForeignError, Layer, Shape, ShapeError, TorchCall


class ReLU(Layer):
    """max(0, x)."""

    type: Literal["relu"]

    caffe_types = ("ReLU",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        if layer.message("relu_param").get("negative_slope", 0) != 0:
            raise ForeignError("ReLU with a negative_slope (a leaky ReLU)", "negative_slope")
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.ReLU")


class Sigmoid(Layer):
    """1 / (1 + e^−x)."""

    type: Literal["sigmoid"]

    caffe_types = ("Sigmoid",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Sigmoid")


class Tanh(Layer):
    """tanh(x)."""

    type: Literal["tanh"]

    caffe_types = ("TanH",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        return {}

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

    caffe_types = ("Softmax",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        axis = layer.message("softmax_param").get("axis", 1)  # Caffe counts the batch axis
        return {} if axis in (1, -1) else {"axis": axis - 1 if axis > 0 else axis}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Softmax", (), {"dim": self.axis if self.axis < 0 else self.axis + 1})
