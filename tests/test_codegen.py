"""``archspec codegen``: standalone source that is ruff-clean and computes what the compiler builds."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import pytest
import torch
import torch.nn.functional as F
import yaml
from spec_sets import heavy_params, heavy_ready
from torch import nn

import archspec
from archspec.analysis import Analysis
from archspec.cli.main import main
from archspec.layers.base import Activation, TorchCall
from archspec.spec import Spec
from archspec.torch import modules
from archspec.torch.build import SpecModule, compile_spec
from archspec.torch.codegen import ACTIVATION_SOURCE, call_node, class_name, flat, generate
from archspec.torch.crosscheck import verify_module

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
NAMES = heavy_ready()  # built by the shared fixture below
PARAMS = heavy_params()  # the same, with the specs the compiler cannot take yet as xfail
PUBLISHED_PARAMS = {
    "lenet5-lecun1998": 60_000,
    "lenet5-d2l": 61_706,
    "lenet5-maxpool": 44_426,
    "alexnet-krizhevsky2012": 60_965_224,
    "alexnet": 62_378_344,
    "alexnet-d2l": 46_764_746,
    "alexnet-torchvision": 61_100_840,
}

# A DAG that exercises the generator's naming: Python keywords as layer names, a layer named
# like the scaled_tanh function, the input read twice, an unused branch, long names that force
# line breaks and a spec name ('F') that would shadow torch.nn.functional.
DAG = """
archspec: 1
name: F
title: 'A "quoted" \\ title with \"\"\" in it'
input: {shape: [3, 12, 12]}
layers:
  - {name: stem, type: conv2d, out_channels: 8, kernel: 3, padding: same, activation: relu}
  - {name: a_branch_whose_name_is_long_enough_to_need_a_line_break_in_pytho, type: conv2d,
     out_channels: 8, kernel: [1, 3], padding: [0, 1], inputs: [stem]}
  - {name: class, type: conv2d, out_channels: 8, kernel: 3, padding: 1, inputs: [stem],
     activation: scaled_tanh}
  - {name: lambda, type: add,
     inputs: [a_branch_whose_name_is_long_enough_to_need_a_line_break_in_pytho, class, stem]}
  - {name: concatenation_with_a_name_long_enough_to_push_lines_past_the_lim, type: concat,
     inputs: [a_branch_whose_name_is_long_enough_to_need_a_line_break_in_pytho, lambda, stem, input]}
  - {name: unused, type: relu, inputs: [stem]}
  - {name: scaled_tanh, type: scaled_tanh,
     inputs: [concatenation_with_a_name_long_enough_to_push_lines_past_the_lim]}
  - {name: norm_layer_with_a_name_so_long_that_target_and_callee_overflow_a, type: lrn, size: 3}
  - {name: pool, type: avgpool2d, kernel: 3, stride: 2, padding: 1, ceil_mode: true}
  - {name: flatten, type: flatten}
  - {name: head, type: linear, out_features: 10, activation: tanh}
  - {name: prob, type: softmax}
"""


def random_specs(count: int, seed: int = 20240601) -> Iterator[tuple[str, str]]:
    """Valid random DAG specs (spatial size kept, channels varied) with names up to 64 chars."""
    rng = random.Random(seed)

    def name() -> str:
        n = rng.choice([3, 12, 40, 58, 64])
        alphabet = "abcdefghijklmnopqrstuvwxyz_"
        return rng.choice(alphabet[:-1]) + "".join(rng.choice(alphabet) for _ in range(n - 1))

    for t in range(count):
        channels = {"input": 3}
        layers: list[dict[str, Any]] = []
        for _ in range(rng.randint(3, 7)):
            src = rng.choice(list(channels)[-3:])
            c = channels[src]
            kind = rng.choice(["conv", "conv_pair", "mapped", "subsample", "lrn", "relu"])
            layer: dict[str, Any] = {"name": name(), "inputs": [src]}
            if kind == "conv":
                layer |= {"type": "conv2d", "out_channels": rng.choice([2, 5]), "kernel": 3}
                layer |= {
                    "padding": rng.choice([1, "same"]),
                    "activation": rng.choice(get_args(Activation)),
                }
            elif kind == "conv_pair":
                layer |= {"type": "conv2d", "out_channels": 4, "kernel": [1, 3], "padding": [0, 1]}
                layer |= {"bias": rng.choice([True, False])}
            elif kind == "mapped":
                maps = [[j % c, (j + 1) % c] if c > 1 else [0] for j in range(6)]
                layer |= {"type": "conv2d", "out_channels": 6, "kernel": 1, "input_maps": maps}
            elif kind == "subsample":
                layer |= {"type": "subsample", "kernel": 1, "activation": "scaled_tanh"}
            else:
                layer |= {"type": kind}
            layers.append(layer)
            channels[layer["name"]] = layer.get("out_channels", c)
        layers.append({"name": name(), "type": "concat", "inputs": [lay["name"] for lay in layers]})
        doc = {
            "archspec": 1,
            "name": f"random-{t}",
            "input": {"shape": [3, 6, 6]},
            "layers": layers,
        }
        yield f"random-{t}", yaml.safe_dump(doc, sort_keys=False)


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every shipped spec through ``archspec codegen -o`` plus the DAG and the random specs."""
    out = tmp_path_factory.mktemp("generated")
    files: dict[str, Path] = {}
    for name in NAMES:
        path = out / f"{name.replace('-', '_')}.py"
        assert main(["codegen", str(SPECS / f"{name}.yaml"), "-o", str(path)]) == 0
        files[name] = path
    for name, text in [("dag", DAG), *random_specs(8)]:
        path = out / f"{name.replace('-', '_')}.py"
        spec_file = path.with_suffix(".yaml")
        spec_file.write_text(text)
        assert main(["codegen", str(spec_file), "-o", str(path)]) == 0
        files[name] = path
    return files


def test_generated_files_pass_ruff(generated: dict[str, Path]) -> None:
    folder = str(next(iter(generated.values())).parent)
    config = str(ROOT / "pyproject.toml")
    for args in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--config", config, folder],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", PARAMS)
def test_generated_module_computes_what_the_compiler_builds(
    name: str, generated: dict[str, Path], built: Callable[[str], tuple[Analysis, SpecModule]]
) -> None:
    analysis, compiled = built(name)
    cls = getattr(import_file(generated[name]), class_name(name))
    torch.manual_seed(1)
    model = cls().eval()
    # the figure the source publishes (the spec cites it), else the calculator's (d2l's NiN
    # publishes shapes only)
    expect = analysis.spec.expect
    cited = expect.params if expect is not None and isinstance(expect.params, int) else None
    want = PUBLISHED_PARAMS.get(name, cited if cited is not None else analysis.totals.params)
    assert sum(p.numel() for p in model.parameters()) == want
    model.load_state_dict(compiled.state_dict())  # strict: same names, same shapes
    compiled.load_state_dict(model.state_dict())  # and back
    x = torch.randn(2, *analysis.input_shape)
    with torch.no_grad():
        assert torch.equal(model(x), compiled(x))
    assert tuple(cls.input_shape) == analysis.input_shape


def test_weights_travel_both_ways_between_fresh_modules(generated: dict[str, Path]) -> None:
    spec = archspec.load(SPECS / "lenet5-lecun1998.yaml")
    cls = import_file(generated["lenet5-lecun1998"]).Lenet5Lecun1998
    x = torch.randn(3, 1, 32, 32)
    model = cls().eval()
    compiled = compile_spec(spec, seed=3)
    with torch.no_grad():
        assert not torch.equal(model(x), compiled(x))
        model.load_state_dict(compiled.state_dict())
        assert torch.equal(model(x), compiled(x))
        trained = cls().eval()  # stands for weights trained in the generated file
        fresh = compile_spec(spec, seed=4)
        fresh.load_state_dict(trained.state_dict())
        assert torch.equal(fresh(x), trained(x))


def _declared(text: str, cls_name: str) -> dict[str, ast.expr]:
    """Each ``self.<name> = <call>`` (or ``self.add_module(name, call)``) in the class's __init__."""
    tree = ast.parse(text)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    init = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    found: dict[str, ast.expr] = {}
    for stmt in init.body[1:]:
        if isinstance(stmt, ast.Assign):
            (target,) = stmt.targets
            assert isinstance(target, ast.Attribute)
            found[target.attr] = stmt.value
        else:
            # self.add_module("name", call) or, for a block's dotted name,
            # self.get_submodule("parent").add_module("leaf", call)
            assert isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            key, value = stmt.value.args
            assert isinstance(key, ast.Constant)
            owner = stmt.value.func
            assert isinstance(owner, ast.Attribute) and owner.attr == "add_module"
            parent = ""
            if isinstance(owner.value, ast.Call):  # self.get_submodule("parent")
                (where,) = owner.value.args
                assert isinstance(where, ast.Constant)
                parent = f"{where.value}."
            if ast.unparse(value) == "nn.Module()":
                continue  # a container that holds a block's layers, not a layer
            found[parent + str(key.value)] = value
    return found


@pytest.mark.parametrize("name", [*PARAMS, "dag"])
def test_constructors_are_the_compilers_torch_calls(name: str, generated: dict[str, Path]) -> None:
    spec_file = SPECS / f"{name}.yaml" if name != "dag" else generated[name].with_suffix(".yaml")
    analysis = archspec.analyze(spec_file)
    declared = _declared(generated[name].read_text(), class_name(analysis.spec.name))
    assert list(declared) == [row.name for row in analysis.rows]
    for row in analysis.rows:
        call = analysis.graph.layers[row.name].torch_call(row.input_shapes)
        assert ast.dump(declared[row.name]) == ast.dump(ast.parse(call.source(), mode="eval").body)


def test_readable_lines_with_shapes(generated: dict[str, Path]) -> None:
    alexnet = generated["alexnet-krizhevsky2012"].read_text().splitlines()
    assert "        self.conv1 = nn.Conv2d(3, 96, kernel_size=11, stride=4)" in alexnet
    assert "        self.conv2 = nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2)" in alexnet
    assert "        x = F.relu(self.conv1(x))  # [96, 55, 55]" in alexnet
    assert "        x = self.pool5(x)  # [256, 6, 6]" in alexnet
    assert "class AlexnetKrizhevsky2012(nn.Module):" in alexnet
    lenet = generated["lenet5-lecun1998"].read_text().splitlines()
    assert "        self.C1 = nn.Conv2d(1, 6, kernel_size=5)" in lenet
    assert "        x = scaled_tanh(self.C3(x))  # [16, 10, 10]" in lenet
    assert "        x = self.OUTPUT(x)  # [10]" in lenet
    d2l = generated["lenet5-d2l"].read_text().splitlines()
    assert "        x = torch.sigmoid(self.conv1(x))  # [6, 28, 28]" in d2l


def _top_level(text: str) -> set[str]:
    tree = ast.parse(text)
    return {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}


def test_custom_layers_are_copied_only_when_used(generated: dict[str, Path]) -> None:
    alexnet = generated["alexnet-torchvision"].read_text()
    assert _top_level(alexnet) == {"AlexnetTorchvision"}
    assert "import math" not in alexnet
    lenet = generated["lenet5-lecun1998"].read_text()
    assert _top_level(lenet) == {
        "scaled_tanh",
        "Subsample",
        "MappedConv2d",
        "RBF",
        "Lenet5Lecun1998",
    }
    for obj in (modules.scaled_tanh, modules.Subsample, modules.MappedConv2d, modules.RBF):
        assert inspect.getsource(obj) in lenet  # verbatim
    d2l = generated["lenet5-d2l"].read_text()
    assert "torch.nn.functional" not in d2l  # sigmoid and avg pooling need no F
    dag = generated["dag"].read_text()
    assert _top_level(dag) == {"scaled_tanh", "ScaledTanh", "Concat", "Add", "FModel"}


def test_dag_module_matches_the_compiled_one(generated: dict[str, Path]) -> None:
    spec = archspec.loads(DAG)
    analysis = archspec.analyze(spec)
    compiled = compile_spec(spec, analysis=analysis)
    model = import_file(generated["dag"]).FModel().eval()
    model.load_state_dict(compiled.state_dict())
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(model(x), compiled(x))
    assert verify_module(analysis, model) == []  # hooks see every layer, the unused one too
    text = generated["dag"].read_text()
    assert "    def forward(self, x_in: torch.Tensor) -> torch.Tensor:" in text
    assert '        x = scaled_tanh(self.get_submodule("class")(stem))  # [8, 12, 12]' in text
    assert "        self.unused(stem)  # [8, 12, 12], never read" in text


@pytest.mark.parametrize("index", range(8))
def test_random_specs_match_the_compiled_module(index: int, generated: dict[str, Path]) -> None:
    name = f"random-{index}"
    spec = archspec.load(generated[name].with_suffix(".yaml"))
    compiled = compile_spec(spec)
    model = getattr(import_file(generated[name]), class_name(spec.name))().eval()
    model.load_state_dict(compiled.state_dict())
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(model(x), compiled(x))


def test_generated_file_runs_as_a_script(generated: dict[str, Path]) -> None:
    done = subprocess.run(
        [sys.executable, str(generated["dag"])], capture_output=True, text=True, check=True
    )
    params = sum(p.numel() for p in compile_spec(archspec.loads(DAG)).parameters())
    assert done.stdout.strip() == f"FModel: {params:,} parameters; output [2, 10]"


def test_codegen_stdout_equals_the_file_and_imports_no_torch(
    tmp_path: Path, generated: dict[str, Path]
) -> None:
    spec = str(SPECS / "lenet5-lecun1998.yaml")
    code = textwrap.dedent(
        f"""
        import sys
        from archspec.cli.main import main
        rc = main(["codegen", {spec!r}])
        heavy = [m for m in ("torch", "onnx", "onnxruntime") if m in sys.modules]
        sys.exit(rc or (3 if heavy else 0))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == generated["lenet5-lecun1998"].read_text()


def test_codegen_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clash = tmp_path / "clash.yaml"
    clash.write_text(
        "archspec: 1\nname: x\ninput: {shape: [4]}\nlayers:\n  - {name: to, type: linear, out_features: 2}\n"
    )
    assert main(["codegen", str(clash)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    good = str(SPECS / "lenet5-d2l.yaml")
    assert main(["codegen", good, "-o", str(tmp_path / "no" / "dir.py")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_activation_source_is_the_compilers_function() -> None:
    names = {
        "torch": torch,
        "F": F,
        "scaled_tanh": modules.scaled_tanh,
        "identity": modules.identity,
    }
    assert set(ACTIVATION_SOURCE) == set(get_args(Activation)) == set(modules.ACTIVATIONS)
    for key, expr in ACTIVATION_SOURCE.items():
        assert eval(expr, names) is modules.ACTIVATIONS[key]


@pytest.mark.parametrize(
    ("spec_name", "cls"),
    [
        ("lenet5-lecun1998", "Lenet5Lecun1998"),
        ("alexnet-d2l", "AlexnetD2l"),
        ("my_net.v2", "MyNetV2"),
        ("F", "FModel"),
        ("RBF", "RBFModel"),
        ("rbf", "Rbf"),
    ],
)
def test_class_name(spec_name: str, cls: str) -> None:
    assert class_name(spec_name) == cls


def test_call_source_with_awkward_strings() -> None:
    call = TorchCall("nn.Thing", ("it's", 'say "hi"', (3, 5), (1,), [[0, 1], [2]]), {"x": None})
    ast.dump(ast.parse(call.source(), mode="eval"))
    rendered = flat(call_node(call))
    assert ast.dump(ast.parse(rendered, mode="eval")) == ast.dump(
        ast.parse(call.source(), mode="eval")
    )
    assert rendered.startswith('nn.Thing("it\'s", ')


def test_generate_takes_a_spec_object() -> None:
    spec: Spec = archspec.load(SPECS / "lenet5-maxpool.yaml")
    assert generate(spec) == archspec.codegen(spec)
    assert nn  # the generated file needs torch.nn, and so does this test
