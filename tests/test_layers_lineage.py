"""The kinds the LeNet/AlexNet lineage needs (batch norm, adaptive max pooling, broadcasting
multiply, channel shuffle): shapes and counts derived by PyTorch, and the compiled module,
generated source and ONNX export computing what PyTorch computes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import archspec
from archspec.spec import SpecError


def spec(input_shape: list[int], *layers: str) -> str:
    body = "".join(f"  - {layer}\n" for layer in layers)
    return f"archspec: 1\nname: t\ninput: {{shape: {input_shape}}}\nlayers:\n{body}"


def torch_counts(module: torch.nn.Module) -> tuple[int, int]:
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    return params, buffers


@settings(max_examples=40, deadline=None)
@given(
    channels=st.integers(1, 32),
    spatial=st.sampled_from([[], [5], [4, 3]]),
    affine=st.booleans(),
    track=st.booleans(),
)
def test_batchnorm_counts_equal_pytorchs(
    channels: int, spatial: list[int], affine: bool, track: bool
) -> None:
    kind = "batchnorm2d" if len(spatial) == 2 else "batchnorm1d"
    text = spec(
        [channels, *spatial],
        f"{{name: bn, type: {kind}, affine: {str(affine).lower()}, "
        f"track_running_stats: {str(track).lower()}}}",
    )
    analysis = archspec.analyze(archspec.loads(text))
    module = archspec.compile(archspec.loads(text))
    (row,) = analysis.rows
    reference = (torch.nn.BatchNorm2d if kind == "batchnorm2d" else torch.nn.BatchNorm1d)(
        channels, affine=affine, track_running_stats=track
    )
    assert (row.params, row.buffers) == torch_counts(reference) == torch_counts(module)
    assert (row.connections, row.macs) == (0, 0)  # elementwise: see the kind's count rule
    x = torch.randn(3, channels, *spatial)
    assert tuple(module(x).shape[1:]) == row.output == (channels, *spatial)


def test_batchnorm_behaves_like_pytorchs_in_train_and_eval() -> None:
    text = spec([4, 5, 5], "{name: bn, type: batchnorm2d, eps: 0.001, momentum: 0.01}")
    module = archspec.compile(archspec.loads(text))
    reference = torch.nn.BatchNorm2d(4, eps=0.001, momentum=0.01)
    reference.load_state_dict({k.removeprefix("bn."): v for k, v in module.state_dict().items()})
    x = torch.randn(6, 4, 5, 5)
    for train in (True, False):
        module.train(train)
        reference.train(train)
        torch.testing.assert_close(module(x), reference(x))
    assert set(module.state_dict()) == {
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    }


def test_batchnorm_needs_the_right_rank() -> None:
    with pytest.raises(SpecError, match="batchnorm2d needs C×H×W feature maps, got 4"):
        archspec.analyze(archspec.loads(spec([4], "{name: bn, type: batchnorm2d}")))
    with pytest.raises(SpecError, match="batchnorm1d needs C features or C×L sequences"):
        archspec.analyze(archspec.loads(spec([4, 5, 5], "{name: bn, type: batchnorm1d}")))


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), oh=st.integers(1, 8), ow=st.integers(1, 8))
def test_adaptive_maxpool_equals_pytorch(h: int, w: int, oh: int, ow: int) -> None:
    text = spec([3, h, w], f"{{name: p, type: adaptive_maxpool2d, output_size: [{oh}, {ow}]}}")
    (row,) = archspec.analyze(archspec.loads(text)).rows
    module = archspec.compile(archspec.loads(text))
    x = torch.randn(2, 3, h, w)
    torch.testing.assert_close(module(x), torch.nn.AdaptiveMaxPool2d((oh, ow))(x))
    assert row.output == (3, oh, ow)


@pytest.mark.parametrize(
    ("a", "b"), [([4, 5, 5], [4, 1, 1]), ([4, 1, 1], [4, 5, 5]), ([4, 5, 1], [1, 1, 6])]
)
def test_mul_broadcasts_like_pytorch(a: list[int], b: list[int]) -> None:
    text = (
        "archspec: 1\nname: t\ninput: {shape: [4, 5, 5]}\nlayers:\n"
        f"  - {{name: a, type: adaptive_avgpool2d, output_size: [{a[1]}, {a[2]}]}}\n"
        f"  - {{name: pa, type: conv2d, out_channels: {a[0]}, kernel: 1}}\n"
        f"  - {{name: b, type: adaptive_avgpool2d, output_size: [{b[1]}, {b[2]}], inputs: [input]}}\n"
        f"  - {{name: pb, type: conv2d, out_channels: {b[0]}, kernel: 1}}\n"
        "  - {name: m, type: mul, inputs: [pa, pb]}\n"
    )
    analysis = archspec.analyze(archspec.loads(text))
    want = torch.broadcast_shapes(tuple([2, *a]), tuple([2, *b]))[1:]
    assert analysis.output_shape == tuple(want)
    module = archspec.compile(archspec.loads(text))
    assert tuple(module(torch.randn(2, 4, 5, 5)).shape[1:]) == tuple(want)


def test_mul_refuses_what_does_not_broadcast() -> None:
    text = (
        "archspec: 1\nname: t\ninput: {shape: [4, 5, 5]}\nlayers:\n"
        "  - {name: a, type: conv2d, out_channels: 3, kernel: 1}\n"
        "  - {name: m, type: mul, inputs: [a, input]}\n"
    )
    with pytest.raises(SpecError, match="cannot multiply 3×5×5 and 4×5×5: axis 0 is 3 vs 4"):
        archspec.analyze(archspec.loads(text))
    with pytest.raises(RuntimeError):  # PyTorch refuses it too
        torch.randn(1, 3, 5, 5) * torch.randn(1, 4, 5, 5)


def test_channel_shuffle_equals_the_shufflenet_reshape() -> None:
    text = spec([6, 2, 2], "{name: s, type: channel_shuffle, groups: 3}")
    module = archspec.compile(archspec.loads(text))
    x = torch.arange(24.0).reshape(1, 6, 2, 2)
    # ShuffleNet (Zhang et al. 2018): reshape to (g, n), transpose, flatten
    want = x.reshape(1, 3, 2, 2, 2).transpose(1, 2).reshape(1, 6, 2, 2)
    torch.testing.assert_close(module(x), want)
    with pytest.raises(SpecError, match="divisible by groups 4"):
        archspec.analyze(
            archspec.loads(spec([6, 2, 2], "{name: s, type: channel_shuffle, groups: 4}"))
        )


SE_NET = spec(
    [8, 6, 6],
    "{name: conv, type: conv2d, out_channels: 8, kernel: 3, padding: 1, bias: false}",
    "{name: bn, type: batchnorm2d}",
    "{name: relu, type: relu}",
    "{name: squeeze, type: adaptive_avgpool2d, output_size: 1}",
    "{name: excite, type: conv2d, out_channels: 8, kernel: 1, activation: sigmoid}",
    "{name: scale, type: mul, inputs: [relu, excite]}",
    "{name: shuffle, type: channel_shuffle, groups: 2}",
    "{name: pool, type: adaptive_maxpool2d, output_size: [2, 2]}",
    "{name: flat, type: flatten}",
    "{name: bn1, type: batchnorm1d}",
    "{name: fc, type: linear, out_features: 12, activation: relu6}",
    "{name: l, type: leaky_relu, slope: 0.2}",
    "{name: h, type: hardtanh, min: 0, max: 6}",
    "{name: s, type: silu}",
    "{name: hs, type: hardswish}",
    "{name: hg, type: hardsigmoid}",
    "{name: g, type: gelu}",
    "{name: i, type: identity}",
    "{name: out, type: linear, out_features: 5, activation: hardswish}",
)


def test_generated_source_computes_what_the_compiled_module_does(tmp_path: Path) -> None:
    source = archspec.codegen(archspec.loads(SE_NET))
    path = tmp_path / "se.py"
    path.write_text(source, encoding="utf-8")
    namespace: dict[str, object] = {}
    exec(compile(source, str(path), "exec"), namespace)
    compiled = archspec.compile(archspec.loads(SE_NET)).eval()
    # the generated file defines the model's class last, after any custom modules it copies
    classes = [
        v
        for v in namespace.values()
        if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == "builtins"
    ]
    model = classes[-1]()
    model.load_state_dict(compiled.state_dict())
    model.eval()
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(model(x), compiled(x))


def test_export_and_onnx_runtime_agree_with_pytorch(tmp_path: Path) -> None:
    path = tmp_path / "se.yaml"
    path.write_text(SE_NET, encoding="utf-8")
    onnx_path = tmp_path / "se.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "archspec.cli.main", "export", str(path), "-o", str(onnx_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "archspec.cli.main",
            "run",
            str(onnx_path),
            "--spec",
            str(path),
            "--batch",
            "3",
            "--provider",
            "cpu",
            "--verify",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify: ok" in proc.stdout  # within tolerance at every layer, bn included


def tf_lrn(x: np.ndarray, radius: int, bias: float, alpha: float, beta: float) -> np.ndarray:
    """TensorFlow's documented formula for tf.nn.lrn, channels first, in NumPy."""
    out = np.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):
        lo, hi = max(0, c - radius), min(channels, c + radius + 1)
        sqr_sum = (x[:, lo:hi] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (bias + alpha * sqr_sum) ** beta
    return out


@settings(max_examples=25, deadline=None)
@given(
    channels=st.integers(1, 12),
    radius=st.integers(0, 6),
    bias=st.floats(0.5, 3),
    alpha=st.floats(1e-5, 1.0),
    beta=st.floats(0.1, 1.0),
)
def test_tensorflow_lrn_computes_tensorflows_formula(
    channels: int, radius: int, bias: float, alpha: float, beta: float
) -> None:
    text = spec(
        [channels, 3, 3],
        f"{{name: n, type: lrn_tf, depth_radius: {radius}, bias: {bias!r}, alpha: {alpha!r}, "
        f"beta: {beta!r}}}",
    )
    (row,) = archspec.analyze(archspec.loads(text)).rows
    assert row.connections == (2 * radius + 1) * channels * 9
    module = archspec.compile(archspec.loads(text)).double()
    x = np.random.default_rng(0).standard_normal((2, channels, 3, 3))
    got = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, tf_lrn(x, radius, bias, alpha, beta), rtol=1e-10)


def test_mult_adds_torchinfo_of_the_new_kinds_is_torchinfos() -> None:
    torchinfo = pytest.importorskip("torchinfo")
    analysis = archspec.analyze(archspec.loads(SE_NET))
    module = archspec.compile(archspec.loads(SE_NET)).eval()
    summary = torchinfo.summary(module, input_size=(1, 8, 6, 6), verbose=0)
    assert analysis.totals.mult_adds_torchinfo == summary.total_mult_adds


def _numpy_forms() -> dict[str, object]:
    """Each activation's textbook formula in NumPy (math.erf for Φ), independent of PyTorch."""
    import math

    erf = np.vectorize(math.erf)
    relu6 = lambda x: np.minimum(np.maximum(x, 0), 6)  # noqa: E731
    return {
        "relu6": relu6,
        "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
        "hardtanh": lambda x: np.clip(x, -1, 1),
        "silu": lambda x: x / (1 + np.exp(-x)),
        "hardswish": lambda x: x * relu6(x + 3) / 6,
        "hardsigmoid": lambda x: relu6(x + 3) / 6,
        "gelu": lambda x: x * 0.5 * (1 + erf(x / math.sqrt(2))),
        "identity": lambda x: x,
    }


@pytest.mark.parametrize("name", sorted(_numpy_forms()))
def test_new_activations_as_layers_and_shorthand_compute_their_formula(name: str) -> None:
    form = _numpy_forms()[name]
    x = np.linspace(-8, 8, 2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    layer = archspec.compile(archspec.loads(spec([3, 4, 4], f"{{name: a, type: {name}}}"))).double()
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(), form(x), atol=1e-12)
    text = spec(
        [3, 4, 4], f"{{name: c, type: conv2d, out_channels: 3, kernel: 1, activation: {name}}}"
    )
    module = archspec.compile(archspec.loads(text)).double()
    conv = module.c
    pre = conv(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), form(pre), atol=1e-12)


def test_parameterised_activations() -> None:
    x = torch.linspace(-8, 8, 50).reshape(1, 50)
    leaky = archspec.compile(archspec.loads(spec([50], "{name: a, type: leaky_relu, slope: 0.2}")))
    torch.testing.assert_close(leaky(x), torch.where(x >= 0, x, 0.2 * x))
    clip = archspec.compile(archspec.loads(spec([50], "{name: a, type: hardtanh, min: 0, max: 6}")))
    torch.testing.assert_close(clip(x), x.clamp(0, 6))
    with pytest.raises(SpecError, match="hardtanh needs min < max"):
        archspec.analyze(archspec.loads(spec([50], "{name: a, type: hardtanh, min: 1, max: 1}")))


def test_weights_with_batch_norm_counters_travel_through_export_and_verify(tmp_path: Path) -> None:
    """num_batches_tracked is an int64 buffer: a weights file holds it as one, and run --verify
    loads it back (the loader used to demand floating point of every tensor)."""
    path = tmp_path / "se.yaml"
    path.write_text(SE_NET, encoding="utf-8")
    cli = [sys.executable, "-m", "archspec.cli.main"]
    weights, onnx_path = tmp_path / "se.safetensors", tmp_path / "se.onnx"
    for args in (
        ["compile", str(path), "-o", str(weights)],
        ["export", str(path), "--weights", str(weights), "-o", str(onnx_path)],
        [
            "run",
            str(onnx_path),
            "--spec",
            str(path),
            "--weights",
            str(weights),
            "--provider",
            "cpu",
            "--verify",
        ],
    ):
        proc = subprocess.run([*cli, *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    assert "verify: ok" in proc.stdout
