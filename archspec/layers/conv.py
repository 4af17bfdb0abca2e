"""2-D convolution, including grouped convolution and LeNet-5's connection table."""

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from archspec.layers.base import (
    Activation,
    Counts,
    Finding,
    ForeignError,
    IntOrPair,
    Layer,
    NonNegInt,
    NonNegIntOrPair,
    OnnxGraph,
    PositiveInt,
    ReceptiveField,
    Saved,
    Shape,
    ShapeError,
    TorchCall,
    TrainContext,
    Training,
    caffe_pair,
    int_or_pair,
    onnx_pads,
    onnx_window,
    pair,
    require_rank,
    same_pads,
    spatial_out,
    torch_arg,
    torch_pads,
)
from archspec.layers.window import Axis, window_axes, window_lint


def _blocked(channels: int) -> int:
    return -(-channels // 16) * 16


class Conv2d(Layer):
    """A 2-D convolution over C×H×W feature maps.

    ``input_maps`` is LeCun 1998's connection table: entry j lists the input
    maps that output map j reads (C3 of LeNet-5 reads 3, 4 or 6 of S2's 6
    maps). Only the connected kernels exist, so parameters and connections
    count only them.
    """

    type: Literal["conv2d"]
    out_channels: PositiveInt = Field(description="output feature maps")
    kernel: IntOrPair = Field(description="kernel size, int or [h, w]")
    stride: IntOrPair = Field(1, description="int or [h, w]")
    padding: NonNegIntOrPair | Literal["same", "valid"] = Field(
        0, description="zero padding on each side, int or [h, w], or 'same' / 'valid'"
    )
    dilation: IntOrPair = Field(1, description="spacing between kernel taps")
    groups: PositiveInt = Field(1, description="input and output maps split into this many groups")
    bias: bool = Field(True, description="one trainable bias per output map")
    input_maps: list[list[NonNegInt]] | None = Field(
        None, description="connection table: for each output map, the input maps it reads"
    )
    activation: Activation | None = Field(None, description="applied to the output")

    shape_rule = "H_out = ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1, likewise W; C_out = out_channels"
    count_rule = (
        "params = k_h·k_w·C_in/g·C_out + C_out; connections = (k_h·k_w·C_in/g + 1)·C_out·H·W; "
        "macs = k_h·k_w·C_in/g·C_out·H·W (with input_maps, C_in/g is each map's table length)"
    )
    mult_adds_torchinfo_rule = "= params·H·W (= connections: the bias once per output position)"
    train_rule = (
        "backward: grad_input = macs (none for the first layer), grad_weight = macs, "
        "both as the forward's count (with input_maps, the table's MACs although PyTorch "
        "convolves a dense masked kernel; the bias gradient is a sum, not counted); saves its "
        "input, even when no gradient flows to it (in autocast's type: a copy when the "
        "input is wider; with padding 'same' and an odd total padding, PyTorch's zero-padded "
        "copy of it, one row or column larger) and its weights (a low-precision copy under autocast; with "
        "input_maps, the dense C_out·C_in·k_h·k_w kernel and the table's int64 index); "
        "on the CPU its backward pass also allocates oneDNN's 16-channel-blocked copies of the "
        "output gradient and (when needed) the input gradient, ⌈C/16⌉·16 maps each, and its "
        "forward pass a blocked output when C_out is not a multiple of 16"
    )

    def _pad_total(self, shape: Shape) -> tuple[int, int]:
        """Rows and columns of zeros added, per axis (before + after); 'same' is TensorFlow's
        rule, which depends on the input size once the stride is above 1."""
        k, d = pair(self.kernel), pair(self.dilation)
        if self.padding == "same":
            return same_pads(shape, k, pair(self.stride), d)
        if self.padding == "valid":
            return (0, 0)
        p = pair(self.padding)
        return (2 * p[0], 2 * p[1])

    def _fan_in_weights(self, c_in: int) -> int:
        """Kernel weights summed over output maps (k_h·k_w·C_in/g·C_out, or per table entry)."""
        kh, kw = pair(self.kernel)
        if self.input_maps is not None:
            return kh * kw * sum(len(maps) for maps in self.input_maps)
        return kh * kw * (c_in // self.groups) * self.out_channels

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        require_rank(shape, 3, "conv2d")
        c_in = shape[0]
        uneven = self.padding == "same" and any(t % 2 for t in self._pad_total(shape))
        if uneven and self.input_maps is not None and pair(self.stride) != (1, 1):
            raise ShapeError(
                "padding 'same' with a stride and an uneven total needs a plain "
                "convolution, not an input_maps table",
                field="padding",
            )
        if c_in % self.groups or self.out_channels % self.groups:
            raise ShapeError(
                f"groups {self.groups} must divide both the {c_in} input and the "
                f"{self.out_channels} output channels",
                field="groups",
            )
        if self.input_maps is not None:
            self._check_table(c_in)
        h, w = spatial_out(
            shape, pair(self.kernel), pair(self.stride), self._pad_total(shape), pair(self.dilation)
        )
        return (self.out_channels, h, w)

    def _check_table(self, c_in: int) -> None:
        table = self.input_maps or []
        if self.groups != 1:
            raise ShapeError("input_maps replaces groups; use one or the other", field="input_maps")
        if len(table) != self.out_channels:
            raise ShapeError(
                f"input_maps has {len(table)} entries but out_channels is {self.out_channels}",
                field="input_maps",
            )
        for j, maps in enumerate(table):
            if not maps:
                raise ShapeError(
                    f"input_maps[{j}] is empty: output map {j} reads nothing", field="input_maps"
                )
            if len(set(maps)) != len(maps):
                raise ShapeError(f"input_maps[{j}] lists an input map twice", field="input_maps")
            bad = [m for m in maps if m >= c_in]
            if bad:
                raise ShapeError(
                    f"input_maps[{j}] reads map {bad[0]}, but the input has maps 0..{c_in - 1}",
                    field="input_maps",
                )

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        weights = self._fan_in_weights(shapes[0][0])
        biases = self.out_channels if self.bias else 0
        positions = out[1] * out[2]
        return Counts(
            params=weights + biases,
            connections=(weights + biases) * positions,
            macs=weights * positions,
        )

    def mult_adds_torchinfo(self, shapes: Sequence[Shape], out: Shape, counts: Counts) -> int:
        """torchinfo multiplies every parameter by the output positions: both modules
        (nn.Conv2d, MappedConv2d) have "Conv" in their class name, so the bias counts
        once per position and a connection table counts only its connected kernels."""
        return counts.params * out[1] * out[2]

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        c_in = shapes[0][0]
        macs = self._fan_in_weights(c_in) * out[1] * out[2]
        kh, kw = pair(self.kernel)
        weights = self._fan_in_weights(c_in)
        saved: list[Saved] = [Saved("input", dtype="low")]
        total = self._pad_total(shapes[0])
        if self.padding == "same" and any(t % 2 for t in total):
            c, h, w = shapes[0]
            if pair(self.stride) == (1, 1):
                # PyTorch's padding='same' pads a copy by the extra pixel and convolves that
                extra_h, extra_w = (t % 2 for t in total)
                saved[0] = Saved("padded input", c * (h + extra_h) * (w + extra_w), "low")
            else:  # PaddedConv2d convolves a copy padded on every side (TensorFlow's split)
                saved[0] = Saved("padded input", c * (h + total[0]) * (w + total[1]), "low")
        if self.input_maps is None:
            saved.append(Saved("weight copy", weights, "low", per_sample=False, autocast_only=True))
        else:
            n_maps = sum(len(m) for m in self.input_maps)
            saved.append(Saved("kernel index", n_maps, "int64", per_sample=False))
            dense = self.out_channels * c_in * kh * kw
            saved.append(Saved("dense kernel", dense, "low", per_sample=False))
        tensors = (weights, self.out_channels) if self.bias else (weights,)
        # oneDNN (PyTorch's CPU convolution) computes the backward pass on copies in a
        # 16-channel-blocked layout: the output gradient, and the input gradient if needed.
        workspace = fixed = 0
        forward: list[Saved] = []
        if ctx.device == "cpu":
            # forward: a blocked output (training: only when C_out is not a multiple of 16),
            # then the plain one; under no_grad also a blocked copy of a 16+-map input
            if self.out_channels % 16 or ctx.inference:
                forward.append(
                    Saved("blocked output", _blocked(self.out_channels) * out[1] * out[2], "input")
                )
            if ctx.inference:
                groups = self.groups if self.input_maps is None else 1
                kernel = _blocked(self.out_channels) * _blocked(c_in // groups) * kh * kw
                forward.append(Saved("blocked kernel", kernel, "input", per_sample=False))
                if self.input_maps is not None:
                    dense = self.out_channels * c_in * kh * kw
                    forward.append(Saved("dense kernel", dense, "input", per_sample=False))
            if ctx.inference and c_in >= 16:
                forward.append(
                    Saved("blocked input", _blocked(c_in) * shapes[0][1] * shapes[0][2], "input")
                )
            workspace = _blocked(self.out_channels) * out[1] * out[2]
            if ctx.needs_input_grad[0]:
                workspace += _blocked(c_in) * shapes[0][1] * shapes[0][2]
            # and a blocked copy of the kernel
            groups = self.groups if self.input_maps is None else 1
            fixed = _blocked(self.out_channels) * _blocked(c_in // groups) * kh * kw
        return Training(
            grad_input_macs=macs if ctx.needs_input_grad[0] else 0,
            grad_weight_macs=macs,
            saved=tuple(saved),
            output_dtype="low",
            param_tensors=tensors,
            workspace=workspace,
            workspace_fixed=fixed,
            forward_workspace=tuple(forward),
        )

    def receptive_field(
        self, shapes: Sequence[Shape], fields: Sequence[ReceptiveField]
    ) -> ReceptiveField:
        return fields[0].through_window(pair(self.kernel), pair(self.stride), pair(self.dilation))

    def window_axes(self, shape: Shape) -> tuple[Axis, Axis]:
        """Where each window reads, per axis: what the unused-input lint and its test share."""
        return window_axes(
            shape, pair(self.kernel), pair(self.stride), self._pad_total(shape), pair(self.dilation)
        )

    def lint(self, shapes: Sequence[Shape]) -> list[Finding]:
        return window_lint(shapes[0], self.window_axes(shapes[0]))

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        fields = super().canonical(shapes)
        for key in ("kernel", "stride", "dilation"):
            fields[key] = list(pair(getattr(self, key)))
        total = self._pad_total(shapes[0])
        if total[0] % 2 == 0 and total[1] % 2 == 0:
            fields["padding"] = [total[0] // 2, total[1] // 2]
        else:  # uneven 'same': (left, right, top, bottom)
            fields["padding"] = list(torch_pads(total))
        return fields

    caffe_types = ("Convolution",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        p = layer.message("convolution_param")
        fields: dict[str, Any] = {
            "out_channels": p.get("num_output"),
            "kernel": caffe_pair(p, "kernel_size", None),
        }
        for key, caffe, default in (("stride", "stride", 1), ("padding", "pad", 0)):
            value = caffe_pair(p, caffe, default)
            if value != default:
                fields[key] = value
        dilation = caffe_pair(p, "dilation", 1)
        if dilation != 1:
            fields["dilation"] = dilation
        if p.get("group", 1) != 1:
            fields["groups"] = p.get("group")
        if not p.get("bias_term", True):
            fields["bias"] = False
        return fields

    onnx_patterns = (("Conv",),)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """A Conv; a kernel that archspec's export scatters from the connected kernels
        (ScatterND into zeros) gives back the ``input_maps`` table."""
        node = nodes.nodes[0]
        weight = nodes.value_shape(node.input[1])
        if weight is None or len(weight) != 4 or weight[0] is None:
            raise ForeignError("a Conv whose kernel shape is unknown", "W")
        kernel = list(nodes.attr(0, "kernel_shape", weight[2:]))
        fields: dict[str, Any] = {"out_channels": int(weight[0]), "kernel": int_or_pair(kernel)}
        fields.update(onnx_window(nodes, 0, kernel))
        group = nodes.attr(0, "group", 1)
        if group != 1:
            fields["groups"] = group
        if len(node.input) < 3 or not node.input[2]:
            fields["bias"] = False
        table = _scattered_table(nodes, node.input[1], int(weight[0]), int(weight[1] or 0))
        if table is not None:
            fields["input_maps"] = table
        return fields

    torch_modules = ("Conv2d", "MappedConv2d", "PaddedConv2d")
    torch_functions = ("conv2d",)

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        if m is None:
            raise ForeignError("F.conv2d with a weight tensor (use nn.Conv2d)", "conv2d")
        fields: dict[str, Any] = {"out_channels": m.out_channels}
        stride, padding, dilation = m.stride, m.padding, m.dilation
        if getattr(m, "input_maps", None) is not None:  # archspec's MappedConv2d
            fields["kernel"] = int_or_pair(tuple(m.weight.shape[1:]))
            fields["input_maps"] = [list(t) for t in m.input_maps]
        else:
            fields["kernel"] = int_or_pair(m.kernel_size)
            if m.groups != 1:
                fields["groups"] = m.groups
            if getattr(m, "padding_mode", "zeros") != "zeros":
                raise ForeignError(f"padding_mode {m.padding_mode!r}", "padding_mode")
        if m.bias is None:
            fields["bias"] = False
        pads = getattr(m, "pads", None)
        if pads is not None:  # archspec's PaddedConv2d: TensorFlow's uneven 'same'
            fields["padding"] = "same"
        elif isinstance(padding, str):
            if padding != "valid":
                fields["padding"] = padding
        elif pair(padding) != (0, 0):
            fields["padding"] = int_or_pair(pair(padding))
        for key, value in (("stride", stride), ("dilation", dilation)):
            if pair(value) != (1, 1):
                fields[key] = int_or_pair(pair(value))
        return fields

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        c_in = shapes[0][0]
        kw: dict[str, object] = {"kernel_size": torch_arg(self.kernel)}
        if self.stride != 1:
            kw["stride"] = torch_arg(self.stride)
        callable_ = "MappedConv2d" if self.input_maps is not None else "nn.Conv2d"
        if self.padding == "same" and pair(self.stride) != (1, 1):
            # PyTorch's padding='same' takes stride 1 only: pad explicitly, as TensorFlow does
            total = self._pad_total(shapes[0])
            if total[0] % 2 or total[1] % 2:
                callable_ = "PaddedConv2d"
                kw["pads"] = torch_pads(total)
            elif any(total):
                kw["padding"] = torch_arg([total[0] // 2, total[1] // 2])
        elif self.padding != 0:
            kw["padding"] = torch_arg(self.padding)
        if self.dilation != 1:
            kw["dilation"] = torch_arg(self.dilation)
        if self.input_maps is not None:
            kw["input_maps"] = [list(m) for m in self.input_maps]
        elif self.groups != 1:
            kw["groups"] = self.groups
        if not self.bias:
            kw["bias"] = False
        return TorchCall(callable_, (c_in, self.out_channels), kw)

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """One Conv; asymmetric ``pads`` for an uneven 'same'. A connection table keeps its
        compact weight (one kernel per entry, as the module's state_dict) and scatters it
        into a dense kernel in the graph: Pad with one zero kernel, Gather, Reshape (a Pad,
        not a Concat of a zero constant, so that the file's float tensors are the layer's
        weights alone and an importer counts exactly the connected kernels)."""
        c_in = shapes[0][0]
        kh, kw = pair(self.kernel)
        attrs: dict[str, Any] = {
            "kernel_shape": [kh, kw],
            "strides": list(pair(self.stride)),
            "pads": onnx_pads(self._pad_total(shapes[0])),
            "dilations": list(pair(self.dilation)),
        }
        if self.input_maps is None:
            fan_in = c_in // self.groups * kh * kw
            weight = g.param(
                "weight", (self.out_channels, c_in // self.groups, kh, kw), "uniform", fan_in**-0.5
            )
            bias_bound: float | list[float] = fan_in**-0.5
            if self.groups != 1:
                attrs["group"] = self.groups
        else:
            rows = [(len(maps) * kh * kw) ** -0.5 for maps in self.input_maps for _ in maps]
            compact = g.param("weight", (len(rows), kh, kw), "uniform", rows)
            bias_bound = [(len(maps) * kh * kw) ** -0.5 for maps in self.input_maps]
            slot = {
                j * c_in + i: e
                for e, (j, i) in enumerate(
                    (j, i) for j, maps in enumerate(self.input_maps) for i in maps
                )
            }
            zero = len(rows)  # the index of the zero kernel appended after the entries
            index = [slot.get(n, zero) for n in range(self.out_channels * c_in)]
            padded = g.node("Pad", [compact, g.const([0, 0, 0, 1, 0, 0], int64=True)])
            dense = g.node("Gather", [padded, g.const(index, int64=True)], axis=0)
            shape = g.const([self.out_channels, c_in, kh, kw], int64=True)
            weight = g.node("Reshape", [dense, shape])
        args = [inputs[0], weight]
        if self.bias:
            args.append(g.param("bias", (self.out_channels,), "uniform", bias_bound))
        g.node("Conv", args, out, **attrs)


def _scattered_table(nodes: Any, value: str, c_out: int, c_in: int) -> list[list[int]] | None:
    """The connection table of a kernel built from the connected kernels alone: as torch.onnx
    exports archspec's module, Reshape(ScatterND(zeros, slots, kernels)), where slot
    j·C_in + i is output map j reading input map i; or as the native emitter writes it,
    Reshape(Gather(kernels with one zero kernel padded on, index)), where index[j·C_in + i]
    is the entry that output map j reads from input map i (the zero kernel where none).
    Each row lists its maps in the order of their entries, as the spec wrote them."""
    reshape = nodes.producer(value)
    if reshape is None or reshape.op_type != "Reshape" or not c_in:
        return None
    source = nodes.producer(reshape.input[0])
    if source is not None and source.op_type == "Gather":
        return _gathered_table(nodes, source, c_out, c_in)
    scatter = source
    if scatter is None or scatter.op_type != "ScatterND":
        return None
    slots = nodes.const(scatter.input[1])
    if slots is None:
        raise ForeignError("a Conv kernel scattered from computed slots", "W")
    table: list[list[int]] = [[] for _ in range(c_out)]
    for slot in slots.reshape(-1).tolist():
        table[int(slot) // c_in].append(int(slot) % c_in)
    return table


def _gathered_table(nodes: Any, gather: Any, c_out: int, c_in: int) -> list[list[int]] | None:
    """:func:`_scattered_table` for Reshape(Gather(padded kernels, index))."""
    index = nodes.const(gather.input[1])
    padded = nodes.value_shape(gather.input[0])
    if index is None or padded is None or not padded or padded[0] is None:
        raise ForeignError("a Conv kernel gathered from computed or unknown entries", "W")
    zero = int(padded[0]) - 1  # the zero kernel is the last entry
    entries = index.reshape(-1).tolist()
    if len(entries) != c_out * c_in:
        return None
    table: list[list[int]] = []
    for j in range(c_out):
        row = [(int(entries[j * c_in + i]), i) for i in range(c_in)]
        table.append([i for e, i in sorted(row) if e != zero])
    return table
