"""Fully connected layer."""

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.layers.base import (
    Activation,
    Counts,
    Finding,
    ForeignError,
    Layer,
    OnnxGraph,
    PositiveInt,
    Saved,
    Shape,
    ShapeError,
    TorchCall,
    TrainContext,
    Training,
    fmt_shape,
    numel,
)
from archspec.lints import declare

LINEAR_NOT_FLAT = declare(
    "linear-not-flat",
    "a linear layer reads an input of rank > 1, so (as PyTorch's nn.Linear) it applies over "
    "the last axis only and keeps the others: usually a forgotten flatten",
    "tests/test_lint_linear_rank.py::test_linear_on_rank_above_one_is_per_last_axis_in_pytorch",
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
    mult_adds_torchinfo_rule = (
        "= params, even with leading axes (torchinfo multiplies by the batch only)"
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

    caffe_types = ("InnerProduct",)
    # Caffe's InnerProduct flattens its input from ``axis`` on; the importer adds the flatten.
    caffe_flattens: ClassVar[bool] = True

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        p = layer.message("inner_product_param")
        if p.get("axis", 1) != 1:
            raise ForeignError("InnerProduct with an axis other than 1", "axis")
        if p.get("transpose", False):
            raise ForeignError("InnerProduct with transpose: true", "transpose")
        fields: dict[str, Any] = {"out_features": p.get("num_output")}
        if not p.get("bias_term", True):
            fields["bias"] = False
        return fields

    onnx_patterns = (("MatMul", "Add"), ("Gemm",), ("MatMul",))

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """Gemm (alpha = beta = 1, A not transposed), or MatMul by a constant matrix, then
        optionally Add of a constant vector: the bias."""
        node = nodes.nodes[0]
        weight = nodes.value_shape(node.input[1])
        if not nodes.is_constant(node.input[1]) or weight is None or len(weight) != 2:
            return None  # a product of two computed tensors is not a linear layer
        if nodes.ops[0] == "Gemm":
            if nodes.attr(0, "transA", 0) or nodes.attr(0, "alpha", 1.0) != 1.0:
                raise ForeignError("Gemm with transA or alpha other than 1", "transA")
            if len(node.input) > 2 and node.input[2] and nodes.attr(0, "beta", 1.0) != 1.0:
                raise ForeignError("Gemm with beta other than 1", "beta")
            out = weight[0] if nodes.attr(0, "transB", 0) else weight[1]
            bias = len(node.input) > 2 and bool(node.input[2])
        else:
            out = weight[1]
            bias = len(nodes.nodes) == 2
            if bias:
                added = [n for n in nodes.nodes[1].input if n != node.output[0]]
                shape = nodes.value_shape(added[0]) if len(added) == 1 else None
                if not added or not nodes.is_constant(added[0]) or shape != [out]:
                    return None
        fields: dict[str, Any] = {"out_features": int(out)}
        if not bias:
            fields["bias"] = False
        return fields

    torch_modules = ("Linear",)
    torch_functions = ("linear",)

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        if m is None:
            raise ForeignError("F.linear with a weight tensor (use nn.Linear)", "linear")
        return {"out_features": m.out_features} | ({} if m.bias is not None else {"bias": False})

    def lint(self, shapes: Sequence[Shape]) -> list[Finding]:
        """Legal (PyTorch applies nn.Linear to the last axis) but rarely meant after a conv."""
        shape = shapes[0]
        if len(shape) <= 1:
            return []
        out = self.output_shape(shapes)
        return [
            Finding(
                f"linear reads only the last axis ({shape[-1]:,}) of its {fmt_shape(shape)} "
                f"input, so it computes {numel(shape[:-1]):,} separate outputs of "
                f"{self.out_features:,} and gives {fmt_shape(out)}",
                field="type",
                hint=f"add a flatten layer before it to connect all {numel(shape):,} values",
                lint=LINEAR_NOT_FLAT.code,
            )
        ]

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

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """Gemm (transB) on a flat input; MatMul by the transposed weight, then Add, on a
        rank > 1 input (the last axis only, as nn.Linear). U(±1/√in) as nn.Linear draws."""
        n_in = shapes[0][-1]
        bound = n_in**-0.5
        weight = g.param("weight", (self.out_features, n_in), "uniform", bound)
        bias = [g.param("bias", (self.out_features,), "uniform", bound)] if self.bias else []
        if len(shapes[0]) == 1:
            g.node("Gemm", [inputs[0], weight, *bias], out, transB=1)
            return
        transposed = g.node("Transpose", [weight], perm=[1, 0])
        product = g.node("MatMul", [inputs[0], transposed], None if bias else out)
        if bias:
            g.node("Add", [product, bias[0]], out)
