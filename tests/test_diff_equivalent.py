"""archspec diff: two notations of one computation are the same network, marked equivalent.

TensorFlow's LRN (``lrn_tf``) is the ``lrn`` with size 2r + 1 and α·(2r + 1); an
adaptive pool whose input sizes divide its output's is the fixed pool with kernel and
stride n/m. No file format keeps the notation, so export → import turns one into the
other; ``diff`` must then exit 0 and still show the difference (status ``equivalent``,
``≡`` in the table). Each equivalence is derived here independently of archspec: the
two layers, as their specs write them, are computed by their own formulas — TensorFlow's
LRN transcribed in NumPy, PyTorch's own adaptive and fixed pools — on random input and
compared; and a near miss (the α left undivided, a pool whose sizes do not divide) is
shown to compute something else and to be a difference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archspec.diff import diff

CLI = [sys.executable, "-m", "archspec.cli.main"]
SPEC = """\
archspec: 1
name: {name}
input: {{shape: [{shape}]}}
layers:
  - {{name: c, type: conv2d, out_channels: 16, kernel: 3, padding: 1, activation: relu}}
  - {layer}
  - {{name: f, type: flatten}}
"""


def write(tmp_path: Path, name: str, layer: str, shape: str = "3, 12, 12") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, layer=layer, shape=shape))
    return str(path)


def diff_json(a: str, b: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = subprocess.run([*CLI, "diff", a, b, "--format", "json"], capture_output=True, text=True)
    return proc.returncode, json.loads(proc.stdout)


def tf_lrn(x: np.ndarray, radius: int, bias: float, alpha: float, beta: float) -> np.ndarray:
    """tf.nn.local_response_normalization, transcribed from its documentation:
    sqr_sum[c] = Σ_{c − r ≤ j ≤ c + r} x[j]²; out = x / (bias + alpha·sqr_sum)^beta."""
    squares = x.astype(np.float64) ** 2
    channels = x.shape[1]
    total = np.zeros_like(squares)
    for c in range(channels):
        total[:, c] = squares[:, max(0, c - radius) : min(channels, c + radius + 1)].sum(axis=1)
    return x / (bias + alpha * total) ** beta


def test_lrn_tf_and_the_lrn_it_is(tmp_path: Path) -> None:
    radius, bias, alpha, beta = 2, 2.0, 1e-2, 0.75
    x = np.random.default_rng(0).standard_normal((2, 16, 6, 6)).astype(np.float32) * 3
    tf = tf_lrn(x, radius, bias, alpha, beta)
    # PyTorch's LocalResponseNorm (Caffe's convention) with the converted parameters
    size = 2 * radius + 1
    torch_lrn = F.local_response_norm(torch.from_numpy(x), size, alpha * size, beta, bias).numpy()
    assert np.max(np.abs(torch_lrn - tf)) < 1e-5  # the same computation
    a = write(
        tmp_path,
        "tf",
        f"{{name: n, type: lrn_tf, depth_radius: {radius}, bias: {bias}, alpha: {alpha}, "
        f"beta: {beta}}}",
    )
    b = write(
        tmp_path,
        "caffe",
        f"{{name: n, type: lrn, size: {size}, alpha: {float(np.float32(alpha * size))}, "
        f"beta: {beta}, k: {bias}}}",
    )
    code, doc = diff_json(a, b)
    assert code == 0 and doc["same"], doc
    row = doc["layers"][1]
    assert row["status"] == "equivalent"
    assert row["differences"]["kind"] == ["lrn_tf", "lrn"]
    assert row["computes"] == {
        "kind": "lrn",
        "attributes": {"size": 5, "alpha": 0.05, "beta": 0.75, "k": 2.0},
    }
    wide = {**os.environ, "COLUMNS": "250"}  # the table, not one record per layer
    table = subprocess.run([*CLI, "diff", a, b], capture_output=True, text=True, env=wide)
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if line.startswith("│ ≡ │ n "))
    assert "lrn_tf → lrn" in row and "both compute lrn:" in row
    assert table.stdout.rstrip().endswith(
        "the same network (0 of 3 rows differ; 1 equivalent: the same computation in another "
        "notation)"
    )
    # the near miss: Caffe's α taken as TensorFlow's, undivided — another computation
    wrong = F.local_response_norm(torch.from_numpy(x), size, alpha, beta, bias).numpy()
    assert np.max(np.abs(wrong - tf)) > 1e-2
    c = write(
        tmp_path,
        "undivided",
        f"{{name: n, type: lrn, size: {size}, alpha: {alpha}, beta: {beta}, k: {bias}}}",
    )
    code, doc = diff_json(a, c)
    assert code == 1 and doc["layers"][1]["status"] == "differs"


@pytest.mark.parametrize(
    ("adaptive", "fixed"),
    [("adaptive_avgpool2d", "avgpool2d"), ("adaptive_maxpool2d", "maxpool2d")],
)
def test_an_adaptive_pool_and_the_fixed_pool_it_equals(
    tmp_path: Path, adaptive: str, fixed: str
) -> None:
    # 12×12 → 4×4: PyTorch's windows are 3 wide, at 0, 3, 6, 9 — the 3×3/3 pool's
    x = torch.randn(2, 16, 12, 12, generator=torch.Generator().manual_seed(1))
    if adaptive.startswith("adaptive_avg"):
        ours, theirs = F.adaptive_avg_pool2d(x, 4), F.avg_pool2d(x, 3)
        near_miss = F.adaptive_avg_pool2d(x, 5), F.avg_pool2d(x, 4, stride=2)
    else:
        ours, theirs = F.adaptive_max_pool2d(x, 4), F.max_pool2d(x, 3)
        near_miss = F.adaptive_max_pool2d(x, 5), F.max_pool2d(x, 4, stride=2)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-6)  # (summation order aside)
    a = write(tmp_path, "adaptive", f"{{name: p, type: {adaptive}, output_size: [4, 4]}}")
    b = write(tmp_path, "fixed", f"{{name: p, type: {fixed}, kernel: 3}}")
    code, doc = diff_json(a, b)
    assert code == 0 and doc["layers"][1]["status"] == "equivalent", doc
    assert doc["layers"][1]["computes"]["attributes"]["kernel"] == [3, 3]
    assert diff(a, b).same and diff(b, a).same  # either way round
    # 12 → 5 does not divide: PyTorch's windows (3 or 4 wide, uneven starts) are no fixed
    # pool's, though the 4/2 pool has the same 5×5 output
    assert near_miss[0].shape == near_miss[1].shape
    assert not torch.allclose(*near_miss)
    c = write(tmp_path, "adaptive5", f"{{name: p, type: {adaptive}, output_size: 5}}")
    d = write(tmp_path, "fixed5", f"{{name: p, type: {fixed}, kernel: 4, stride: 2}}")
    code, doc = diff_json(c, d)
    assert code == 1 and doc["layers"][1]["status"] == "differs"


def test_the_same_notation_is_same_not_equivalent(tmp_path: Path) -> None:
    """output_size 4 and [4, 4] are one notation (the canonical fields), so: same."""
    a = write(tmp_path, "a", "{name: p, type: adaptive_avgpool2d, output_size: 4}")
    b = write(tmp_path, "b", "{name: p, type: adaptive_avgpool2d, output_size: [4, 4]}")
    code, doc = diff_json(a, b)
    assert code == 0 and {p["status"] for p in doc["layers"]} == {"same"}
