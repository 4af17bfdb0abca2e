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
from archspec.spec import SpecError, load, loads

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
N = settings().max_examples
EXAMPLES = max(10, N // 3)  # the "long" profile with ARCHSPEC_FUZZ_EXAMPLES=1500: 500

# What an inference graph cannot say: a dropout is the identity there (torch.onnx writes
# an Identity), and torchvision's 6×6 adaptive pool of a 6×6 map is a 1×1 average pool.
# TensorFlow's LRN convention is lrn's with other parameters: it comes back as lrn.
GRAPH_LOSSES = {
    ("dropout", "identity"),
    ("adaptive_avgpool2d", "avgpool2d"),
    ("lrn_tf", "lrn"),
}


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
    spec = load(spec_path)
    export_spec(spec, tmp_path / "m.onnx")
    text = import_text(tmp_path / "m.onnx")
    assert_verifies(text)
    assert figures(loads(text, "imported.yaml")) == figures(spec)
    (tmp_path / "imported.yaml").write_text(text)
    result = diff(str(spec_path), str(tmp_path / "imported.yaml"))
    kinds = {(p.a.kind, p.b.kind) for p in result.pairs if p.status != "same" and p.a and p.b}
    assert all(p.a and p.b for p in result.pairs)
    assert kinds <= GRAPH_LOSSES
    lossy = [
        layer
        for layer in spec.layers
        if layer.type in ("dropout", "lrn_tf")
        or (layer.type == "adaptive_avgpool2d" and getattr(layer, "output_size", 1) != 1)
    ]
    if not lossy:
        assert result.same  # the LeNets, the ResNets: diff exits 0


def _graph_expressible(gen: GeneratedSpec) -> bool:
    """Not the three things the graph cannot give back: an adaptive pool whose sizes do
    not divide (torch.onnx lowers it to Transpose/GatherND), two layers computing the same
    thing from the same input (the exporter merges them into one value), and an rbf with
    ``trainable: true`` (ONNX holds tensors, not whether training changes them). Also
    not a layer that reads a value and that value's dropout (or flatten of a flat value):
    the graph bypasses such no-ops, and a spec cannot list one input twice."""
    seen: set[object] = set()
    previous = "input"
    reads: dict[str, list[str]] = {}
    for layer in gen.data["layers"]:
        reads[layer["name"]] = layer.get("inputs") or [previous]
        previous = layer["name"]
    kinds = dict(zip(reads, gen.kinds, strict=True))
    flat = {"input": len(gen.data["input"]["shape"]) == 1}
    flat.update({n: len(shape) == 1 for n, shape in gen.shapes.items()})
    # no-ops the graph bypasses: a dropout, a flatten of what is already flat
    dropped = {
        n: r[0]
        for n, r in reads.items()
        if kinds[n] == "dropout" or (kinds[n] == "flatten" and flat.get(r[0], False))
    }
    previous = "input"
    for layer in gen.data["layers"]:
        sources = reads[layer["name"]]
        if any(dropped.get(s) in sources for s in sources):
            return False
        if layer["type"] == "rbf" and layer.get("trainable"):
            return False
        if layer["type"] in ("lrn", "rbf"):
            if (layer["type"], sources[0]) in seen:
                return False  # the exporter shares x² (lrn), unsqueeze(x) (rbf) between two
            seen.add((layer["type"], sources[0]))
        if layer["type"] == "adaptive_avgpool2d":
            src = sources[0]
            shape = tuple(gen.data["input"]["shape"]) if src == "input" else gen.shapes[src]
            out = layer["output_size"]
            oh, ow = (out, out) if isinstance(out, int) else out
            if shape[1] % oh or shape[2] % ow:
                return False
        fields = {k: v for k, v in layer.items() if k not in ("name", "expect")}
        fields["inputs"] = layer.get("inputs") or [previous]
        key = repr(sorted(fields.items()))
        if key in seen:
            return False
        seen.add(key)
        previous = layer["name"]
    return True


@settings(max_examples=EXAMPLES, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(gen=specs(max_layers=6, dtypes=("float32",)))
def test_random_specs_round_trip_through_onnx(gen: GeneratedSpec, tmp_path_factory) -> None:
    assume(_graph_expressible(gen))
    path = tmp_path_factory.mktemp("rt") / "m.onnx"
    spec = loads(gen.text, "gen.yaml")
    export_spec(spec, path)
    text = import_text(path)
    assert_verifies(text)
    assert figures(loads(text, "imported.yaml")) == figures(spec)


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
