"""`archspec export --triton REPO`: a Triton model repository whose config parses as Triton's
ModelConfig (tritonclient's generated protobuf, which refuses a misspelt field) and agrees
with its ONNX model: names, data types, per-sample dims, batch range."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

pytest.importorskip("tritonclient.grpc")
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "specs").glob("*.yaml"))
ELEM = {1: mc.TYPE_FP32, 10: mc.TYPE_FP16, 11: mc.TYPE_FP64}


def _export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archspec", "export", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def _parse(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig())


def _agrees(config: mc.ModelConfig, model: onnx.ModelProto, max_batch: int) -> None:
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == max_batch
    inits = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    for ours, theirs in ((config.input, inputs), (config.output, list(model.graph.output))):
        assert [c.name for c in ours] == [v.name for v in theirs]
        for c, v in zip(ours, theirs, strict=True):
            t = v.type.tensor_type
            assert c.data_type == ELEM[t.elem_type]
            assert not t.shape.dim[0].HasField("dim_value")  # the batch axis, omitted in dims
            assert list(c.dims) == [d.dim_value for d in t.shape.dim[1:]]
    assert list(config.dynamic_batching.preferred_batch_size)[-1] == max_batch


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_repository_parses_and_agrees(path: Path, tmp_path: Path) -> None:
    run = _export(str(path), "--triton", str(tmp_path))
    assert run.returncode == 0, run.stderr
    (model_dir,) = tmp_path.iterdir()
    config = _parse(model_dir / "config.pbtxt")
    assert config.name == model_dir.name
    model = onnx.load(os.fspath(model_dir / "1" / "model.onnx"))
    _agrees(config, model, 64)
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_profiles_from_the_spec_input(tmp_path: Path, precision: str) -> None:
    spec = ROOT / "specs" / "alexnet-krizhevsky2012.yaml"
    run = _export(
        str(spec),
        "--triton",
        str(tmp_path),
        "--tensorrt",
        precision,
        "--max-batch-size",
        "32",
        "--instances",
        "2",
        "--fp16",
    )
    assert run.returncode == 0, run.stderr
    model_dir = tmp_path / "alexnet-krizhevsky2012"
    config = _parse(model_dir / "config.pbtxt")
    _agrees(config, onnx.load(os.fspath(model_dir / "1" / "model.onnx")), 32)
    assert config.input[0].data_type == mc.TYPE_FP16
    assert config.instance_group[0].count == 2
    (trt,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert trt.name == "tensorrt"
    assert trt.parameters["precision_mode"] == precision.upper()
    assert trt.parameters["trt_profile_min_shapes"] == "input:1x3x227x227"
    assert trt.parameters["trt_profile_max_shapes"] == "input:32x3x227x227"


def test_cpu_instances(tmp_path: Path) -> None:
    spec = ROOT / "specs" / "lenet5-d2l.yaml"
    assert (
        _export(
            str(spec), "--triton", str(tmp_path), "--kind", "cpu", "--max-batch-size", "8"
        ).returncode
        == 0
    )
    config = _parse(tmp_path / "lenet5-d2l" / "config.pbtxt")
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 4, 8]


def test_tensorrt_on_cpu_is_refused(tmp_path: Path) -> None:
    spec = ROOT / "specs" / "lenet5-d2l.yaml"
    run = _export(str(spec), "--triton", str(tmp_path), "--kind", "cpu", "--tensorrt")
    assert run.returncode == 2 and "--tensorrt needs GPU" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_misspelt_field_fails_the_parse() -> None:
    """The validator is strict: what it accepts, Triton's own parser accepts."""
    with pytest.raises(text_format.ParseError):
        text_format.Parse('name: "m"\nmax_bach_size: 8\n', mc.ModelConfig())
