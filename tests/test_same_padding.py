"""padding: same as TensorFlow/Keras define it, odd totals included (the extra row and column
after), for convolutions and pools, against NumPy transcriptions of TensorFlow's documented rule;
and the compiled module, its ONNX export and ONNX Runtime computing the same."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import archspec


def tf_pads(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's 'SAME' (tf.nn.convolution docs): out = ⌈n/s⌉, before = ⌊total/2⌋."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def tf_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, s: int, d: int) -> np.ndarray:
    """Cross-correlation over a 'SAME'-padded input, one output position at a time."""
    h, wd = x.shape[2:]
    k = w.shape[-1]
    (top, bottom), (left, right) = tf_pads(h, k, s, d), tf_pads(wd, k, s, d)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh, ow = math.ceil(h / s), math.ceil(wd / s)
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[
                :, :, i * s : i * s + (k - 1) * d + 1 : d, j * s : j * s + (k - 1) * d + 1 : d
            ]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w) + b
    return out


def tf_pool(x: np.ndarray, k: int, s: int, method: str) -> np.ndarray:
    """tf.nn.max_pool / avg_pool with 'SAME': padding never wins a max, never counts in a mean."""
    _, _, h, w = x.shape
    (top, _), (left, _) = tf_pads(h, k, s), tf_pads(w, k, s)
    oh, ow = math.ceil(h / s), math.ceil(w / s)
    out = np.zeros((*x.shape[:2], oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = max(i * s - top, 0), max(j * s - left, 0)
            r1, c1 = min(i * s - top + k, h), min(j * s - left + k, w)
            window = x[:, :, r0:r1, c0:c1]
            out[:, :, i, j] = (
                window.max(axis=(2, 3)) if method == "max" else window.mean(axis=(2, 3))
            )
    return out


def spec(size: tuple[int, int], layer: str) -> str:
    return (
        f"archspec: 1\nname: t\ninput: {{shape: [2, {size[0]}, {size[1]}]}}\n"
        f"layers:\n  - {{name: l, {layer}}}\n"
    )


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 13),
    w=st.integers(1, 13),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    d=st.integers(1, 2),
)
def test_conv_same_is_tensorflows(h: int, w: int, k: int, s: int, d: int) -> None:
    text = spec(
        (h, w),
        f"type: conv2d, out_channels: 3, kernel: {k}, stride: {s}, dilation: {d}, padding: same",
    )
    (row,) = archspec.analyze(archspec.loads(text)).rows
    assert row.output == (3, math.ceil(h / s), math.ceil(w / s))
    module = archspec.compile(archspec.loads(text)).double().eval()
    conv = dict(module.named_modules())["l"]
    x = np.random.default_rng(h * 31 + w).standard_normal((2, 2, h, w))
    want = tf_conv(x, conv.weight.detach().numpy(), conv.bias.detach().numpy(), s, d)
    got = module(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 13),
    w=st.integers(1, 13),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    method=st.sampled_from(["max", "avg"]),
)
def test_pool_same_is_tensorflows(h: int, w: int, k: int, s: int, method: str) -> None:
    text = spec((h, w), f"type: {method}pool2d, kernel: {k}, stride: {s}, padding: same")
    (row,) = archspec.analyze(archspec.loads(text)).rows
    assert row.output == (2, math.ceil(h / s), math.ceil(w / s))
    module = archspec.compile(archspec.loads(text)).double().eval()
    x = np.random.default_rng(h * 17 + w).standard_normal((2, 2, h, w))
    got = module(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, tf_pool(x, k, s, method), rtol=1e-10, atol=1e-10)


ODD = """\
archspec: 1
name: same-odd
input: {shape: [3, 10, 9]}
layers:
  - {name: c, type: conv2d, out_channels: 4, kernel: 4, stride: 2, padding: same, activation: relu}
  - {name: m, type: maxpool2d, kernel: 2, stride: 2, padding: same}
  - {name: a, type: avgpool2d, kernel: 2, stride: 2, padding: same}
"""


def test_uneven_same_exports_and_runs_on_onnx_runtime_as_pytorch(tmp_path: Path) -> None:
    analysis = archspec.analyze(archspec.loads(ODD))
    # 10×9 by a 4-wide window, stride 2: totals 2 and 3 (odd: the extra column on the right)
    assert [r.output for r in analysis.rows] == [(4, 5, 5), (4, 3, 3), (4, 2, 2)]
    path = tmp_path / "s.yaml"
    path.write_text(ODD, encoding="utf-8")
    onnx_path = tmp_path / "s.onnx"
    cli = [sys.executable, "-m", "archspec.cli.main"]
    proc = subprocess.run(
        [*cli, "export", str(path), "-o", str(onnx_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [
            *cli,
            "run",
            str(onnx_path),
            "--spec",
            str(path),
            "--batch",
            "2",
            "--provider",
            "cpu",
            "--verify",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify: ok" in proc.stdout


def test_generated_source_has_the_padded_modules(tmp_path: Path) -> None:
    source = archspec.codegen(archspec.loads(ODD))
    assert "class PaddedConv2d(nn.Conv2d):" in source and "class PaddedMaxPool2d" in source
    namespace: dict[str, object] = {"__name__": "gen"}
    exec(compile(source, "gen.py", "exec"), namespace)
    model = namespace["SameOdd"]()  # type: ignore[operator]
    compiled = archspec.compile(archspec.loads(ODD)).eval()
    model.load_state_dict(compiled.state_dict())
    x = torch.randn(2, 3, 10, 9)
    torch.testing.assert_close(model.eval()(x), compiled(x))
