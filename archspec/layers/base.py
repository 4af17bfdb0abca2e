"""What every layer kind is made of.

A layer kind is one pydantic model (its fields, discriminated on ``type``)
that also carries every rule about the kind — like a Keras layer keeps
``compute_output_shape`` beside ``call``, or an ONNX schema its own shape
inference. Nothing outside the kind's file names the kind, so adding one means
adding one class.

Shapes are per sample (no batch axis), channels first, as exact Python ints.
"""

import math
import struct
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from archspec.vocab import (
    Activation as Activation,  # the kinds name it beside the other field types
)

Shape = tuple[int, ...]

# An identifier, or a dotted path of them like PyTorch's module paths (``layer1.0.conv1``),
# which blocks give the layers they expand to.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$"
RESERVED_NAMES = frozenset({"input", "forward", "training", "self", "x", "torch", "nn", "F"})
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=128)]
SPEC_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*$"
SpecName = Annotated[str, StringConstraints(pattern=SPEC_NAME_PATTERN, max_length=100)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
IntOrPair = PositiveInt | Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
NonNegIntOrPair = NonNegInt | Annotated[list[NonNegInt], Field(min_length=2, max_length=2)]


class ShapeError(Exception):
    """A layer cannot accept its input; ``field`` names the spec key to point at."""

    def __init__(self, message: str, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint


class ForeignError(Exception):
    """A foreign model's layer uses an option this kind cannot express; ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def caffe_pair(param: Any, name: str, default: int | None) -> Any:
    """Caffe's ``kernel_size``/``stride``/``pad``/``dilation`` (one value, or one per
    axis), or the ``kernel_h``/``kernel_w`` form, as archspec writes it: an int, or [h, w]."""
    short = name.removesuffix("_size")
    h, w = param.get(f"{short}_h"), param.get(f"{short}_w")
    if h is not None or w is not None:
        pair_ = [h if h is not None else default, w if w is not None else default]
        return pair_[0] if pair_[0] == pair_[1] else pair_
    values = param.values(name)
    if not values:
        return default
    if len(values) == 1 or values[0] == values[1]:
        return int(values[0])
    return [int(values[0]), int(values[1])]


def caffe_enum(value: Any, names: Sequence[str]) -> str:
    """A Caffe enum field as its name, whether written as the name or as its number."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    return str(value)


@dataclass(frozen=True)
class Finding:
    """A lint finding: legal but suspicious."""

    message: str
    field: str | None = None
    hint: str | None = None
    lint: str | None = None  # the id of its lint, declared with archspec.lints.declare


@dataclass(frozen=True)
class Counts:
    params: int = 0
    buffers: int = 0
    connections: int = 0
    macs: int = 0


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field size and jump (input pixels between neighbouring outputs), per axis."""

    size: tuple[int, int] = (1, 1)
    jump: tuple[int, int] = (1, 1)

    def through_window(
        self, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)
    ) -> "ReceptiveField":
        """r_out = r_in + (k−1)·d·j_in and j_out = j_in·s, on each axis."""
        size = tuple(
            r + (k - 1) * d * j
            for r, k, d, j in zip(self.size, kernel, dilation, self.jump, strict=True)
        )
        jump = tuple(j * s for j, s in zip(self.jump, stride, strict=True))
        return ReceptiveField((size[0], size[1]), (jump[0], jump[1]))


@dataclass(frozen=True)
class TorchCall:
    """How to construct the layer's PyTorch module: ``callable(*args, **kwargs)``.

    ``callable`` is ``nn.<Name>`` for torch.nn classes, otherwise the name of a
    class in :mod:`archspec.torch.modules`. The compiler calls it and the code
    generator prints it, so the two cannot construct different modules.
    """

    callable: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def source(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.callable}({', '.join(parts)})"


class OnnxGraph(Protocol):
    """What a kind emits its ONNX nodes into (:class:`archspec.onnx.native.Builder`).

    The emitter passes one in, so the kinds write ONNX without importing onnx (or
    anything above them): they name operators, attributes and tensors, and the
    builder makes the protos. Values are strings; every helper returns its output's name.
    """

    opset: int  # the model's opset: a kind may choose an operator by it

    def node(self, op: str, inputs: Sequence[str], out: str | None = None, **attrs: Any) -> str:
        """One node ``op(inputs)`` with ONNX attributes; its output ``out`` or a fresh name."""
        ...

    def param(
        self, key: str, shape: Sequence[int], init: str, bound: float | Sequence[float] = 0.0
    ) -> str:
        """A tensor of the layer's state, named ``<layer>.<key>`` as the PyTorch module's
        state_dict names it, so a weights file fits both. ``init``: "uniform" (U(±bound),
        a bound per row of the first axis where a sequence), "zeros", "ones" or "sign"
        (±1, each with probability ½)."""
        ...

    def state(self, key: str) -> None:
        """A state_dict entry the ONNX graph does not read (BatchNorm's num_batches_tracked)."""
        ...

    def const(self, values: Any, int64: bool = False) -> str:
        """A constant: a number or nested list, in the model's float type or int64."""
        ...

    def reduce(
        self, op: str, x: str, axes: Sequence[int], keepdims: bool, out: str | None = None
    ) -> str:
        """ReduceSum/ReduceMean/ReduceMax over ``axes``, as the model's opset spells it."""
        ...

    def activation(self, name: str, x: str, out: str) -> None:
        """The ``activation:`` shorthand ``name`` applied to ``x``: its standalone kind's nodes."""
        ...


def onnx_pads(total: tuple[int, int]) -> list[int]:
    """Per-axis totals as ONNX's pads (top, left, bottom, right), the extra after (TensorFlow's split)."""
    (th, tw) = total
    return [th // 2, tw // 2, th - th // 2, tw - tw // 2]


# A figure as a source prints it rounded: "15.47G" is 15.47·10⁹ to two decimals (K, M, G, T).
ROUNDED_PATTERN = r"^[0-9]+(\.[0-9]+)?[KMGT]$"
_UNITS = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
Published = NonNegInt | Annotated[str, StringConstraints(pattern=ROUNDED_PATTERN)]


def published_holds(published: int | str, actual: int) -> bool:
    """Whether ``actual`` is the figure a source printed, exactly or as rounded.

    A rounded figure holds when the exact one lies within half a unit of its
    last printed digit (15.47G: 15.465·10⁹ ≤ actual ≤ 15.475·10⁹), compared
    in exact integers so no rounding mode or float error can decide it.
    """
    if isinstance(published, int):
        return published == actual
    digits, unit = published[:-1], _UNITS[published[-1]]
    whole, _, frac = digits.partition(".")
    scale = 10 ** len(frac)
    shown = int(whole) * scale + int(frac or 0)  # the printed number, times scale
    # |actual/unit − shown/scale| ≤ 1/(2·scale)  ⇔  |2·actual·scale − 2·shown·unit| ≤ unit
    return abs(2 * actual * scale - 2 * shown * unit) <= unit


@dataclass(frozen=True)
class Saved:
    """One tensor that autograd keeps for the backward pass of a layer (what PyTorch saves).

    ``tensor`` is ``"input"`` (``"input1"``… for further inputs), ``"output"``, or a
    label for a tensor the layer makes inside (a mask, pooling indices, a copy of
    the weights). ``dtype`` is ``"as-is"`` (a named tensor in its own dtype),
    ``"low"`` (cast to autocast's compute type: a new copy when the tensor is
    wider; float32 without autocast), ``"input"`` (the input's dtype),
    ``"float32"``, ``"int64"`` or ``"bool"``. ``elements`` (for tensors made
    inside) is per sample unless ``per_sample`` is false; ``autocast_only`` marks
    copies that exist only under autocast (a parameter itself is never counted).
    """

    tensor: str
    elements: int = 0
    dtype: str = "as-is"
    per_sample: bool = True
    autocast_only: bool = False


@dataclass(frozen=True)
class TrainContext:
    """What a kind needs to state its training figures.

    ``needs_input_grad[k]``: whether input k depends on a trainable parameter
    (the model's input does not, so the first layer computes no input gradient).
    ``autocast``: the step runs under torch.autocast; ``device``: "cuda" or "cpu"
    (a few kinds save different tensors on each).
    """

    needs_input_grad: tuple[bool, ...]
    autocast: bool = False
    device: str = "cuda"
    inference: bool = False  # a forward pass under torch.no_grad (kernels pick other scratch)


@dataclass(frozen=True)
class Training:
    """A layer's training figures, per sample: backward MACs and what autograd saves.

    ``output_dtype`` under autocast: ``"low"``, ``"input"``, ``"float32"`` or
    ``"promote"`` (the widest input). ``aliases_input``: the output is a view of
    input 0 (no new memory). ``param_tensors``: element counts of each
    trainable parameter tensor (for the optimizer's per-tensor work).
    ``workspace``: elements per sample, in the compute type, that the backward
    pass of the layer allocates and frees again (a library's scratch copies).
    """

    grad_input_macs: int = 0
    grad_weight_macs: int = 0
    saved: tuple[Saved, ...] = ()
    output_dtype: str = "input"
    aliases_input: bool = False
    param_tensors: tuple[int, ...] = ()
    workspace: int = 0
    workspace_fixed: int = 0  # the same, independent of the batch (e.g. reordered weights)
    # What the forward pass allocates and frees again (dtype "input": the compute type), per sample.
    forward_workspace: tuple[Saved, ...] = ()


class Expect(BaseModel):
    """Figures that a model's source publishes; a mismatch is an error showing both.

    A figure is an exact integer, or, where the source prints it rounded, the
    printed number with its unit (`15.47G`, `138.36M`): it holds when the
    computed figure rounds to it.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    output: list[NonNegInt] | None = Field(None, description="output shape per sample")
    params: Published | None = Field(None, description="trainable elements")
    buffers: Published | None = Field(None, description="non-trainable state elements")
    connections: Published | None = Field(None, description="LeCun 1998 connections")
    macs: Published | None = Field(None, description="multiply-accumulates per sample")
    flops: Published | None = Field(None, description="2 × macs")


class Layer(BaseModel):
    """Fields shared by every layer kind."""

    # allow_inf_nan=False: an infinite LRN alpha or k (`.inf`, or 1e400 read as inf)
    # would pass every range check and make the layer output 0 or NaN.
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, defer_build=True
    )

    name: Name = Field(
        description="unique identifier; also the PyTorch submodule and ONNX value name"
    )
    type: str
    inputs: list[Name] | None = Field(
        None,
        min_length=1,
        description="earlier layers (or 'input') to read; default: the previous layer",
    )
    expect: Expect | None = Field(None, description="published figures to verify")

    # How many inputs the kind takes: (min, max); max None means any number.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    # Formulas shown by the generated reference; they document the methods below.
    shape_rule: ClassVar[str] = "output = input"
    count_rule: ClassVar[str] = "no params, no connections, no MACs"
    mult_adds_torchinfo_rule: ClassVar[str] = "= params, once per sample (0 without parameters)"
    # What the kind costs a training step: backward MACs and what autograd saves.
    train_rule: ClassVar[str] = "backward: no MACs; saves nothing"
    # True where the smallest output is the best class (a distance, as LeNet-5's RBF):
    # recorded at export so that `run --top-k` ranks the right way round.
    smaller_is_better: ClassVar[bool] = False

    def output_shape(self, shapes: Sequence[Shape]) -> Shape:
        return shapes[0]

    def counts(self, shapes: Sequence[Shape], out: Shape) -> Counts:
        return Counts()

    def mult_adds_torchinfo(self, shapes: Sequence[Shape], out: Shape, counts: Counts) -> int:
        """What ``torchinfo.summary`` reports as this layer's "Mult-Adds", per sample.

        People compare archspec with torchinfo, whose figure is not a count of
        arithmetic: for each leaf module it multiplies the elements of every
        parameter named ``weight`` or ``bias`` by the batch, or, when the class
        name contains "Conv", by the batch and the output's spatial positions;
        buffers and parameters with other names count 0. The default is that
        rule for a module whose parameters are all called weight/bias and whose
        name lacks "Conv": the layer's parameters, once per sample. A kind whose
        module differs (a convolution, a tensor with another name) overrides it.
        """
        return counts.params

    def training(self, shapes: Sequence[Shape], out: Shape, ctx: TrainContext) -> Training:
        """Backward MACs and saved tensors of one training step, per sample (see ``train_rule``)."""
        return Training()

    def receptive_field(
        self, shapes: Sequence[Shape], fields: Sequence[ReceptiveField]
    ) -> ReceptiveField:
        return max(fields, key=lambda f: f.size)

    def lint(self, shapes: Sequence[Shape]) -> list[Finding]:
        return []

    def torch_call(self, shapes: Sequence[Shape]) -> TorchCall:
        raise NotImplementedError(f"{type(self).__name__} has no PyTorch builder")

    def onnx_nodes(
        self, g: OnnxGraph, inputs: Sequence[str], shapes: Sequence[Shape], out: str
    ) -> None:
        """Emit this layer's ONNX nodes into ``g``: read ``inputs`` (values of ``[batch,
        *shape]``), write the value ``out``; without the ``activation:`` shorthand, which the
        emitter applies. The native exporter's form of the kind, beside :meth:`torch_call`."""
        raise NotImplementedError(f"{type(self).__name__} has no ONNX form")

    def canonical(self, shapes: Sequence[Shape]) -> dict[str, Any]:
        """The fields that decide what this layer computes on these inputs, written one way,
        so ``archspec diff`` calls two layers the same exactly when they compute the same
        (a pool's default stride is its kernel; ceil_mode that changes no size is moot).
        Across kinds, :meth:`plain` says which kind's canonical fields to compare."""
        return self.model_dump(exclude={"name", "type", "inputs", "expect"}, exclude_none=True)

    def plain(self, shapes: Sequence[Shape]) -> "Layer":
        """This layer as the kind that states its computation most plainly on these inputs:
        itself, unless the kind is another one written differently (TensorFlow's LRN is
        ``lrn`` with converted parameters; an adaptive pool whose sizes divide is a fixed
        pool). ``archspec diff`` compares the plain forms' :meth:`canonical` fields, so two
        notations of one computation — which an export and import may turn one into the
        other, as no file format keeps the notation — are the same network, shown as
        equivalent rather than the same."""
        return self

    # Caffe layer types this kind imports (``archspec import x.prototxt``): the importer
    # builds its table from these, so no importer names a kind.
    caffe_types: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_caffe(cls, layer: Any) -> dict[str, Any] | None:
        """This kind's fields for a Caffe layer of one of :attr:`caffe_types` (its parsed
        text-format message), or None when another kind of the same Caffe type fits it
        (a MAX pool is not an AVE pool). Raises :class:`ForeignError` for an option the
        kind cannot express."""
        return None

    @classmethod
    def absorb_caffe(cls, fields: dict[str, Any], layer: Any) -> bool:
        """Whether this kind's layer (``fields``, imported just before) takes in the next
        Caffe layer, updating ``fields`` (BatchNorm then Scale is one batch norm)."""
        return False

    # ONNX node chains this kind imports (``archspec import model.onnx``): each pattern is
    # the op types of a chain of nodes, each read only by the next (scaled_tanh: Mul, Tanh,
    # Mul); the importer tries the longest first, so no importer names a kind.
    onnx_patterns: ClassVar[tuple[tuple[str, ...], ...]] = ()

    @classmethod
    def from_onnx(cls, nodes: Any) -> dict[str, Any] | None:
        """This kind's fields for a matched chain of ONNX nodes (an
        :class:`archspec.importers.onnxfile.Chain`: op types, attributes, constant inputs
        and shapes), or None when the chain is not this kind after all (a Mul by 1.7159 is
        scaled_tanh's, a Mul of two tensors is ``mul``). Raises :class:`ForeignError` for
        an option the kind cannot express."""
        return None

    @classmethod
    def onnx_expect(cls, nodes: Any, fields: dict[str, Any]) -> dict[str, int]:
        """The figures the ONNX file itself states for this layer: by default its weights
        (every float initializer it reads, scalars aside) are its parameters."""
        weights = nodes.weight_elements()
        return {"params": weights} if weights else {}

    # PyTorch modules this kind imports (``archspec import pkg.module:factory``), by class
    # name, and the functions / tensor methods a traced forward calls (``relu``, ``add``).
    torch_modules: ClassVar[tuple[str, ...]] = ()
    torch_functions: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_torch(cls, call: Any) -> dict[str, Any] | None:
        """This kind's fields for a traced module or function call (an
        :class:`archspec.importers.pytorch.Call`), or None when another kind fits it."""
        return None

    def onnx_opset(self, shapes: Sequence[Shape]) -> tuple[int, str] | None:
        """The oldest ONNX opset that computes this layer as PyTorch does, and why; None: any.

        Like an ONNX operator schema's `since_version`, but for this layer on these
        inputs: the exporter picks the newest such opset of a spec by default and
        refuses an older one the user asks for, naming the layer.
        """
        return None

    @classmethod
    def takes_activation(cls, name: str) -> bool:
        """Whether this kind's ``activation:`` shorthand accepts ``name`` (importers and
        ``diff`` fold a standalone activation into the layer before it when it does)."""
        field = cls.model_fields.get("activation")
        return field is not None and name in _literal_strings(field.annotation)

    @property
    def activation_name(self) -> str | None:
        """The ``activation:`` shorthand applied to this layer's output, if the kind has one."""
        return getattr(self, "activation", None)


# ---------------------------------------------------------------------------
# Helpers shared by the windowed kinds (conv and pools).


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def torch_arg(value: int | str | Sequence[int]) -> int | str | tuple[int, ...]:
    """Print [5, 5] as 5 and [3, 5] as (3, 5), the way people write PyTorch."""
    if isinstance(value, (int, str)):
        return value
    return value[0] if value[0] == value[1] else tuple(value)


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def require_rank(shape: Shape, rank: int, kind: str) -> None:
    if len(shape) != rank:
        dims = "×".join(map(str, shape)) or "a scalar"
        want = {3: "C×H×W feature maps", 1: "a flat vector"}.get(rank, f"rank {rank}")
        raise ShapeError(f"{kind} needs {want}, got {dims}", field="type")


def window_out(
    size: int, kernel: int, stride: int, pad_total: int, dilation: int, ceil: bool = False
) -> int:
    """PyTorch's output-size rule for a sliding window (conv and pooling)."""
    span = size + pad_total - dilation * (kernel - 1) - 1
    if not ceil:
        return span // stride + 1 if span >= 0 else 0
    # With ceil_mode PyTorch accepts a window wider than the input if it starts inside
    # it (kernel 2 on a 1×1 input gives 1×1), so span may be negative here.
    out = -(-span // stride) + 1
    # PyTorch: the last window must start inside the input or left padding.
    if (out - 1) * stride >= size + pad_total // 2:
        out -= 1
    return max(out, 0)


def same_pad_total(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """TensorFlow's 'SAME' padding along one axis: enough for ⌈size/stride⌉ outputs.

    The output is ⌈n/s⌉ and the padding is (out − 1)·s + (k − 1)·d + 1 − n, never
    negative; the before side gets ⌊total/2⌋ and the after side the rest, so an odd
    total puts the extra row at the bottom and the extra column on the right. With
    stride 1 this is PyTorch's ``padding='same'`` too.
    """
    out = -(-size // stride)
    return max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


def same_pads(
    shape: Shape, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int]:
    """:func:`same_pad_total` for the H and W axes of a C×H×W input."""
    h, w = (
        same_pad_total(n, k, s, d)
        for n, k, s, d in zip(shape[1:], kernel, stride, dilation, strict=True)
    )
    return (h, w)


def torch_pads(total: tuple[int, int]) -> tuple[int, int, int, int]:
    """Per-axis totals as F.pad's (left, right, top, bottom), the extra after: TensorFlow's split."""
    (th, tw) = total
    return (tw // 2, tw - tw // 2, th // 2, th - th // 2)


def fmt_shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape) if shape else "scalar"


def spatial_out(
    shape: Shape,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad_total: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    ceil: bool = False,
) -> tuple[int, int]:
    """Output H, W of a window sliding over C×H×W, or a ShapeError naming what collapsed."""
    out = tuple(
        window_out(n, k, s, p, d, ceil)
        for n, k, s, p, d in zip(shape[1:], kernel, stride, pad_total, dilation, strict=True)
    )
    if min(out) <= 0:
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
        padded = tuple(n + p for n, p in zip(shape[1:], pad_total, strict=True))
        raise ShapeError(
            f"window {fmt_shape(span)} is larger than its {fmt_shape(padded)} input"
            f"{' (with padding)' if any(pad_total) else ''}: the output would be "
            f"{fmt_shape(out)}, a spatial size of 0",
            field="kernel",
        )
    return (out[0], out[1])


# ---------------------------------------------------------------------------
# Helpers shared by the kinds' ONNX import rules.


def int_or_pair(values: Sequence[int]) -> int | list[int]:
    """[5, 5] as 5 and [3, 5] as [3, 5], the way specs write a window."""
    return int(values[0]) if values[0] == values[1] else [int(values[0]), int(values[1])]


def onnx_window(nodes: Any, i: int, kernel: Sequence[int]) -> dict[str, Any]:
    """``stride``, ``padding`` and ``dilation`` of a 2-D ONNX Conv or pool (node ``i`` of
    the chain), as spec fields, leaving out defaults: symmetric pads as an int or [h, w];
    uneven ones that are TensorFlow's rule (the extra after) as 'same'."""
    if len(kernel) != 2:
        raise ForeignError(f"a {len(kernel)}-D window (archspec's kinds are 2-D)", "kernel_shape")
    stride = list(nodes.attr(i, "strides", [1, 1]))
    dilation = list(nodes.attr(i, "dilations", [1, 1]))
    fields: dict[str, Any] = {}
    auto = nodes.attr(i, "auto_pad", "NOTSET")
    if auto == "SAME_UPPER":
        fields["padding"] = "same"
    elif auto == "SAME_LOWER":
        raise ForeignError("auto_pad SAME_LOWER (the extra padding before)", "auto_pad")
    elif auto not in ("NOTSET", "VALID"):
        raise ForeignError(f"auto_pad {auto}", "auto_pad")
    else:
        pads = list(nodes.attr(i, "pads", [0, 0, 0, 0]))
        if pads[:2] == pads[2:]:
            if any(pads):
                fields["padding"] = int_or_pair(pads[:2])
        else:
            total = same_pads(nodes.in_shapes[0], pair(kernel), pair(stride), pair(dilation))
            if pads != [
                total[0] // 2,
                total[1] // 2,
                total[0] - total[0] // 2,
                total[1] - total[1] // 2,
            ]:
                raise ForeignError(f"uneven pads {pads} other than TensorFlow's 'same'", "pads")
            fields["padding"] = "same"
    if stride != [1, 1]:
        fields["stride"] = int_or_pair(stride)
    if dilation != [1, 1]:
        fields["dilation"] = int_or_pair(dilation)
    return fields


def float32(value: float) -> float:
    """``value`` rounded to float32, written with the fewest digits that give it back: two
    constants that a float32 model holds as one number are one number (an LRN's α of
    10⁻⁴·11 = 0.0011000000000000001 is 0.0011)."""
    rounded = struct.unpack("<f", struct.pack("<f", value))[0]
    if not math.isfinite(rounded):
        return float(rounded)
    for digits in range(1, 10):
        text = float(f"{rounded:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", text))[0] == rounded:
            return text
    return float(rounded)


def _literal_strings(annotation: Any) -> set[str]:
    """The strings a Literal (or an Optional of one) allows."""
    values: set[str] = set()
    for arg in typing.get_args(annotation) or ():
        if typing.get_origin(arg) is typing.Literal:
            values.update(str(a) for a in typing.get_args(arg))
        elif isinstance(arg, str):
            values.add(arg)
    return values
