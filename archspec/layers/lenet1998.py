"""The two layer kinds of LeCun et al. 1998 that modern frameworks lack."""

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from archspec.layers.base import (
    Activation,
    Counts,
    Finding,
    IntOrPair,
    Layer,
    OnnxGraph,
    PositiveInt,
    ReceptiveField,
    Saved,
    Shape,
    ShapeError,
    TorchCall,
    TrainContext,
    Training,
    int_or_pair,
    numel,
    pair,
    require_rank,
    spatial_out,
    torch_arg,
)
from archspec.layers.window import Axis, window_axes, window_lint


class Subsample(Layer):
    """LeNet-5's trainable pooling (S2, S4): per channel, the window sum times a coefficient plus a bias."""

    type: Literal["subsample"]
    kernel: IntOrPair = Field(2, description="window size")
    stride: IntOrPair | None = Field(None, description="default: the kernel size")
    activation: Activation | None = Field(None, description="applied to the output")

    shape_rule = "H_out = ⌊(H − k)/s⌋ + 1, likewise W; channels unchanged"
    count_rule = "params = 2·C; connections = (k_h·k_w + 1)·C·H·W; macs = C·H·W"
    mult_adds_torchinfo_rule = (
        '= params = 2·C, once per sample (the module\'s class name lacks "Conv")'
    )
    train_rule = (
        "backward: grad_input = C·H·W (none for the first layer), grad_weight = C·H·W (the "
        "coefficient's; the bias gradient is a sum, not counted), as a depthwise 1×1 "
        "convolution of the window sums would count them; saves its input when a gradient "
        "flows to it (the window-sum pooling's) and the C·H·W window sums (for the "
        "coefficients' gradient), both in the input's type; output in float32 under autocast "
        "(the float32 coefficients promote it)"
    )

    def _stride(self) -> tuple[int, int]:
        return pair(self.stride if self.stride is not None else self.kernel)

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        require_rank(shape, 3, "subsample")
        h, w = spatial_out(shape, pair(self.kernel), self._stride(), (0, 0))
        return (shape[0], h, w)

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        kh, kw = pair(self.kernel)
        return Counts(params=2 * out[0], connections=(kh * kw + 1) * numel(out), macs=numel(out))

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        macs = numel(out)
        saved = [Saved("input")] if ctx.needs_input_grad[0] else []
        saved.append(Saved("window sums", numel(out), "input"))
        return Training(
            grad_input_macs=macs if ctx.needs_input_grad[0] else 0,
            grad_weight_macs=macs,
            saved=tuple(saved),
            output_dtype="float32",
            param_tensors=(out[0], out[0]),
        )

    def receptive_field(
        self, shapes: Sequence[Shape], fields: Sequence[ReceptiveField]
    ) -> ReceptiveField:
        return fields[0].through_window(pair(self.kernel), self._stride())

    def window_axes(self, shape: Shape) -> tuple[Axis, Axis]:
        """Where each window reads, per axis: what the unused-input lint and its test share."""
        return window_axes(shape, pair(self.kernel), self._stride(), (0, 0))

    def lint(self, shapes: Sequence[Shape]) -> list[Finding]:
        return window_lint(shapes[0], self.window_axes(shapes[0]))

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        """The window and its stride as [h, w] pairs, the default stride written out."""
        return {"kernel": list(pair(self.kernel)), "stride": list(self._stride())}

    # avg_pool2d(x)·area·weight + bias, as archspec's Subsample module exports
    # (a 1×1 window's ·1 is dropped by the exporter)
    onnx_patterns = (("AveragePool", "Mul", "Mul", "Add"), ("AveragePool", "Mul", "Add"))
    torch_modules = ("Subsample",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        kernel = list(nodes.attr(0, "kernel_shape", []))
        stride = list(nodes.attr(0, "strides", [1, 1]))
        area = nodes.scalar(1) if len(nodes.ops) == 4 else 1
        if len(kernel) != 2 or area is None or area != kernel[0] * kernel[1]:
            return None
        if any(nodes.attr(0, "pads", [0, 0, 0, 0])) or nodes.attr(0, "ceil_mode", 0):
            return None
        channels = nodes.in_shapes[0][0]
        for i in range(len(nodes.ops) - 2, len(nodes.ops)):
            operands = [n for n in nodes.nodes[i].input if nodes.is_constant(n)]
            shape = nodes.value_shape(operands[0]) if len(operands) == 1 else None
            if shape is None or numel(shape) != channels or len(shape) > 4:
                return None  # one coefficient (or bias) per channel
        fields: dict[str, Any] = {"kernel": int_or_pair(kernel)}
        if stride != kernel:
            fields["stride"] = int_or_pair(stride)
        return fields

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        fields: dict[str, Any] = {"kernel": int_or_pair(pair(m.kernel_size))}
        if pair(m.stride) != pair(m.kernel_size):
            fields["stride"] = int_or_pair(pair(m.stride))
        return fields

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        kw: dict[str, object] = {"kernel_size": torch_arg(self.kernel)}
        if self.stride is not None and self.stride != self.kernel:
            kw["stride"] = torch_arg(self.stride)
        return TorchCall("Subsample", (shapes[0][0],), kw)

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """The window mean times its area (the sum), times the coefficient, plus the bias,
        in the module's order of operations; both per channel, U(±2.4/area) as the paper."""
        kh, kw = pair(self.kernel)
        channels, area = shapes[0][0], kh * kw
        mean = g.node(
            "AveragePool", [inputs[0]], kernel_shape=[kh, kw], strides=list(self._stride())
        )
        window_sum = g.node("Mul", [mean, g.const(float(area))])
        per_channel = g.const([channels, 1, 1], int64=True)
        weight = g.node(
            "Reshape", [g.param("weight", (channels,), "uniform", 2.4 / area), per_channel]
        )
        bias = g.node("Reshape", [g.param("bias", (channels,), "uniform", 2.4 / area), per_channel])
        g.node("Add", [g.node("Mul", [window_sum, weight]), bias], out)


class RBF(Layer):
    """LeNet-5's Euclidean RBF output: y_j = Σ_i (x_i − w_ij)².

    In the paper the 84×10 parameter vectors are fixed stylised bitmaps of
    the digits, so they are buffers, not parameters, unless ``trainable``.
    """

    type: Literal["rbf"]
    out_features: PositiveInt = Field(description="output units (classes)")
    trainable: bool = Field(
        False, description="learn the centre vectors instead of keeping them fixed"
    )

    smaller_is_better = True  # y_j is a squared distance: the nearest centre wins
    shape_rule = "[in] → [out_features]"
    count_rule = "buffers (or params if trainable) = in·out; connections = in·out; macs = in·out"
    mult_adds_torchinfo_rule = (
        "0 (torchinfo skips the centres: a buffer, or a parameter not named weight/bias)"
    )
    train_rule = (
        "backward: grad_input = in·out (none for the first layer), grad_weight = in·out only "
        "if trainable, as the matmul form ‖x‖² − 2x·Wᵀ + ‖w‖² counts them; saves the "
        "out·in differences x_i − w_ij in float32 (the float32 centres promote them), when "
        "any gradient is needed; output float32"
    )

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if len(shape) != 1:
            raise ShapeError(
                f"rbf needs a flat vector, got {'×'.join(map(str, shape))}; add a flatten layer",
                field="type",
            )
        return (self.out_features,)

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        n = shapes[0][0] * self.out_features
        return Counts(
            params=n if self.trainable else 0,
            buffers=0 if self.trainable else n,
            connections=n,
            macs=n,
        )

    # Σ_i (x_i − c_ji)²: squared with Pow 2, as torch.onnx exports archspec's RBF module,
    # or as d·d, as the native emitter writes it
    onnx_patterns = (
        ("Unsqueeze", "Sub", "Pow", "ReduceSum"),
        ("Unsqueeze", "Sub", "Mul", "ReduceSum"),
    )
    torch_modules = ("RBF",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """The centres are a buffer unless the source says otherwise: an ONNX file holds
        tensors, not whether training would change them, so ``trainable`` stays false."""
        centres = [n for n in nodes.nodes[1].input if nodes.is_constant(n)]
        shape = nodes.value_shape(centres[0]) if len(centres) == 1 else None
        d = nodes.nodes[1].output[0]
        squared = (
            list(nodes.nodes[2].input) == [d, d]
            if nodes.ops[2] == "Mul"
            else nodes.scalar(2) == 2.0
        )
        if shape is None or len(shape) != 2 or not squared:
            return None
        return {"out_features": int(shape[0])}

    @classmethod
    def onnx_expect(cls, nodes: Any, fields: dict[str, Any]) -> dict[str, int]:
        return {"buffers": nodes.weight_elements()}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        centres = m.centres
        fields: dict[str, Any] = {"out_features": int(centres.shape[0])}
        if centres.requires_grad and "centres" in dict(m.named_parameters()):
            fields["trainable"] = True
        return fields

    def mult_adds_torchinfo(self, shapes: Sequence[Shape], out: Shape, counts: Counts) -> int:
        """0: the module's centres are a buffer, or a parameter named ``centres``, and
        torchinfo counts only parameters named weight or bias."""
        return 0

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        n = shapes[0][0] * self.out_features
        needed = ctx.needs_input_grad[0] or self.trainable
        return Training(
            grad_input_macs=n if ctx.needs_input_grad[0] else 0,
            grad_weight_macs=n if self.trainable else 0,
            saved=(Saved("differences", n, "float32"),) if needed else (),
            output_dtype="float32",
            param_tensors=(n,) if self.trainable else (),
        )

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        kw = {"trainable": True} if self.trainable else {}
        return TorchCall("RBF", (shapes[0][0], self.out_features), kw)

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """Σ_i (x_i − c_ji)²: Unsqueeze to [N, 1, in], Sub the [out, in] centres, square, sum."""
        centres = g.param("centres", (self.out_features, shapes[0][0]), "sign")
        wide = g.node("Unsqueeze", [inputs[0], g.const([1], int64=True)])
        diff = g.node("Sub", [wide, centres])
        g.reduce("ReduceSum", g.node("Mul", [diff, diff]), [2], keepdims=False, out=out)
