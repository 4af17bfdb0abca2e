"""Differential fuzzing: the calculator against PyTorch (and ONNX) on random valid specs.

For every generated spec (chains and small DAGs of every layer kind, written
as YAML or JSON text and loaded with ``archspec.loads``):

* archspec's calculator gives each layer the shape predicted independently
  by PyTorch's size rules (tests/fuzz_strategies.py), and its ``expect:``
  checks pass;
* the compiled module's ``forward_layers`` on a batch of 2 produces exactly
  those shapes, and each layer's parameter / buffer counts equal the numel of
  its submodule's parameters / buffers; convolution and linear MACs equal
  half of ``torch.utils.flop_counter``'s FLOPs per sample;
* (more examples) every layer's ``mult_adds_torchinfo`` and the total equal
  what ``torchinfo.summary`` reports for the compiled module;
* (fewer examples) the ONNX export's own shape inference, and ONNX Runtime's
  actual outputs for every layer, agree with the calculator and with PyTorch.

A second property fuzzes one windowed layer with arguments that may not fit
its input: the calculator must refuse exactly what PyTorch refuses.

Example counts scale with the Hypothesis profile (tests/conftest.py):
``--hypothesis-profile=long`` runs 5,000 specs (ARCHSPEC_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchinfo
from fuzz_strategies import (
    GeneratedSpec,
    WindowCase,
    specs,
    torch_window_module,
    window_cases,
)
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import archspec
from archspec.analysis import analyze
from archspec.diagnose import verify
from archspec.spec.diagnostics import Kind, Severity, SpecError

N = settings().max_examples
BATCH = 2

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _events(gen: GeneratedSpec) -> None:
    """Tallies shown by --hypothesis-show-statistics: what the generated specs contain."""
    for kind in sorted(set(gen.kinds)):
        event(f"kind {kind}")
    event(f"style {gen.style}")
    dag = any("inputs" in layer for layer in gen.data["layers"])
    event(f"{'DAG' if dag else 'chain'}, {'≤4' if len(gen.kinds) <= 4 else '5+'} layers")


def _check_against_torch(gen: GeneratedSpec) -> None:
    _events(gen)
    spec = archspec.loads(gen.text, "<fuzz>")
    analysis = analyze(spec)
    rows = {r.name: r for r in analysis.rows}
    assert {n: r.output for n, r in rows.items()} == gen.shapes
    failed = [d.render() for d in verify(analysis) if d.severity is Severity.ERROR]
    assert failed == []

    module = archspec.compile(spec, seed=0)
    dtype = DTYPES[spec.input.dtype]
    x = torch.randn(BATCH, *spec.input.shape, dtype=dtype)
    with torch.no_grad():
        outs = module.forward_layers(x)
        final = module(x)
    assert list(outs) == [r.name for r in analysis.rows]
    torch.testing.assert_close(final, outs[analysis.graph.output], rtol=0, atol=0)

    values = {"input": x, **outs}
    for row in analysis.rows:
        out = outs[row.name]
        assert tuple(out.shape) == (BATCH, *row.output), row.name
        assert out.dtype == dtype
        assert row.output_bytes * BATCH == out.numel() * out.element_size(), row.name
        sub = module.get_submodule(row.name)
        assert row.params == sum(p.numel() for p in sub.parameters()), row.name
        assert row.buffers == sum(b.numel() for b in sub.buffers()), row.name
        layer = analysis.graph.layers[row.name]
        if row.type == "linear" or (row.type == "conv2d" and layer.input_maps is None):
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                sub(*(values[s] for s in row.inputs))
            assert counter.get_total_flops() == 2 * row.macs * BATCH, row.name
    assert analysis.totals.params == sum(p.numel() for p in module.parameters())
    assert analysis.totals.buffers == sum(b.numel() for b in module.buffers())


@settings(max_examples=N)
@given(gen=specs())
def test_calculator_matches_pytorch(gen: GeneratedSpec) -> None:
    _check_against_torch(gen)


# torchinfo is cheap next to compiling (no ONNX), so this property runs more examples.
@settings(max_examples=10 * N)
@given(gen=specs())
def test_mult_adds_torchinfo_matches_torchinfo(gen: GeneratedSpec) -> None:
    """The kinds' static `mult_adds_torchinfo` is torchinfo's figure, per layer and in total."""
    spec = archspec.loads(gen.text, "<fuzz>")
    analysis = analyze(spec)
    module = archspec.compile(spec, seed=0)
    stats = torchinfo.summary(
        module,
        input_size=(1, *spec.input.shape),
        dtypes=[DTYPES[spec.input.dtype]],
        device="cpu",
        verbose=0,
    )
    per_layer = {info.var_name: info.macs for info in stats.summary_list if info.depth == 1}
    assert per_layer == {row.name: row.mult_adds_torchinfo for row in analysis.rows}
    assert stats.total_mult_adds == analysis.totals.mult_adds_torchinfo


# Minimal examples of failures the fuzzer found, kept as plain regression tests.


def test_json_exponent_floats_load() -> None:
    """JSON writes 1e-05 without a dot; PyYAML's YAML 1.1 read it as a string (schema error)."""
    text = (
        '{"archspec": 1, "name": "n", "input": {"shape": [2, 3, 3]},'
        ' "layers": [{"name": "a", "type": "lrn", "alpha": 1e-05, "k": 2E0},'
        ' {"name": "b", "type": "dropout", "p": 5e-1}]}'
    )
    spec = archspec.loads(text)
    assert spec.layers[0].alpha == 1e-05
    assert spec.layers[0].k == 2.0
    assert spec.layers[1].p == 0.5


def test_yaml_exponent_floats_load_and_words_stay_strings() -> None:
    text = (
        "archspec: 1\nname: n\ntitle: e5\ninput: {shape: [2, 3, 3]}\n"
        "layers:\n  - {name: a, type: lrn, alpha: 1e-4, beta: .5e0, k: +1.5E+1}\n"
    )
    spec = archspec.loads(text)
    assert (spec.layers[0].alpha, spec.layers[0].beta, spec.layers[0].k) == (1e-4, 0.5, 15.0)
    assert spec.title == "e5"


def test_json_surrogate_escape_is_a_located_error() -> None:
    """json.dumps writes 𐀀 as a surrogate pair; YAML has no such escape: one located error."""
    text = '{"archspec": 1, "name": "n", "title": "\\ud800\\udc00"}'
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "s.json")
    # archspec's part of the line (file, position, kind); the rest is PyYAML's own words.
    (line,) = [d.render() for d in info.value.diagnostics]
    assert line.startswith("s.json:1:42: error: invalid YAML: ")


def test_control_character_error_is_located() -> None:
    """A raw DEL (which JSON allows) used to give an unlocated error quoting a byte offset."""
    text = 'archspec: 1\nname: n\ntitle: "caf\u00e9 \x7f"\n'
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "s.yaml")
    (line,) = [d.render() for d in info.value.diagnostics]
    assert line.startswith("s.yaml:3:14: error: invalid YAML: ")
    assert line.endswith(" (U+007F)")  # archspec names the character PyYAML saw


def test_maxpool_padding_is_bounded_by_the_kernel_not_the_dilated_window() -> None:
    """PyTorch refuses padding 2 for kernel 3 even with dilation 2; the calculator accepted it."""
    text = (
        "archspec: 1\nname: n\ninput: {shape: [1, 1, 1]}\nlayers:\n"
        "  - {name: p, type: maxpool2d, kernel: [1, 3], padding: [0, 2], dilation: 2, ceil_mode: true}\n"
    )
    with pytest.raises(SpecError, match="more than half the 3-wide window"):
        analyze(archspec.loads(text))
    module = torch.nn.MaxPool2d((1, 3), padding=(0, 2), dilation=2, ceil_mode=True)
    with pytest.raises(RuntimeError):  # PyTorch refuses it too (its wording is its own)
        module(torch.zeros(1, 1, 1, 1))


def test_ceil_mode_window_wider_than_its_input() -> None:
    """With ceil_mode PyTorch pools a 1×1 map with a 2×2 window; the calculator refused it."""
    text = (
        "archspec: 1\nname: n\ninput: {shape: [2, 1, 3]}\nlayers:\n"
        "  - {name: p, type: maxpool2d, kernel: 2, ceil_mode: true}\n"
        "  - {name: q, type: avgpool2d, kernel: [3, 4], stride: 3, ceil_mode: true}\n"
    )
    spec = archspec.loads(text)
    assert [r.output for r in analyze(spec).rows] == [(2, 1, 2), (2, 1, 1)]
    outs = archspec.compile(spec).forward_layers(torch.zeros(1, 2, 1, 3))
    assert [tuple(t.shape[1:]) for t in outs.values()] == [(2, 1, 2), (2, 1, 1)]


@settings(max_examples=10 * N)
@given(n=st.integers(1, 300), m=st.integers(1, 300))
def test_adaptive_pool_closed_forms_match_the_windows(n: int, m: int) -> None:
    """The O(1) window sums that replaced a loop over the output size (10¹² hung `check`)."""
    from archspec.layers.pool import _adaptive_max, _adaptive_sum

    widths = [-(-((i + 1) * n) // m) - (i * n) // m for i in range(m)]
    assert _adaptive_sum(n, m) == sum(widths)
    assert _adaptive_max(n, m) == max(widths)


def test_adaptive_pool_connections_match_pytorch_windows() -> None:
    """Connections of adaptive pooling = Σ of PyTorch's actual window areas, on an odd size."""
    text = (
        "archspec: 1\nname: n\ninput: {shape: [2, 7, 5]}\nlayers:\n"
        "  - {name: a, type: adaptive_avgpool2d, output_size: [3, 4]}\n"
    )
    (row,) = analyze(archspec.loads(text)).rows
    x = torch.ones(1, 1, 7, 5, requires_grad=True)
    total = 0
    for i in range(3):
        for j in range(4):
            (grad,) = torch.autograd.grad(torch.nn.AdaptiveAvgPool2d((3, 4))(x)[0, 0, i, j], x)
            total += int((grad != 0).sum())
    assert row.connections == 2 * total


# ---------------------------------------------------------------------------
# One windowed layer: the calculator refuses exactly what PyTorch refuses.


def _torch_shape(case: WindowCase) -> tuple[int, ...] | None:
    try:
        module = torch_window_module(case)
        with torch.no_grad():
            out = module(torch.zeros(1, *case.input_shape))
    except (RuntimeError, ValueError):
        return None
    if out.numel() == 0:
        return None
    return tuple(out.shape[1:])


def _calculator_shape(case: WindowCase) -> tuple[int, ...] | None:
    try:
        analysis = analyze(archspec.loads(case.text(), "<window>"))
    except SpecError as exc:
        assert all(d.kind is Kind.INPUT and d.position is not None for d in exc.diagnostics)
        return None
    return analysis.rows[0].output


@settings(max_examples=4 * N)
@given(case=window_cases())
@example(WindowCase((1, 5, 5), {"type": "maxpool2d", "kernel": 2, "padding": 1, "ceil_mode": True}))
@example(WindowCase((1, 1, 1), {"type": "avgpool2d", "kernel": 3, "padding": 1, "stride": 2}))
@example(WindowCase((3, 4, 4), {"type": "conv2d", "out_channels": 2, "kernel": 2, "groups": 2}))
@example(
    WindowCase(
        (2, 4, 4),
        {"type": "conv2d", "out_channels": 2, "kernel": 4, "padding": "same", "dilation": 2},
    )
)
def test_window_layers_refuse_exactly_what_pytorch_refuses(case: WindowCase) -> None:
    assert _calculator_shape(case) == _torch_shape(case)


# ---------------------------------------------------------------------------
# ONNX: shape inference on the export, and ONNX Runtime's actual outputs.

ONNX_EXAMPLES = max(3, N // 10) if N < 1000 else max(100, N // 25)


def _check_against_onnx(gen: GeneratedSpec) -> None:
    import onnx
    import onnxruntime as ort

    from archspec.onnx.export import export_spec

    _events(gen)
    spec = archspec.loads(gen.text, "<fuzz>")
    analysis = analyze(spec)
    module = archspec.compile(spec, seed=0)
    names = [r.name for r in analysis.rows]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_spec(spec, path, module=module)
        model = onnx.load(os.fspath(path))
    onnx.checker.check_model(model, full_check=True)

    # Shape inference from scratch: forget every shape the exporter recorded.
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    for out in bare.graph.output:
        out.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(bare, strict_mode=True)
    table = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    for row in analysis.rows:
        assert row.name in table, f"layer {row.name} has no ONNX value"
        dims = table[row.name].type.tensor_type.shape.dim
        assert [d.dim_value for d in dims[1:]] == list(row.output), row.name
        assert not dims[0].HasField("dim_value"), f"{row.name}: batch axis is not symbolic"

    # ONNX Runtime, with every layer's value exposed as an output.
    elem = model.graph.output[0].type.tensor_type.elem_type
    have = {o.name for o in model.graph.output}
    model.graph.output.extend(
        onnx.helper.make_tensor_value_info(n, elem, None) for n in names if n not in have
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = torch.randn(BATCH, *spec.input.shape)
    with torch.no_grad():
        expected = module.forward_layers(x)
    got = session.run(names, {session.get_inputs()[0].name: x.numpy()})
    for name, value in zip(names, got, strict=True):
        row = analysis.row(name)
        assert value.shape == (BATCH, *row.output), name
        want = expected[name].numpy()
        scale = max(1.0, float(np.abs(want).max(initial=0)))
        np.testing.assert_allclose(value, want, rtol=1e-3, atol=1e-4 * scale, err_msg=name)


# Found by the 5,000-spec run: PyTorch (and ONNX Runtime) drop the last ceil_mode
# window of the 26-wide axis, which would start in the right padding (9 columns);
# ONNX shape inference before opset 22 counts it (10). Export now picks opset 22.
CEIL_DROP = GeneratedSpec(
    data={
        "archspec": 1,
        "name": "A",
        "input": {"shape": [1, 26, 26]},
        "layers": [
            {"name": "l0", "type": "maxpool2d", "kernel": 3, "padding": [0, 1], "ceil_mode": True}
        ],
    },
    shapes={"l0": (1, 9, 9)},
    text=(
        "archspec: 1\nname: A\ninput: {shape: [1, 26, 26]}\nlayers:\n"
        "- {name: l0, type: maxpool2d, kernel: 3, padding: [0, 1], ceil_mode: true}\n"
    ),
    style="flow",
    kinds=["maxpool2d"],
)


@settings(max_examples=ONNX_EXAMPLES)
@given(gen=specs(max_layers=5, dtypes=("float32",)))
@example(gen=CEIL_DROP)
def test_onnx_agrees_with_calculator_and_pytorch(gen: GeneratedSpec) -> None:
    _check_against_onnx(gen)
