"""The native ONNX emitter, proven against the independent path (PyTorch and ``--via torch``).

For every shipped spec, every layer kind (and every activation shorthand) and
random specs from tests/fuzz_strategies.py, the native model

* passes ``onnx.checker`` (full check) and ONNX shape inference equals the
  calculator at every named layer value (export_native refuses otherwise), and
* computes on ONNX Runtime what PyTorch computes with the same weights (the compiled
  module given the native model's own initializers by state_dict name,
  module_from_model): each layer by itself (PyTorch's layer on ONNX Runtime's values of
  its inputs) within the bound below, and the whole graph end to end within
  ``run --verify``'s tolerance for the dtype. For the shipped specs (and, in the long profile, one random
  spec in ten) the module is also exported with ``--via torch`` and the two ONNX
  models are compared on ONNX Runtime, layer by layer (end to end: ``run --verify``'s
  tolerance).

The error is ``max|native − ref| / max(1, max|ref|)``; the bound is :data:`FP32_BOUND`
in float32 and :data:`FP16_BOUND` in float16 (a float16 model against float32
arithmetic on the same float16-rounded weights and input).

``ARCHSPEC_FUZZ_EXAMPLES`` with ``--hypothesis-profile=long`` sets the random count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from fuzz_strategies import GeneratedSpec, specs
from hypothesis import assume, example, given, settings

import archspec
from archspec.analysis import analyze
from archspec.onnx.names import with_outputs
from archspec.onnx.native import export_native
from archspec.runtime.prepare import module_from_model
from archspec.vocab import DTYPES

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "specs").glob("*.yaml"))
FP32_BOUND = 1e-5
FP16_BOUND = 1e-2
N = settings().max_examples
TORCH_REFUSED: list[str] = []
TORCH_COMPARED: list[str] = []  # specs whose --via torch model was compared, layer by layer
ILL_CONDITIONED: list[
    str
] = []  # random specs whose float32 rounding exceeds the tolerance end to end  # specs torch.onnx could not export (compared with PyTorch only)


def _ort_layers(model: onnx.ModelProto, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        with_outputs(model, names), options, providers=["CPUExecutionProvider"]
    )
    return dict(zip(names, session.run(names, {"input": x}), strict=True))


def _error(got: np.ndarray, ref: np.ndarray) -> float:
    got64, ref64 = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got64.shape == ref64.shape
    if got64.size == 0:
        return 0.0
    # where both overflow alike (inf and inf, NaN and NaN) they agree; elsewhere both finite
    same = (got64 == ref64) | (np.isnan(got64) & np.isnan(ref64))
    finite = np.isfinite(got64) & np.isfinite(ref64)
    assert np.all(finite | same), (
        f"non-finite values differ: {got64.ravel()[:4]} vs {ref64.ravel()[:4]}"
    )
    if not finite.any():
        return 0.0
    got64, ref64 = got64[finite], ref64[finite]
    return float(np.max(np.abs(got64 - ref64)) / max(1.0, float(np.max(np.abs(ref64)))))


def _torch_layers(module: object, x: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    with torch.inference_mode():
        xt = torch.from_numpy(x)
        if xt.dtype == torch.float16:
            xt = xt.float()
        outs = module.forward_layers(xt)  # type: ignore[attr-defined]
    return {k: v.numpy() for k, v in outs.items()}


def _torch_isolated(
    module: object, got: dict[str, np.ndarray], x: np.ndarray
) -> dict[str, np.ndarray]:
    """Each layer of the PyTorch module run on ONNX Runtime's values of its inputs."""
    import torch

    from archspec.torch.modules import ACTIVATIONS as TORCH_ACTIVATIONS

    def tensor(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.float() if t.dtype == torch.float16 else t

    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for name, srcs, activation in module.plan:  # type: ignore[attr-defined]
            ins = [tensor(x if s == "input" else got[s]) for s in srcs]
            y = module._layer(name)(*ins)  # type: ignore[attr-defined]
            if activation:
                y = TORCH_ACTIVATIONS[activation](y)
            out[name] = y.numpy()
    return out


def _differential(
    spec: archspec.Spec,
    tmp: Path,
    *,
    fp16: bool = False,
    via_torch: bool = False,
    end_to_end: bool = True,
) -> float:
    """Export natively; compare ORT's every layer with PyTorch's on the same weights
    (and with the --via torch model's on ORT); return the worst error."""
    analysis = analyze(spec)
    result = export_native(spec, tmp / "native.onnx", analysis=analysis, fp16=fp16, keep_model=True)
    model = result.model
    assert model is not None
    onnx.checker.check_model(os.fspath(result.path), full_check=True)
    names = list(result.value_names)
    assert [n.name for n in model.graph.node if n.name in names] == [
        n for n in names if any(node.name == n for node in model.graph.node)
    ]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *analysis.input_shape)).astype(result.dtype)
    got = _ort_layers(model, names, x)
    module = module_from_model(spec, model, analysis)
    bound = FP16_BOUND if fp16 else FP32_BOUND
    # Each layer by itself: PyTorch's layer on ONNX Runtime's values of its inputs, so a
    # layer is judged by what it computes, not by rounding its ill-conditioned inputs
    # carry in (two RBFs then a softmax turn 1e-7 relative into 3e-5 absolute).
    alone = _torch_isolated(module, got, x)
    worst = 0.0
    for name in names:
        err = _error(got[name], alone[name])
        assert err <= bound, (
            f"{spec.name}: layer {name}: native vs PyTorch error {err:.3g} > {bound}"
        )
        worst = max(worst, err)
    # The whole graph end to end: within run --verify's tolerance for the dtype. Random
    # specs chain ill-conditioned layers (distances of 1e6 into a softmax), where float32
    # rounding alone exceeds any fixed bound: there it is counted, not asserted.
    ref = _torch_layers(module, x)
    tolerance = DTYPES[result.dtype].tolerance
    whole = max(_error(got[name], ref[name]) for name in names)
    if end_to_end:
        assert whole <= tolerance, f"{spec.name}: end-to-end error {whole:.3g}"
    elif whole > tolerance:
        ILL_CONDITIONED.append(spec.name)
        return worst  # --via torch would differ from both by rounding alone
    if via_torch:
        from archspec.onnx.export import ExportError, export_spec

        try:
            torch_result = export_spec(
                spec,
                tmp / "torch.onnx",
                module=module,
                analysis=analysis,
                fp16=fp16,
                keep_model=True,
            )
        except ExportError:
            # torch.onnx cannot express some layers (an adaptive max pool whose windows do
            # not divide): PyTorch itself, compared above, stays the reference there
            TORCH_REFUSED.append(spec.name)
            return worst
        assert torch_result.model is not None
        other = _ort_layers(torch_result.model, names, x)
        for name in names:
            err = _error(got[name], other[name])
            assert err <= DTYPES[result.dtype].tolerance, (
                f"{spec.name}: layer {name}: native vs --via torch error {err:.3g} > {bound}"
            )
            worst = max(worst, err)
        TORCH_COMPARED.append(spec.name)
    return worst


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_spec_native_equals_torch(path: Path, tmp_path: Path) -> None:
    spec = archspec.load(path)
    _differential(spec, tmp_path, via_torch=True)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_spec_native_fp16(path: Path, tmp_path: Path) -> None:
    _differential(archspec.load(path), tmp_path, fp16=True)


# One small spec per kind the fuzz strategies do not generate, and every activation.
_MAPS = {"shape": [4, 9, 9]}
KIND_CASES: dict[str, tuple[dict, list[dict]]] = {
    "batchnorm2d": (_MAPS, [{"name": "bn", "type": "batchnorm2d"}]),
    "batchnorm2d-batch-stats": (
        _MAPS,
        [{"name": "bn", "type": "batchnorm2d", "track_running_stats": False, "affine": False}],
    ),
    "batchnorm1d-CL": ({"shape": [3, 7]}, [{"name": "bn", "type": "batchnorm1d"}]),
    "batchnorm1d-flat": ({"shape": [5]}, [{"name": "bn", "type": "batchnorm1d"}]),
    "channel_shuffle": (_MAPS, [{"name": "cs", "type": "channel_shuffle", "groups": 2}]),
    "mul-broadcast": (
        _MAPS,
        [
            {"name": "gate", "type": "adaptive_avgpool2d", "output_size": 1},
            {"name": "m", "type": "mul", "inputs": ["input", "gate"]},
        ],
    ),
    "lrn-even": (_MAPS, [{"name": "n", "type": "lrn", "size": 4, "alpha": 0.5, "k": 2.0}]),
    "lrn-odd": (_MAPS, [{"name": "n", "type": "lrn", "size": 3, "alpha": 0.5}]),
    "lrn_tf": (_MAPS, [{"name": "n", "type": "lrn_tf", "depth_radius": 2, "alpha": 0.1}]),
    "adaptive_maxpool2d-uneven": (
        {"shape": [2, 10, 7]},
        [{"name": "p", "type": "adaptive_maxpool2d", "output_size": [3, 4]}],
    ),
    "adaptive_avgpool2d-uneven": (
        {"shape": [2, 10, 7]},
        [{"name": "p", "type": "adaptive_avgpool2d", "output_size": [4, 3]}],
    ),
    "conv-same-stride": (
        _MAPS,
        [
            {
                "name": "c",
                "type": "conv2d",
                "out_channels": 3,
                "kernel": 4,
                "stride": 2,
                "padding": "same",
            }
        ],
    ),
    "maxpool-same-uneven": (
        _MAPS,
        [{"name": "p", "type": "maxpool2d", "kernel": 2, "stride": 2, "padding": "same"}],
    ),
    "avgpool-same-uneven": (
        _MAPS,
        [{"name": "p", "type": "avgpool2d", "kernel": 2, "stride": 2, "padding": "same"}],
    ),
    "softmax-axis0": (_MAPS, [{"name": "s", "type": "softmax", "axis": 0}]),
    "leaky_relu": (_MAPS, [{"name": "a", "type": "leaky_relu", "slope": 0.2}]),
    "hardtanh": (_MAPS, [{"name": "a", "type": "hardtanh", "min": -0.5, "max": 2.0}]),
    "gelu-tanh": (_MAPS, [{"name": "a", "type": "gelu", "approximate": "tanh"}]),
    "linear-rank3-nobias": (
        _MAPS,
        [{"name": "l", "type": "linear", "out_features": 5, "bias": False}],
    ),
    "rbf-trainable": (
        {"shape": [6]},
        [{"name": "r", "type": "rbf", "out_features": 3, "trainable": True}],
    ),
}
from archspec.vocab import ACTIVATIONS  # noqa: E402

for _act in ACTIVATIONS:
    KIND_CASES[f"activation-{_act}"] = (
        _MAPS,
        [{"name": "c", "type": "conv2d", "out_channels": 3, "kernel": 3, "activation": _act}],
    )
    KIND_CASES[f"layer-{_act}"] = (_MAPS, [{"name": "a", "type": _act}])


@pytest.mark.parametrize("case", sorted(KIND_CASES))
def test_every_kind_native_equals_torch(case: str, tmp_path: Path) -> None:
    shape, layers = KIND_CASES[case]
    text = json.dumps({"archspec": 1, "name": "k", "input": shape, "layers": layers})
    _differential(archspec.loads(text, "<case>"), tmp_path, via_torch=True)


@pytest.mark.parametrize("opset", [17, 20])
def test_gelu_both_forms(opset: int, tmp_path: Path) -> None:
    text = json.dumps(
        {"archspec": 1, "name": "g", "input": _MAPS, "layers": [{"name": "a", "type": "gelu"}]}
    )
    spec = archspec.loads(text, "<gelu>")
    result = export_native(spec, tmp_path / "g.onnx", opset=opset, keep_model=True)
    assert result.model is not None
    ops = {n.op_type for n in result.model.graph.node}
    assert ("Gelu" in ops) == (opset >= 20)


FUZZ_COUNTS: dict[str, int] = {"specs": 0, "via_torch": 0}


# Found by the 1,000-spec run: ONNX Runtime's LRN refuses β = 0 (and α = 0), which PyTorch
# computes (x / k⁰ = x): such an LRN is emitted as its formula.
LRN_BETA_0 = GeneratedSpec(
    data={
        "archspec": 1,
        "name": "A",
        "input": {"shape": [1, 1, 1]},
        "layers": [{"name": "l0", "type": "lrn", "beta": 0.0}],
    },
    shapes={"l0": (1, 1, 1)},
    text="archspec: 1\nname: A\ninput: {shape: [1, 1, 1]}\nlayers:\n- {name: l0, type: lrn, beta: 0.0}\n",
    style="flow",
    kinds=["lrn"],
)


# Found by the 1,000-spec run: two RBFs then a softmax amplify float32 rounding (1e-7
# relative) to 3e-5 in the probabilities: why each layer is judged on its own inputs.
RBF_SOFTMAX = GeneratedSpec(
    data={
        "archspec": 1,
        "name": "A",
        "input": {"shape": [15, 1, 1]},
        "layers": [
            {"name": "l0", "type": "relu"},
            {"name": "l1", "type": "relu"},
            {"name": "l2", "type": "flatten"},
            {"name": "l3", "type": "rbf", "out_features": 5},
            {"name": "l4", "type": "rbf", "out_features": 6},
            {"name": "l5", "type": "softmax"},
        ],
    },
    shapes={"l0": (15, 1, 1), "l1": (15, 1, 1), "l2": (15,), "l3": (5,), "l4": (6,), "l5": (6,)},
    text=(
        "archspec: 1\nname: A\ninput: {shape: [15, 1, 1]}\nlayers:\n"
        "- {name: l0, type: relu}\n- {name: l1, type: relu}\n- {name: l2, type: flatten}\n"
        "- {name: l3, type: rbf, out_features: 5}\n- {name: l4, type: rbf, out_features: 6}\n"
        "- {name: l5, type: softmax}\n"
    ),
    style="flow",
    kinds=["relu", "relu", "flatten", "rbf", "rbf", "softmax"],
)


@settings(max_examples=N)
@given(gen=specs(dtypes=("float32",)))
@example(gen=LRN_BETA_0)
@example(gen=RBF_SOFTMAX)
def test_random_specs_native_equals_torch(
    gen: GeneratedSpec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spec = archspec.loads(gen.text, "<fuzz>")
    import torch

    with torch.no_grad():
        values = archspec.compile(spec).eval().forward_layers(torch.randn(2, *spec.input.shape))
    # A max-pool window over padding alone gives −inf in PyTorch but −FLT_MAX in ONNX Runtime,
    # and what follows differs as well (±inf or NaN against finite values): such a spec computes
    # nothing from its input there, so it is not compared (found by the random specs).
    assume(all(bool(torch.isfinite(v).all()) for v in values.values()))
    FUZZ_COUNTS["specs"] += 1
    via_torch = FUZZ_COUNTS["specs"] % 10 == 1  # the first, then one in ten
    FUZZ_COUNTS["via_torch"] += via_torch
    _differential(spec, tmp_path_factory.mktemp("fuzz"), via_torch=via_torch, end_to_end=False)
    FUZZ_COUNTS["passed"] = FUZZ_COUNTS.get("passed", 0) + 1
    if os.environ.get("ARCHSPEC_NATIVE_COUNTS"):  # the figures docs/onnx.md quotes
        Path(os.environ["ARCHSPEC_NATIVE_COUNTS"]).write_text(
            json.dumps(
                {
                    **FUZZ_COUNTS,
                    "torch_compared": len(TORCH_COMPARED),
                    "torch_refused": len(TORCH_REFUSED),
                    "ill_conditioned": len(ILL_CONDITIONED),
                }
            )
        )


@settings(max_examples=max(N // 3, 5))
@given(gen=specs(dtypes=("float64",)))
def test_random_float64_specs_export(
    gen: GeneratedSpec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """float64: checker and shape inference (inside export_native); ONNX Runtime's CPU
    provider has no float64 Conv, so the values are compared in the float32 property."""
    spec = archspec.loads(gen.text, "<fuzz>")
    result = export_native(spec, tmp_path_factory.mktemp("f64") / "m.onnx")
    assert result.dtype == "float64"


def test_native_export_imports_no_torch(tmp_path: Path) -> None:
    """The native path, CLI included, never imports torch (a venv without it exports)."""
    code = (
        "import sys\n"
        "from archspec.cli.main import main\n"
        f"rc = main(['export', {str(SHIPPED[0])!r}, '-o', {str(tmp_path / 'm.onnx')!r}])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------------------
# Weights files: loaded by state_dict name, every unusable file a located error, exit 2.

LENET = ROOT / "specs" / "lenet5-lecun1998.yaml"


def _lenet_state(tmp: Path) -> dict[str, np.ndarray]:
    result = export_native(archspec.load(LENET), tmp / "seed.onnx", seed=3, keep_model=True)
    assert result.model is not None
    return {
        t.name: onnx.numpy_helper.to_array(t)
        for t in result.model.graph.initializer
        if "." in t.name
    }


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archspec", *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.parametrize("fp16", [False, True])
def test_weights_safetensors_load_by_name(tmp_path: Path, fp16: bool) -> None:
    from safetensors.numpy import save_file

    state = _lenet_state(tmp_path)
    stored = {k: v.astype(np.float16 if fp16 else np.float32) for k, v in state.items()}
    save_file(stored, os.fspath(tmp_path / "w.safetensors"))
    out = tmp_path / "m.onnx"
    run = _cli("export", str(LENET), "-o", str(out), "--weights", str(tmp_path / "w.safetensors"))
    assert run.returncode == 0, run.stderr
    model = onnx.load(os.fspath(out))
    got = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for key, value in stored.items():
        np.testing.assert_array_equal(got[key], value.astype(np.float32))


def test_weights_pt_from_compile_fits_native(tmp_path: Path) -> None:
    """A state_dict saved by `archspec compile -o w.pt` exports natively, and the model
    equals the compiled module (seed 0) on ONNX Runtime."""
    weights = tmp_path / "w.pt"
    assert _cli("compile", str(LENET), "-o", str(weights)).returncode == 0
    out = tmp_path / "m.onnx"
    run = _cli("export", str(LENET), "-o", str(out), "--weights", str(weights))
    assert run.returncode == 0, run.stderr
    module = archspec.compile(archspec.load(LENET), seed=0)
    model = onnx.load(os.fspath(out))
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    got = _ort_layers(model, ["OUTPUT"], x)["OUTPUT"]
    assert _error(got, _torch_layers(module, x)["OUTPUT"]) <= FP32_BOUND


def _corrupt(kind: str, tmp: Path) -> Path:
    from safetensors.numpy import save_file

    state = _lenet_state(tmp)
    path = tmp / f"{kind}.safetensors"
    if kind == "missing":
        del state["F6.weight"]
    elif kind == "shape":
        state["F6.weight"] = state["F6.weight"][:, :-1].copy()
    elif kind == "dtype":
        state["F6.weight"] = state["F6.weight"].astype(np.int32)
    elif kind == "extra":
        state["F7.weight"] = np.zeros(3, np.float32)
    save_file(state, os.fspath(path))
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 1000])
    return path


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("missing", "tensor 'F6.weight' (layer F6) is missing"),
        ("shape", "tensor 'F6.weight' has shape [84, 119], layer F6 needs [84, 120]"),
        ("dtype", "tensor 'F6.weight' holds int32"),
        ("extra", "tensor 'F7.weight' belongs to no layer"),
        ("truncated", "truncated"),
    ],
)
def test_unusable_weights_are_a_located_error(tmp_path: Path, kind: str, says: str) -> None:
    weights = _corrupt(kind, tmp_path)
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    run = _cli("export", str(LENET), "-o", str(out), "--weights", str(weights))
    assert run.returncode == 2, run.stderr
    assert says in run.stderr and str(weights) in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert list(out.parent.iterdir()) == []  # no partial file


# ---------------------------------------------------------------------------
# Over 2 GiB of weights: ONNX external data (opt-in: ~2.2 GB on disk, ~5 GB of memory).


@pytest.mark.skipif(
    not os.environ.get("ARCHSPEC_BIG_TESTS"), reason="set ARCHSPEC_BIG_TESTS=1 (2.2 GB model)"
)
def test_over_2gib_uses_external_data(tmp_path: Path) -> None:
    text = json.dumps(
        {
            "archspec": 1,
            "name": "wide",
            "input": {"shape": [32768]},
            "layers": [{"name": "fc", "type": "linear", "out_features": 16400}],
        }
    )
    spec = archspec.loads(text, "<wide>")
    result = export_native(spec, tmp_path / "wide.onnx")
    data = tmp_path / "wide.onnx.data"
    assert data.stat().st_size > 2**31 and result.size_bytes < 2**20
    session = ort.InferenceSession(os.fspath(result.path), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 32768), np.float32)
    x[0, 5] = 1.0
    (y,) = session.run(["fc"], {"input": x})
    model = onnx.load(os.fspath(result.path))
    weight = next(t for t in model.graph.initializer if t.name == "fc.weight")
    bias = next(t for t in model.graph.initializer if t.name == "fc.bias")
    w, b = onnx.numpy_helper.to_array(weight), onnx.numpy_helper.to_array(bias)
    np.testing.assert_allclose(y[0], w[:, 5] + b, rtol=1e-6)
