"""``onnx.checker``'s full check of a written model file, without copying its weights.

``onnx.checker.check_model(path, full_check=True)`` reads the whole file into memory
and parses it, which copies every tensor's bytes twice: for AlexNet, half a gigabyte
of fresh memory and a third of a second, when all the checker asks of a tensor's
``raw_data`` is its length. :func:`check_file` runs the same check on the same model
read back from the file, with each large float tensor's bytes left where they lie:

* the file's protobuf wire format is walked (memory-mapped: only the fields' headers
  are read) down to each initializer; every other byte is kept as it is;
* an initializer whose raw_data is over :data:`STRIP_ABOVE` bytes and which is
  otherwise plain (a float type, no other value field, not already external) and
  holds exactly dims × element size bytes is rewritten as ONNX external data pointing
  at those bytes in the file itself (location, offset, length), which is where they
  are: the checker's tensor check then finds them (a regular file inside the model's
  directory) instead of counting them;
* any other tensor (short or long raw_data, a second value field, an integer type that
  shape inference may read) keeps its bytes, so the checker judges it as it is;
* ``onnx.checker.check_model(copy, full_check=True)``: the model check and strict
  shape inference, on a copy a few kilobytes long written beside the file.

A file whose framing is broken (a length past the end, an unknown wire type) is a
:class:`WireError`; what the walk does not look into, the checker's own parse does.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

STRIP_ABOVE = 1 << 16  # bytes of raw_data; smaller tensors stay in the checked copy
_MODEL_GRAPH = 7  # ModelProto.graph
_GRAPH_INITIALIZER = 5  # GraphProto.initializer
_TENSOR_RAW_DATA = 9  # TensorProto.raw_data
_LEN = 2  # the length-delimited wire type
# TensorProto data types whose values shape inference never reads: FLOAT, FLOAT16,
# DOUBLE, BFLOAT16, and their element sizes
_FLOAT_BYTES = {1: 4, 10: 2, 11: 8, 16: 2}


class WireError(ValueError):
    """The file is not a well-formed protobuf message."""


@dataclass(frozen=True)
class Cut:
    """A tensor whose raw_data stays in the file: its name and where its bytes lie."""

    name: str
    offset: int
    length: int


def check_file(path: str | os.PathLike[str]) -> list[Cut]:
    """``onnx.checker.check_model(full_check=True)`` on the model in ``path``, its large
    float tensors' bytes left in the file; the tensors left there, in file order.

    Raises what the checker raises (``onnx.checker.ValidationError``,
    ``onnx.shape_inference.InferenceError``), or :class:`WireError`.
    """
    import onnx

    path = Path(os.path.abspath(path))
    data, cuts = read_back(path)
    if not cuts or ".." in path.name:  # the checker refuses a location holding ".."
        onnx.checker.check_model(os.fspath(path), full_check=True)  # the file as it is
        return []
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check.onnx", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        onnx.checker.check_model(name, full_check=True)
    finally:
        os.unlink(name)
    return cuts


def read_back(path: Path) -> tuple[bytes, list[Cut]]:
    """The model file's bytes with each large plain float tensor turned into external data
    pointing at its own bytes in ``path`` (see the module's docstring), and those tensors."""
    cuts: list[Cut] = []
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return b"", cuts
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            out = bytearray()
            for field, wire, at, value, end in _fields(buf, 0, len(buf)):
                if field == _MODEL_GRAPH and wire == _LEN:
                    _put(out, field, _graph(buf, value, end, path.name, cuts))
                else:
                    out += buf[at:end]
    return bytes(out), cuts


def _graph(buf: mmap.mmap, start: int, stop: int, location: str, cuts: list[Cut]) -> bytes:
    out = bytearray()
    for field, wire, at, value, end in _fields(buf, start, stop):
        if field == _GRAPH_INITIALIZER and wire == _LEN:
            _put(out, field, _tensor(buf, value, end, location, cuts))
        else:
            out += buf[at:end]
    return bytes(out)


def _tensor(buf: mmap.mmap, start: int, stop: int, location: str, cuts: list[Cut]) -> bytes:
    head = bytearray()
    raw: tuple[int, int] | None = None
    for field, wire, at, value, end in _fields(buf, start, stop):
        if field == _TENSOR_RAW_DATA and wire == _LEN:
            raw = (value, end - value)  # a repeated singular field: the last one counts
        else:
            head += buf[at:end]
    if raw is None or raw[1] <= STRIP_ABOVE:
        return buf[start:stop]
    import onnx

    tensor = onnx.TensorProto()
    tensor.ParseFromString(bytes(head))
    if not _plain(tensor, raw[1]):
        return buf[start:stop]  # the checker sees it whole
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, val in (("location", location), ("offset", str(raw[0])), ("length", str(raw[1]))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, val
    cuts.append(Cut(tensor.name, raw[0], raw[1]))
    return tensor.SerializeToString()


def _plain(tensor: onnx.TensorProto, length: int) -> bool:
    """A float tensor whose one value is raw_data of exactly dims × element size bytes."""
    size = _FLOAT_BYTES.get(tensor.data_type)
    if size is None or tensor.data_location or len(tensor.external_data):
        return False
    if any(
        len(values)
        for values in (
            tensor.float_data,
            tensor.int32_data,
            tensor.string_data,
            tensor.int64_data,
            tensor.double_data,
            tensor.uint64_data,
        )
    ):
        return False
    n = 1
    for d in tensor.dims:
        if d < 0:
            return False
        n *= d
    return n * size == length


def _put(out: bytearray, field: int, body: bytes) -> None:
    out += _varint(field << 3 | _LEN)
    out += _varint(len(body))
    out += body


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _read_varint(buf: mmap.mmap, pos: int, stop: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= stop or shift > 63:
            raise WireError(f"a varint at byte {pos} runs past its message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: mmap.mmap, start: int, stop: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, the field's first byte, its value's, the byte after it)
    for each field of the message in ``buf[start:stop]``."""
    pos = start
    while pos < stop:
        tag, value = _read_varint(buf, pos, stop)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise WireError(f"field number 0 at byte {pos}")
        if wire == 0:
            _, end = _read_varint(buf, value, stop)
        elif wire == 1:
            end = value + 8
        elif wire == _LEN:
            n, value = _read_varint(buf, value, stop)
            end = value + n
        elif wire == 5:
            end = value + 4
        else:
            raise WireError(f"wire type {wire} (field {field}) at byte {pos}")
        if end > stop:
            raise WireError(f"field {field} at byte {pos} runs {end - stop} bytes past its message")
        yield field, wire, pos, value, end
        pos = end
