"""Local response normalisation (AlexNet, Krizhevsky et al. 2012, section 3.3)."""

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.layers.base import (
    Counts,
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
    caffe_enum,
    float32,
    numel,
)

CAFFE_NORM_REGIONS = ("ACROSS_CHANNELS", "WITHIN_CHANNEL")


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

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        """α, β and k as float32 holds them: an ONNX file (or a module in float32) keeps
        no more, and lrn_tf's α·(2r + 1) is not always the decimal a file states."""
        fields = super().canonical(shapes)
        for key in ("alpha", "beta", "k"):
            fields[key] = float32(fields[key])
        return fields

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        return Counts(connections=self.size * numel(out))

    caffe_types = ("LRN",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        """Caffe's LRN is this convention (α divided by local_size) across channels."""
        p = layer.message("lrn_param")
        if (
            caffe_enum(p.get("norm_region", "ACROSS_CHANNELS"), CAFFE_NORM_REGIONS)
            != "ACROSS_CHANNELS"
        ):
            raise ForeignError("LRN over a region within each channel", "norm_region")
        return {
            "size": p.get("local_size", 5),
            "alpha": float(p.get("alpha", 1.0)),
            "beta": float(p.get("beta", 0.75)),
            "k": float(p.get("k", 1.0)),
        }

    # The LRN op, or the nodes torch.onnx (dynamo) lowers nn.LocalResponseNorm to:
    # x / (k + α·avg_pool(pad(x²)))^β, a 3-D pool for C×H×W, 2-D for C×L; or the native
    # emitter's form of what ONNX's LRN cannot say: the squares reshaped to [N, 1, C, rest],
    # averaged over [size, 1] with PyTorch's padding counted, reshaped back.
    onnx_patterns = (
        ("LRN",),
        ("Mul", "Reshape", "Pad", "AveragePool", "Squeeze", "Mul", "Add", "Pow", "Div"),
        ("Mul", "Unsqueeze", "Pad", "AveragePool", "Squeeze", "Mul", "Add", "Pow", "Div"),
        ("Mul", "Reshape", "AveragePool", "Reshape", "Mul", "Add", "Pow", "Div"),
    )
    torch_modules = ("LocalResponseNorm",)
    torch_functions = ("local_response_norm",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """ONNX's LRN is this convention (α divided by size)."""
        if nodes.ops == ("LRN",):
            return {
                "size": int(nodes.attr(0, "size")),
                "alpha": float32(nodes.attr(0, "alpha", 1e-4)),
                "beta": float32(nodes.attr(0, "beta", 0.75)),
                "k": float32(nodes.attr(0, "bias", 1.0)),
            }
        x = nodes.nodes[0].input[0]
        if list(nodes.nodes[0].input) != [x, x] or x not in nodes.nodes[-1].input:
            return None
        pool = nodes.ops.index("AveragePool")
        window = list(nodes.attr(pool, "kernel_shape", []))
        alpha, k, beta = (nodes.scalar(nodes.ops.index(op, pool)) for op in ("Mul", "Add", "Pow"))
        if len(window) < 2 or any(w != 1 for w in window[1:]) or None in (alpha, k, beta):
            return None
        if "Pad" not in nodes.ops:  # the padding is the pool's: PyTorch's, zeros counted
            size = int(window[0])
            pads = list(nodes.attr(pool, "pads", []))
            if pads != [size // 2, 0, (size - 1) // 2, 0] or not nodes.attr(
                pool, "count_include_pad", 0
            ):
                return None
        return {
            "size": int(window[0]),
            "alpha": float32(alpha),
            "beta": float32(beta),
            "k": float32(k),
        }

    @classmethod
    def onnx_expect(cls, nodes: Any, fields: dict[str, Any]) -> dict[str, int]:
        return {}  # its constants are the layer's settings, not weights

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        if m is None:
            get = call.arg
            return {"size": get(1, "size", 5), "alpha": float(get(2, "alpha", 1e-4)),
                    "beta": float(get(3, "beta", 0.75)), "k": float(get(4, "k", 1.0))}  # fmt: skip
        return {"size": m.size, "alpha": float(m.alpha), "beta": float(m.beta), "k": float(m.k)}

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

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """ONNX's LRN for an odd size on C×H×W (its window is centred, as PyTorch's). An even
        size puts PyTorch's extra map before c, ONNX's after: there (and on other ranks, which
        ONNX Runtime's LRN refuses), as PyTorch computes it, the
        squares averaged over a [size, 1] window of [N, 1, C, rest] (zeros counted), then
        x / (k + α·mean)^β."""
        x = inputs[0]
        # ONNX Runtime's LRN takes N×C×H×W only, and α > 0, β > 0 as float32 (1e-143 is 0)
        tiny = 1e-30
        if self.size % 2 and len(shapes[0]) == 3 and self.alpha > tiny and self.beta > tiny:
            g.node("LRN", [x], out, size=self.size, alpha=self.alpha, beta=self.beta, bias=self.k)
            return
        squares = g.node("Mul", [x, x])
        stacked = g.node("Reshape", [squares, g.const([0, 1, shapes[0][0], -1], int64=True)])
        mean = g.node(
            "AveragePool",
            [stacked],
            kernel_shape=[self.size, 1],
            pads=[self.size // 2, 0, (self.size - 1) // 2, 0],
            count_include_pad=1,
        )
        back = g.node("Reshape", [mean, g.node("Shape", [x])])
        scaled = g.node("Add", [g.node("Mul", [back, g.const(self.alpha)]), g.const(self.k)])
        g.node("Div", [x, g.node("Pow", [scaled, g.const(self.beta)])], out)


class LRNTensorFlow(Layer):
    """b_c = a_c / (bias + α · Σ a_j²)^β over the maps c − r … c + r (TensorFlow's ``tf.nn.lrn``).

    TensorFlow's (and tflearn's) convention: a depth *radius* r instead of a
    window size, and α *not* divided by the window: this kind is the ``lrn``
    kind with size 2r + 1 and α·(2r + 1), written as a TensorFlow model states it
    (tflearn's AlexNet: r = 5, bias 1, α = 10⁻⁴, β = 0.75).
    """

    type: Literal["lrn_tf"]
    depth_radius: int = Field(5, ge=0, description="r: maps on each side summed over")
    bias: float = Field(1.0, gt=0, description="additive constant (Caffe's and PyTorch's k)")
    alpha: float = Field(1.0, ge=0, description="α, not divided by the window size")
    beta: float = Field(0.5, ge=0, description="β")

    count_rule = "connections = (2r + 1)·C·H·W; no params, no MACs (as lrn with size 2r + 1)"

    train_rule = "as lrn with size 2r + 1 (the same PyTorch module)"

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        return self._as_lrn().training(shapes, out, ctx)

    def _as_lrn(self) -> LRN:
        size = 2 * self.depth_radius + 1
        return LRN(
            name=self.name,
            type="lrn",
            size=size,
            alpha=self.alpha * size,
            beta=self.beta,
            k=self.bias,
        )

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        return self._as_lrn().output_shape(shapes)

    def plain(self, shapes: Sequence[Shape]) -> Layer:
        """The ``lrn`` this is (size 2r + 1, α·(2r + 1)): what PyTorch, ONNX and an import
        of either give back, since neither keeps TensorFlow's parameters."""
        return self._as_lrn()

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        return self._as_lrn().counts(shapes, out)

    def onnx_opset(self, shapes: Sequence[Shape]) -> tuple[int, str] | None:
        return self._as_lrn().onnx_opset(shapes)

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        return self._as_lrn().torch_call(shapes)

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        self._as_lrn().onnx_nodes(g, inputs, shapes, out)


class _BatchNorm(Layer):
    """Batch normalisation: each channel normalised by its batch statistics (while
    training) or its running ones (at inference), then scaled and shifted.

    Counted as PyTorch counts it: γ and β are parameters (with ``affine``);
    ``running_mean``, ``running_var`` and the one-element ``num_batches_tracked``
    are buffers (with ``track_running_stats``). At inference it is one scale and
    shift per element, which folds into the convolution before it: like the
    activations it adds no connections and no MACs, so a network's MACs stay
    those of its convolutions and linear layers, as torchvision's published
    "GFLOPS" count them.
    """

    eps: float = Field(1e-5, gt=0, description="added to the variance")
    momentum: float | None = Field(
        0.1, ge=0, le=1, description="running statistics' update weight; null: cumulative average"
    )
    affine: bool = Field(True, description="trainable scale γ and shift β per channel")
    track_running_stats: bool = Field(True, description="keep running mean and variance")

    ranks: ClassVar[tuple[int, ...]] = (3,)
    count_rule = (
        "params = 2·C (γ, β; with affine); buffers = 2·C + 1 (running mean and variance, "
        "num_batches_tracked; with track_running_stats); no connections, no MACs"
    )

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if len(shape) not in self.ranks:
            want = " or ".join(_RANK_NAMES[r] for r in self.ranks)
            raise ShapeError(
                f"{self.type} needs {want}, got {'×'.join(map(str, shape))}", field="type"
            )
        return shape

    train_rule = (
        "backward: no MACs (elementwise, like its forward); saves its input and the batch's "
        "mean and inverse standard deviation (C each, per batch) when a gradient flows to its "
        "input or its γ and β; the running statistics are buffers, not saved"
    )

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        if not (ctx.needs_input_grad[0] or self.affine):
            return Training()
        channels = out[0]
        return Training(
            saved=(
                Saved("input"),
                Saved("batch mean", channels, "float32", per_sample=False),
                Saved("batch inverse std", channels, "float32", per_sample=False),
            ),
            param_tensors=(channels, channels) if self.affine else (),
        )

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        channels = out[0]
        return Counts(
            params=2 * channels if self.affine else 0,
            buffers=2 * channels + 1 if self.track_running_stats else 0,
        )

    @classmethod
    def absorb_caffe(cls, fields: dict[str, Any], layer: Any) -> bool:
        """Caffe's BatchNorm has no γ and β: a Scale layer (with a bias) right after it
        holds them, and the two are one PyTorch batch norm."""
        if layer.type != "Scale" or fields.get("affine", True):
            return False
        if not layer.message("scale_param").get("bias_term", False):
            return False
        del fields["affine"]
        return True

    onnx_patterns = (("BatchNormalization",),)
    torch_functions = ("batch_norm",)

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """ONNX's momentum weighs the running statistics (PyTorch's: the new batch)."""
        if len(nodes.in_shapes[0]) not in cls.ranks:
            return None
        fields: dict[str, Any] = {}
        eps = float32(nodes.attr(0, "epsilon", 1e-5))
        if eps != 1e-5:
            fields["eps"] = eps
        momentum = round(1 - float32(nodes.attr(0, "momentum", 0.9)), 6)
        if momentum != 0.1:
            fields["momentum"] = momentum
        return fields

    @classmethod
    def onnx_expect(cls, nodes: Any, fields: dict[str, Any]) -> dict[str, int]:
        """Scale and bias are the parameters. The running mean and variance are the
        buffers, but PyTorch also counts num_batches_tracked, which ONNX does not hold:
        buffers are left out of expect: rather than stated as a figure the file lacks."""
        return {"params": nodes.weight_elements(only=((0, 1), (0, 2)))}

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        m = call.module
        if m is None:
            raise ForeignError("F.batch_norm with tensors (use nn.BatchNorm2d)", "batch_norm")
        if len(call.in_shapes[0]) not in cls.ranks:
            return None
        fields: dict[str, Any] = {}
        defaults = {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}
        for key, default in defaults.items():
            if getattr(m, key) != default:
                fields[key] = getattr(m, key)
        return fields

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        kw: dict[str, object] = {}
        if self.eps != 1e-5:
            kw["eps"] = self.eps
        if self.momentum != 0.1:
            kw["momentum"] = self.momentum
        if not self.affine:
            kw["affine"] = False
        if not self.track_running_stats:
            kw["track_running_stats"] = False
        name = "nn.BatchNorm2d" if self.type == "batchnorm2d" else "nn.BatchNorm1d"
        return TorchCall(name, (shapes[0][0],), kw)

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """BatchNormalization on the running statistics; without them PyTorch normalises by
        the batch's own (biased) statistics even at inference, so the graph computes them:
        ReduceMean over every axis but the channels', (x − μ)/√(σ² + ε)·γ + β."""
        x, channels, rank = inputs[0], shapes[0][0], len(shapes[0])
        if self.affine:
            scale = g.param("weight", (channels,), "ones")
            shift = g.param("bias", (channels,), "zeros")
        else:
            scale, shift = g.const([1.0] * channels), g.const([0.0] * channels)
        if self.track_running_stats:
            mean = g.param("running_mean", (channels,), "zeros")
            var = g.param("running_var", (channels,), "ones")
            g.state("num_batches_tracked")
            g.node("BatchNormalization", [x, scale, shift, mean, var], out, epsilon=self.eps)
            return
        axes = [0, *range(2, rank + 1)]
        centred = g.node("Sub", [x, g.reduce("ReduceMean", x, axes, keepdims=True)])
        var = g.reduce("ReduceMean", g.node("Mul", [centred, centred]), axes, keepdims=True)
        std = g.node("Sqrt", [g.node("Add", [var, g.const(self.eps)])])
        per_channel = g.const([channels] + [1] * (rank - 1), int64=True)
        gamma = g.node("Reshape", [scale, per_channel])
        beta = g.node("Reshape", [shift, per_channel])
        normed = g.node("Div", [centred, std])
        g.node("Add", [g.node("Mul", [normed, gamma]), beta], out)


_RANK_NAMES = {1: "C features", 2: "C×L sequences", 3: "C×H×W feature maps"}


class BatchNorm2d(_BatchNorm):
    __doc__ = _BatchNorm.__doc__

    type: Literal["batchnorm2d"]

    shape_rule = "output = input (C×H×W)"
    caffe_types = ("BatchNorm",)
    torch_modules = ("BatchNorm2d",)

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        p = layer.message("batch_norm_param")
        fields: dict[str, Any] = {"affine": False}  # until a Scale layer brings γ and β
        if p.get("eps", 1e-5) != 1e-5:
            fields["eps"] = float(p.get("eps"))
        fraction = p.get("moving_average_fraction", 0.999)
        if fraction != 0.9:
            fields["momentum"] = round(1 - float(fraction), 12)
        return fields


class BatchNorm1d(_BatchNorm):
    __doc__ = _BatchNorm.__doc__

    type: Literal["batchnorm1d"]

    ranks = (1, 2)
    torch_modules = ("BatchNorm1d",)
    shape_rule = "output = input (C or C×L)"
