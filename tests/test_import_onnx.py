"""archspec import of ONNX graphs: every shipped spec and random specs round-trip through
export → import with the same figures at every layer; graphs from torch.onnx's TorchScript
exporter and from a hand-written producer import; an op no kind maps is a located error.

The imported spec's ``expect:`` holds what the file states (initializer sizes, inferred
shapes), so ``check`` of it is archspec's calculator verified against the graph.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from fuzz_strategies import GeneratedSpec, specs
from hypothesis import Phase, assume, given, settings
from onnx import TensorProto, helper, numpy_helper

import archspec
from archspec.analysis import analyze
from archspec.diagnose import verify
from archspec.diff import diff
from archspec.importers import import_model, spec_text
from archspec.onnx.export import export_spec
from archspec.onnx.native import export_native
from archspec.spec import SpecError, load, loads

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
N = settings().max_examples
EXAMPLES = max(10, N // 3)  # the "long" profile with ARCHSPEC_FUZZ_EXAMPLES=1500: 500

# What torch.onnx's graph cannot say: it writes a dropout (the identity at inference) as an
# Identity. The native exporter (archspec export's default) writes ONNX's Dropout and its
# ratio, so its files give the dropout back.
TORCH_LOSSES = {("dropout", "identity")}


def figures(spec: archspec.Spec) -> dict[str, tuple[object, ...]]:
    """Each layer's output, params, buffers and MACs (and its activation), by name."""
    return {
        r.name: (r.output, r.params, r.buffers, r.macs, r.activation) for r in analyze(spec).rows
    }


def import_text(path: Path | str, shape: list[int] | None = None) -> str:
    return spec_text(import_model(str(path), shape))


def assert_verifies(text: str) -> None:
    """check's verdict: every expect: the importer wrote holds."""
    analysis = analyze(loads(text, "imported.yaml"))
    errors = [d for d in verify(analysis) if d.severity.value == "error"]
    assert not errors, errors


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_spec_round_trips_through_onnx(spec_path: Path, tmp_path: Path) -> None:
    """spec → archspec export (native) → import: the same figures at every layer, and diff
    exits 0 — every row the same, or equivalent where the notation has no ONNX form
    (alexnet-tflearn's lrn_tf comes back as the lrn it is; torchvision's 6×6 and 7×7
    adaptive pools of 6×6 and 7×7 maps as the 1×1 average pools they are)."""
    spec = load(spec_path)
    export_native(spec, tmp_path / "m.onnx")
    model = import_model(str(tmp_path / "m.onnx"))
    text, flat = spec_text(model), spec_text(model, flat=True)
    assert_verifies(text)
    assert figures(loads(text, "imported.yaml")) == figures(spec)
    # where the spec repeats itself in blocks, so does the import; expanded, it is the flat one
    assert ("blocks:" in text) == ("blocks:" in spec_path.read_text())
    assert [la.model_dump(exclude={"expect"}) for la in loads(text, "x").layers] == [
        la.model_dump(exclude={"expect"}) for la in loads(flat, "x").layers
    ]
    assert_verifies(flat)
    (tmp_path / "imported.yaml").write_text(text)
    result = diff(str(spec_path), str(tmp_path / "imported.yaml"))
    assert result.same, [p.differences() for p in result.pairs if p.status != "same"]
    assert all(p.a and p.b and p.a.name == p.b.name for p in result.pairs)
    equivalent = {(p.a.kind, p.b.kind) for p in result.pairs if p.status == "equivalent"}  # type: ignore[union-attr]
    notations = {
        layer.type
        for layer in spec.layers
        if layer.type == "lrn_tf"
        or (layer.type == "adaptive_avgpool2d" and getattr(layer, "output_size", 1) != 1)
    }
    assert {a for a, _ in equivalent} == notations
    assert equivalent <= {("lrn_tf", "lrn"), ("adaptive_avgpool2d", "avgpool2d")}


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_spec_round_trips_through_torch_onnx(spec_path: Path, tmp_path: Path) -> None:
    """The same through ``export --via torch`` (another producer's op choices): the same
    figures at every layer; diff differs only where torch.onnx wrote a dropout as an
    Identity (specs with no dropout: exit 0)."""
    spec = load(spec_path)
    export_spec(spec, tmp_path / "m.onnx")
    text = import_text(tmp_path / "m.onnx")
    assert_verifies(text)
    assert figures(loads(text, "imported.yaml")) == figures(spec)
    (tmp_path / "imported.yaml").write_text(text)
    result = diff(str(spec_path), str(tmp_path / "imported.yaml"))
    kinds = {(p.a.kind, p.b.kind) for p in result.pairs if p.status == "differs" and p.a and p.b}
    assert all(p.a and p.b for p in result.pairs)
    assert kinds <= TORCH_LOSSES
    if not any(layer.type == "dropout" for layer in spec.layers):
        assert result.same


def _graph_expressible(gen: GeneratedSpec) -> bool:
    """Not the two things the native graph cannot give back: an adaptive pool whose sizes
    do not divide (exported as PyTorch's exact windows, Slice and Reduce per row and
    column, which no kind maps back), and an rbf with ``trainable: true`` (ONNX holds
    tensors, not whether training changes them)."""
    previous = "input"
    for layer in gen.data["layers"]:
        sources = layer.get("inputs") or [previous]
        if layer["type"] == "rbf" and layer.get("trainable"):
            return False
        if layer["type"] == "adaptive_avgpool2d":
            src = sources[0]
            shape = tuple(gen.data["input"]["shape"]) if src == "input" else gen.shapes[src]
            out = layer["output_size"]
            oh, ow = (out, out) if isinstance(out, int) else out
            if shape[1] % oh or shape[2] % ow:
                return False
        previous = layer["name"]
    return True


@settings(max_examples=EXAMPLES, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(gen=specs(max_layers=6, dtypes=("float32",)))
def test_random_specs_round_trip_through_onnx(gen: GeneratedSpec, tmp_path_factory) -> None:
    """Random specs through the native export and back: the same figures at every layer,
    and diff exits 0."""
    assume(_graph_expressible(gen))
    tmp = tmp_path_factory.mktemp("rt")
    spec = loads(gen.text, "gen.yaml")
    export_native(spec, tmp / "m.onnx")
    text = import_text(tmp / "m.onnx")
    assert_verifies(text)
    assert figures(loads(text, "imported.yaml")) == figures(spec)
    (tmp / "gen.yaml").write_text(gen.text)
    (tmp / "imported.yaml").write_text(text)
    result = diff(str(tmp / "gen.yaml"), str(tmp / "imported.yaml"))
    assert result.same, [p.differences() for p in result.pairs if p.status != "same"]


BRANCHY = '''
import torch


class Branchy(torch.nn.Module):
    """Modules and functional calls: conv, relu6, a residual add, a concat, pools, linear.
    (No batch norm: the TorchScript exporter folds it into the convolution.)"""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.act = torch.nn.ReLU6()
        self.side = torch.nn.Conv2d(8, 8, 1)
        self.pool = torch.nn.MaxPool2d(2)
        self.gap = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(x))
        y = torch.nn.functional.leaky_relu(self.side(x), 0.2)
        x = torch.cat([x + y, y], dim=1)
        x = self.gap(self.pool(x))
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=1)
'''


def test_torchscript_export_imports_as_the_module_traces(tmp_path: Path) -> None:
    """torch.onnx's TorchScript exporter (another producer's names and op choices)
    against the PyTorch importer on the same module: the same network."""
    source = tmp_path / "branchy.py"
    source.write_text(BRANCHY)
    namespace: dict[str, object] = {}
    exec(compile(BRANCHY, str(source), "exec"), namespace)
    module = namespace["Branchy"]().eval()  # type: ignore[operator]
    path = tmp_path / "branchy.onnx"
    torch.onnx.export(module, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False)
    text = import_text(path)
    assert_verifies(text)
    (tmp_path / "onnx.yaml").write_text(text)
    (tmp_path / "module.yaml").write_text(import_text(f"{source}:Branchy", [3, 16, 16]))
    result = diff(str(tmp_path / "onnx.yaml"), str(tmp_path / "module.yaml"))
    assert result.same, [p.differences() for p in result.pairs if p.status != "same"]
    kinds = [layer.type for layer in loads(text, "x").layers]
    assert kinds == [
        "conv2d", "conv2d", "leaky_relu", "add", "concat",
        "maxpool2d", "adaptive_avgpool2d", "flatten", "linear", "softmax",
    ]  # fmt: skip


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array.astype(np.float32), name)


def other_producer() -> onnx.ModelProto:
    """A graph written with onnx.helper, as converters from other frameworks write them:
    the LRN, Flatten, Dropout, HardSwish, Clip and GlobalAveragePool ops themselves."""
    rng = np.random.default_rng(0)
    inits = [
        _init("w1", rng.normal(size=(4, 2, 3, 3))),
        _init("b1", rng.normal(size=(4,))),
        _init("scale", np.ones(4)), _init("bias", np.zeros(4)),
        _init("mean", np.zeros(4)), _init("var", np.ones(4)),
        _init("lo", np.array(0.0)), _init("hi", np.array(6.0)),
        _init("w2", rng.normal(size=(4, 3))), _init("b2", rng.normal(size=(3,))),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], "conv", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["bn"],
                         "bn", epsilon=1e-3),
        helper.make_node("Clip", ["bn", "lo", "hi"], ["r6"], "relu6"),
        helper.make_node("LRN", ["r6"], ["n"], "lrn", size=3, alpha=2e-4, beta=0.75, bias=2.0),
        helper.make_node("HardSwish", ["n"], ["hs"], "hswish"),
        helper.make_node("AveragePool", ["hs"], ["ap"], "avg", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Mul", ["ap", "hs"], ["m"], "gate"),
        helper.make_node("GlobalAveragePool", ["m"], ["g"], "gap"),
        helper.make_node("Flatten", ["g"], ["f"], "flatten", axis=1),
        helper.make_node("Dropout", ["f"], ["d"], "drop"),
        helper.make_node("Gemm", ["d", "w2", "b2"], ["y0"], "fc"),
        helper.make_node("Sigmoid", ["y0"], ["y"], "sig"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 9, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_graph_from_another_producer(tmp_path: Path) -> None:
    path = tmp_path / "other.onnx"
    onnx.save(other_producer(), path)
    text = import_text(path)
    assert_verifies(text)
    spec = loads(text, "x")
    layers = {layer.name: layer for layer in spec.layers}
    assert [layer.type for layer in spec.layers] == [
        "conv2d", "batchnorm2d", "relu6", "lrn", "hardswish", "avgpool2d", "mul",
        "adaptive_avgpool2d", "flatten", "dropout", "linear",
    ]  # fmt: skip
    # layers are named after their output values (as archspec's export names them)
    assert layers["c"].padding == 1 and layers["c"].stride == 2
    assert layers["bn"].eps == 1e-3
    assert (layers["n"].size, layers["n"].alpha, layers["n"].k) == (3, 2e-4, 2.0)
    assert layers["ap"].count_include_pad is False  # ONNX's default
    assert layers["m"].inputs == ["ap", "hs"]
    assert layers["y"].activation == "sigmoid" and layers["y"].out_features == 3
    analysis = analyze(spec)
    assert analysis.totals.params == 4 * 2 * 9 + 4 + 4 + 4 + 4 * 3 + 3  # conv, bn γ β, fc
    assert analysis.totals.buffers == 2 * 4 + 1  # PyTorch's: mean, var, num_batches_tracked
    bn = next(layer for layer in spec.layers if layer.name == "bn")
    assert bn.expect is not None and bn.expect.buffers is None  # ONNX holds no counter


def test_an_op_no_kind_maps_is_an_error_at_the_node(tmp_path: Path) -> None:
    model = other_producer()
    model.graph.node[4].op_type = "Softplus"
    path = tmp_path / "soft.onnx"
    onnx.save(model, path)
    with pytest.raises(SpecError) as err:
        import_model(str(path))
    assert "node 'hswish' (#4, Softplus), which archspec cannot import" in str(err.value)
    out = tmp_path / "out.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "archspec", "import", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.startswith(f"{path}: error: node 'hswish' (#4, Softplus)")


def test_a_symbolic_input_needs_input(tmp_path: Path) -> None:
    model = other_producer()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param = "H"
    path = tmp_path / "sym.onnx"
    onnx.save(model, path)
    with pytest.raises(SpecError, match="give it with --input"):
        import_model(str(path))
    assert loads(import_text(path, [2, 9, 9]), "x").input.shape == [2, 9, 9]


def test_a_missing_onnx_is_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from archspec import extras
    from archspec.errors import MissingExtraError

    monkeypatch.setattr(extras, "missing", lambda extra: ["onnx"])
    with pytest.raises(MissingExtraError, match=r"pip install 'archspec\[onnx\]'"):
        import_model("model.onnx")
