"""Fully connected layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from archspec.layers.base import (
    Activation,
    Counts,
    Layer,
    PositiveInt,
    Saved,
    Shape,
    ShapeError,
    TorchCall,
    TrainContext,
    Training,
    numel,
)


class Linear(Layer):
    """``y = x·Wᵀ + b`` over the last axis (normally after ``flatten``)."""

    type: Literal["linear"]
    out_features: PositiveInt = Field(description="output units")
    bias: bool = Field(True, description="one trainable bias per output unit")
    activation: Activation | None = Field(None, description="applied to the output")

    shape_rule = "[..., in] → [..., out_features]"
    count_rule = (
        "params = in·out + out; connections = (in + 1)·out; macs = in·out (times any leading axes)"
    )
    train_rule = (
        "backward: grad_input = macs (none for the first layer), grad_weight = macs (the bias "
        "gradient is a sum, not counted); saves its input (in autocast's type: a copy when the "
        "input is wider), and, only when a gradient flows to the input, its weights (a "
        "low-precision copy under autocast)"
    )

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if not shape:
            raise ShapeError("linear needs at least one axis", field="type")
        return (*shape[:-1], self.out_features)

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        n_in = shapes[0][-1]
        rows = numel(shapes[0][:-1])
        bias = self.out_features if self.bias else 0
        weights = n_in * self.out_features
        return Counts(
            params=weights + bias,
            connections=(weights + bias) * rows,
            macs=weights * rows,
        )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        weights = shapes[0][-1] * self.out_features
        macs = weights * numel(shapes[0][:-1])
        saved = [Saved("input", dtype="low")]
        if ctx.needs_input_grad[0]:
            saved.append(Saved("weight copy", weights, "low", per_sample=False, autocast_only=True))
        return Training(
            grad_input_macs=macs if ctx.needs_input_grad[0] else 0,
            grad_weight_macs=macs,
            saved=tuple(saved),
            output_dtype="low",
            param_tensors=(weights, self.out_features) if self.bias else (weights,),
        )

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        kw = {} if self.bias else {"bias": False}
        return TorchCall("nn.Linear", (shapes[0][-1], self.out_features), kw)
