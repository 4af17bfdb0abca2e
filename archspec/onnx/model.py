"""Reading ``.onnx`` files safely, and the provenance archspec writes into them.

Every exported model carries, in ``metadata_props``, the spec it came from
(name and two content hashes), where its weights came from (a seed or a
weights file and its hash), its dtype and its layer value names. That lets
``archspec run model.onnx --verify --spec FILE`` rebuild exactly the PyTorch
module the model was exported from — or refuse, in one line, when the spec or
the weights given are not the ones the model records.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import RuntimeInputError

if TYPE_CHECKING:
    import onnx

    from archspec.spec import Spec

PREFIX = "archspec."
KEY_VERSION = PREFIX + "version"
KEY_SPEC_NAME = PREFIX + "spec_name"
KEY_SPEC_SHA256 = PREFIX + "spec_sha256"  # of the spec file's text
KEY_SPEC_CANONICAL = PREFIX + "spec_canonical_sha256"  # of the validated spec, as sorted JSON
KEY_WEIGHTS = PREFIX + "weights"  # "seed:N", "file:NAME" or "module"
KEY_WEIGHTS_SHA256 = PREFIX + "weights_sha256"  # of the weights file, when KEY_WEIGHTS is file:
KEY_DTYPE = PREFIX + "dtype"
KEY_LAYERS = PREFIX + "layers"  # JSON list of the layer value names, in graph order
KEY_OUTPUT = PREFIX + "output"
KEY_EXPORTER = PREFIX + "exporter"
# "ascending" when a smaller output is the better class (LeNet-5's RBF output is a
# squared distance, a penalty), else "descending"; `run --top-k` ranks by it.
KEY_OUTPUT_ORDER = PREFIX + "output_order"


class ModelFileError(RuntimeInputError):
    """A ``.onnx`` file that cannot be read as a valid model (missing, truncated, corrupt)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hash a file in 1 MiB chunks, so a 240 MB weights file is never held twice in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def spec_hashes(spec: Spec) -> tuple[str, str]:
    """(sha256 of the spec file's text, sha256 of the validated spec as canonical JSON).

    The first identifies the file byte for byte (what the model was exported
    from); the second survives edits that do not change the model — comments,
    layout, key order, spelling out a default — so a reformatted spec still
    verifies. A spec built in Python has no file; its text hash is the
    canonical one.
    """
    canonical = json.dumps(
        spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    canonical_hash = sha256_bytes(canonical.encode("utf-8"))
    doc = spec.document
    text = getattr(doc, "text", None) if doc is not None else None
    text_hash = sha256_bytes(text.encode("utf-8")) if text else canonical_hash
    return text_hash, canonical_hash


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Read and structurally check a ``.onnx`` file; any problem is one :class:`ModelFileError` line.

    protobuf parses some truncated files without complaint (an empty file is
    a valid empty ModelProto), so parsing alone proves nothing; the checker
    catches the missing IR version, opset, graph or initializers.
    """
    import onnx
    from google.protobuf.message import DecodeError

    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such file")
    if p.is_dir():
        raise ModelFileError(f"{p}: is a directory, not an ONNX model")
    try:
        model = onnx.load(os.fspath(p))
    except DecodeError:
        raise ModelFileError(
            f"{p}: not a valid ONNX model (the protobuf is truncated or corrupt)"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # onnx raises assorted errors for external-data and format problems
        raise ModelFileError(f"{p}: not a valid ONNX model ({_one_line(exc)})") from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelFileError(
            f"{p}: not a valid ONNX model (truncated or corrupt: {_one_line(exc)})"
        ) from None
    return model


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:159] + "…"


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


@dataclass(frozen=True)
class ModelInfo:
    """What ``run`` needs to feed a model and read its output."""

    input_name: str
    input_dtype: str  # numpy name: float32, float16, ...
    sample_shape: tuple[int, ...]  # the input shape without the batch axis
    batch: int | str | None  # the batch axis: a symbol (dynamic), a fixed size, or None (unknown)
    output_name: str
    layers: tuple[str, ...]  # layer value names recorded at export; () for a foreign model
    metadata: dict[str, str]

    @property
    def spec_name(self) -> str | None:
        return self.metadata.get(KEY_SPEC_NAME)

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input_name,
            "dtype": self.input_dtype,
            "sample_shape": list(self.sample_shape),
            "batch": self.batch,
            "output": self.output_name,
            "layers": list(self.layers),
            "metadata": self.metadata,
        }


def model_info(model: onnx.ModelProto, where: str = "model") -> ModelInfo:
    """The model's single input (batch first, every other axis fixed) and its output.

    Raises :class:`ModelFileError` for a model ``run`` cannot feed: several
    inputs, a non-tensor input, or a symbolic axis other than the batch.
    """
    import onnx

    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelFileError(f"{where}: has {len(inputs)} inputs; archspec runs one-input models")
    if not graph.output:
        raise ModelFileError(f"{where}: has no outputs")
    tensor = inputs[0].type.tensor_type
    if not inputs[0].type.HasField("tensor_type") or not tensor.HasField("shape"):
        raise ModelFileError(f"{where}: input '{inputs[0].name}' is not a tensor of known rank")
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    except Exception:
        raise ModelFileError(
            f"{where}: input '{inputs[0].name}' has an element type numpy cannot hold"
        ) from None
    dims = list(tensor.shape.dim)
    if not dims:
        raise ModelFileError(
            f"{where}: input '{inputs[0].name}' is a scalar; expected a batch axis"
        )
    batch: int | str | None = (
        dims[0].dim_value if dims[0].HasField("dim_value") else (dims[0].dim_param or None)
    )
    sample: list[int] = []
    for axis, dim in enumerate(dims[1:], start=1):
        if not dim.HasField("dim_value"):
            raise ModelFileError(
                f"{where}: input '{inputs[0].name}' axis {axis} is not fixed; "
                "only the batch axis may be dynamic"
            )
        sample.append(dim.dim_value)
    meta = metadata(model)
    layers: tuple[str, ...] = ()
    if KEY_LAYERS in meta:
        try:
            names = json.loads(meta[KEY_LAYERS])
        except ValueError:
            names = []
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            layers = tuple(names)
    return ModelInfo(
        input_name=inputs[0].name,
        input_dtype=dtype,
        sample_shape=tuple(sample),
        batch=batch,
        output_name=graph.output[0].name,
        layers=layers,
        metadata=meta,
    )
