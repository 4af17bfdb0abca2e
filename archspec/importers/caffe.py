"""Caffe ``.prototxt`` → spec: both the ``layer { type: "Convolution" }`` format and the
legacy ``layers { type: CONVOLUTION }`` one.

Which archspec kind a Caffe layer becomes is each kind's own declaration
(:attr:`~archspec.layers.base.Layer.caffe_types` and ``from_caffe``); this
module only walks the net: it finds the input shape, follows blobs (a layer
reads the blobs its ``bottom`` names; an in-place layer rewrites its
``bottom``), folds an in-place activation into the layer before it where that
kind takes ``activation:``, adds the flatten that InnerProduct does implicitly,
and skips the layers that exist only for training, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from archspec.importers.emit import Imported, identifier
from archspec.importers.prototxt import Message, PrototxtError, parse
from archspec.layers import LAYER_KINDS
from archspec.layers.base import RESERVED_NAMES, ForeignError, Layer, ShapeError
from archspec.spec.diagnostics import Diagnostic, Kind, Position, Severity, SpecError

KIND_NAMES = {cls: name for name, cls in LAYER_KINDS.items()}

# caffe.proto's V1LayerParameter.LayerType names, as the V2 format spells them.
V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU",
    "SIGMOID": "Sigmoid", "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence", "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}  # fmt: skip

# Layers that feed data or compute a loss or a metric: not part of the network's function.
TRAINING_ONLY = frozenset(
    {
        "Data", "ImageData", "HDF5Data", "HDF5Output", "MemoryData", "DummyData",
        "WindowData", "Accuracy", "SoftmaxWithLoss", "EuclideanLoss", "HingeLoss",
        "InfogainLoss", "MultinomialLogisticLoss", "SigmoidCrossEntropyLoss",
        "ContrastiveLoss", "Silence",
    }
)  # fmt: skip


@dataclass
class CaffeLayer:
    """One Caffe layer as the kinds' ``from_caffe`` see it."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    message: Message
    position: Position

    def message_of(self, name: str) -> Message:
        return self.message.message(name)


class _LayerView:
    """What ``from_caffe`` reads: the layer's type and its ``*_param`` messages."""

    def __init__(self, layer: CaffeLayer) -> None:
        self.type = layer.type
        self.name = layer.name
        self._layer = layer

    def message(self, name: str) -> Message:
        return self._layer.message_of(name)


@dataclass
class _State:
    file: str
    layers: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[type[Layer]] = field(default_factory=list)
    blob: dict[str, str] = field(default_factory=dict)  # blob → archspec layer (or 'input')
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # layer → output shape
    taken: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def _error(
    file: str, position: Position | None, message: str, hint: str | None = None
) -> SpecError:
    return SpecError([Diagnostic(Severity.ERROR, Kind.INPUT, message, file, position, hint)])


def _by_caffe_type() -> dict[str, list[type[Layer]]]:
    table: dict[str, list[type[Layer]]] = {}
    for cls in LAYER_KINDS.values():
        for caffe_type in cls.caffe_types:
            table.setdefault(caffe_type, []).append(cls)
    return table


def _layers(net: Message, file: str) -> list[CaffeLayer]:
    found: list[CaffeLayer] = []
    for f in net.fields:
        if f.name not in ("layer", "layers") or not isinstance(f.value, Message):
            continue
        m = f.value
        raw_type = m.get("type")
        if raw_type is None:
            raise _error(file, f.position, "Caffe layer has no type")
        caffe_type = (
            V1_TYPES.get(str(raw_type), str(raw_type)) if f.name == "layers" else str(raw_type)
        )
        # Layers included only in the TRAIN phase are not in the deployed network.
        phases = [str(inc.get("phase")) for inc in m.values("include") if isinstance(inc, Message)]
        if phases and all(p in ("TRAIN", "0") for p in phases):
            continue
        found.append(
            CaffeLayer(
                name=str(m.get("name", f"{caffe_type.lower()}{len(found)}")),
                type=caffe_type,
                bottoms=[str(b) for b in m.values("bottom")],
                tops=[str(t) for t in m.values("top")],
                message=m,
                position=f.position,
            )
        )
    return found


def _input_shape(net: Message, layers: list[CaffeLayer], file: str) -> tuple[list[str], list[int]]:
    """The input blob names and the per-sample shape: from ``input:`` with ``input_dim``
    or ``input_shape``, or from an ``Input`` layer."""
    names = [str(n) for n in net.values("input")]
    if names:
        dims = [int(d) for d in net.values("input_dim")]
        shapes = [s for s in net.values("input_shape") if isinstance(s, Message)]
        if not dims and shapes:
            dims = [int(d) for d in shapes[0].values("dim")]
        where = net.all("input")[0].position
        if len(names) > 1:
            raise _error(file, where, "archspec specs take one input")
        if len(dims) < 2:
            raise _error(file, where, "the input has no shape (input_dim or input_shape)")
        return names, dims[1:]
    for layer in layers:
        if layer.type == "Input":
            shapes = [
                s for s in layer.message_of("input_param").values("shape") if isinstance(s, Message)
            ]
            if len(layer.tops) != 1 or len(shapes) != 1:
                raise _error(file, layer.position, "archspec specs take one input")
            dims = [int(d) for d in shapes[0].values("dim")]
            return layer.tops, dims[1:]
    data = next(
        (layer for layer in layers if layer.type in TRAINING_ONLY and "Data" in layer.type), None
    )
    raise _error(
        file,
        data.position if data else Position(1, 1),
        "the net states no input shape (a deploy prototxt has 'input_shape' or an Input layer)",
        hint="import the deploy version of the model",
    )


def import_caffe(path: str | Path) -> Imported:
    """Read a Caffe prototxt; raise :class:`SpecError` with located errors for what no kind maps."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(file, None, f"cannot read {file}: {exc}") from None
    try:
        net = parse(text)
    except PrototxtError as exc:
        raise _error(file, exc.position, f"invalid prototxt: {exc.message}") from None
    layers = _layers(net, file)
    inputs, shape = _input_shape(net, layers, file)
    state = _State(file)
    for name in inputs:
        state.blob[name] = "input"
    state.shapes["input"] = tuple(shape)
    table = _by_caffe_type()
    for layer in layers:
        if layer.type == "Input":
            continue
        if layer.type in TRAINING_ONLY:
            state.notes.append(f"skipped {layer.type} layer '{layer.name}' (training only)")
            continue
        _import_layer(state, table, layer)
    title = net.get("name")
    model_name = identifier(str(title or Path(file).stem), set()).replace("_", "-").strip("-")
    if not model_name[:1].isalpha():
        model_name = "m" + model_name
    return Imported(
        name=model_name,
        title=str(title) if title else None,
        source=f"imported from {Path(file).name} (Caffe prototxt) by archspec import",
        input_shape=shape,
        layers=state.layers,
        notes=state.notes,
    )


def _import_layer(state: _State, table: dict[str, list[type[Layer]]], layer: CaffeLayer) -> None:
    file = state.file
    view = _LayerView(layer)
    for b in layer.bottoms:
        if b not in state.blob:
            raise _error(
                file,
                layer.position,
                f"layer '{layer.name}' reads blob '{b}', which no earlier layer writes",
            )
    sources = [state.blob[b] for b in layer.bottoms]
    # A layer right after another may be absorbed by it (BatchNorm then Scale).
    if state.layers and sources[:1] == [_previous(state)]:
        fields = dict(state.layers[-1])
        if state.kinds[-1].absorb_caffe(fields, view):
            state.layers[-1] = fields
            for top in layer.tops:
                state.blob[top] = fields["name"]
            return
    kind, fields = _kind_for(state, table, layer, view)
    type_name = KIND_NAMES[kind]
    # In place after a layer that takes activation: (conv, linear): fold it in.
    in_place = len(layer.bottoms) == 1 and layer.tops == layer.bottoms
    if in_place and not fields and state.layers and sources[0] == _previous(state):
        allowed = state.kinds[-1].model_fields.get("activation")
        if (
            allowed is not None
            and "activation" not in state.layers[-1]
            and state.kinds[-1].takes_activation(type_name)
        ):
            state.layers[-1]["activation"] = type_name
            return
    if getattr(kind, "caffe_flattens", False) and len(state.shapes[sources[0]]) > 1:
        flatten = table["Flatten"][0]  # the kind that Caffe's own Flatten layer becomes
        flat = identifier(f"{layer.name}_flatten", state.taken, RESERVED_NAMES)
        _append(state, layer, flatten, {"name": flat, "type": KIND_NAMES[flatten]}, sources[:1])
        sources = [flat]
    name = identifier(layer.name, state.taken, RESERVED_NAMES)
    _append(state, layer, kind, {"name": name, "type": type_name, **fields}, sources)
    for top in layer.tops:
        state.blob[top] = name


def _kind_for(
    state: _State, table: dict[str, list[type[Layer]]], layer: CaffeLayer, view: _LayerView
) -> tuple[type[Layer], dict[str, Any]]:
    candidates = table.get(layer.type)
    if not candidates:
        known = ", ".join(sorted({*table, "Input"}))
        raise _error(
            state.file,
            layer.position,
            f"Caffe layer '{layer.name}' has type '{layer.type}', which archspec cannot import",
            hint=f"importable types: {known}",
        )
    for cls in candidates:
        try:
            fields = cls.from_caffe(view)
        except ForeignError as exc:
            raise _error(
                state.file,
                layer.position,
                f"Caffe layer '{layer.name}': {exc.message} cannot be imported",
            ) from None
        if fields is not None:
            return cls, fields
    raise _error(
        state.file,
        layer.position,
        f"Caffe layer '{layer.name}' ({layer.type}) has options no archspec kind expresses",
    )


def _append(
    state: _State, caffe: CaffeLayer, kind: type[Layer], entry: dict[str, Any], sources: list[str]
) -> None:
    """Add a layer, computing its output shape now so a mistake is reported at the Caffe layer."""
    if len(sources) > 1 or (sources and sources[0] != _previous(state)):
        entry["inputs"] = sources
    try:
        layer = kind.model_validate(entry)
        out = tuple(layer.output_shape([state.shapes[s] for s in sources]))
    except (ValidationError, ShapeError) as exc:
        text = exc.message if isinstance(exc, ShapeError) else exc.errors()[0]["msg"]
        raise _error(state.file, caffe.position, f"Caffe layer '{caffe.name}': {text}") from None
    state.layers.append(entry)
    state.kinds.append(kind)
    state.shapes[entry["name"]] = out


def _previous(state: _State) -> str:
    return state.layers[-1]["name"] if state.layers else "input"
