"""Layers that move or combine tensors without computing on them."""

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
    fmt_shape,
    numel,
)


class Dropout(Layer):
    """Zeroes each element with probability p while training; identity at inference."""

    type: Literal["dropout"]
    p: float = Field(0.5, ge=0, lt=1, description="drop probability, in [0, 1)")

    train_rule = (
        "backward: no MACs; with p > 0 saves its mask when a gradient flows to its input: "
        "one bool per element on CUDA (native_dropout), one element of the input's type on "
        "the CPU (PyTorch multiplies by a scaled noise tensor there); p = 0 returns its input"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        if self.p == 0:
            return Training(aliases_input=True)
        if not ctx.needs_input_grad[0]:
            return Training()
        cuda = ctx.device == "cuda"
        return Training(saved=(Saved("mask", numel(out), "bool" if cuda else "input"),))

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Dropout", (), {"p": self.p})


class Flatten(Layer):
    """Flattens each sample to a vector (the batch axis stays)."""

    type: Literal["flatten"]

    shape_rule = "[C, H, W] → [C·H·W]"
    train_rule = "backward: no MACs; saves nothing; its output is a view of its input (no memory)"

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        return Training(aliases_input=True)

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        return (numel(shapes[0]),)

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Flatten")


class Concat(Layer):
    """Joins its inputs along one axis (channels by default), as in Inception blocks."""

    type: Literal["concat"]
    axis: int = Field(0, description="per-sample axis to join along (0: channels)")

    arity = (2, None)
    shape_rule = "sizes along axis add up; every other axis must match"
    train_rule = (
        "backward: no MACs; saves nothing; under autocast the output takes the widest input type"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        return Training(output_dtype="promote")

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        first = shapes[0]
        rank = len(first)
        if not -rank <= self.axis < rank:
            raise ShapeError(
                f"axis {self.axis} is out of range for rank-{rank} inputs", field="axis"
            )
        axis = self.axis % rank
        for other in shapes[1:]:
            if len(other) != rank or any(
                a != b for i, (a, b) in enumerate(zip(first, other, strict=True)) if i != axis
            ):
                raise ShapeError(
                    f"cannot concatenate {fmt_shape(first)} and {fmt_shape(other)} along axis {self.axis}: "
                    "all other axes must match",
                    field="inputs",
                )
        return tuple(sum(s[axis] for s in shapes) if i == axis else d for i, d in enumerate(first))

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        rank = len(shapes[0])
        return TorchCall("Concat", (), {"dim": self.axis % rank + 1})


class Add(Layer):
    """Elementwise sum of its inputs (residual connections); shapes must be equal, no broadcasting."""

    type: Literal["add"]

    arity = (2, None)
    shape_rule = "all inputs share one shape, which is the output's"
    train_rule = (
        "backward: no MACs; saves nothing; under autocast the output takes the widest input type"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        return Training(output_dtype="promote")

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        for other in shapes[1:]:
            if other != shapes[0]:
                raise ShapeError(
                    f"cannot add {fmt_shape(shapes[0])} and {fmt_shape(other)}: shapes must be equal",
                    field="inputs",
                )
        return shapes[0]

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("Add")
