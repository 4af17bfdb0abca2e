"""The vocabularies every stage shares, each written once: element types, activations, providers.

The spec schema reads its choices from these tables, and each backend reads
its own column: the calculator the bytes, PyTorch the torch dtype and
activation expression, the ONNX exporter the element type, ``run --verify``
the tolerance. Adding an entry here is the whole change a new dtype or
activation needs outside the backends' own code (and their tests check
that every entry has a form). Pure data (NamedTuples: cheap to define, so the CLI starts fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple


class DType(NamedTuple):
    """One element type and its form in every backend."""

    name: str  # the spec's spelling (input.dtype), also numpy's
    bytes: int  # per element: memory figures and resource checks
    torch: str  # attribute of the torch module: torch.float32
    onnx: int  # onnx.TensorProto element type (literal, so onnx stays unimported)
    # run --verify's threshold on max|ort − torch| / max(1, max|torch|). float32: 1e-4
    # (measured ≤ 2.1e-6 on every layer of every shipped spec, batch 4); float16: 1e-2,
    # ten float16 ulps at 1.0 (measured ≤ 8.3e-4 on LeNet-5 and AlexNet against a
    # float32 reference that uses the same float16-rounded weights and input).
    tolerance: float


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("float32", 4, "float32", 1, 1e-4),
        DType("float16", 2, "float16", 10, 1e-2),
        DType("bfloat16", 2, "bfloat16", 16, 5e-2),
        DType("float64", 8, "float64", 11, 1e-8),
    )
}


class ActivationForm(NamedTuple):
    """One ``activation:`` value and its form in every backend."""

    name: str  # the spec's spelling
    # The expression PyTorch applies: a function of torch or F, or one defined in
    # archspec/torch/modules.py. The compiler resolves it; codegen prints it.
    torch: str
    # The ONNX operator(s) it exports to, for people: the native exporter emits the shorthand
    # with the standalone layer kind of the same name (its ``onnx_nodes``), so the
    # shorthand and the layer cannot differ (tests/test_native_export.py checks both forms).
    onnx: str
    formula: str  # for people: the reference page


ACTIVATIONS: dict[str, ActivationForm] = {
    a.name: a
    for a in (
        ActivationForm("relu", "F.relu", "Relu", "max(0, x)"),
        ActivationForm("sigmoid", "torch.sigmoid", "Sigmoid", "1 / (1 + e^−x)"),
        ActivationForm("tanh", "torch.tanh", "Tanh", "tanh(x)"),
        ActivationForm("scaled_tanh", "scaled_tanh", "Mul, Tanh, Mul", "1.7159·tanh(2x/3)"),
        ActivationForm("relu6", "F.relu6", "Clip", "min(max(0, x), 6)"),
        ActivationForm("leaky_relu", "F.leaky_relu", "LeakyRelu", "x if x ≥ 0 else 0.01·x"),
        ActivationForm("hardtanh", "F.hardtanh", "Clip", "min(max(x, −1), 1)"),
        ActivationForm("silu", "F.silu", "Sigmoid, Mul", "x·σ(x)"),
        ActivationForm("hardswish", "F.hardswish", "HardSwish", "x·min(max(x + 3, 0), 6)/6"),
        ActivationForm("hardsigmoid", "F.hardsigmoid", "HardSigmoid", "min(max(x + 3, 0), 6)/6"),
        ActivationForm("gelu", "F.gelu", "Erf, Mul, Add", "x·Φ(x), Φ the normal CDF"),
        ActivationForm("identity", "identity", "Identity", "x"),
    )
}

if TYPE_CHECKING:
    DTypeName = str
    Activation = str
else:
    DTypeName = Literal[tuple(DTYPES)]
    Activation = Literal[tuple(ACTIVATIONS)]

# ONNX Runtime execution providers, best first: what `--provider auto` tries, in order.
PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
PROVIDER_CHOICES = ("auto", *PROVIDERS)  # what --provider accepts

# ONNX opsets archspec exports: the default, and the oldest it accepts (layers may need newer).
# Training set-ups (archspec.training): the command line offers them as choices, so they
# live here, where parsing a command's arguments does not import the training model.
OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}  # fp32 state copies per parameter
PRECISIONS = {"fp32": "float32", "amp-fp16": "float16", "amp-bf16": "bfloat16"}
DEVICES = ("cuda", "cpu")

DEFAULT_OPSET = 18
MIN_OPSET = 17
