"""Local response normalisation (AlexNet, Krizhevsky et al. 2012, section 3.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from archspec.layers.base import (
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


class LRN(Layer):
    """b_c = a_c / (k + α/n · Σ a_j²)^β over the n maps centred on c.

    This is Caffe's and ``torch.nn.LocalResponseNorm``'s convention: α is
    divided by the window size n. The paper writes α without the division,
    so its α = 10⁻⁴ with n = 5 is α = 5·10⁻⁴ here; Caffe's reference AlexNet
    uses α = 10⁻⁴, k = 1 in this convention.
    """

    type: Literal["lrn"]
    size: PositiveInt = Field(5, description="n: neighbouring maps summed over")
    alpha: float = Field(1e-4, ge=0, description="α, divided by size as in Caffe and PyTorch")
    beta: float = Field(0.75, ge=0, description="β")
    k: float = Field(1.0, gt=0, description="additive constant")

    count_rule = (
        "connections = size·C·H·W (each output reads size neighbouring maps); no params, no MACs"
    )
    train_rule = (
        "backward: no MACs (elementwise and a window sum); PyTorch composes LRN from "
        "elementwise ops, which save, when a gradient flows to the input: the input, the "
        "squares zero-padded to (C + size − 1) maps, k + α/n·Σa² and its β-th power (C·H·W each); "
        "under CPU autocast the padded squares and what follows are float32 (its 3-D pooling "
        "runs in float32), under CUDA autocast the last two (pow runs in float32)"
    )

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if len(shape) < 2:
            raise ShapeError("lrn needs a channel axis and at least one spatial axis", field="type")
        return shape

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        return Counts(connections=self.size * numel(out))

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        n = numel(out)
        padded = n // out[0] * (out[0] + self.size - 1)
        if not ctx.needs_input_grad[0]:
            # nothing saved; the squares, padded and pooled, pass through as temporaries
            return Training(
                forward_workspace=(
                    Saved("padded squares", padded, "input"),
                    Saved("squares", n, "input"),
                )
            )
        pooled_fp32 = ctx.autocast and ctx.device == "cpu" and len(out) >= 3
        pow_fp32 = pooled_fp32 or (ctx.autocast and ctx.device == "cuda")
        after = "float32" if pow_fp32 else "input"
        return Training(
            saved=(
                Saved("input"),
                Saved("padded squares", padded, "float32" if pooled_fp32 else "input"),
                Saved("k + α/n·Σa²", n, after),
                Saved("(k + α/n·Σa²)^β", n, after),
            ),
            output_dtype=after,
        )

    def onnx_opset(self, shapes: Sequence[Shape]) -> tuple[int, str] | None:
        # torch's exporter lowers LRN through a Pad whose 18→17 conversion has no adapter
        return 18, "torch.onnx lowers lrn through a Pad that its 18→17 converter cannot adapt"

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall(
            "nn.LocalResponseNorm",
            (self.size,),
            {"alpha": self.alpha, "beta": self.beta, "k": self.k},
        )
