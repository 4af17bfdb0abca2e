"""Every shipped spec exports to ONNX, checks, names its layers, and runs on ORT like PyTorch.

Each spec is exported once for the module (exports take seconds), into a
temporary directory shared by its tests. The figures asserted come from the
calculator (analysis rows) and from PyTorch's forward pass on the same
weights, never from the exporter's own report.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from spec_sets import ALL_NAMES, ORIGINAL, heavy_names, heavy_params

import archspec
from archspec.onnx import model as meta
from archspec.onnx.export import ExportResult, export_spec
from archspec.onnx.names import with_outputs
from archspec.onnx.shapes import inferred_shapes
from archspec.runtime.parity import compare
from archspec.runtime.providers import choose
from archspec.runtime.session import create_session, run_session
from archspec.torch.build import compile_spec

ROOT_SPECS = Path(__file__).resolve().parent.parent / "specs"
SPECS = heavy_params(
    paths=True
)  # the original seven and the small new specs; ARCHSPEC_ALL_SPECS=1: all


@pytest.fixture(scope="module")
def exported() -> dict[str, tuple[ExportResult, onnx.ModelProto]]:
    """Lazily export each spec once per module: {spec stem: (result, model read back from disk)}."""
    return {}


def _export(
    cache: dict[str, tuple[ExportResult, onnx.ModelProto]], tmp: Path, path: Path
) -> tuple[ExportResult, onnx.ModelProto]:
    if path.stem not in cache:
        result = export_spec(archspec.load(path), tmp / f"{path.stem}.onnx", seed=0)
        cache[path.stem] = (result, onnx.load(result.path))
    return cache[path.stem]


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def test_the_original_seven_specs_are_shipped_and_exported() -> None:
    assert set(ORIGINAL) <= set(heavy_names()) <= set(ALL_NAMES)


@pytest.mark.parametrize("path", SPECS)
def test_export_checks_names_layers_and_shapes(
    path: Path, exported: dict[str, tuple[ExportResult, onnx.ModelProto]], outdir: Path
) -> None:
    result, model = _export(exported, outdir, path)
    analysis = archspec.analyze(archspec.load(path))
    onnx.checker.check_model(str(result.path), full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == 18 == result.opset
    assert model.producer_name == "archspec"

    # Provenance in metadata_props.
    props = meta.metadata(model)
    assert props[meta.KEY_SPEC_NAME] == analysis.spec.name
    assert props[meta.KEY_VERSION] == archspec.__version__
    text = path.read_text(encoding="utf-8")
    assert props[meta.KEY_SPEC_SHA256] == hashlib.sha256(text.encode()).hexdigest()
    assert props[meta.KEY_WEIGHTS] == "seed:0"
    assert json.loads(props[meta.KEY_LAYERS]) == [r.name for r in analysis.rows]

    # One input with a symbolic batch axis; one output: the model's.
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].HasField("dim_value")
    assert [d.dim_value for d in dims[1:]] == list(analysis.input_shape)
    assert [o.name for o in model.graph.output] == [analysis.graph.output]

    # Every layer's output is a value of that name, written by exactly one node.
    produced = Counter(out for node in model.graph.node for out in node.output)
    for row in analysis.rows:
        assert produced[row.name] == 1, row.name
    assert max(produced.values()) == 1  # the graph is in SSA form

    # ONNX shape inference (not the exporter's annotations) gives the calculator's shapes.
    shapes = inferred_shapes(model, [r.name for r in analysis.rows])
    for row in analysis.rows:
        got = shapes[row.name]
        assert got is not None, row.name
        assert isinstance(got[0], str), f"{row.name}: batch axis not symbolic: {got}"
        assert got[1:] == list(row.output), row.name


@pytest.mark.parametrize("path", SPECS)
def test_ort_cpu_matches_pytorch_on_every_layer(
    path: Path, exported: dict[str, tuple[ExportResult, onnx.ModelProto]], outdir: Path
) -> None:
    """Batch of 4 on the CPU provider: every layer within 1e-4 of PyTorch (fp32)."""
    result, model = _export(exported, outdir, path)
    spec = archspec.load(path)
    names = list(result.value_names)
    x = np.random.default_rng(1).standard_normal((4, *spec.input.shape)).astype(np.float32)
    session = create_session(with_outputs(model, names), choose("cpu"))
    values, _ = run_session(session, {"input": x}, names)
    module = compile_spec(spec, seed=0)
    with torch.inference_mode():
        ref = module.forward_layers(torch.from_numpy(x))
    parity = compare(
        dict(zip(names, values, strict=True)), {n: ref[n].numpy() for n in names}, "float32"
    )
    assert parity.tolerance == 1e-4
    assert parity.ok, parity.failures()
    out = values[names.index(result.output_name)]
    assert np.max(np.abs(out - ref[result.output_name].numpy())) < 1e-4
    assert out.shape == (4, *archspec.analyze(spec).output_shape)


@pytest.mark.parametrize("path", SPECS)
@pytest.mark.parametrize("batch", [1, 64])
def test_exported_file_runs_at_batch_1_and_64(
    path: Path, batch: int, exported: dict[str, tuple[ExportResult, onnx.ModelProto]], outdir: Path
) -> None:
    result, _ = _export(exported, outdir, path)
    spec = archspec.load(path)
    session = create_session(result.path, choose("cpu"))
    x = np.zeros((batch, *spec.input.shape), dtype=np.float32)
    (out,), _ = run_session(session, {"input": x})
    assert out.shape == (batch, *archspec.analyze(spec).output_shape)
    assert np.all(np.isfinite(out))


def test_alexnet_fp16_runs_on_cpu_ort(tmp_path: Path) -> None:
    """float16 through LRN, grouped convolutions and softmax: ORT's CPU provider runs it."""
    path = ROOT_SPECS / "alexnet-krizhevsky2012.yaml"
    spec = archspec.load(path)
    result = export_spec(spec, tmp_path / "a16.onnx", fp16=True, keep_model=True)
    assert result.model is not None
    names = list(result.value_names)
    x = np.random.default_rng(1).standard_normal((2, 3, 227, 227)).astype(np.float16)
    values, _ = run_session(
        create_session(with_outputs(result.model, names), choose("cpu")), {"input": x}, names
    )
    assert all(v.dtype == np.float16 for v in values)
    reference = compile_spec(spec, seed=0).half().float()
    with torch.inference_mode():
        ref = reference.forward_layers(torch.from_numpy(x).float())
    parity = compare(
        dict(zip(names, values, strict=True)), {n: ref[n].numpy() for n in names}, "float16"
    )
    assert parity.ok, parity.failures()
    assert 0 < parity.worst.error < 1e-2
    totals = archspec.analyze(spec).totals
    weight_bytes = 2 * (totals.params + totals.buffers)  # 2 bytes per float16 element
    assert weight_bytes <= result.size_bytes < weight_bytes + 1_000_000
