"""The unused-output lint, proved against PyTorch: a layer nobody reads cannot change the output."""

from __future__ import annotations

import textwrap

import torch

import archspec
from archspec.torch.build import compile_spec

SPEC = textwrap.dedent(
    """\
    archspec: 1
    name: side-branch
    input: {shape: [1, 8, 8]}
    layers:
      - {name: conv, type: conv2d, out_channels: 4, kernel: 3}
      - {name: side, type: conv2d, out_channels: 4, kernel: 1}
      - {name: flat, type: flatten, inputs: [conv]}
      - {name: fc, type: linear, out_features: 3}
    """
)


def test_unused_layer_cannot_change_the_output_in_pytorch() -> None:
    spec = archspec.loads(SPEC)
    analysis, diagnostics = archspec.check(spec)
    warnings = [(d.message, d.position) for d in diagnostics if d.code == "unused-output"]
    assert [(m, p.line if p else None) for m, p in warnings] == [
        ("the output of layer 'side' is never used", 6)
    ]

    model = compile_spec(spec, seed=0, analysis=analysis)
    x = torch.randn(2, 1, 8, 8)
    before = model(x)
    side = dict(model.named_modules())["side"]
    with torch.no_grad():  # any weights at all in the unused layer: the output stays the same
        for p in side.parameters():
            p.add_(torch.randn_like(p) * 100)
    assert torch.equal(model(x), before)
    # and the layer is really computed and really reads its input: its own gradient is not zero
    outputs = model.forward_layers(x)
    outputs["side"].sum().backward()
    assert side.weight.grad is not None and side.weight.grad.abs().sum() > 0
