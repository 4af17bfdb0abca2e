"""`archspec bench MODEL.onnx`: any ONNX file on its own — its shapes, FLOPs, baseline, profile.

Three producers: a graph written with onnx.helper (a free batch and a free
spatial axis), torch.onnx's TorchScript exporter (no archspec metadata), and
archspec's own export (metadata: a PyTorch baseline). Fast settings; no test
asserts a speed.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from archspec.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--provider", "cpu", "--min-time", "0.02", "--warmup", "1", "--quiet", "--threads", "1"]


def _save(path: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any], inits=()) -> str:
    import onnx

    graph = helper.make_graph(nodes, path.stem, inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Conv 3→8 (3×3, same padding), ReLU, global average pool; input [batch, 3, height, 32]."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    return _save(
        tmp_path_factory.mktemp("onnx") / "tiny.onnx",
        [
            helper.make_node("Conv", ["image", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("GlobalAveragePool", ["r"], ["out"], name="gap"),
        ],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 8, 1, 1])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.zeros(8, "f4"), "b")],
    )


def bench(argv: list[str]) -> tuple[int, dict[str, Any] | None, str]:
    """Run ``archspec bench`` in-process with JSON on stdout: (status, report, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["bench", *argv, "--format", "json", *FAST])
    return code, json.loads(out.getvalue()) if code == 0 else None, err.getvalue()


def test_free_axes_take_the_batch_and_the_shape_option(tiny: str) -> None:
    code, doc, err = bench([tiny, "--batch", "1,3", "--shape", "image=1,3,16,32"])
    assert code == 0, err
    assert doc is not None
    results = doc["results"]
    # no archspec metadata: ONNX Runtime alone, said plainly
    assert {(r["engine"], r["batch"]) for r in results} == {("onnxruntime", 1), ("onnxruntime", 3)}
    assert "tiny.onnx: no PyTorch baseline (the file carries no archspec metadata)" in err
    for r in results:
        assert r["spec"] == "tiny.onnx" and r["file"] == tiny
        assert r["input_shapes"] == {"image": [r["batch"], 3, 16, 32]}  # batch from --batch
        assert r["vs_torch"] is None and r["max_abs_diff"] is None
    # FLOPs from the imported graph: 2 × 8 × (3·3·3) × (16·32) for the convolution
    assert doc["flops_per_sample"] == {"tiny.onnx": 2 * 8 * 27 * 16 * 32}
    model = doc["models"]["tiny.onnx"]
    assert model["inputs"] == {"image": ["batch", 3, 16, 32]}
    assert model["baseline"] is None and model["flops_source"].startswith("the calculator")
    for r in results:
        assert r["roofline_fraction"] == pytest.approx(r["flops_per_s"] / doc["peak_flops_per_s"])
    assert "--shape image=1,3,16,32" in doc["command"]
    # another height: another shape fed, half the FLOPs
    code, doc, err = bench([tiny, "--batch", "2", "--shape", "image=5,3,8,32"])
    assert code == 0, err
    assert doc is not None
    assert [r["input_shapes"] for r in doc["results"]] == [{"image": [2, 3, 8, 32]}]
    assert doc["flops_per_sample"] == {"tiny.onnx": 2 * 8 * 27 * 8 * 32}


def test_a_graph_archspec_cannot_count_has_no_fraction(tmp_path: Path) -> None:
    """Two inputs (a spec takes one): ONNX Runtime runs it, FLOP/s and fractions are n/a."""
    path = _save(
        tmp_path / "pair.onnx",
        [helper.make_node("Add", ["a", "b"], ["sum"], name="add")],
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", "k"]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", "k"]),
        ],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["n", "k"])],
    )
    # 'k' fixed once, by a's --shape, fixes b's too (the same symbol)
    code, doc, err = bench([path, "--batch", "4", "--shape", "a=1,6"])
    assert code == 0, err
    assert doc is not None
    (r,) = doc["results"]
    assert r["input_shapes"] == {"a": [4, 6], "b": [4, 6]}
    assert r["flops_per_s"] is None and r["roofline_fraction"] is None
    assert r["gemm_ratio"] is None and r["throughput"] > 0
    assert doc["flops_per_sample"] == {"pair.onnx": None}
    assert "pair.onnx: GFLOP/s and roofline fractions not available" in err
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["bench", path, "--shape", "a=1,6", "--batch", "4", *FAST, "--format", "markdown"]) == 0  # fmt: skip
    assert "| pair.onnx | onnxruntime | cpu | 4 | fp32 |" in out.getvalue()
    assert "| n/a | n/a | n/a |" in out.getvalue()


def test_a_fixed_batch_is_the_only_batch(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "fixed.onnx",
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
    )
    code, doc, err = bench([path, "--batch", "1,8"])
    assert code == 0, err
    assert doc is not None
    assert [(r["batch"], r["input_shapes"]) for r in doc["results"]] == [(2, {"x": [2, 5]})]
    assert "fixed.onnx: run at batch 2 only: no input's first axis is free" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "tiny.onnx: error: input 'image' axis 2 ('height') is free and nothing fixes it; "
             "fix it with --shape image=N,3,?,32"),
        (["--shape", "img=1,3,16,32"], "tiny.onnx: error: --shape img: the model has no input "
                                       "'img'; its inputs: image"),
        (["--shape", "image=1,3,16"], "tiny.onnx: error: --shape image=1,3,16 has 3 axes; input "
                                      "'image' has 4 [batch, 3, height, 32]"),
        (["--shape", "image=1,4,16,32"], "axis 1 of input 'image' is fixed at 3"),
        (["--shape", "image"], "expected NAME=D,D,..."),
        (["--shape", "image=1,0,2,2"], "expected NAME=D,D,..."),
    ],
)  # fmt: skip
def test_bad_shapes_are_one_line_exit_2(tiny: str, argv: list[str], message: str) -> None:
    code, _, err = bench([tiny, *argv])
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreadable_files_are_one_line_exit_2(tmp_path: Path, tiny: str) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xff not a protobuf" * 10)
    spec = str(ROOT / "specs" / "lenet5-maxpool.yaml")
    for argv, message in (
        ([str(tmp_path / "missing.onnx")], f"{tmp_path / 'missing.onnx'}: error: no such file"),
        ([str(garbage)], f"{garbage}: error: not a valid ONNX model"),
        ([spec, "--shape", "x=1,2"], "--shape is for .onnx files, and none is given"),
        ([tiny, "--shape", "image=1,3,8,32", "--spec", spec], "no .onnx given was exported from"),
    ):
        code, _, err = bench(argv)
        assert code == 2, argv
        assert message in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter, on purpose
def test_a_torch_onnx_export_is_timed_without_a_baseline(tmp_path: Path) -> None:
    import torch

    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, 10),
    ).eval()  # fmt: skip
    path = tmp_path / "seq.onnx"
    torch.onnx.export(
        module,
        (torch.zeros(1, 3, 8, 8),),
        str(path),
        dynamo=False,
        input_names=["pixels"],
        dynamic_axes={"pixels": {0: "batch"}},
    )
    code, doc, err = bench([str(path), "--batch", "1,2"])
    assert code == 0, err
    assert doc is not None
    assert [(r["engine"], r["batch"]) for r in doc["results"]] == [
        ("onnxruntime", 1),
        ("onnxruntime", 2),
    ]
    assert doc["results"][1]["input_shapes"] == {"pixels": [2, 3, 8, 8]}
    # conv 2 × 4 × 27 × 64, linear 2 × 256 × 10: the calculator on the imported graph
    assert doc["flops_per_sample"] == {"seq.onnx": 2 * 4 * 27 * 64 + 2 * 256 * 10}
    assert "no PyTorch baseline (the file carries no archspec metadata)" in err


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> str:
    """LeNet-5 (max-pool variant) exported by archspec (native, seed 0): metadata included."""
    path = tmp_path_factory.mktemp("native") / "lenet.onnx"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["export", str(ROOT / "specs" / "lenet5-maxpool.yaml"), "-o", str(path)]) == 0
    return str(path)


def test_an_archspec_export_is_compared_with_its_pytorch_module(native: str) -> None:
    import archspec

    code, doc, err = bench([native, "--batch", "1,2"])
    assert code == 0, err
    assert doc is not None
    assert {(r["engine"], r["batch"]) for r in doc["results"]} == {
        (e, b) for e in ("onnxruntime", "torch") for b in (1, 2)
    }
    for r in doc["results"]:
        assert r["max_abs_diff"] is not None and r["max_abs_diff"] < 1e-4  # the file's tensors
        assert r["input_shapes"] == {"input": [r["batch"], 1, 28, 28]}
    flops = archspec.analyze(ROOT / "specs" / "lenet5-maxpool.yaml").totals.flops
    assert doc["flops_per_sample"] == {"lenet.onnx": flops}
    assert doc["models"]["lenet.onnx"]["spec"] == "lenet5-maxpool"
    assert doc["models"]["lenet.onnx"]["baseline"] == "torch"
    ort = [r for r in doc["results"] if r["engine"] == "onnxruntime"]
    assert all(r["vs_torch"] is not None for r in ort)
    # --baseline none: ORT alone, FLOPs still counted
    code, doc, err = bench([native, "--batch", "1", "--baseline", "none"])
    assert code == 0, err
    assert doc is not None
    assert [r["engine"] for r in doc["results"]] == ["onnxruntime"]


def test_spec_option_gives_the_recorded_spec_and_refuses_another(
    tmp_path: Path, native: str
) -> None:
    import archspec

    spec = ROOT / "specs" / "lenet5-maxpool.yaml"
    code, doc, err = bench([native, "--batch", "1", "--spec", str(spec)])
    assert code == 0, err
    assert doc is not None
    assert {r["engine"] for r in doc["results"]} == {"onnxruntime", "torch"}
    assert doc["models"]["lenet.onnx"]["flops_source"] == (
        f"the calculator, on {spec} (the spec the file records)"
    )
    assert doc["flops_per_sample"]["lenet.onnx"] == archspec.analyze(spec).totals.flops
    assert f"--spec {spec}" in doc["command"]
    edited = tmp_path / "lenet5-maxpool.yaml"
    edited.write_text(spec.read_text().replace("120, activation: sigmoid", "120, activation: relu"))
    code, _, err = bench([native, "--batch", "1", "--spec", str(edited)])
    assert code == 2 and "differs from the 'lenet5-maxpool' spec" in err
    assert len(err.strip().splitlines()) == 1


def test_profile_of_an_onnx_file_is_per_layer(native: str, tiny: str) -> None:
    from archspec.analysis import analyze
    from archspec.bench.profile import layer_work
    from archspec.spec import load

    code, doc, err = bench([native, "--batch", "2", "--profile"])
    assert code == 0, err
    assert doc is not None
    profile = doc["profile"]["lenet.onnx"]
    assert profile["batch"] == 2
    work = layer_work(analyze(load(ROOT / "specs" / "lenet5-maxpool.yaml")), 2)
    torch_rows = profile["torch"]
    assert [r["layer"] for r in torch_rows] == list(work)
    for r in [*torch_rows, *profile["onnxruntime"]]:
        assert (r["flops"], r["bytes_moved"]) == work[r["layer"]]
    assert {r["layer"] for r in profile["onnxruntime"]} <= set(work)
    assert profile["onnxruntime_unattributed_ms"] == 0
    # a file without layers is profiled per ORT node, named with its op type
    code, doc, err = bench([tiny, "--batch", "1", "--shape", "image=1,3,8,32", "--profile"])
    assert code == 0, err
    assert doc is not None
    rows = doc["profile"]["tiny.onnx"]["onnxruntime"]
    assert rows and all(r["ms"] >= 0 for r in rows)
    assert {r["layer"] for r in rows} <= {"r", "out"}  # the imported spec's layers (values)
