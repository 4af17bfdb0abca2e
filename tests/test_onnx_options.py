"""Export options and edge cases: weights files, float16, opsets, name clashes, atomic writes."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from safetensors.torch import save_file

import archspec
from archspec.cli.main import main
from archspec.onnx import model as meta
from archspec.onnx.export import ExportError, export_spec
from archspec.onnx.names import with_outputs
from archspec.onnx.native import seeded_state
from archspec.output_files import OutputError
from archspec.runtime.parity import compare
from archspec.runtime.prepare import module_from_arrays
from archspec.runtime.providers import choose
from archspec.runtime.session import create_session, run_session
from archspec.torch.build import compile_spec
from archspec.torch.weights import WeightsError, load_weights

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5-lecun1998.yaml"


def _spec(layers: list[dict[str, object]], shape: list[int], name: str = "t") -> archspec.Spec:
    return archspec.loads(
        json.dumps({"archspec": 1, "name": name, "input": {"shape": shape}, "layers": layers})
    )


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _ort(path: Path | bytes, x: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
    session = create_session(path, choose("cpu"))
    values, _ = run_session(session, {"input": x}, outputs)
    return values


# --- weights -------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenet() -> archspec.Spec:
    return archspec.load(LENET)


@pytest.fixture(scope="module")
def seed7_files(tmp_path_factory: pytest.TempPathFactory, lenet: archspec.Spec) -> dict[str, Path]:
    """LeNet-5's state_dict for seed 7, saved the two ways ``archspec compile -o`` writes it."""
    d = tmp_path_factory.mktemp("weights")
    state = {k: v.contiguous() for k, v in compile_spec(lenet, seed=7).state_dict().items()}
    save_file(state, d / "w.safetensors")
    torch.save(state, d / "w.pt")
    return {"safetensors": d / "w.safetensors", "pt": d / "w.pt"}


@pytest.fixture(scope="module")
def weights_onnx(tmp_path_factory: pytest.TempPathFactory, seed7_files: dict[str, Path]) -> Path:
    """LeNet-5 exported through the CLI with the seed-7 safetensors file."""
    path = tmp_path_factory.mktemp("wx") / "w.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(
            ["export", str(LENET), "-o", str(path), "--weights", str(seed7_files["safetensors"])]
        )
    assert code == 0
    return path


def test_weights_file_is_what_runs(
    lenet: archspec.Spec, seed7_files: dict[str, Path], weights_onnx: Path
) -> None:
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    (out,) = _ort(weights_onnx, x)
    with torch.inference_mode():
        seven = compile_spec(lenet, seed=7)(torch.from_numpy(x)).numpy()
        zero = compile_spec(lenet, seed=0)(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(out - seven)) < 1e-4
    assert np.max(np.abs(out - zero)) > 1e-2  # the file's weights, not the default seed's
    props = meta.metadata(onnx.load(weights_onnx))
    assert props[meta.KEY_WEIGHTS] == "file:w.safetensors"
    assert props[meta.KEY_WEIGHTS_SHA256] == meta.sha256_file(seed7_files["safetensors"])


def test_pt_weights_load_like_safetensors(
    lenet: archspec.Spec, seed7_files: dict[str, Path]
) -> None:
    module = compile_spec(lenet, seed=0)
    load_weights(module, seed7_files["pt"], lenet.name)
    want = compile_spec(lenet, seed=7).state_dict()
    got = module.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_verify_a_weights_file_model(
    weights_onnx: Path, seed7_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    w = seed7_files["safetensors"]
    code, out, err = cli(
        capsys,
        "run",
        weights_onnx,
        "--verify",
        "--spec",
        LENET,
        "--weights",
        w,
        "--provider",
        "cpu",
    )
    assert (code, err) == (0, "") and "verify: ok" in out
    code, _, err = cli(capsys, "run", weights_onnx, "--verify", "--spec", LENET)
    assert code == 2 and "exported with weights from w.safetensors: add --weights FILE" in err
    code, _, err = cli(
        capsys, "run", weights_onnx, "--verify", "--spec", LENET, "--weights", seed7_files["pt"]
    )
    assert code == 2 and "is not the weights file" in err


def test_weights_that_do_not_fit_are_one_line(
    lenet: archspec.Spec, seed7_files: dict[str, Path], tmp_path: Path
) -> None:
    module = compile_spec(lenet, seed=0)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    state.pop("C1.bias")
    state["extra"] = torch.zeros(1)
    save_file(state, tmp_path / "keys.safetensors")
    with pytest.raises(WeightsError, match=r"missing C1\.bias; unexpected extra"):
        load_weights(module, tmp_path / "keys.safetensors", lenet.name)

    state = dict(module.state_dict())
    state["F6.weight"] = torch.zeros(84, 119)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "shape.safetensors")
    with pytest.raises(WeightsError, match=r"F6\.weight has shape \[84, 119\].*needs \[84, 120\]"):
        load_weights(module, tmp_path / "shape.safetensors", lenet.name)

    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(WeightsError, match="cannot read weights"):
        load_weights(module, tmp_path / "junk.safetensors")
    (tmp_path / "w.bin").write_bytes(seed7_files["pt"].read_bytes())
    with pytest.raises(WeightsError, match="unknown weights format"):
        load_weights(module, tmp_path / "w.bin")
    with pytest.raises(WeightsError, match="no such weights file"):
        export_spec(lenet, tmp_path / "m.onnx", weights=tmp_path / "missing.pt")
    assert not (tmp_path / "m.onnx").exists()


# --- float16 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fp16_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """LeNet-5 exported with --fp16 through the CLI: the file and the text summary."""
    path = tmp_path_factory.mktemp("h") / "h.onnx"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["export", str(LENET), "-o", str(path), "--fp16"]) == 0
    return path, buffer.getvalue()


def test_fp16_weights_io_and_parity(lenet: archspec.Spec, fp16_export: tuple[Path, str]) -> None:
    path, summary = fp16_export
    lines = summary.splitlines()
    assert lines[0].startswith(f"exported lenet5-lecun1998 to {path}: opset 18, float16, ")
    assert "weights from numpy seed 0" in lines[0]
    assert lines[1] == (
        "8 layer values named; ONNX shape inference matches the calculator on all 8 "
        "(batch axis dynamic); checker: ok"
    )
    model = onnx.load(path)
    f16 = onnx.TensorProto.FLOAT16
    assert model.graph.input[0].type.tensor_type.elem_type == f16
    assert model.graph.output[0].type.tensor_type.elem_type == f16
    floats = [t for t in model.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, f16)]
    assert floats and all(t.data_type == f16 for t in floats)
    assert meta.metadata(model)[meta.KEY_DTYPE] == "float16"

    x = np.random.default_rng(2).standard_normal((4, 1, 32, 32)).astype(np.float16)
    names = [r.name for r in archspec.analyze(lenet).rows]
    values = _ort(with_outputs(model, names), x, names)
    assert all(v.dtype == np.float16 for v in values)  # every layer, the RBF sum included
    # float32 math on the rounded weights: the native export's seed-0 tensors, in float16
    reference = module_from_arrays(lenet, seeded_state(lenet, 0, "float16"))
    with torch.inference_mode():
        ref = reference.forward_layers(torch.from_numpy(x).float())
    parity = compare(
        dict(zip(names, values, strict=True)), {n: ref[n].numpy() for n in names}, "float16"
    )
    assert parity.tolerance == 1e-2
    assert parity.ok, parity.failures()
    assert parity.worst.error > 0  # float16 really rounds: the check is not vacuous


def test_fp16_verify_on_the_cli(
    fp16_export: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = fp16_export
    code, out, err = cli(
        capsys, "run", path, "--verify", "--spec", LENET, "--batch", "2", "--provider", "cpu"
    )
    assert (code, err) == (0, "")
    assert "output: OUTPUT float16 [2, 10]" in out
    assert "tolerance 0.01 (float16" in out
    code, out, err = cli(capsys, "run", LENET, "--fp16", "--verify", "--provider", "cpu")
    assert (code, err) == (0, "")
    assert "opset 18, float16, weights from numpy seed 0" in out and "verify: ok" in out


# --- opsets ----------------------------------------------------------------------


def test_opset_17_without_lrn(tmp_path: Path) -> None:
    spec = _spec(
        [{"name": "c", "type": "conv2d", "out_channels": 2, "kernel": 3, "activation": "relu"}],
        [1, 6, 6],
    )
    result = export_spec(spec, tmp_path / "o17.onnx", opset=17)
    model = onnx.load(result.path)
    assert {o.domain: o.version for o in model.opset_import}[""] == 17


def test_opset_17_with_lrn_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    spec = _spec([{"name": "n", "type": "lrn", "size": 3}], [4, 5, 5])
    with pytest.raises(ExportError, match=r"opset 17 .*use --opset 18 or newer"):
        export_spec(spec, tmp_path / "lrn.onnx", opset=17)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ExportError, match="too old"):
        export_spec(spec, tmp_path / "lrn.onnx", opset=11)


def test_ceil_mode_pool_that_drops_its_last_window_needs_opset_22(tmp_path: Path) -> None:
    """26 columns, kernel 3, stride 3, padding 1, ceil_mode: PyTorch gives 9 columns, not 10.

    ⌈(26 + 2 − 3)/3⌉ + 1 = 10, but the 10th window would start at column 27 − 1 = 26,
    in the right padding, so PyTorch drops it; ONNX pooling does the same only
    from opset 22, so archspec exports that opset when it leaves the choice.
    """
    spec = _spec(
        [{"name": "p", "type": "maxpool2d", "kernel": 3, "padding": [0, 1], "ceil_mode": True}],
        [1, 26, 26],
    )
    result = export_spec(spec, tmp_path / "p.onnx")
    assert result.opset == 22
    model = onnx.load(result.path)
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [1, 9, 9]
    with pytest.raises(ExportError, match=r"layer 'p': .*use --opset 22"):
        export_spec(spec, tmp_path / "p18.onnx", opset=18)
    assert not (tmp_path / "p18.onnx").exists()
    # ceil_mode that only adds a window inside the input keeps the default opset
    plain = _spec([{"name": "p", "type": "maxpool2d", "kernel": 2, "ceil_mode": True}], [1, 5, 5])
    assert export_spec(plain, tmp_path / "q.onnx").opset == 18


# --- names -----------------------------------------------------------------------


def test_layer_names_that_clash_with_exporter_names(tmp_path: Path) -> None:
    """Layers named like the exporter's own values (conv2d, linear, view, val_1) keep a valid graph."""
    layers = [
        {"name": "conv2d", "type": "conv2d", "out_channels": 4, "kernel": 3, "activation": "relu"},
        {"name": "linear", "type": "conv2d", "out_channels": 4, "kernel": 3},
        {"name": "relu", "type": "relu"},
        {"name": "view", "type": "flatten"},
        {"name": "d", "type": "dropout", "p": 0.5},
        {"name": "val_1", "type": "linear", "out_features": 5},
    ]
    spec = _spec(layers, [3, 8, 8], name="clash")
    result = export_spec(spec, tmp_path / "c.onnx", keep_model=True)
    model = result.model
    assert model is not None
    onnx.checker.check_model(model, full_check=True)
    produced = Counter(o for n in model.graph.node for o in n.output)
    assert max(produced.values()) == 1
    by_output = {o: n for n in model.graph.node for o in n.output}
    assert by_output["conv2d"].op_type == "Relu"  # the activated output carries the layer name
    assert by_output["linear"].op_type == "Conv"
    assert by_output["d"].op_type == "Identity"
    assert {t.name for t in model.graph.initializer} >= {"conv2d.weight", "val_1.bias"}
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
    names = [la["name"] for la in layers]
    values = _ort(with_outputs(model, names), x, names)
    with torch.inference_mode():
        ref = compile_spec(spec, seed=0).forward_layers(torch.from_numpy(x))
    for name, value in zip(names, values, strict=True):
        assert np.max(np.abs(value - ref[name].numpy())) < 1e-5, name
    assert len(model.graph.output) == 1  # with_outputs restored the model


# --- writing ---------------------------------------------------------------------


def test_unwritable_outputs_fail_before_exporting(lenet: archspec.Spec, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        export_spec(lenet, tmp_path / "no" / "m.onnx")
    with pytest.raises(OutputError, match="is a directory"):
        export_spec(lenet, tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="does not exist"):
        export_spec(lenet, tmp_path / "file" / "m.onnx")


def test_failure_after_writing_leaves_no_file(
    lenet: archspec.Spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker runs on the temporary file; when it fails the target never appears."""
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous model")

    def broken(*args: object, **kwargs: object) -> None:
        raise onnx.checker.ValidationError("simulated checker failure")

    monkeypatch.setattr(onnx.checker, "check_model", broken)
    with pytest.raises(ExportError, match="simulated checker failure"):
        export_spec(lenet, target)
    assert target.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
