"""Provider probing and choice, quiet sessions, and the parity arithmetic behind --verify.

This machine may or may not have a GPU; the assertions about GPU providers
read the probe's own verdict and check that it is consistent, so they hold on
both (on a CPU-only machine with onnxruntime-gpu they check the reasons).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from archspec.runtime.parity import compare
from archspec.runtime.providers import (
    EXECUTION_PROVIDERS,
    ProviderChoice,
    ProviderError,
    captured_output,
    choose,
    one_line,
    ort_providers,
    probe,
    reason_from,
)
from archspec.runtime.session import ModelError, create_session, run_session

GPU_PRESENT = Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists()


def _add_model() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    one = helper.make_tensor("one", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "g", [x], [y], [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


def test_probe_is_quiet_and_complete(capfd: pytest.CaptureFixture[str]) -> None:
    probe.cache_clear()
    status = probe()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert list(status) == ["tensorrt", "cuda", "cpu"]
    assert status["cpu"] is None
    for name in ("tensorrt", "cuda"):
        reason = status[name]
        if EXECUTION_PROVIDERS[name] not in ort.get_available_providers():
            assert reason is not None and reason.startswith("not in this onnxruntime build")
        elif not GPU_PRESENT:
            assert reason is not None and reason.startswith("unavailable (")
            assert "\n" not in reason and len(reason) < 200


def test_auto_prefers_gpu_and_says_why_it_skipped() -> None:
    status = probe()
    choice = choose("auto")
    first_usable = next(n for n in ("tensorrt", "cuda", "cpu") if status[n] is None)
    assert choice.name == first_usable
    assert choice.skipped == {
        n: status[n]
        for n in ("tensorrt", "cuda", "cpu")[: ("tensorrt", "cuda", "cpu").index(first_usable)]
    }
    line = choice.describe()
    assert "\n" not in line
    assert line.startswith(f"provider: {first_usable}")
    for name, reason in choice.skipped.items():
        assert f"{name}: {reason}" in line


def test_describe_format() -> None:
    choice = ProviderChoice(
        "cpu",
        ["CPUExecutionProvider"],
        {
            "tensorrt": "unavailable (libnvinfer.so.10 not found)",
            "cuda": "unavailable (libcublasLt.so.13 not found)",
        },
    )
    assert choice.describe() == (
        "provider: cpu (tensorrt: unavailable (libnvinfer.so.10 not found); "
        "cuda: unavailable (libcublasLt.so.13 not found))"
    )
    assert choose("cpu").describe() == "provider: cpu (requested)"
    assert choose("cpu").ort_providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize("name", ["cuda", "tensorrt"])
def test_explicit_unusable_provider_is_an_error(name: str) -> None:
    reason = probe()[name]
    if reason is None:
        assert choose(name).name == name
        return
    with pytest.raises(ProviderError) as info:
        choose(name)
    assert str(info.value) == (
        f"provider {name} is not usable on this machine: {reason}; "
        "use --provider auto to run on the best available one"
    )


def test_unknown_provider() -> None:
    with pytest.raises(
        ProviderError, match="unknown provider 'rocm'; choose one of auto, tensorrt, cuda, cpu"
    ):
        choose("rocm")


def test_provider_lists_keep_fallbacks() -> None:
    trt = ort_providers("tensorrt")
    assert isinstance(trt[0], tuple) and trt[0][0] == "TensorrtExecutionProvider"
    assert trt[0][1]["trt_engine_cache_enable"] is True
    assert trt[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert ort_providers("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_captured_output_takes_both_layers(capfd: pytest.CaptureFixture[str]) -> None:
    with captured_output() as out:
        os.write(2, b"from C on fd 2\n")
        os.write(1, b"from C on fd 1\n")
        print("from python stdout")
        print("from python stderr", file=sys.stderr)
    assert capfd.readouterr() == ("", "")
    for text in ("from C on fd 2", "from C on fd 1", "from python stdout", "from python stderr"):
        assert text in out.text


def test_reasons_are_short() -> None:
    ort_log = (
        "2026 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] ... Failed to load library "
        "/x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: "
        "No such file or directory"
    )
    assert reason_from(ort_log) == "libcublasLt.so.13 not found"
    assert reason_from("CUDA failure 100: no CUDA-capable device is detected") == "no CUDA device"
    assert reason_from("nothing recognisable") is None
    opset = (
        "[ONNXRuntimeError] : 1 : FAIL : Load model from m.onnx failed:/onnxruntime_src/onnxruntime/"
        "core/graph/model_load_utils.h:46 void onnxruntime::model_load_utils::ValidateOpsetForDomain("
        "const std::unordered_map<std::__cxx11::basic_string<char>, int>&, const onnxruntime::logging"
        "::Logger&, bool, const std::string&, int) Opset 27 is under development.\n"
    )
    assert one_line(opset) == "Load model from m.onnx failed:Opset 27 is under development."
    dims = (
        "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: x for the "
        "following indices\n index: 1 Got: 4 Expected: 3\n Please fix either the inputs/outputs or the model."
    )
    assert one_line(dims) == (
        "Got invalid dimensions for input: x for the following indices index: 1 Got: 4 Expected: 3 "
        "Please fix either the inputs/outputs or the model."
    )
    assert one_line("x" * 400, limit=20) == "x" * 19 + "…"


def test_session_runs_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    session = create_session(
        _add_model(), choose("cpu"), intra_op_threads=1, graph_optimization="basic"
    )
    (y,), seconds = run_session(session, {"x": np.zeros((2, 3), np.float32)})
    assert y.tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    assert seconds > 0
    assert capfd.readouterr() == ("", "")


def test_session_errors_are_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ModelError, match="ONNX Runtime cannot load the model") as info:
        create_session(b"not a model", choose("cpu"))
    assert "\n" not in str(info.value)
    session = create_session(_add_model(), choose("cpu"))
    with pytest.raises(ModelError, match="failed to run") as info:
        run_session(session, {"x": np.zeros((2, 4), np.float32)})
    assert "\n" not in str(info.value)
    assert capfd.readouterr() == ("", "")
    with pytest.raises(ValueError, match="graph_optimization"):
        create_session(_add_model(), choose("cpu"), graph_optimization="max")


@pytest.mark.skipif(GPU_PRESENT, reason="needs a machine where CUDA cannot load")
def test_silent_cpu_fallback_is_detected(capfd: pytest.CaptureFixture[str]) -> None:
    """Forcing a CUDA choice where CUDA cannot load: ORT would quietly use the CPU; we refuse."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no CUDA provider")
    forced = ProviderChoice("cuda", ort_providers("cuda"), {}, "cuda")
    with pytest.raises(ProviderError, match="provider cuda failed to start"):
        create_session(_add_model(), forced)
    assert capfd.readouterr() == ("", "")


def test_compare_figures() -> None:
    ref = {"a": np.array([0.5, -0.25], np.float32), "b": np.array([100.0, -50.0], np.float32)}
    got = {"a": np.array([0.5 + 5e-5, -0.25]), "b": np.array([100.0 + 2e-3, -50.0])}
    parity = compare(got, ref, "float32")
    a, b = parity.layers
    assert a.max_abs == pytest.approx(5e-5)
    assert a.max_rel == pytest.approx(1e-4)  # 5e-5 / 0.5
    assert a.error == pytest.approx(5e-5)  # |values| ≤ 1: absolute
    assert b.max_abs == pytest.approx(2e-3, rel=1e-3)
    assert b.error == pytest.approx(2e-5, rel=1e-3)  # scaled by max |ref| = 100
    assert parity.ok and parity.worst is a
    bad = compare({"a": np.array([0.5 + 2e-4, -0.25])}, {"a": ref["a"]}, "float32")
    assert not bad.ok and [e.name for e in bad.failures()] == ["a"]
    nan = compare({"a": np.array([np.nan, -0.25])}, {"a": ref["a"]}, "float32")
    assert not nan.ok
    shape = compare({"a": np.zeros(3)}, {"a": ref["a"]}, "float32")
    assert not shape.ok and not shape.layers[0].shape_ok
    assert compare(got, ref, "float16").tolerance == 1e-2
