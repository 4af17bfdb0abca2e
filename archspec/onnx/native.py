"""Export without PyTorch: every layer kind emits its own ONNX nodes (``Layer.onnx_nodes``).

The emitter walks the analysis once, hands each kind a :class:`Builder` (the
``OnnxGraph`` the kinds write into, so ``layers/`` never imports onnx), and
names every node and value after the spec: a layer's first node is named like
the layer, its output value *is* the layer's name, helper nodes and values are
``<layer>/<Op>_<n>``. Tensors of state are named as the PyTorch module's
``state_dict`` names them (``C1.weight``), so one weights file fits both paths
and ``run --verify`` can hand the ONNX model's own tensors to the PyTorch reference.

Weights, seeded: drawn with NumPy (``numpy.random.default_rng(seed)``), in graph
order, by the rule PyTorch's modules use (U(±1/√fan_in) for convolutions and
linear layers, U(±2.4/area) for subsample, ±1 RBF centres, ones and zeros for
batch norm), but *not the same numbers* as ``compile --seed``: the model records
``numpy-seed:N``, and ``run --verify`` builds its PyTorch reference with the
model's own initializers, so the two have equal weights by construction.

Memory: the graph is built without its weights; shape inference and the
checks run on it; the file is then written as the model's protobuf followed by
each tensor as a further ``graph`` field (protobuf merges repeated occurrences
of a message field, so this is the same ModelProto), one tensor at a time, and a
seeded tensor a :data:`CHUNK` at a time, drawn into one small buffer: the weights
are never whole in memory. ``onnx.checker``'s full check then runs on the file read
back with its large tensors' bytes left in it (:mod:`archspec.onnx.wire`). Above
:data:`EXTERNAL_LIMIT` bytes of weights the tensors go to ``<file>.data`` as
ONNX external data instead, so models over protobuf's 2 GiB export too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from archspec.analysis import Analysis, analyze
from archspec.errors import one_line
from archspec.graph import INPUT
from archspec.layers import LAYER_KINDS
from archspec.onnx import model as meta
from archspec.onnx import wire
from archspec.onnx.export import (
    ExportError,
    ExportResult,
    choose_opset,
    export_opset,
    output_order,
)
from archspec.onnx.shapes import check_shapes
from archspec.output_files import atomic_path, check_output_path
from archspec.spec import Spec
from archspec.torch.weights import WeightsError
from archspec.version import __version__
from archspec.vocab import DTYPES

if TYPE_CHECKING:
    import onnx

# Weights above this many bytes go to external data (protobuf refuses messages over 2 GiB;
# the graph and its metadata need a little room).
EXTERNAL_LIMIT = 2**31 - 2**24
# Elements drawn at once: a drawn tensor is written piece by piece from one 1 MiB buffer
# that stays in the CPU's cache, never whole in memory.
CHUNK = 1 << 18


@dataclass(frozen=True)
class Param:
    """One tensor of layer state: its state_dict key, shape and how a seed draws it."""

    key: str
    layer: str
    shape: tuple[int, ...]
    init: str
    bound: float | tuple[float, ...]

    @property
    def nbytes_fp32(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return 4 * n


class Builder:
    """The ``OnnxGraph`` the kinds emit into: nodes, small constants, declared parameters."""

    def __init__(self, opset: int, dtype: str) -> None:
        import onnx

        self._onnx = onnx
        self.opset = opset
        self.dtype = dtype
        self.np_dtype = np.dtype(dtype)
        self.elem_type = DTYPES[dtype].onnx
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []
        self.params: list[Param] = []
        self.unused_state: list[str] = []  # state_dict keys the graph does not read
        self._layer = ""
        self._count = 0
        self._first = True

    def begin(self, layer: str) -> None:
        self._layer, self._count, self._first = layer, 0, True

    def _fresh(self, what: str) -> str:
        self._count += 1
        return f"{self._layer}/{what}_{self._count}"

    def node(self, op: str, inputs: Sequence[str], out: str | None = None, **attrs: Any) -> str:
        label = self._fresh(op)
        name = self._layer if self._first else label
        self._first = False
        value = out if out is not None else label
        self.nodes.append(self._onnx.helper.make_node(op, list(inputs), [value], name, **attrs))
        return value

    def param(
        self, key: str, shape: Sequence[int], init: str, bound: float | Sequence[float] = 0.0
    ) -> str:
        full = f"{self._layer}.{key}"
        b = tuple(float(x) for x in bound) if isinstance(bound, Sequence) else float(bound)
        self.params.append(Param(full, self._layer, tuple(int(d) for d in shape), init, b))
        return full

    def state(self, key: str) -> None:
        self.unused_state.append(f"{self._layer}.{key}")

    def const(self, values: Any, int64: bool = False) -> str:
        array = np.asarray(values, dtype=np.int64 if int64 else self.np_dtype)
        name = self._fresh("const")
        self.constants.append(self._onnx.numpy_helper.from_array(array, name))
        return name

    def reduce(
        self, op: str, x: str, axes: Sequence[int], keepdims: bool, out: str | None = None
    ) -> str:
        # ReduceSum takes axes as an input from opset 13, the others from 18
        if op == "ReduceSum" or self.opset >= 18:
            return self.node(
                op, [x, self.const(list(axes), int64=True)], out, keepdims=int(keepdims)
            )
        return self.node(op, [x], out, axes=list(axes), keepdims=int(keepdims))

    def activation(self, name: str, x: str, out: str) -> None:
        kind = LAYER_KINDS[name]
        layer = kind.model_validate({"name": self._layer, "type": name})
        layer.onnx_nodes(self, [x], [()], out)


def emit(analysis: Analysis, opset: int, dtype: str) -> tuple[Builder, onnx.GraphProto, list[str]]:
    """The graph of ``analysis`` without its weights, and the layer value names in order."""
    import onnx

    g = Builder(opset, dtype)
    names = []
    for row in analysis.rows:
        layer = analysis.graph.layers[row.name]
        g.begin(row.name)
        inputs = [INPUT if s == INPUT else s for s in row.inputs]
        act = layer.activation_name
        out = row.name if not act else f"{row.name}/pre_activation"
        layer.onnx_nodes(g, inputs, row.input_shapes, out)
        if act:
            g.activation(act, out, row.name)
        names.append(row.name)
    batch = "batch"
    graph = onnx.helper.make_graph(
        g.nodes,
        analysis.spec.name,
        [onnx.helper.make_tensor_value_info(INPUT, g.elem_type, [batch, *analysis.input_shape])],
        [
            onnx.helper.make_tensor_value_info(
                analysis.graph.output,
                g.elem_type,
                [batch, *analysis.rows[-1].output]
                if analysis.rows[-1].name == analysis.graph.output
                else [batch, *_row(analysis, analysis.graph.output)],
            )
        ],
        g.constants,
    )
    return g, graph, names


def _row(analysis: Analysis, name: str) -> tuple[int, ...]:
    return next(tuple(r.output) for r in analysis.rows if r.name == name)


# ---------------------------------------------------------------------------
# Weights: drawn from a seed, or read from a file (no torch needed for .safetensors).


class WeightSource:
    """Where the tensors come from: ``draw`` with a seed, or ``read`` from a file."""

    def __init__(
        self,
        params: list[Param],
        unused: list[str],
        dtype: str,
        seed: int | None,
        path: str | os.PathLike[str] | None,
        spec_name: str,
    ) -> None:
        self.params, self.dtype, self.path = params, np.dtype(dtype), path
        self.rng = np.random.default_rng(seed)
        self._file: Any = None
        if path is not None:
            self._file = _open_weights(Path(path), params, unused, spec_name)

    def tensors(self) -> Iterator[tuple[Param, Iterator[np.ndarray]]]:
        """Each tensor in turn, as its flat pieces in C order, in the model's dtype and
        little-endian. A drawn tensor is never whole: each piece is a reused buffer of at
        most :data:`CHUNK` elements (consume it before the next); a file's is one piece."""
        buf = np.empty(CHUNK, np.float32) if self._file is None and self.params else None
        target = self.dtype.newbyteorder("<")
        for p in self.params:
            if self._file is not None:
                pieces: Iterator[np.ndarray] = iter([self._file.get(p.key).reshape(-1)])
            else:
                assert buf is not None
                pieces = _pieces(self.rng, p, buf)
            yield p, (np.ascontiguousarray(piece, dtype=target) for piece in pieces)


def _pieces(rng: np.random.Generator, p: Param, buf: np.ndarray) -> Iterator[np.ndarray]:
    """The tensor ``p`` drawn from ``rng``, a piece of whole rows at a time, in ``buf``.

    U(−bound, bound) is ``rng.random(float32)`` · 2 − 1, times the bound (one per
    first-axis row where ``bound`` is a tuple); ``sign`` is ±1 by the same draw's
    half. Element by element, so the pieces' boundaries change no number: the stream
    is NumPy's one float32 sequence for the seed.
    """
    n = p.nbytes_fp32 // 4
    if p.init in ("zeros", "ones"):
        buf[: min(n, buf.size)] = 0 if p.init == "zeros" else 1
        for start in range(0, n, buf.size):
            yield buf[: min(buf.size, n - start)]
        return
    bound = np.asarray(p.bound, np.float32).reshape(-1)
    per_row = p.init == "uniform" and bound.size > 1
    row = n // p.shape[0] if per_row and len(p.shape) > 1 else 1
    step = max(1, buf.size // row) * row  # whole rows, so a row's bound is one number
    work = buf if step <= buf.size else np.empty(step, np.float32)
    for start in range(0, n, step):
        part = work[: min(step, n - start)]
        rng.random(dtype=np.float32, out=part)
        if p.init == "sign":
            np.copyto(part, np.where(part < 0.5, np.float32(-1), np.float32(1)))
            yield part
            continue
        np.multiply(part, 2, out=part)
        np.subtract(part, 1, out=part)  # U(−1, 1)
        if per_row:
            first = start // row
            rows = part.reshape(-1, row)
            rows *= bound[first : first + rows.shape[0], None]
        elif p.init == "uniform":
            part *= bound[0]
        yield part


class _Safetensors:
    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def get(self, key: str) -> np.ndarray:
        return np.asarray(self.handle.get_tensor(key))


class _Mapping:
    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.state = state

    def get(self, key: str) -> np.ndarray:
        return self.state[key]


# safetensors' dtype codes as numpy names
_FLOATS = {
    "F16": "float16",
    "F32": "float32",
    "F64": "float64",
    "BF16": "bfloat16",
    "BOOL": "bool",
    **{f"I{n}": f"int{n}" for n in (8, 16, 32, 64)},
    **{f"U{n}": f"uint{n}" for n in (8, 16, 32, 64)},
}


def _open_weights(path: Path, params: list[Param], unused: list[str], spec_name: str) -> Any:
    """Open a weights file and check every tensor's presence, shape and type before any is read.

    Every problem is one :class:`WeightsError` line naming the file and the tensor.
    """
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    suffix = path.suffix.lower()
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    if suffix == ".safetensors":
        try:
            from safetensors import safe_open

            handle = safe_open(os.fspath(path), framework="numpy")
            for key in handle.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                sl = handle.get_slice(key)
                shapes[key] = (tuple(sl.get_shape()), _FLOATS.get(sl.get_dtype(), sl.get_dtype()))
            _check_size(path)
        except WeightsError:
            raise
        except ImportError:
            raise WeightsError(
                f"{path}: reading .safetensors needs the safetensors package"
            ) from None
        except Exception as exc:
            raise WeightsError(f"{path}: cannot read weights ({one_line(str(exc), 120)})") from None
        source: Any = _Safetensors(handle)
    elif suffix in (".pt", ".pth"):
        state = _read_pt(path)
        shapes = {k: (tuple(v.shape), str(v.dtype)) for k, v in state.items()}
        source = _Mapping(state)
    else:
        raise WeightsError(f"{path}: unknown weights format '{suffix}'; use .safetensors or .pt")
    fits = f"the layers of {spec_name}" if spec_name else "the spec's layers"
    wanted = {p.key: p for p in params}
    for p in params:
        if p.key not in shapes:
            raise WeightsError(
                f"{path}: tensor '{p.key}' (layer {p.layer}) is missing; {fits} need it"
            )
        shape, dtype = shapes[p.key]
        if shape != p.shape:
            raise WeightsError(
                f"{path}: tensor '{p.key}' has shape {list(shape)}, layer {p.layer} "
                f"needs {list(p.shape)}"
            )
        if not dtype.startswith("float"):  # float16, float32, float64 (not bfloat16)
            raise WeightsError(
                f"{path}: tensor '{p.key}' holds {dtype}, not float32 or float16 numbers"
            )
    extra = [k for k in shapes if k not in wanted and k not in unused]
    if extra:
        raise WeightsError(f"{path}: tensor '{extra[0]}' belongs to no layer of {fits}")
    return source


def _check_size(path: Path) -> None:
    """safetensors reads the header eagerly but the data lazily: a truncated file must fail now."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise WeightsError(f"{path}: truncated (no safetensors header)")
        (n,) = struct.unpack("<Q", head)
        header = json.loads(fh.read(n))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if path.stat().st_size < 8 + n + end:
        raise WeightsError(
            f"{path}: truncated: the header describes {8 + n + end:,} bytes, the file has "
            f"{path.stat().st_size:,}"
        )


def _read_pt(path: Path) -> dict[str, np.ndarray]:
    """A ``torch.save`` state_dict as NumPy arrays: needs torch (a pickle of torch tensors)."""
    try:
        import torch
    except ImportError:
        raise WeightsError(
            f"{path}: a .pt file is a pickle of torch tensors and needs torch to read; "
            "save the weights as .safetensors to export without torch"
        ) from None
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: cannot read weights ({one_line(str(exc), 120)})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsError(f"{path}: not a state_dict (a mapping of tensor names to tensors)")
    out: dict[str, np.ndarray] = {}
    for k, v in state.items():
        if v.dtype == torch.bfloat16:
            v = v.float()
        out[k] = v.detach().numpy()
    return out


def seeded_state(
    spec: Spec, seed: int | None, dtype: str, analysis: Analysis | None = None
) -> dict[str, np.ndarray]:
    """The tensors a native export with ``seed`` holds, drawn again (by state_dict name).

    ``run --verify`` gives these to the PyTorch reference: drawn independently of the
    model file, so a model whose tensors were changed after export fails verification.
    """
    analysis = analysis or analyze(spec)
    g, _, _ = emit(analysis, choose_opset(analysis, None), dtype)
    source = WeightSource(g.params, g.unused_state, dtype, seed, None, spec.name)
    state = {}
    for p, pieces in source.tensors():
        array = np.empty(p.nbytes_fp32 // 4, source.dtype)
        at = 0
        for piece in pieces:
            array[at : at + piece.size] = piece
            at += piece.size
        state[p.key] = array.reshape(p.shape)
    return state


# ---------------------------------------------------------------------------
# Writing: the graph, then each tensor, streamed.


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_GRAPH_FIELD = b"\x3a"  # ModelProto.graph: field 7, length-delimited
_INITIALIZER_FIELD = b"\x2a"  # GraphProto.initializer: field 5, length-delimited


_RAW_DATA_FIELD = b"\x4a"  # TensorProto.raw_data: field 9, length-delimited


def _write_tensor(
    fh: IO[bytes], tensor: onnx.TensorProto, pieces: Iterable[np.ndarray] = (), n: int = 0
) -> None:
    """One initializer as a further ``graph`` field; its raw_data is the ``n`` bytes of
    ``pieces`` (little-endian, C order), written straight from each, never copied into a
    proto. No raw_data field when ``n`` is 0 (an external tensor)."""
    body = tensor.SerializeToString()
    data = _RAW_DATA_FIELD + _varint(n) if n else b""
    size = len(body) + len(data) + n
    init = _INITIALIZER_FIELD + _varint(size)
    fh.write(_GRAPH_FIELD + _varint(len(init) + size))
    fh.write(init)
    fh.write(body)
    fh.write(data)
    written = 0
    for piece in pieces:
        fh.write(piece.view(np.uint8).data)
        written += piece.nbytes
    if written != n:  # the framing above promised n bytes
        raise ExportError(f"tensor '{tensor.name}' gave {written} bytes, not {n}")


def export_native(
    spec: Spec,
    path: str | os.PathLike[str],
    *,
    seed: int | None = 0,
    weights: str | os.PathLike[str] | None = None,
    opset: int | None = None,
    fp16: bool = False,
    analysis: Analysis | None = None,
    max_params: int | None = None,
    keep_model: bool = False,
    external: bool | None = None,
) -> ExportResult:
    """Export ``spec`` to ONNX at ``path`` from the kinds' own nodes: no torch.

    As :func:`archspec.onnx.export.export_spec`: a dynamic batch axis, every layer a
    named value, the spec's provenance in ``metadata_props``, ``onnx.checker``'s full
    check and ONNX shape inference equal to the calculator on every layer, or
    :class:`ExportError` and no file. ``external`` forces (True) or forbids (False)
    external data; by default it is used only above :data:`EXTERNAL_LIMIT`.
    """
    start = time.perf_counter()
    timings: dict[str, float] = {}
    target = check_output_path(path)
    analysis = analysis or analyze(spec)
    opset = export_opset(analysis, opset)
    import onnx

    dtype = "float16" if fp16 else spec.input.dtype
    if dtype == "bfloat16":
        raise ExportError("the native exporter writes float32, float16 or float64; use --via torch")
    from archspec.resources import check_fits

    check_fits(analysis, max_params, dtype, copies=1, purpose="export")

    t = time.perf_counter()
    g, graph, names = emit(analysis, opset, dtype)
    timings["emit"] = time.perf_counter() - t
    t = time.perf_counter()
    source = WeightSource(g.params, g.unused_state, dtype, seed, weights, spec.name)
    timings["weights"] = time.perf_counter() - t

    # Shape inference and the calculator, on the graph with its parameters as typed inputs.
    t = time.perf_counter()
    ir = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)])
    ir = max(ir, 8)
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(_model(graph, opset, ir))
    skeleton.graph.input.extend(
        onnx.helper.make_tensor_value_info(p.key, g.elem_type, p.shape) for p in g.params
    )
    shape_check = check_shapes(skeleton, analysis)
    if not shape_check.ok:
        more = len(shape_check.mismatches) - 1
        raise ExportError(
            f"ONNX shape inference disagrees with the calculator on {spec.name}: "
            f"{shape_check.mismatches[0]}" + (f" (and {more} more layers)" if more else "")
        )
    timings["shapes"] = time.perf_counter() - t

    text_hash, canonical_hash = meta.spec_hashes(spec)
    props = {
        meta.KEY_VERSION: __version__,
        meta.KEY_SPEC_NAME: spec.name,
        meta.KEY_SPEC_SHA256: text_hash,
        meta.KEY_SPEC_CANONICAL: canonical_hash,
        meta.KEY_WEIGHTS: (
            f"file:{Path(weights).name}"
            if weights is not None
            else (f"numpy-seed:{seed}" if seed is not None else "unseeded")
        ),
        meta.KEY_DTYPE: dtype,
        meta.KEY_LAYERS: json.dumps(names),
        meta.KEY_OUTPUT: analysis.graph.output,
        meta.KEY_OUTPUT_ORDER: output_order(analysis),
        meta.KEY_EXPORTER: f"archspec {__version__} (native emitter)",
    }
    if weights is not None:
        props[meta.KEY_WEIGHTS_SHA256] = meta.sha256_file(weights)
    model = _model(graph, opset, ir)
    model.producer_name = "archspec"
    model.producer_version = __version__
    model.doc_string = " — ".join(x for x in (spec.title, spec.source) if x) or spec.name
    onnx.helper.set_model_props(model, props)

    itemsize = np.dtype(dtype).itemsize
    total = sum(p.nbytes_fp32 // 4 * itemsize for p in g.params)
    use_external = external if external is not None else total > EXTERNAL_LIMIT
    data_name = target.name + ".data"
    size = 0
    with atomic_path(target) as tmp:
        t = time.perf_counter()
        data_tmp = tmp.with_name(tmp.name + ".data")
        final_data = target.with_name(data_name)
        done = False
        try:
            with open(tmp, "wb") as fh:
                head = model.SerializeToString()
                fh.write(head)
                if use_external:
                    _write_external(fh, data_tmp, data_name, source)
                else:
                    _write_inline(fh, source)
                size = fh.tell()
            timings["write"] = time.perf_counter() - t
            if use_external:  # the checker reads it where the model says: beside the model
                os.replace(data_tmp, final_data)
            t = time.perf_counter()
            try:  # onnx.checker's full check of the file, its weights' bytes not copied
                wire.check_file(tmp)
            except wire.WireError as exc:
                raise ExportError(
                    f"the file written for {spec.name} is not a well-formed model: {exc}"
                ) from None
            except Exception as exc:
                raise ExportError(
                    f"the native graph of {spec.name} fails onnx.checker: {one_line(str(exc))}"
                ) from None
            timings["check"] = time.perf_counter() - t
            done = True
        finally:
            if data_tmp.exists():
                data_tmp.unlink()
            if use_external and not done and final_data.exists():
                final_data.unlink()  # no partial output
    kept = None
    if keep_model:
        kept = onnx.load(os.fspath(target))
    return ExportResult(
        path=target,
        spec_name=spec.name,
        opset=opset,
        dtype=dtype,
        seconds=time.perf_counter() - start,
        timings=timings,
        input_name=INPUT,
        output_name=analysis.graph.output,
        value_names=tuple(names),
        shapes=shape_check.shapes,
        metadata=props,
        size_bytes=size,
        nodes=len(graph.node),
        weights=props[meta.KEY_WEIGHTS],
        model=kept,
    )


def _model(graph: onnx.GraphProto, opset: int, ir: int) -> onnx.ModelProto:
    import onnx

    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = ir
    return model


def _header(p: Param, dtype: np.dtype[Any]) -> onnx.TensorProto:
    """A TensorProto with the name, type and dims of ``p`` but not its data."""
    import onnx

    tensor = onnx.TensorProto()
    tensor.name = p.key
    tensor.data_type = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    tensor.dims.extend(p.shape)
    return tensor


def _nbytes(p: Param, dtype: np.dtype[Any]) -> int:
    return p.nbytes_fp32 // 4 * dtype.itemsize


def _write_inline(fh: IO[bytes], source: WeightSource) -> None:
    """Each tensor as an initializer in the model file, piece by piece."""
    for p, pieces in source.tensors():
        _write_tensor(fh, _header(p, source.dtype), pieces, _nbytes(p, source.dtype))


def _write_external(fh: IO[bytes], data_path: Path, location: str, source: WeightSource) -> None:
    """Each tensor's bytes into ``data_path`` (64-byte aligned); its proto points there."""
    import onnx

    offset = 0
    with open(data_path, "wb") as data:
        for p, pieces in source.tensors():
            pad = -offset % 64
            if pad:
                data.write(b"\0" * pad)
                offset += pad
            n = _nbytes(p, source.dtype)
            written = 0
            for piece in pieces:
                data.write(piece.view(np.uint8).data)
                written += piece.nbytes
            if written != n:
                raise ExportError(f"tensor '{p.key}' gave {written} bytes, not {n}")
            tensor = _header(p, source.dtype)
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for k, v in (
                ("location", location),
                ("offset", str(offset)),
                ("length", str(n)),
            ):
                entry = tensor.external_data.add()
                entry.key, entry.value = k, v
            offset += n
            _write_tensor(fh, tensor)
