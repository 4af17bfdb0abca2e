"""The linear-not-flat lint, proved against PyTorch: on a rank > 1 input nn.Linear works per last axis.

A `conv → linear` spec is legal and gives 6×24×10, not the 10 classes that a
forgotten `flatten` was meant to give: the warning says so, and PyTorch agrees
with every figure it names.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from archspec.cli.main import main
from archspec.layers import LAYER_KINDS

SPEC = textwrap.dedent(
    """\
    archspec: 1
    name: forgot-flatten
    input: {shape: [1, 28, 28]}
    layers:
      - {name: conv, type: conv2d, out_channels: 6, kernel: 5}
      - {name: fc, type: linear, out_features: 10}
    """
)


def test_linear_on_rank_above_one_is_per_last_axis_in_pytorch() -> None:
    torch.manual_seed(0)
    conv, fc = torch.nn.Conv2d(1, 6, 5), torch.nn.Linear(24, 10)
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        h = conv(x)
        y = fc(h)
        assert tuple(y.shape[1:]) == (6, 24, 10)  # not (10,): no error, a rank-3 output
        by_hand = torch.stack(
            [h[0, c, r] @ fc.weight.T + fc.bias for c in range(6) for r in range(24)]
        )
        assert torch.allclose(y.reshape(144, 10), by_hand, atol=1e-6)  # 6·24 = 144 rows of 10
        flat = torch.nn.Linear(6 * 24 * 24, 10)(h.flatten(1))
        assert tuple(flat.shape[1:]) == (10,)  # the flatten the hint asks for: 3,456 inputs

    layer = LAYER_KINDS["linear"].model_validate(
        {"name": "fc", "type": "linear", "out_features": 10}
    )
    (finding,) = layer.lint([(6, 24, 24)])
    assert finding.lint == "linear-not-flat"
    assert "last axis (24) of its 6×24×24 input" in finding.message
    assert "144 separate outputs of 10 and gives 6×24×10" in finding.message
    assert finding.hint == "add a flatten layer before it to connect all 3,456 values"
    assert layer.lint([(3456,)]) == []


def test_check_warns_and_strict_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "forgot.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    assert main(["check", str(spec)]) == 0
    err = capsys.readouterr().err
    assert f"{spec}:6:22: warning: layer 'fc': linear reads only the last axis" in err
    assert main(["check", str(spec), "--strict"]) == 1
    capsys.readouterr()
    assert main(["check", str(spec), "--format", "json"]) == 0
    assert '"code": "linear-not-flat"' in capsys.readouterr().out
