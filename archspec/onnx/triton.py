"""A Triton Inference Server model repository for an exported model (``export --triton REPO``).

Writes ``REPO/<name>/config.pbtxt`` and ``REPO/<name>/1/model.onnx``. The config is
derived from the ONNX file itself — input and output names, element types and
per-sample dims (the batch axis omitted, as Triton wants with ``max_batch_size``) —
so it cannot disagree with the model. The text is protobuf text format of
Triton's ``inference.ModelConfig`` (model_config.proto); the tests parse it with
``tritonclient``'s generated message, which refuses a misspelt field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archspec.errors import RuntimeInputError

if TYPE_CHECKING:
    import onnx

# onnx.TensorProto element type → Triton's DataType name (model_config.proto)
TRITON_TYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    4: "TYPE_UINT16",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    12: "TYPE_UINT32",
    13: "TYPE_UINT64",
    16: "TYPE_BF16",
}
KINDS = ("gpu", "cpu")
PRECISIONS = ("fp32", "fp16")


class TritonError(RuntimeInputError):
    """Options that make no Triton config (TensorRT on CPU instances, a batch below 1)."""


@dataclass(frozen=True)
class TritonOptions:
    max_batch_size: int = 64
    instances: int = 1
    kind: str = "gpu"
    tensorrt: str | None = None  # None, "fp32" or "fp16"

    def check(self) -> None:
        if self.max_batch_size < 1:
            raise TritonError(f"--max-batch-size must be at least 1, not {self.max_batch_size}")
        if self.instances < 1:
            raise TritonError(f"--instances must be at least 1, not {self.instances}")
        if self.kind not in KINDS:
            raise TritonError(f"--kind must be one of {', '.join(KINDS)}, not {self.kind}")
        if self.tensorrt is not None and self.tensorrt not in PRECISIONS:
            raise TritonError(f"--tensorrt takes {' or '.join(PRECISIONS)}, not {self.tensorrt}")
        if self.tensorrt is not None and self.kind != "gpu":
            raise TritonError("--tensorrt needs GPU instances (--kind gpu)")


def model_dir(repo: str | os.PathLike[str], name: str) -> Path:
    return Path(repo) / name


def preferred_sizes(max_batch: int) -> list[int]:
    """Powers of two from a quarter of the largest batch up to it (the largest always)."""
    sizes = sorted({max(1, max_batch // 4), max(1, max_batch // 2), max_batch})
    return sizes


def _values(model: onnx.ModelProto) -> tuple[list[onnx.ValueInfoProto], list[onnx.ValueInfoProto]]:
    initializers = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    return inputs, list(model.graph.output)


def _dims(info: onnx.ValueInfoProto, where: str) -> tuple[int, list[int]]:
    """(elem type, dims without the batch axis); every axis but the first must be fixed."""
    tensor = info.type.tensor_type
    dims = list(tensor.shape.dim)
    if not dims or dims[0].HasField("dim_value"):
        raise TritonError(f"{where}: '{info.name}' has no dynamic batch axis for max_batch_size")
    rest = []
    for axis, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value"):
            raise TritonError(f"{where}: '{info.name}' axis {axis} is not fixed")
        rest.append(d.dim_value)
    if tensor.elem_type not in TRITON_TYPES:
        raise TritonError(f"{where}: '{info.name}' has an element type Triton lacks")
    return tensor.elem_type, rest


def _io(kind: str, name: str, elem: int, dims: list[int]) -> str:
    shown = ", ".join(map(str, dims))
    return (
        f'  {{\n    name: "{name}"\n    data_type: {TRITON_TYPES[elem]}\n'
        f"    dims: [ {shown} ]\n  }}"
    )


def config_text(model: onnx.ModelProto, name: str, options: TritonOptions) -> str:
    """The config.pbtxt of ``model`` served as ``name``."""
    options.check()
    inputs, outputs = _values(model)
    where = f"model {name}"
    ins = [(v.name, *_dims(v, where)) for v in inputs]
    outs = [(v.name, *_dims(v, where)) for v in outputs]
    lines = [
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {options.max_batch_size}",
        "input [\n" + ",\n".join(_io("input", n, e, d) for n, e, d in ins) + "\n]",
        "output [\n" + ",\n".join(_io("output", n, e, d) for n, e, d in outs) + "\n]",
        "dynamic_batching {\n"
        f"  preferred_batch_size: [ {', '.join(map(str, preferred_sizes(options.max_batch_size)))} ]\n"
        "  max_queue_delay_microseconds: 100\n}",
        "instance_group [\n  {\n"
        f"    count: {options.instances}\n    kind: KIND_{options.kind.upper()}\n  }}\n]",
    ]
    if options.tensorrt is not None:
        params = {
            "precision_mode": options.tensorrt.upper(),
            "max_workspace_size_bytes": str(1 << 30),
            "trt_engine_cache_enable": "true",
        }
        for key, batch in (
            ("min", 1),
            ("opt", preferred_sizes(options.max_batch_size)[0]),
            ("max", options.max_batch_size),
        ):
            params[f"trt_profile_{key}_shapes"] = ",".join(
                f"{n}:{'x'.join(map(str, [batch, *d]))}" for n, _, d in ins
            )
        body = "\n".join(
            f'        parameters {{ key: "{k}" value: "{v}" }}' for k, v in params.items()
        )
        lines.append(
            "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator: [\n"
            f'      {{\n        name: "tensorrt"\n{body}\n      }}\n    ]\n  }}\n}}'
        )
    return "\n".join(lines) + "\n"


def write_config(
    repo: str | os.PathLike[str], name: str, model: onnx.ModelProto, options: TritonOptions
) -> Path:
    from archspec.output_files import write_atomic

    path = model_dir(repo, name) / "config.pbtxt"
    write_atomic(path, config_text(model, name, options))
    return path
