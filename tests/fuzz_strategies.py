"""Hypothesis strategies for the differential fuzz tests: random valid specs as YAML text.

Every generated spec comes with the output shape of each layer as predicted
here, by formulas written out independently of archspec (PyTorch's own
size rules, e.g. ``pooling_output_shape`` in ATen's Pool.h), so a test can
hold three things against each other: this prediction, archspec's
calculator and the shapes the compiled PyTorch module actually produces.

Sizes stay small (inputs up to 16×32×32) so that compiling and running one
example takes milliseconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from hypothesis import strategies as st

from archspec.torch.names import is_reserved as taken_by_torch

Shape = tuple[int, ...]
Layer = dict[str, Any]

RESERVED = frozenset({"input", "forward", "training", "self", "x", "torch", "nn", "F"})
ACTIVATIONS = ("relu", "sigmoid", "tanh", "scaled_tanh")
MAX_CHANNELS = 16
MAX_SPATIAL = 32
MAX_WEIGHTS = 40_000  # per linear / rbf layer: in × out


@dataclass
class GeneratedSpec:
    """A spec as data and as the text a test loads, with the predicted shape of every layer."""

    data: dict[str, Any]
    shapes: dict[str, Shape]
    text: str = ""
    style: str = ""
    kinds: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # hypothesis prints this for a failing example
        return f"GeneratedSpec(style={self.style!r}, text=\n{self.text})"


# ---------------------------------------------------------------------------
# PyTorch's size rules, written out independently of archspec.


def conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    """torch.nn.Conv2d: ⌊(n + 2p − d(k−1) − 1)/s⌋ + 1 (may be ≤ 0: PyTorch refuses)."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def pool_out(n: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """ATen's pooling_output_shape: with ceil_mode the last window must start inside input or left pad."""
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pair(v: int | list[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (v[0], v[1])


# ---------------------------------------------------------------------------
# Building blocks.


def sometimes(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws; False is the simple case Hypothesis shrinks to."""
    return draw(st.integers(1, one_in)) == one_in


def int_or_pair(draw: st.DrawFn, h: int, w: int) -> int | list[int]:
    """How a spec writes a size: 5, or [5, 5], or [3, 5]."""
    if h == w and draw(st.booleans()):
        return h
    return [h, w]


def hw(draw: st.DrawFn, lo: int, hi: int, square: float = 0.6) -> tuple[int, int]:
    h = draw(st.integers(lo, hi))
    if draw(st.floats(0, 1)) < square:
        return h, h
    return h, draw(st.integers(lo, hi))


class _Builder:
    """Grows one spec layer by layer, tracking the shape of every tensor."""

    def __init__(self, draw: st.DrawFn, input_shape: Shape, names: str) -> None:
        self.draw = draw
        self.layers: list[Layer] = []
        self.shapes: dict[str, Shape] = {"input": input_shape}
        self.previous = "input"
        self.naming = names

    # -- names and wiring -------------------------------------------------

    def new_name(self) -> str:
        if self.naming == "random":
            name = self.draw(st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,11}\Z"))
            # A name nn.Module already uses ('to', 'eval', ...) is a valid spec that the
            # compiler refuses by design; the specs generated here are for compiling.
            while name in RESERVED or name in self.shapes or taken_by_torch(name):
                name += f"_{len(self.layers)}"
            return name
        return f"l{len(self.layers)}"

    def source(self) -> str:
        """Usually the previous layer; sometimes any earlier tensor (which makes a DAG)."""
        if sometimes(self.draw, 4):
            return self.draw(st.sampled_from(sorted(self.shapes)))
        return self.previous

    def add(self, layer: Layer, out: Shape, inputs: list[str]) -> str:
        name = self.new_name()
        body: Layer = {"name": name, **layer}
        if inputs != [self.previous] or sometimes(self.draw, 10):
            body["inputs"] = list(inputs)
        if sometimes(self.draw, 5):
            body["expect"] = {"output": list(out)}
        self.layers.append(body)
        self.shapes[name] = out
        self.previous = name
        return name

    # -- one layer of each kind on a given input shape --------------------

    def conv2d(
        self, shape: Shape, same_only: bool = False, out_channels: int = 0
    ) -> tuple[Layer, Shape]:
        draw = self.draw
        c, h, w = shape
        if out_channels == 0:
            out_channels = draw(st.integers(1, MAX_CHANNELS))
        groups = 1
        table: list[list[int]] | None = None
        divisors = [g for g in range(1, c + 1) if c % g == 0 and out_channels % g == 0]
        mode = draw(st.sampled_from(["plain", "groups", "table"]))
        if mode == "groups":
            groups = draw(st.sampled_from(divisors))
        elif mode == "table" and out_channels <= 8:
            table = [
                draw(st.lists(st.integers(0, c - 1), min_size=1, max_size=c, unique=True))
                for _ in range(out_channels)
            ]
        kh, kw = hw(draw, 1, 5)
        dh, dw = hw(draw, 1, 3, square=0.8) if draw(st.booleans()) else (1, 1)
        layer: Layer = {"type": "conv2d", "out_channels": out_channels}
        padding_kind = (
            "same" if same_only else draw(st.sampled_from(["none", "int", "same", "valid"]))
        )
        if padding_kind == "int" and max(h, w) >= 2 * MAX_SPATIAL:
            padding_kind = "none"  # keep feature maps small
        sh, sw = (1, 1) if padding_kind == "same" else hw(draw, 1, 3, square=0.8)
        ph, pw = (0, 0)
        if padding_kind == "int":
            ph, pw = hw(draw, 0, 3)
        # A window that does not fit its padded input would be refused: fall back to 1×1.
        too_big = dh * (kh - 1) + 1 > h + 2 * ph or dw * (kw - 1) + 1 > w + 2 * pw
        if too_big and padding_kind != "same":
            kh, kw, dh, dw = 1, 1, 1, 1
        layer["kernel"] = int_or_pair(draw, kh, kw)
        if (sh, sw) != (1, 1) or sometimes(draw, 6):
            layer["stride"] = int_or_pair(draw, sh, sw)
        if padding_kind in ("same", "valid"):
            layer["padding"] = padding_kind
        elif padding_kind == "int":
            layer["padding"] = int_or_pair(draw, ph, pw)
        if (dh, dw) != (1, 1) or sometimes(draw, 6):
            layer["dilation"] = int_or_pair(draw, dh, dw)
        if groups != 1 or (table is None and sometimes(draw, 6)):
            layer["groups"] = groups
        if table is not None:
            layer["input_maps"] = table
        if sometimes(draw, 4):
            layer["bias"] = draw(st.booleans())
        self._activation(layer)
        if padding_kind == "same":
            out = (out_channels, h, w)
        else:
            out = (out_channels, conv_out(h, kh, sh, ph, dh), conv_out(w, kw, sw, pw, dw))
        return layer, out

    def pool(self, shape: Shape, kind: str) -> tuple[Layer, Shape]:
        draw = self.draw
        c, h, w = shape
        kh, kw = hw(draw, 1, 4)
        dh, dw = (1, 1)
        if kind == "maxpool2d" and sometimes(draw, 4):
            dh, dw = hw(draw, 1, 2)
        stride = draw(st.sampled_from(["default", "explicit"]))
        sh, sw = (kh, kw) if stride == "default" else hw(draw, 1, 3)
        # ATen's pool2d_shape_check: padding at most half the kernel (dilation not counted).
        max_ph, max_pw = kh // 2, kw // 2
        ph = draw(st.integers(0, max_ph))
        pw = draw(st.integers(0, max_pw)) if draw(st.booleans()) else min(ph, max_pw)
        ceil = draw(st.booleans())
        # With ceil_mode a window may be wider than the input; PyTorch needs one output.
        if pool_out(h, kh, sh, ph, dh, ceil) < 1 or pool_out(w, kw, sw, pw, dw, ceil) < 1:
            kh, kw, dh, dw, ph, pw = 1, 1, 1, 1, 0, 0
            if stride == "default":
                sh, sw = 1, 1
        layer: Layer = {"type": kind, "kernel": int_or_pair(draw, kh, kw)}
        if stride == "explicit":
            layer["stride"] = int_or_pair(draw, sh, sw)
        if (ph, pw) != (0, 0) or sometimes(draw, 6):
            layer["padding"] = int_or_pair(draw, ph, pw)
        if (dh, dw) != (1, 1):
            layer["dilation"] = int_or_pair(draw, dh, dw)
        if ceil or sometimes(draw, 6):
            layer["ceil_mode"] = ceil
        if kind == "avgpool2d" and sometimes(draw, 4):
            layer["count_include_pad"] = draw(st.booleans())
        out = (c, pool_out(h, kh, sh, ph, dh, ceil), pool_out(w, kw, sw, pw, dw, ceil))
        return layer, out

    def subsample(self, shape: Shape) -> tuple[Layer, Shape]:
        draw = self.draw
        c, h, w = shape
        kh, kw = hw(draw, 1, 3)
        kh, kw = min(kh, h), min(kw, w)
        layer: Layer = {"type": "subsample", "kernel": int_or_pair(draw, kh, kw)}
        sh, sw = kh, kw
        if draw(st.booleans()):
            sh, sw = hw(draw, 1, 3)
            layer["stride"] = int_or_pair(draw, sh, sw)
        self._activation(layer)
        return layer, (c, conv_out(h, kh, sh, 0, 1), conv_out(w, kw, sw, 0, 1))

    def adaptive(self, shape: Shape) -> tuple[Layer, Shape]:
        oh, ow = hw(self.draw, 1, 8)
        layer = {"type": "adaptive_avgpool2d", "output_size": int_or_pair(self.draw, oh, ow)}
        return layer, (shape[0], oh, ow)

    def lrn(self, shape: Shape) -> tuple[Layer, Shape]:
        draw = self.draw
        layer: Layer = {"type": "lrn"}
        if draw(st.booleans()):
            layer["size"] = draw(st.integers(1, 7))
        if draw(st.booleans()):
            layer["alpha"] = draw(st.floats(0, 0.01))
        if draw(st.booleans()):
            layer["beta"] = draw(st.floats(0, 1))
        if draw(st.booleans()):
            layer["k"] = draw(st.floats(0.5, 2))
        return layer, shape

    def linear(self, shape: Shape, out_features: int = 0) -> tuple[Layer, Shape]:
        draw = self.draw
        n_in = shape[-1]
        if out_features == 0:
            out_features = draw(st.integers(1, max(1, min(32, MAX_WEIGHTS // n_in))))
        layer: Layer = {"type": "linear", "out_features": out_features}
        if sometimes(draw, 4):
            layer["bias"] = draw(st.booleans())
        self._activation(layer)
        return layer, (*shape[:-1], out_features)

    def rbf(self, shape: Shape) -> tuple[Layer, Shape]:
        out = self.draw(st.integers(1, max(1, min(12, MAX_WEIGHTS // shape[0]))))
        layer: Layer = {"type": "rbf", "out_features": out}
        if self.draw(st.booleans()):
            layer["trainable"] = self.draw(st.booleans())
        return layer, (out,)

    def elementwise(self, shape: Shape) -> tuple[Layer, Shape]:
        kind = self.draw(st.sampled_from([*ACTIVATIONS, "dropout", "softmax"]))
        layer: Layer = {"type": kind}
        if kind == "dropout" and self.draw(st.booleans()):
            layer["p"] = self.draw(st.floats(0, 0.99))
        if kind == "softmax" and self.draw(st.booleans()):
            layer["axis"] = self.draw(st.integers(-len(shape), len(shape) - 1))
        return layer, shape

    def flatten(self, shape: Shape) -> tuple[Layer, Shape]:
        n = 1
        for d in shape:
            n *= d
        return {"type": "flatten"}, (n,)

    def _activation(self, layer: Layer) -> None:
        if sometimes(self.draw, 3):
            layer["activation"] = self.draw(st.sampled_from(ACTIVATIONS))

    # -- layers that read several tensors ---------------------------------

    def branch(self, base: str, change_axis: int | None) -> str:
        """A new layer reading ``base`` whose shape differs from it at most along ``change_axis``."""
        shape = self.shapes[base]
        rank = len(shape)
        if change_axis == rank - 1 and shape[-1] * 32 <= MAX_WEIGHTS and self.draw(st.booleans()):
            layer, out = self.linear(shape)
        elif change_axis == 0 and rank == 3:
            layer, out = self.conv2d(shape, same_only=True)
        elif rank == 3 and sometimes(self.draw, 3):
            layer, out = self.conv2d(shape, same_only=True, out_channels=shape[0])
        elif rank >= 2 and sometimes(self.draw, 4):
            layer, out = self.lrn(shape)
        else:
            layer, out = self.elementwise(shape)
        return self.add(layer, out, [base])

    def concat(self) -> tuple[Layer, Shape, list[str]]:
        draw = self.draw
        base = self.source()
        shape = self.shapes[base]
        rank = len(shape)
        axis = draw(st.integers(-rank, rank - 1)) if draw(st.booleans()) else 0
        a = axis % rank

        def fits(s: Shape) -> bool:
            return len(s) == rank and all(s[i] == shape[i] for i in range(rank) if i != a)

        want = draw(st.integers(1, 2))
        partners = [t for t, s in self.shapes.items() if t != base and fits(s)]
        partners = draw(st.permutations(partners))[:want]
        while len(partners) < want:
            partners.append(self.branch(base, a))
        inputs = draw(st.permutations([base, *partners]))
        out = tuple(
            sum(self.shapes[t][a] for t in inputs) if i == a else d for i, d in enumerate(shape)
        )
        layer: Layer = {"type": "concat"}
        if axis != 0 or sometimes(draw, 5):
            layer["axis"] = axis
        return layer, out, list(inputs)

    def add_layer(self) -> tuple[Layer, Shape, list[str]]:
        draw = self.draw
        base = self.source()
        shape = self.shapes[base]
        want = draw(st.integers(1, 2))
        partners = [t for t, s in self.shapes.items() if t != base and s == shape]
        partners = draw(st.permutations(partners))[:want]
        while len(partners) < want:
            partners.append(self.branch(base, None))
        inputs = draw(st.permutations([base, *partners]))
        return {"type": "add"}, shape, list(inputs)

    # -- one step ----------------------------------------------------------

    def step(self, kinds: frozenset[str]) -> str:
        draw = self.draw
        src = self.source()
        shape = self.shapes[src]
        rank = len(shape)
        options: dict[str, Callable[[], tuple[Layer, Shape]]] = {
            "elementwise": lambda: self.elementwise(shape),
            "flatten": lambda: self.flatten(shape),
        }
        if shape[-1] * 1 <= MAX_WEIGHTS:
            options["linear"] = lambda: self.linear(shape)
        if rank >= 2:
            options["lrn"] = lambda: self.lrn(shape)
        if rank == 1:
            options["rbf"] = lambda: self.rbf(shape)
        if rank == 3:
            options["conv2d"] = lambda: self.conv2d(shape)
            options["maxpool2d"] = lambda: self.pool(shape, "maxpool2d")
            options["avgpool2d"] = lambda: self.pool(shape, "avgpool2d")
            options["adaptive_avgpool2d"] = lambda: self.adaptive(shape)
            options["subsample"] = lambda: self.subsample(shape)
        names = [k for k in PRIORITY if k in kinds and (k in options or k in ("concat", "add"))]
        if not names:
            names = ["elementwise"]
        kind = draw(st.sampled_from(names))
        if kind == "concat":
            layer, out, inputs = self.concat()
        elif kind == "add":
            layer, out, inputs = self.add_layer()
        else:
            layer, out = options.get(kind, options["elementwise"])()
            inputs = [src]
        return self.add(layer, out, inputs)


# The order a step picks kinds in; Hypothesis shrinks towards the first.
PRIORITY = (
    "conv2d",
    "maxpool2d",
    "avgpool2d",
    "subsample",
    "adaptive_avgpool2d",
    "linear",
    "lrn",
    "rbf",
    "elementwise",
    "flatten",
    "concat",
    "add",
)
ALL_KINDS = frozenset(
    {
        "conv2d",
        "maxpool2d",
        "avgpool2d",
        "adaptive_avgpool2d",
        "subsample",
        "lrn",
        "linear",
        "rbf",
        "elementwise",
        "flatten",
        "concat",
        "add",
    }
)


@st.composite
def input_shapes(draw: st.DrawFn) -> Shape:
    """Mostly C×H×W feature maps (rank 3), sometimes C×L or a flat vector."""
    rank = draw(st.sampled_from([3, 3, 3, 3, 3, 3, 2, 2, 1, 1]))
    c = draw(st.integers(1, MAX_CHANNELS))
    if rank == 1:
        return (draw(st.integers(1, 64)),)
    if rank == 2:
        return (c, draw(st.integers(1, MAX_SPATIAL)))
    h, w = hw(draw, 1, MAX_SPATIAL, square=0.5)
    return (c, h, w)


# A plain scalar like 1e5 is a float to archspec (as in YAML 1.2) but a string to PyYAML's
# dumper, which would therefore leave it unquoted: keep such titles out. Titles also stay
# in the BMP: json.dumps writes other characters as surrogate-pair escapes ("\ud800\udc00"),
# which YAML does not read (a located "invalid Unicode character escape" error; see
# test_json_surrogate_escape_is_a_located_error).
_EXPONENT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
# Control characters are left out too: JSON allows a raw DEL, YAML does not (a located error,
# see test_control_character_error_is_located).
titles = st.text(
    st.characters(
        max_codepoint=0xFFFD, exclude_categories=("Cs", "Cc"), exclude_characters="\ufeff"
    ),
    max_size=20,
).filter(lambda t: not _EXPONENT.match(t.strip()))


def serialize(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    """The spec as text, in one of the ways people (and programs) write YAML."""
    style = draw(st.sampled_from(["block", "mixed", "flow", "json", "json-indent", "sorted"]))
    if style == "block":
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    elif style == "mixed":
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=1000)
    elif style == "flow":
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=True, explicit_start=True)
    elif style == "json":
        text = json.dumps(data)
    elif style == "json-indent":
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        text = "# generated\n" + yaml.safe_dump(data, sort_keys=True, allow_unicode=True)
    return style, text


@st.composite
def specs(
    draw: st.DrawFn,
    *,
    max_layers: int = 8,
    kinds: frozenset[str] = ALL_KINDS,
    dtypes: tuple[str, ...] = ("float32", "float32", "float32", "float64"),
) -> GeneratedSpec:
    """A valid spec with 1 to ``max_layers`` chosen layers (plus any branches DAG layers need)."""
    shape = draw(input_shapes())
    builder = _Builder(draw, shape, draw(st.sampled_from(["seq", "seq", "seq", "random"])))
    for _ in range(draw(st.integers(1, max_layers))):
        builder.step(kinds)
    data: dict[str, Any] = {
        "archspec": 1,
        "name": draw(st.from_regex(r"\A[A-Za-z][A-Za-z0-9_.-]{0,20}\Z")),
    }
    if draw(st.booleans()):
        data["title"] = draw(titles)
    data["input"] = {"shape": list(shape)}
    dtype = draw(st.sampled_from(dtypes))
    if dtype != "float32" or draw(st.booleans()):
        data["input"]["dtype"] = dtype
    data["layers"] = builder.layers
    if sometimes(draw, 3):
        data["expect"] = {"output": list(builder.shapes[builder.previous])}
    style, text = serialize(draw, data)
    shapes = {layer["name"]: builder.shapes[layer["name"]] for layer in builder.layers}
    kinds_used = [layer["type"] for layer in builder.layers]
    return GeneratedSpec(data, shapes, text, style, kinds_used)


# ---------------------------------------------------------------------------
# One windowed layer with unconstrained arguments, for the accept/refuse agreement test.


@dataclass
class WindowCase:
    input_shape: Shape
    layer: Layer

    def text(self) -> str:
        data = {
            "archspec": 1,
            "name": "window",
            "input": {"shape": list(self.input_shape)},
            "layers": [{"name": "w", **self.layer}],
        }
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=1000)


@st.composite
def window_cases(draw: st.DrawFn) -> WindowCase:
    """conv2d / maxpool2d / avgpool2d / subsample with arguments that may or may not fit."""
    c = draw(st.integers(1, 6))
    h, w = hw(draw, 1, 12)
    kind = draw(st.sampled_from(["conv2d", "maxpool2d", "avgpool2d", "subsample"]))
    layer: Layer = {"type": kind}
    kh, kw = hw(draw, 1, 9)
    layer["kernel"] = int_or_pair(draw, kh, kw)
    if draw(st.booleans()):
        sh, sw = hw(draw, 1, 4)
        layer["stride"] = int_or_pair(draw, sh, sw)
    if kind == "conv2d":
        layer["out_channels"] = draw(st.integers(1, 6))
        if draw(st.booleans()):
            layer["groups"] = draw(st.integers(1, 4))
        padding = draw(st.sampled_from(["none", "int", "same", "valid"]))
        if padding in ("same", "valid"):
            layer["padding"] = padding
        elif padding == "int":
            ph, pw = hw(draw, 0, 5)
            layer["padding"] = int_or_pair(draw, ph, pw)
        if draw(st.booleans()):
            dh, dw = hw(draw, 1, 3)
            layer["dilation"] = int_or_pair(draw, dh, dw)
    elif kind in ("maxpool2d", "avgpool2d"):
        if draw(st.booleans()):
            ph, pw = hw(draw, 0, 5)
            layer["padding"] = int_or_pair(draw, ph, pw)
        if draw(st.booleans()):
            layer["ceil_mode"] = True
        if kind == "maxpool2d" and draw(st.booleans()):
            dh, dw = hw(draw, 1, 3)
            layer["dilation"] = int_or_pair(draw, dh, dw)
    return WindowCase((c, h, w), layer)


def torch_window_module(case: WindowCase) -> Any:
    """The PyTorch module for a window layer, built from the spec's fields directly (not via archspec)."""
    import torch.nn.functional as F
    from torch import nn

    layer = case.layer
    kind = layer["type"]
    kernel = _pair(layer["kernel"])
    if kind == "subsample":
        stride = _pair(layer.get("stride", layer["kernel"]))
        return lambda x: F.avg_pool2d(x, kernel, stride)
    if kind == "conv2d":
        padding = layer.get("padding", 0)
        stride = _pair(layer.get("stride", 1))
        if padding == "same" and stride != (1, 1):
            # TensorFlow's 'SAME' (PyTorch's padding='same' takes stride 1 only): ⌈n/s⌉
            # outputs, the total padding split with the extra row and column after.
            dilation = _pair(layer.get("dilation", 1))
            totals = [
                max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
                for n, k, s, d in zip(case.input_shape[1:], kernel, stride, dilation, strict=True)
            ]
            pads = (
                totals[1] // 2,
                totals[1] - totals[1] // 2,
                totals[0] // 2,
                totals[0] - totals[0] // 2,
            )
            conv = nn.Conv2d(
                case.input_shape[0],
                layer["out_channels"],
                kernel,
                stride=stride,
                dilation=dilation,
                groups=layer.get("groups", 1),
            )
            return nn.Sequential(nn.ZeroPad2d(pads), conv)
        return nn.Conv2d(
            case.input_shape[0],
            layer["out_channels"],
            kernel,
            stride=_pair(layer.get("stride", 1)),
            padding=padding if isinstance(padding, str) else _pair(padding),
            dilation=_pair(layer.get("dilation", 1)),
            groups=layer.get("groups", 1),
        )
    stride = _pair(layer.get("stride", layer["kernel"]))
    padding = _pair(layer.get("padding", 0))
    ceil = layer.get("ceil_mode", False)
    if kind == "maxpool2d":
        return nn.MaxPool2d(
            kernel, stride, padding, dilation=_pair(layer.get("dilation", 1)), ceil_mode=ceil
        )
    return nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil)
