"""Pooling: max, average and adaptive average, with PyTorch's size rules."""

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.layers.base import (
    Counts,
    Finding,
    ForeignError,
    IntOrPair,
    Layer,
    NonNegIntOrPair,
    OnnxGraph,
    ReceptiveField,
    Saved,
    Shape,
    ShapeError,
    TorchCall,
    TrainContext,
    Training,
    caffe_enum,
    caffe_pair,
    int_or_pair,
    numel,
    onnx_pads,
    onnx_window,
    pair,
    require_rank,
    same_pads,
    spatial_out,
    torch_arg,
    torch_pads,
    window_out,
)
from archspec.layers.window import Axis, window_axes, window_lint

CAFFE_POOLS = ("MAX", "AVE", "STOCHASTIC")  # caffe.proto's PoolingParameter.PoolMethod


class _Pool2d(Layer):
    """Shared by max and average pooling: a k×k window moved by its stride."""

    kernel: IntOrPair = Field(description="window size, int or [h, w]")
    stride: IntOrPair | None = Field(None, description="default: the kernel size")
    padding: NonNegIntOrPair | Literal["same", "valid"] = Field(
        0,
        description="implicit padding on each side, at most half the window; or 'same' "
        "(TensorFlow's: ⌈H/s⌉ outputs, the extra row after; never counted or chosen) / 'valid'",
    )
    ceil_mode: bool = Field(False, description="round the output size up, as PyTorch's ceil_mode")

    shape_rule = "H_out = ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1 (⌈⌉ with ceil_mode, PyTorch's rule); channels unchanged"
    count_rule = "connections = k_h·k_w·C·H·W; no params, no MACs"
    train_rule = "backward: no MACs; saves its input when a gradient flows to it"
    # Max pooling also keeps the argmax of each window, as int64 indices.
    _saves_indices: ClassVar[bool] = False

    def _stride(self) -> tuple[int, int]:
        return pair(self.stride if self.stride is not None else self.kernel)

    def _dilation(self) -> tuple[int, int]:
        return (1, 1)

    def _pad_total(self, shape: Shape) -> tuple[int, int]:
        """Padding rows and columns per axis (before + after)."""
        if self.padding == "same":
            return same_pads(shape, pair(self.kernel), self._stride(), self._dilation())
        if self.padding == "valid":
            return (0, 0)
        p = pair(self.padding)
        return (2 * p[0], 2 * p[1])

    def _max_pad(self, k: int, d: int) -> int:
        return k // 2

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        require_rank(shape, 3, self.type)
        k, d = pair(self.kernel), self._dilation()
        if isinstance(self.padding, str):
            if self.ceil_mode:
                raise ShapeError(
                    f"padding '{self.padding}' sets the output size itself; drop ceil_mode",
                    field="ceil_mode",
                )
        else:
            for ki, pi, di in zip(k, pair(self.padding), d, strict=True):
                if pi > self._max_pad(ki, di):
                    raise ShapeError(
                        f"padding {pi} is more than half the {ki}-wide window (PyTorch refuses it)",
                        field="padding",
                    )
        h, w = spatial_out(shape, k, self._stride(), self._pad_total(shape), d, self.ceil_mode)
        return (shape[0], h, w)

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        kh, kw = pair(self.kernel)
        return Counts(connections=kh * kw * numel(out))

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        if not ctx.needs_input_grad[0]:
            # on the CPU under no_grad, max pooling still computes its indices, then drops them
            if self._saves_indices and ctx.inference and ctx.device == "cpu":
                return Training(forward_workspace=(Saved("indices", numel(out), "int64"),))
            return Training()
        saved = [Saved("input")]
        total = self._pad_total(shapes[0])
        if self.padding == "same" and any(t % 2 for t in total):
            # uneven 'same': the pool runs on a padded copy (PaddedMaxPool2d/PaddedAvgPool2d)
            c, h, w = shapes[0]
            saved[0] = Saved("padded input", c * (h + total[0]) * (w + total[1]), "input")
            if not self._saves_indices:  # the mean divides by each window's real count
                saved.append(Saved("window counts", out[1] * out[2], "input", per_sample=False))
        if self._saves_indices:
            saved.append(Saved("indices", numel(out), "int64"))
        return Training(saved=tuple(saved))

    def receptive_field(
        self, shapes: Sequence[Shape], fields: Sequence[ReceptiveField]
    ) -> ReceptiveField:
        return fields[0].through_window(pair(self.kernel), self._stride(), self._dilation())

    def window_axes(self, shape: Shape) -> tuple[Axis, Axis]:
        """Where each window reads, per axis: what the unused-input lint and its test share."""
        return window_axes(
            shape,
            pair(self.kernel),
            self._stride(),
            self._pad_total(shape),
            self._dilation(),
            self.ceil_mode,
        )

    def lint(self, shapes: Sequence[Shape]) -> list[Finding]:
        return window_lint(shapes[0], self.window_axes(shapes[0]))

    def onnx_opset(self, shapes: Sequence[Shape]) -> tuple[int, str] | None:
        """Opset 22 where PyTorch's ceil_mode drops a last window that would start in the padding.

        ONNX pooling follows that rule only from opset 22; with an older opset, ONNX
        shape inference counts the window (26 wide, kernel 3, padding 1, ceil_mode:
        10 instead of 9), while PyTorch and ONNX Runtime compute 9.
        """
        if not self.ceil_mode:
            return None  # (ceil_mode never comes with 'same' or 'valid')
        k, total, d = pair(self.kernel), self._pad_total(shapes[0]), self._dilation()
        for n, ki, si, ti, di in zip(shapes[0][1:], k, self._stride(), total, d, strict=True):
            span = n + ti - di * (ki - 1) - 1
            if -(-span // si) + 1 != window_out(n, ki, si, ti, di, True):
                return 22, (
                    "with ceil_mode, PyTorch drops the last window, which would start in "
                    "the padding; ONNX pooling does so only from opset 22"
                )
        return None

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        fields = super().canonical(shapes)
        fields["kernel"] = list(pair(self.kernel))
        fields["stride"] = list(self._stride())
        if "dilation" in fields:
            fields["dilation"] = list(self._dilation())
        total = self._pad_total(shapes[0])
        fields["padding"] = (
            [total[0] // 2, total[1] // 2]
            if total[0] % 2 == 0 and total[1] % 2 == 0
            else list(torch_pads(total))
        )
        if self.ceil_mode:
            floor = self.model_copy(update={"ceil_mode": False})
            try:
                moot = floor.output_shape(shapes) == self.output_shape(shapes)
            except ShapeError:
                moot = False
            if moot:
                fields["ceil_mode"] = False
        return fields

    caffe_types = ("Pooling",)
    caffe_pool: ClassVar[str] = ""  # MAX or AVE: which Caffe pooling this kind is

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        """Caffe rounds pooled sizes up and drops a last window that would start in the
        padding: PyTorch's ceil_mode rule. Its stride defaults to 1, not the kernel."""
        p = layer.message("pooling_param")
        if caffe_enum(p.get("pool", "MAX"), CAFFE_POOLS) != cls.caffe_pool:
            return None
        if p.get("global_pooling", False):
            return None
        fields: dict[str, Any] = {
            "kernel": caffe_pair(p, "kernel_size", None),
            "stride": caffe_pair(p, "stride", 1),
        }
        kernel, stride = (pair(fields[k]) for k in ("kernel", "stride"))
        if any(k < s for k, s in zip(kernel, stride, strict=True)):
            # Caffe then keeps a last window that starts past the input; PyTorch drops it.
            raise ForeignError("pooling with a kernel smaller than its stride", "kernel_size")
        padding = caffe_pair(p, "pad", 0)
        if padding != 0:
            fields["padding"] = padding
        fields["ceil_mode"] = True
        return fields

    def _onnx_attrs(self, shape: Shape) -> dict[str, Any]:
        """ONNX pooling attributes: an uneven 'same' is asymmetric ``pads``."""
        attrs: dict[str, Any] = {
            "kernel_shape": list(pair(self.kernel)),
            "strides": list(self._stride()),
            "pads": onnx_pads(self._pad_total(shape)),
        }
        if self.ceil_mode:
            attrs["ceil_mode"] = 1
        return attrs

    @classmethod
    def _from_onnx_window(cls, nodes: Any) -> dict[str, Any]:
        kernel = list(nodes.attr(0, "kernel_shape", []))
        fields: dict[str, Any] = {"kernel": int_or_pair(kernel)}
        window = onnx_window(nodes, 0, kernel)
        if "stride" not in window:
            window["stride"] = 1  # ONNX's default stride is 1, archspec's the kernel
        if window["stride"] == fields["kernel"]:
            del window["stride"]
        fields.update(window)
        if nodes.attr(0, "ceil_mode", 0):
            fields["ceil_mode"] = True
        return fields

    @classmethod
    def _from_torch_window(cls, call: Any, pool: str) -> dict[str, Any]:
        m = call.module
        if m is None:
            kernel = call.arg(1, "kernel_size", None)
            stride = call.arg(2, "stride", None) or kernel
            padding = call.arg(3, "padding", 0)
            ceil = bool(call.arg(5 if pool == "max" else 4, "ceil_mode", False))
        else:
            kernel, stride, ceil = m.kernel_size, m.stride or m.kernel_size, m.ceil_mode
            padding = getattr(m, "padding", 0)
        fields: dict[str, Any] = {"kernel": int_or_pair(pair(kernel))}
        if pair(stride) != pair(kernel):
            fields["stride"] = int_or_pair(pair(stride))
        if getattr(m, "pads", None) is not None:  # archspec's padded pools: TensorFlow's 'same'
            fields["padding"] = "same"
        elif pair(padding) != (0, 0):
            fields["padding"] = int_or_pair(pair(padding))
        if ceil:
            fields["ceil_mode"] = True
        return fields

    def _torch_kwargs(self, shape: Shape) -> tuple[dict[str, object], bool]:
        """nn.MaxPool2d/AvgPool2d's keyword arguments, and whether the padding is uneven
        ('same' with an odd total), which those modules cannot express."""
        kw: dict[str, object] = {"kernel_size": torch_arg(self.kernel)}
        if self.stride is not None and self.stride != self.kernel:
            kw["stride"] = torch_arg(self.stride)
        total = self._pad_total(shape)
        uneven = total[0] % 2 == 1 or total[1] % 2 == 1
        if uneven:
            kw["stride"] = torch_arg(list(self._stride()))
            kw["pads"] = torch_pads(total)
        elif any(total):
            kw["padding"] = torch_arg([total[0] // 2, total[1] // 2])
        if self.ceil_mode:
            kw["ceil_mode"] = True
        return kw, uneven


class MaxPool2d(_Pool2d):
    """Max over each window (AlexNet's overlapping 3×3/2 pooling)."""

    type: Literal["maxpool2d"]
    caffe_pool = "MAX"
    dilation: IntOrPair = Field(1, description="spacing between window taps")

    onnx_patterns = (("MaxPool",),)
    torch_modules = ("MaxPool2d", "PaddedMaxPool2d")
    torch_functions = ("max_pool2d",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        if len(nodes.nodes[0].output) > 1 and nodes.nodes[0].output[1]:
            raise ForeignError("MaxPool with indices", "Indices")
        return cls._from_onnx_window(nodes)

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        fields = cls._from_torch_window(call, "max")
        m = call.module
        dilation = getattr(m, "dilation", 1) if m is not None else call.arg(4, "dilation", 1)
        if pair(dilation) != (1, 1):
            fields["dilation"] = int_or_pair(pair(dilation))
        if getattr(m, "return_indices", False):
            raise ForeignError("max pooling that returns indices", "return_indices")
        return fields

    train_rule = (
        "backward: no MACs; saves its input and the int64 index of each window's maximum "
        "(C·H·W of them) when a gradient flows to its input"
    )
    _saves_indices = True

    def _dilation(self) -> tuple[int, int]:
        return pair(self.dilation)

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        if self.padding == "same" and self.dilation != 1:
            raise ShapeError(
                "padding 'same' with a dilated max pool is not supported", field="padding"
            )
        return super().output_shape(shapes)

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        kw, uneven = self._torch_kwargs(shapes[0])
        if uneven:  # TensorFlow pads with −∞ where the padding is uneven
            return TorchCall("PaddedMaxPool2d", (), kw)
        if self.dilation != 1:
            kw["dilation"] = torch_arg(self.dilation)
        return TorchCall("nn.MaxPool2d", (), kw)

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """MaxPool: its padding never wins a window, which is TensorFlow's −∞ padding too."""
        attrs = self._onnx_attrs(shapes[0])
        if self._dilation() != (1, 1):
            attrs["dilations"] = list(self._dilation())
        g.node("MaxPool", [inputs[0]], out, **attrs)


class AvgPool2d(_Pool2d):
    """Mean over each window (d2l's LeNet)."""

    type: Literal["avgpool2d"]
    caffe_pool = "AVE"
    onnx_patterns = (("AveragePool",),)
    torch_modules = ("AvgPool2d", "PaddedAvgPool2d")
    torch_functions = ("avg_pool2d",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """ONNX's count_include_pad defaults to 0, PyTorch's to True: stated only where
        there is padding to count."""
        fields = cls._from_onnx_window(nodes)
        counted = bool(nodes.attr(0, "count_include_pad", 0))
        if fields.get("padding", 0) not in (0, "same") and not counted:
            fields["count_include_pad"] = False
        if fields.get("padding") == "same" and counted:
            raise ForeignError("uneven padding counted in the mean", "count_include_pad")
        return fields

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        fields = cls._from_torch_window(call, "avg")
        m = call.module
        counted = m.count_include_pad if m is not None else call.arg(5, "count_include_pad", True)
        divisor = (
            getattr(m, "divisor_override", None)
            if m is not None
            else call.arg(6, "divisor_override", None)
        )
        if divisor is not None:
            raise ForeignError("average pooling with a divisor_override", "divisor_override")
        if not counted and fields.get("padding", 0) not in (0, "same"):
            fields["count_include_pad"] = False
        return fields

    count_include_pad: bool = Field(
        True, description="count padded zeros in the mean, as PyTorch does by default"
    )

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        if (
            self.padding == "same"
            and self.count_include_pad
            and "count_include_pad" in self.model_fields_set
        ):
            raise ShapeError(
                "padding 'same' is TensorFlow's, which never counts the padding in the mean; "
                "drop count_include_pad: true",
                field="count_include_pad",
            )
        return super().output_shape(shapes)

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        """count_include_pad only where there is padding to count ('same' never counts it)."""
        fields = super().canonical(shapes)
        if any(self._pad_total(shapes[0])):
            fields["count_include_pad"] = self.count_include_pad and self.padding != "same"
        else:
            fields.pop("count_include_pad", None)
        return fields

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        kw, uneven = self._torch_kwargs(shapes[0])
        if uneven:  # the mean over each window's real elements, as TensorFlow's
            return TorchCall("PaddedAvgPool2d", (), kw)
        if not self.count_include_pad or (self.padding == "same" and "padding" in kw):
            kw["count_include_pad"] = False
        return TorchCall("nn.AvgPool2d", (), kw)

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """AveragePool; 'same' never counts its padding (count_include_pad 0), as TensorFlow."""
        attrs = self._onnx_attrs(shapes[0])
        counted = self.count_include_pad and self.padding != "same"
        if counted and any(self._pad_total(shapes[0])):
            attrs["count_include_pad"] = 1
        g.node("AveragePool", [inputs[0]], out, **attrs)


def _adaptive_windows(n_in: int, n_out: int) -> list[int]:
    """Window widths PyTorch uses: [⌊i·n/m⌋, ⌈(i+1)·n/m⌉) for each output i."""
    return [-(-((i + 1) * n_in) // n_out) - (i * n_in) // n_out for i in range(n_out)]


def _adaptive_sum(n_in: int, n_out: int) -> int:
    """``sum(_adaptive_windows(n, m))`` in O(1): n + m − gcd(n, m) (any output size, even 10¹²)."""
    return n_in + n_out - math.gcd(n_in, n_out)


def _adaptive_max(n_in: int, n_out: int) -> int:
    """``max(_adaptive_windows(n, m))`` in O(1): ⌊n/m⌋, +1 or +2 depending on n mod m and the gcd."""
    rem = n_in % n_out
    if rem == 0:
        return n_in // n_out
    return n_in // n_out + (1 if rem == math.gcd(n_in, n_out) else 2)


class AdaptiveAvgPool2d(Layer):
    """Average pooling to a fixed output size (torchvision's AlexNet: 6×6)."""

    type: Literal["adaptive_avgpool2d"]
    output_size: IntOrPair = Field(description="output H and W, int or [h, w]")

    shape_rule = "output = C × output_size"
    count_rule = "connections = C · Σ_i width_h(i) · Σ_j width_w(j) over PyTorch's adaptive windows; no params, no MACs"

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        require_rank(shape, 3, self.type)
        h, w = pair(self.output_size)
        return (shape[0], h, w)

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        c, h_in, w_in = shapes[0]
        rows = _adaptive_sum(h_in, out[1])
        cols = _adaptive_sum(w_in, out[2])
        return Counts(connections=c * rows * cols)

    train_rule = (
        "backward: no MACs; saves its input when a gradient flows to it, except for a 1×1 "
        "output, which PyTorch computes as a mean that keeps no tensor"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        if not ctx.needs_input_grad[0] or out[1:] == (1, 1):
            return Training()
        return Training(saved=(Saved("input"),))

    def receptive_field(
        self, shapes: Sequence[Shape], fields: Sequence[ReceptiveField]
    ) -> ReceptiveField:
        """The widest window and the floor stride: exact when the sizes divide, an upper bound otherwise."""
        _, h_in, w_in = shapes[0]
        h, w = pair(self.output_size)
        kernel = (_adaptive_max(h_in, h), _adaptive_max(w_in, w))
        stride = (max(h_in // h, 1), max(w_in // w, 1))
        return fields[0].through_window(kernel, stride)

    caffe_types = ("Pooling",)
    caffe_pool: ClassVar[str] = "AVE"
    onnx_patterns: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("GlobalAveragePool",),
        ("ReduceMean",),
    )
    torch_modules = ("AdaptiveAvgPool2d",)
    torch_functions = ("adaptive_avg_pool2d",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """A global pool, or a mean over H and W that keeps them (torch.onnx's form)."""
        if nodes.ops[0].startswith("Global"):
            return {"output_size": 1}
        node = nodes.nodes[0]
        axes = nodes.attr(0, "axes", None)
        if axes is None and len(node.input) > 1 and node.input[1]:
            value = nodes.const(node.input[1])
            axes = None if value is None else value.reshape(-1).tolist()
        rank = len(nodes.in_shapes[0]) + 1
        if axes is None or sorted(a % rank for a in axes) != [2, 3] or rank != 4:
            raise ForeignError(f"a ReduceMean over axes {axes}", "axes")
        if not nodes.attr(0, "keepdims", 1):
            raise ForeignError("a ReduceMean that drops the axes", "keepdims")
        return {"output_size": 1}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        size = (
            call.module.output_size if call.module is not None else call.arg(1, "output_size", None)
        )
        if size is None or (not isinstance(size, int) and None in tuple(size)):
            raise ForeignError("an adaptive pool that keeps an input size (None)", "output_size")
        return {"output_size": int_or_pair(pair(size))}

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        """Caffe's ``global_pooling``: one window over the whole map."""
        p = layer.message("pooling_param")
        pool = caffe_enum(p.get("pool", "MAX"), CAFFE_POOLS)
        if not p.get("global_pooling", False) or pool != cls.caffe_pool:
            return None
        return {"output_size": 1}

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.AdaptiveAvgPool2d", (torch_arg(self.output_size),))

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        return {"output_size": list(pair(self.output_size))}

    def plain(self, shapes: Sequence[Shape]) -> Layer:
        """Where the input's sizes divide the output's, PyTorch's adaptive windows are all
        ⌊n/m⌋ = n/m wide and start at multiples of it: the fixed pool with that kernel and
        stride, which is what ONNX (having no adaptive pool) and an import of it say."""
        _, h_in, w_in = shapes[0]
        h, w = pair(self.output_size)
        if h_in % h or w_in % w:
            return self
        kernel = [h_in // h, w_in // w]
        if self.onnx_reduce == "Mean":
            return AvgPool2d(name=self.name, type="avgpool2d", kernel=kernel)
        return MaxPool2d(name=self.name, type="maxpool2d", kernel=kernel)

    onnx_reduce: ClassVar[str] = "Mean"  # the reduction over each window: Mean or Max

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """Global pooling for a 1×1 output; a plain pool where the sizes divide; otherwise
        PyTorch's exact windows, one axis at a time (a mean of equal-width row means is the
        window's mean, a max of maxima its max): a Slice and a Reduce per output row, then
        per output column, concatenated."""
        _, h_in, w_in = shapes[0]
        h, w = pair(self.output_size)
        pool = "AveragePool" if self.onnx_reduce == "Mean" else "MaxPool"
        if (h, w) == (1, 1):
            g.node("Global" + pool, [inputs[0]], out)
            return
        if h_in % h == 0 and w_in % w == 0:
            k = [h_in // h, w_in // w]
            g.node(pool, [inputs[0]], out, kernel_shape=k, strides=k)
            return
        value = inputs[0]
        steps = [(axis, n_in, n_out) for axis, n_in, n_out in ((2, h_in, h), (3, w_in, w))]
        steps = [s for s in steps if s[1] != s[2]]  # an axis already at its size stays
        for step, (axis, n_in, n_out) in enumerate(steps):
            cells = []
            for i in range(n_out):
                start, end = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
                cut = g.node(
                    "Slice",
                    [
                        value,
                        g.const([start], int64=True),
                        g.const([end], int64=True),
                        g.const([axis], int64=True),
                    ],
                )
                cells.append(g.reduce("Reduce" + self.onnx_reduce, cut, [axis], keepdims=True))
            last = step == len(steps) - 1
            value = g.node("Concat", cells, out if last else None, axis=axis)


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    """Max pooling to a fixed output size, over the same windows as adaptive average pooling."""

    type: Literal["adaptive_maxpool2d"]  # type: ignore[assignment]
    caffe_pool = "MAX"
    onnx_reduce = "Max"
    onnx_patterns: ClassVar[tuple[tuple[str, ...], ...]] = (("GlobalMaxPool",),)
    torch_modules = ("AdaptiveMaxPool2d",)
    torch_functions = ("adaptive_max_pool2d",)

    train_rule = (
        "backward: no MACs; saves its input and the int64 index of each output's maximum "
        "when a gradient flows to its input"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        if not ctx.needs_input_grad[0]:
            return Training()
        return Training(saved=(Saved("input"), Saved("indices", numel(out), "int64")))

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return TorchCall("nn.AdaptiveMaxPool2d", (torch_arg(self.output_size),))
