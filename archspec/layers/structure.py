"""Layers that move or combine tensors without computing on them."""

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

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
    caffe_enum,
    float32,
    fmt_shape,
    numel,
)

CAFFE_ELTWISE = ("PROD", "SUM", "MAX")  # caffe.proto's EltwiseParameter.EltwiseOp


class Dropout(Layer):
    """Zeroes each element with probability p while training; identity at inference."""

    type: Literal["dropout"]
    p: float = Field(0.5, ge=0, lt=1, description="drop probability, in [0, 1)")

    caffe_types = ("Dropout",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        return {"p": float(layer.message("dropout_param").get("dropout_ratio", 0.5))}

    onnx_patterns = (("Dropout",),)
    torch_modules = ("Dropout",)
    torch_functions = ("dropout",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        node = nodes.nodes[0]
        ratio = nodes.attr(0, "ratio", 0.5)
        if len(node.input) > 1 and node.input[1]:
            value = nodes.const(node.input[1])
            ratio = 0.5 if value is None else float(value.reshape(()))
        return {"p": float32(float(ratio))}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return {"p": float(call.module.p if call.module is not None else call.arg(1, "p", 0.5))}

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        """p as float32 holds it: a file's Dropout ratio keeps no more."""
        return {"p": float32(self.p)}

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

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """ONNX's own Dropout with its ratio, so the file still says what the layer is (an
        importer gives back ``dropout`` with this p, not an ``identity``); without its
        training_mode input it is the identity, as PyTorch's module in eval mode."""
        g.node("Dropout", [inputs[0], g.const(self.p)], out)


class Flatten(Layer):
    """Flattens each sample to a vector (the batch axis stays)."""

    type: Literal["flatten"]

    shape_rule = "[C, H, W] → [C·H·W]"
    train_rule = "backward: no MACs; saves nothing; its output is a view of its input (no memory)"

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        return Training(aliases_input=True)

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        return (numel(shapes[0]),)

    caffe_types = ("Flatten",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        p = layer.message("flatten_param")
        if p.get("axis", 1) != 1 or p.get("end_axis", -1) != -1:
            raise ForeignError("Flatten of other axes than all but the batch", "axis")
        return {}

    onnx_patterns = (("Flatten",), ("Reshape",))
    torch_modules = ("Flatten",)
    torch_functions = ("flatten", "view", "reshape")

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """Flatten from axis 1, or a Reshape to [batch, n]: archspec reshapes nothing else."""
        if nodes.ops == ("Flatten",):
            if nodes.attr(0, "axis", 1) != 1:
                raise ForeignError(f"Flatten at axis {nodes.attr(0, 'axis')}", "axis")
            return {}
        out = nodes.out_shape
        if out is None or len(out) != 1 or out[0] != numel(nodes.in_shapes[0]):
            raise ForeignError("a Reshape to other than [batch, C·H·W]", "shape")
        return {}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        if m is not None:
            if (m.start_dim, m.end_dim) != (1, -1):
                raise ForeignError("Flatten of other axes than all but the batch", "start_dim")
            return {}
        out = call.out_shape
        if out is None or len(out) != 1 or out[0] != numel(call.in_shapes[0]):
            raise ForeignError(f"{call.target} to other than [batch, C·H·W]", call.target)
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.Flatten")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Flatten", [inputs[0]], out, axis=1)


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

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        """The axis counted from the front: -1 and rank − 1 are one axis."""
        return {"axis": self.axis % len(shapes[0])}

    caffe_types = ("Concat",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        p = layer.message("concat_param")
        axis = p.get("axis", p.get("concat_dim", 1))  # Caffe counts the batch axis
        return {} if axis == 1 else {"axis": axis - 1 if axis > 0 else axis}

    onnx_patterns = (("Concat",),)
    torch_modules = ("Concat",)
    torch_functions = ("cat", "concat")

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        if any(nodes.is_constant(n) for n in nodes.nodes[0].input):
            raise ForeignError("a Concat with a constant operand", "inputs")
        axis = int(nodes.attr(0, "axis", 1))  # ONNX counts the batch axis
        if axis == 0:
            raise ForeignError("a Concat along the batch axis", "axis")
        return {} if axis == 1 else {"axis": axis - 1 if axis > 0 else axis}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        dim = call.module.dim if call.module is not None else call.arg(1, "dim", 0)
        if dim == 0:
            raise ForeignError("torch.cat along the batch axis", "dim")
        return {} if dim == 1 else {"axis": dim - 1 if dim > 0 else dim}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        rank = len(shapes[0])
        return TorchCall("Concat", (), {"dim": self.axis % rank + 1})

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        g.node("Concat", list(inputs), out, axis=self.axis % len(shapes[0]) + 1)


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

    caffe_types = ("Eltwise",)
    caffe_operation: ClassVar[str] = "SUM"
    # an n-ary add exports as a chain of binary Adds, one layer where the file says so
    onnx_patterns = tuple(("Add",) * n for n in range(1, 9))
    torch_modules = ("Add",)
    torch_functions = ("add", "iadd")

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        return _two_tensors(nodes, "Add")

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return _two_torch_tensors(call, "add")

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        p = layer.message("eltwise_param")
        if caffe_enum(p.get("operation", "SUM"), CAFFE_ELTWISE) != cls.caffe_operation:
            return None
        if any(c != 1 for c in p.values("coeff")):
            raise ForeignError("Eltwise with coefficients other than 1", "coeff")
        return {}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("Add")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        _chain(g, "Add", inputs, out)


class Mul(Layer):
    """Elementwise product of its inputs, broadcasting as NumPy and PyTorch do
    (squeeze-and-excitation: C×H×W times C×1×1)."""

    type: Literal["mul"]

    arity = (2, None)
    shape_rule = "inputs of one rank broadcast: on each axis the sizes agree or are 1"
    count_rule = "no params, no connections, no MACs (elementwise, like add)"

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        # Equal ranks: with the batch axis in front, C×H×W against C would align C with W.
        if len({len(s) for s in shapes}) > 1:
            shown = " and ".join(fmt_shape(s) for s in shapes)
            raise ShapeError(
                f"cannot multiply {shown}: inputs need the same rank (write C×1×1, not C)",
                field="inputs",
            )
        out: list[int] = []
        for axis in range(len(shapes[0])):
            sizes = {s[axis] for s in shapes}
            big = sizes - {1}
            if len(big) > 1:
                shown = " and ".join(fmt_shape(s) for s in shapes)
                raise ShapeError(
                    f"cannot multiply {shown}: axis {axis} is {' vs '.join(map(str, sorted(big)))}",
                    field="inputs",
                )
            out.append(big.pop() if big else 1)
        return tuple(out)

    caffe_types = ("Eltwise",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        p = layer.message("eltwise_param")
        return {} if caffe_enum(p.get("operation", "SUM"), CAFFE_ELTWISE) == "PROD" else None

    # an n-ary mul exports as a chain of binary Muls, one layer where the file says so
    onnx_patterns = tuple(("Mul",) * n for n in range(1, 9))
    torch_modules = ("Mul",)
    torch_functions = ("mul", "imul")

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        return _two_tensors(nodes, "Mul")

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        return _two_torch_tensors(call, "mul")

    train_rule = (
        "backward: no MACs; x·y keeps y for x's gradient and x for y's (each only when that "
        "gradient is needed); with more inputs, the running product for the next factor's"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        saved: list[Saved] = []
        needs = ctx.needs_input_grad
        left_needs, left = needs[0], "input"
        left_shape = shapes[0]
        for k in range(1, len(shapes)):
            right = f"input{k}"
            if left_needs:  # the left factor's gradient reads the right one
                saved.append(Saved(right))
            if needs[k]:
                saved.append(
                    Saved(left) if left == "input" else Saved(left, numel(left_shape), "input")
                )
            left_shape = tuple(max(a, b) for a, b in zip(left_shape, shapes[k], strict=True))
            left, left_needs = "product", left_needs or needs[k]
        return Training(saved=tuple(saved), output_dtype="promote")

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("Mul")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        _chain(g, "Mul", inputs, out)


class ChannelShuffle(Layer):
    """ShuffleNet's channel shuffle: C = g·n maps regrouped so each group gets one of every group's."""

    type: Literal["channel_shuffle"]
    groups: int = Field(gt=0, description="g: the groups the channels are interleaved from")

    shape_rule = "output = input; C must be divisible by groups"

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if len(shape) < 2 or shape[0] % self.groups:
            raise ShapeError(
                f"channel_shuffle needs C×… input with C divisible by groups {self.groups}, "
                f"got {fmt_shape(shape)}",
                field="groups",
            )
        return shape

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.ChannelShuffle", (self.groups,))

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """[N, g, C/g, rest] transposed to [N, C/g, g, rest], as nn.ChannelShuffle."""
        c = shapes[0][0]
        split = g.const([0, self.groups, c // self.groups, -1], int64=True)
        grouped = g.node("Reshape", [inputs[0], split])
        swapped = g.node("Transpose", [grouped], perm=[0, 2, 1, 3])
        g.node("Reshape", [swapped, g.const([0, *shapes[0]], int64=True)], out)


def _chain(g: OnnxGraph, op: str, inputs: Sequence[str], out: str) -> None:
    """((a op b) op c) …, left to right as the PyTorch modules compute it."""
    value = inputs[0]
    for i, other in enumerate(inputs[1:], start=2):
        value = g.node(op, [value, other], out if i == len(inputs) else None)


def _two_tensors(nodes: Any, op: str) -> dict[str, Any] | None:
    """An elementwise op of computed tensors only: by a constant it is some layer's part.
    A chain of them is one layer only where the file names the layers' values."""
    if len(nodes.nodes) > 1 and not nodes.grouped:
        return None
    if any(nodes.is_constant(n) for node in nodes.nodes for n in node.input):
        raise ForeignError(f"an {op} with a constant operand (not a layer archspec has)", "B")
    return {}


def _two_torch_tensors(call: Any, op: str) -> dict[str, Any]:
    if call.module is None and call.constant_operands:
        raise ForeignError(f"{op} with a constant operand (not a layer archspec has)", op)
    return {}
