"""Elementwise activations (and softmax) as standalone layers.

``conv2d``, ``linear`` and ``subsample`` also take ``activation:`` as a
shorthand; these classes are for when the activation is a layer of its own.
"""

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from archspec.layers.base import (
    ForeignError,
    Layer,
    OnnxGraph,
    Saved,
    Shape,
    ShapeError,
    TorchCall,
    TrainContext,
    Training,
    numel,
)


class _SavesInput(Layer):
    """An elementwise kind whose backward reads its input (PyTorch saves ``self``: relu6 and
    hardtanh through hardtanh_backward, leaky_relu, silu, hardswish, hardsigmoid, gelu)."""

    train_rule = "backward: no MACs; saves its input when a gradient flows to it"

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        return Training(saved=(Saved("input"),) if ctx.needs_input_grad[0] else ())


class _SavesOutput(Layer):
    """An elementwise kind whose backward reads its own output (PyTorch saves ``result``)."""

    train_rule = "backward: no MACs; saves its output when a gradient flows to its input"

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        return Training(saved=(Saved("output"),) if ctx.needs_input_grad[0] else ())


class ReLU(_SavesOutput):
    """max(0, x)."""

    type: Literal["relu"]

    onnx_patterns = (("Relu",),)
    torch_modules = ("ReLU",)
    torch_functions = ("relu", "relu_")

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        return {}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {}

    caffe_types = ("ReLU",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        if layer.message("relu_param").get("negative_slope", 0) != 0:
            raise ForeignError("ReLU with a negative_slope (a leaky ReLU)", "negative_slope")
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.ReLU")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Relu", [inputs[0]], out)


class Sigmoid(_SavesOutput):
    """1 / (1 + e^−x)."""

    type: Literal["sigmoid"]

    onnx_patterns = (("Sigmoid",),)
    torch_modules = ("Sigmoid",)
    torch_functions = ("sigmoid", "sigmoid_")

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        return {}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {}

    caffe_types = ("Sigmoid",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Sigmoid")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Sigmoid", [inputs[0]], out)


class Tanh(_SavesOutput):
    """tanh(x)."""

    type: Literal["tanh"]

    onnx_patterns = (("Tanh",),)
    torch_modules = ("Tanh",)
    torch_functions = ("tanh", "tanh_")

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        return {}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {}

    caffe_types = ("TanH",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Tanh")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Tanh", [inputs[0]], out)


class ScaledTanh(_SavesOutput):
    """LeCun 1998's squashing function 1.7159·tanh(2x/3) (Appendix A)."""

    type: Literal["scaled_tanh"]

    onnx_patterns = (("Mul", "Tanh", "Mul"),)
    torch_modules = ("ScaledTanh",)
    torch_functions = ("scaled_tanh",)  # as archspec's generated source defines it

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """x·(2/3), tanh, ·1.7159: the three nodes PyTorch's ``1.7159 * torch.tanh(2 * x / 3)``
        exports to."""
        inner, outer = nodes.scalar(0), nodes.scalar(2)
        if inner is None or outer is None:
            return None
        return {} if abs(inner - 2 / 3) < 1e-6 and abs(outer - 1.7159) < 1e-6 else None

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {}

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

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """1.7159·tanh(x·(2/3)), in the module's order of operations."""
        inner = g.node("Tanh", [g.node("Mul", [inputs[0], g.const(2.0 / 3.0)])])
        g.node("Mul", [inner, g.const(1.7159)], out)


class Softmax(_SavesOutput):
    """exp(x_i) / Σ_j exp(x_j) along one per-sample axis."""

    type: Literal["softmax"]

    onnx_patterns = (("Softmax",),)
    torch_modules = ("Softmax",)
    torch_functions = ("softmax",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """ONNX counts the batch axis; before opset 13 Softmax flattens from its axis on,
        which is the per-axis softmax only on the last axis."""
        axis = nodes.attr(0, "axis", -1 if nodes.opset >= 13 else 1)
        rank = len(nodes.in_shapes[0])
        if nodes.opset < 13 and axis % (rank + 1) != rank:
            raise ForeignError("a Softmax before opset 13 over more than the last axis", "axis")
        axis = axis - 1 if axis > 0 else axis
        return {} if axis in (-1, rank - 1) else {"axis": axis}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        dim = call.module.dim if call.module is not None else call.arg(1, "dim", None)
        if dim is None:
            raise ForeignError("softmax without dim", "dim")
        rank = len(call.in_shapes[0])
        axis = dim - 1 if dim > 0 else dim
        return {} if axis in (-1, rank - 1) else {"axis": axis}

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

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        """The axis counted from the front: -1 and rank − 1 are one axis."""
        return {"axis": self.axis % len(shapes[0])}

    caffe_types = ("Softmax",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        axis = layer.message("softmax_param").get("axis", 1)  # Caffe counts the batch axis
        return {} if axis in (1, -1) else {"axis": axis - 1 if axis > 0 else axis}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Softmax", (), {"dim": self.axis if self.axis < 0 else self.axis + 1})

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Softmax", [inputs[0]], out, axis=self.axis if self.axis < 0 else self.axis + 1)


class ReLU6(_SavesInput):
    """min(max(0, x), 6) (MobileNetV2)."""

    type: Literal["relu6"]

    onnx_patterns = (("Clip",),)
    torch_modules = ("ReLU6",)
    torch_functions = ("relu6",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        return {} if clip_bounds(nodes) == (0.0, 6.0) else None

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.ReLU6")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Clip", [inputs[0], g.const(0.0), g.const(6.0)], out)


class LeakyReLU(_SavesInput):
    """x where x ≥ 0, slope·x elsewhere."""

    type: Literal["leaky_relu"]

    onnx_patterns = (("LeakyRelu",),)
    torch_modules = ("LeakyReLU",)
    torch_functions = ("leaky_relu",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        slope = round(float(nodes.attr(0, "alpha", 0.01)), 7)  # float32 in the file
        return {} if slope == 0.01 else {"slope": slope}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        slope = float(m.negative_slope if m is not None else call.arg(1, "negative_slope", 0.01))
        return {} if slope == 0.01 else {"slope": slope}

    slope: float = Field(0.01, description="the slope for negative x (PyTorch's negative_slope)")

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall(
            "nn.LeakyReLU", (), {} if self.slope == 0.01 else {"negative_slope": self.slope}
        )

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("LeakyRelu", [inputs[0]], out, alpha=self.slope)


class Hardtanh(_SavesInput):
    """x clipped to [min, max]."""

    type: Literal["hardtanh"]

    onnx_patterns = (("Clip",),)
    torch_modules = ("Hardtanh",)
    torch_functions = ("hardtanh",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        low, high = clip_bounds(nodes)
        if (low, high) == (0.0, 6.0):
            return None  # relu6
        if low is None or high is None:
            raise ForeignError("a Clip bounded on one side only", "min")
        return {} if (low, high) == (-1.0, 1.0) else {"min": low, "max": high}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        low = float(m.min_val if m is not None else call.arg(1, "min_val", -1.0))
        high = float(m.max_val if m is not None else call.arg(2, "max_val", 1.0))
        return {} if (low, high) == (-1.0, 1.0) else {"min": low, "max": high}

    min: float = Field(-1.0, description="lower bound")
    max: float = Field(1.0, description="upper bound")

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        if self.min >= self.max:
            raise ShapeError(
                f"hardtanh needs min < max, got {self.min} and {self.max}", field="max"
            )
        return shapes[0]

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        kw = (
            {}
            if (self.min, self.max) == (-1.0, 1.0)
            else {"min_val": self.min, "max_val": self.max}
        )
        return TorchCall("nn.Hardtanh", (), kw)

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Clip", [inputs[0], g.const(self.min), g.const(self.max)], out)


class SiLU(_SavesInput):
    """x·σ(x) (swish)."""

    type: Literal["silu"]

    onnx_patterns = (("Sigmoid", "Mul"),)
    torch_modules = ("SiLU",)
    torch_functions = ("silu",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """x·sigmoid(x): the Mul reads the Sigmoid's own input."""
        return {} if nodes.nodes[0].input[0] in nodes.nodes[1].input else None

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.SiLU")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Mul", [inputs[0], g.node("Sigmoid", [inputs[0]])], out)


class Hardswish(_SavesInput):
    """x·min(max(x + 3, 0), 6)/6 (MobileNetV3)."""

    type: Literal["hardswish"]

    onnx_patterns = (("HardSwish",),)
    torch_modules = ("Hardswish",)
    torch_functions = ("hardswish",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        return {}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Hardswish")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("HardSwish", [inputs[0]], out)


class Hardsigmoid(_SavesInput):
    """min(max(x + 3, 0), 6)/6 (MobileNetV3's squeeze-and-excitation gate)."""

    type: Literal["hardsigmoid"]

    onnx_patterns = (("HardSigmoid",),)
    torch_modules = ("Hardsigmoid",)
    torch_functions = ("hardsigmoid",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        alpha, beta = nodes.attr(0, "alpha", 0.2), nodes.attr(0, "beta", 0.5)
        if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
            raise ForeignError(f"HardSigmoid with alpha {alpha:g}, beta {beta:g}", "alpha")
        return {}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Hardsigmoid")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("HardSigmoid", [inputs[0]], out, alpha=1 / 6, beta=0.5)


class GELU(_SavesInput):
    """x·Φ(x), Φ the standard normal CDF (or its tanh approximation)."""

    type: Literal["gelu"]

    onnx_patterns = (("Gelu",),)
    torch_modules = ("GELU",)
    torch_functions = ("gelu",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        return {} if nodes.attr(0, "approximate", "none") == "none" else {"approximate": "tanh"}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        approximate = m.approximate if m is not None else call.arg(1, "approximate", "none")
        return {} if approximate == "none" else {"approximate": "tanh"}

    approximate: Literal["none", "tanh"] = Field(
        "none", description="'tanh': the tanh approximation"
    )

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall(
            "nn.GELU", (), {} if self.approximate == "none" else {"approximate": "tanh"}
        )

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """ONNX's Gelu from opset 20; before it, its formula: x·½·(1 + erf(x/√2)), or
        ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) for the tanh approximation."""
        x = inputs[0]
        if g.opset >= 20:
            g.node("Gelu", [x], out, approximate=self.approximate)
            return
        if self.approximate == "none":
            erf = g.node("Erf", [g.node("Mul", [x, g.const(math.sqrt(0.5))])])
            half = g.node("Mul", [x, g.const(0.5)])
            g.node("Mul", [half, g.node("Add", [erf, g.const(1.0)])], out)
            return
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.const(0.044715)])])
        t = g.node("Tanh", [g.node("Mul", [inner, g.const(math.sqrt(2 / math.pi))])])
        half = g.node("Mul", [x, g.const(0.5)])
        g.node("Mul", [half, g.node("Add", [t, g.const(1.0)])], out)


class Identity(Layer):
    """x, unchanged (a placeholder, as torchvision uses nn.Identity)."""

    type: Literal["identity"]

    onnx_patterns = (("Identity",),)
    torch_modules = ("Identity",)
    torch_functions = ()

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        return {}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {}

    train_rule = "backward: no MACs; saves nothing (its output is its input)"

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        return Training(aliases_input=True)

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Identity")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Identity", [inputs[0]], out)


def clip_bounds(nodes: Any) -> tuple[float | None, float | None]:
    """An ONNX Clip's bounds: inputs 1 and 2 from opset 11, attributes before."""
    if nodes.opset < 11:
        return nodes.attr(0, "min", None), nodes.attr(0, "max", None)
    node = nodes.nodes[0]
    bounds: list[float | None] = []
    for j in (1, 2):
        name = node.input[j] if len(node.input) > j else ""
        value = nodes.const(name) if name else None
        if name and value is None:
            raise ForeignError("a Clip with computed bounds", "min")
        bounds.append(None if value is None else float(value.reshape(())))
    return bounds[0], bounds[1]
