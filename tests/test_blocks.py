"""Blocks: defined once, used many times, expanded at load time into dotted layer names."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import archspec
from archspec.spec import SpecError

BASIC = """\
archspec: 1
name: tiny-resnet
input: {shape: [3, 32, 32]}
blocks:
  basic:
    params: {channels: ~, stride: 1}
    layers:
      - {name: conv1, type: conv2d, out_channels: $channels, kernel: 3, stride: $stride, padding: 1, activation: relu}
      - {name: conv2, type: conv2d, out_channels: $channels, kernel: 3, padding: 1}
      - {name: add, type: add, inputs: [conv2, input]}
      - {name: relu, type: relu}
layers:
  - {name: stem, type: conv2d, out_channels: 16, kernel: 3, padding: 1, activation: relu}
  - {name: layer1, block: basic, repeat: 2, with: {channels: 16}}
  - {name: pool, type: adaptive_avgpool2d, output_size: 1, inputs: [layer1]}
  - {name: flatten, type: flatten}
  - {name: fc, type: linear, out_features: 10}
"""


def names_and_inputs(text: str) -> list[tuple[str, tuple[str, ...]]]:
    analysis = archspec.analyze(archspec.loads(text))
    return [(r.name, r.inputs) for r in analysis.rows]


def errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        archspec.check(archspec.loads(text, "b.yaml"))
    return [d.render() for d in info.value.diagnostics]


def test_repeat_gives_pytorch_module_paths_and_wires_the_block_input() -> None:
    assert names_and_inputs(BASIC) == [
        ("stem", ("input",)),
        ("layer1.0.conv1", ("stem",)),
        ("layer1.0.conv2", ("layer1.0.conv1",)),
        ("layer1.0.add", ("layer1.0.conv2", "stem")),
        ("layer1.0.relu", ("layer1.0.add",)),
        ("layer1.1.conv1", ("layer1.0.relu",)),
        ("layer1.1.conv2", ("layer1.1.conv1",)),
        ("layer1.1.add", ("layer1.1.conv2", "layer1.0.relu")),
        ("layer1.1.relu", ("layer1.1.add",)),
        ("pool", ("layer1.1.relu",)),  # 'layer1' reads the block's last layer
        ("flatten", ("pool",)),
        ("fc", ("flatten",)),
    ]


def test_expanded_figures_equal_the_flat_spec_written_by_hand() -> None:
    flat = (
        """\
archspec: 1
name: tiny-resnet
input: {shape: [3, 32, 32]}
layers:
  - {name: stem, type: conv2d, out_channels: 16, kernel: 3, padding: 1, activation: relu}
"""
        + "".join(
            f"""\
  - {{name: l{r}c1, type: conv2d, out_channels: 16, kernel: 3, padding: 1, activation: relu}}
  - {{name: l{r}c2, type: conv2d, out_channels: 16, kernel: 3, padding: 1}}
  - {{name: l{r}add, type: add, inputs: [l{r}c2, {"stem" if r == 0 else "l0relu"}]}}
  - {{name: l{r}relu, type: relu}}
"""
            for r in range(2)
        )
        + """\
  - {name: pool, type: adaptive_avgpool2d, output_size: 1}
  - {name: flatten, type: flatten}
  - {name: fc, type: linear, out_features: 10}
"""
    )
    a = archspec.analyze(archspec.loads(BASIC))
    b = archspec.analyze(archspec.loads(flat))
    assert a.totals == b.totals
    assert [(r.output, r.params, r.macs) for r in a.rows] == [
        (r.output, r.params, r.macs) for r in b.rows
    ]
    # 2 blocks × 2 convs of 3·3·16·16 + 16 parameters, plus the stem and fc
    assert a.totals.params == 4 * (3 * 3 * 16 * 16 + 16) + (3 * 3 * 3 * 16 + 16) + (16 * 10 + 10)


def test_nested_blocks_a_single_use_and_an_explicit_input() -> None:
    text = """\
archspec: 1
name: nested
input: {shape: [8, 8, 8]}
blocks:
  conv_relu:
    params: {c: ~}
    layers:
      - {name: conv, type: conv2d, out_channels: $c, kernel: 1}
      - {name: relu, type: relu}
  branchy:
    params: {c: 4}
    layers:
      - {name: a, block: conv_relu, with: {c: $c}}
      - {name: b, block: conv_relu, with: {c: $c}, inputs: [input]}
      - {name: cat, type: concat, inputs: [a, b]}
layers:
  - {name: first, type: relu}
  - {name: m, block: branchy}
"""
    assert names_and_inputs(text) == [
        ("first", ("input",)),
        ("m.a.conv", ("first",)),
        ("m.a.relu", ("m.a.conv",)),
        ("m.b.conv", ("first",)),
        ("m.b.relu", ("m.b.conv",)),
        ("m.cat", ("m.a.relu", "m.b.relu")),
    ]
    assert archspec.analyze(archspec.loads(text)).output_shape == (8, 8, 8)


def test_expect_on_a_use_adds_up_the_block() -> None:
    good = BASIC.replace(
        "with: {channels: 16}}",
        "with: {channels: 16}, expect: {output: [16, 32, 32], params: 9280, macs: 9.44M}}",
    )
    _, found = archspec.check(archspec.loads(good))
    assert not found
    bad = good.replace("params: 9280", "params: 9000")
    _, found = archspec.check(archspec.loads(bad, "b.yaml"))
    assert [d.render() for d in found] == [
        "b.yaml:14:106: error: block use 'layer1': expected params 9,000, computed 9,280 (off by +280)"
    ]


@pytest.mark.parametrize(
    ("edit", "want"),
    [
        (
            ("block: basic, repeat", "block: basik, repeat"),
            "b.yaml:14:27: error: unknown block 'basik'; did you mean 'basic'?",
        ),
        (
            ("with: {channels: 16}", "with: {chanels: 16}"),
            "b.yaml:14:52: error: block 'basic' has no parameter 'chanels' (its parameters: "
            "channels, stride); did you mean 'channels'?",
        ),
        (
            ("with: {channels: 16}", "with: {stride: 1}"),
            "b.yaml:14:27: error: block 'basic' needs parameter 'channels': add with: {channels: …}",
        ),
        (
            ("repeat: 2", "repeat: 0"),
            "b.yaml:14:42: error: repeat must be a positive integer, got 0",
        ),
        (
            ("repeat: 2", "repeat: true"),
            "b.yaml:14:42: error: repeat must be a positive integer, got True",
        ),
        (
            ("stride: $stride", "stride: $strid"),
            "b.yaml:8:81: error: unknown parameter '$strid' in block 'basic' (its parameters: "
            "$channels, $stride); did you mean 'stride'? [in block 'basic' used as 'layer1.0' at b.yaml:14:5]",
        ),
    ],
)
def test_block_errors_are_located(edit: tuple[str, str], want: str) -> None:
    assert errors(BASIC.replace(*edit))[0] == want


def test_an_error_inside_a_block_points_at_its_definition_and_names_the_use() -> None:
    found = errors(BASIC.replace("padding: 1, activation: relu}", "padding: -1, activation: relu}"))
    assert found[0].startswith("b.yaml:8:99: error: blocks.basic.layers[0].padding: expected ")
    assert found[0].endswith("[in block 'basic' used as 'layer1.0' at b.yaml:14:5]")


def test_a_bad_value_given_to_a_block_points_where_it_is_given() -> None:
    found = errors(BASIC.replace("with: {channels: 16}", "with: {channels: sixteen}"))
    assert found[0] == (
        "b.yaml:14:62: error: layers[1].with.channels: expected a valid integer, "
        "got 'sixteen' [in block 'basic' used as 'layer1.0' at b.yaml:14:5]"
    )
    # a bad default: at the default, in params:
    found = errors(BASIC.replace("stride: 1}", "stride: two}"))
    assert found[0].startswith("b.yaml:6:35: error: blocks.basic.params.stride: expected ")


def test_a_block_using_itself_or_a_cycle_is_refused() -> None:
    selfish = """\
archspec: 1
name: s
input: {shape: [4]}
blocks:
  a:
    layers:
      - {name: x, block: a}
layers:
  - {name: top, block: a}
"""
    assert errors(selfish) == [
        "b.yaml:7:26: error: block 'a' uses itself (a → a) [in block 'a' used as 'top' at b.yaml:9:5]"
    ]
    cycle = selfish.replace(
        "  a:\n    layers:\n      - {name: x, block: a}\n",
        "  a:\n    layers:\n      - {name: x, block: b}\n  b:\n    layers:\n      - {name: y, block: a}\n",
    )
    (line,) = errors(cycle)
    assert "error: block 'a' is in a cycle (a → b → a)" in line


def test_malformed_blocks_section() -> None:
    empty = BASIC.replace(
        "    params: {channels: ~, stride: 1}\n    layers:", "    layers: []\n    extra:"
    )
    assert errors(empty) == [
        "b.yaml:7:5: error: unknown key 'extra' in block 'basic'",
        "b.yaml:6:13: error: block 'basic' needs layers: [...]",
    ]
    found = errors(
        "archspec: 1\nname: m\ninput: {shape: [4]}\nblocks: [1]\nlayers:\n  - {name: r, type: relu}\n"
    )
    assert found == ["b.yaml:4:9: error: blocks: maps block names to {params, layers}"]


def test_an_exponential_expansion_is_refused_quickly() -> None:
    """Ten blocks each repeating the next ten times would be 10^10 layers: refused, fast."""
    defs = "".join(
        f"  b{i}:\n    layers:\n      - {{name: x, block: b{i + 1}, repeat: 10}}\n"
        for i in range(9)
    )
    text = (
        "archspec: 1\nname: bomb\ninput: {shape: [4]}\nblocks:\n"
        + defs
        + "  b9:\n    layers:\n      - {name: r, type: relu}\nlayers:\n  - {name: top, block: b0}\n"
    )
    start = time.process_time()
    found = errors(text)
    assert "blocks expand to more than 100,000 layers" in found[0]
    assert time.process_time() - start < 30  # bounded, not 10^10 steps


def test_cli_reports_block_errors_on_one_line_each_with_exit_2(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "b.yaml"
    path.write_text(BASIC.replace("block: basic, repeat", "block: nope, repeat"), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "archspec.cli.main", "check", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"{path}:14:27: error: unknown block 'nope'")


def test_the_json_schema_accepts_blocks_and_uses() -> None:
    import jsonschema
    import yaml

    from archspec.spec.schema import json_schema

    jsonschema.validate(yaml.safe_load(BASIC), json_schema())


def test_check_depth_folds_the_table_by_block(tmp_path: object) -> None:
    """Folded rows add up the flat JSON's figures of the layers they hold."""
    import json
    from pathlib import Path

    path = Path(str(tmp_path)) / "b.yaml"
    path.write_text(BASIC, encoding="utf-8")

    def run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "archspec.cli.main", "check", str(path), *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout

    layers = json.loads(run("--format", "json"))["specs"][0]["layers"]
    for depth, group in ((1, "layer1"), (2, "layer1.1")):
        members = [r for r in layers if r["name"].startswith(group + ".")]
        table = run("--format", "markdown", "--depth", str(depth))
        (row,) = [line for line in table.splitlines() if line.startswith(f"| {group} |")]
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"basic ({len(members)} layers)"
        assert cells[2] == "×".join(map(str, members[-1]["output"]))
        assert cells[3] == f"{sum(r['params'] for r in members):,}"
        assert cells[5] == f"{sum(r['macs'] for r in members):,}"
    proc = subprocess.run(
        [sys.executable, "-m", "archspec.cli.main", "check", str(path), "--depth", "0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "expected a positive integer" in proc.stderr


def test_dotted_names_compile_nested_like_pytorch_and_generate_runnable_source(
    tmp_path: object,
) -> None:
    """state_dict keys are the dotted paths; the generated source loads that state_dict and
    computes the same; the diagram's node ids hold no dots."""
    from pathlib import Path

    import torch

    spec = archspec.loads(BASIC)
    module = archspec.compile(spec).eval()
    assert "layer1.1.conv2.weight" in module.state_dict()
    assert dict(module.named_modules())["layer1.0.conv1"].__class__ is torch.nn.Conv2d
    source = archspec.codegen(spec)
    path = Path(str(tmp_path)) / "gen.py"
    path.write_text(source, encoding="utf-8")
    namespace: dict[str, object] = {"__name__": "gen"}
    exec(compile(source, str(path), "exec"), namespace)
    generated = namespace["TinyResnet"]()  # type: ignore[operator]
    generated.load_state_dict(module.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(generated.eval()(x), module(x))
    from archspec.docs.diagram import mermaid

    diagram = mermaid(archspec.analyze(spec))
    assert "n_layer1__0__conv1[" in diagram and "n_layer1.0" not in diagram


def test_a_layer_cannot_also_be_the_container_of_another() -> None:
    text = BASIC.replace("{name: pool,", "{name: layer1.1, type: relu}\n  - {name: pool,")
    with pytest.raises(SpecError, match=r"would live inside layer 'layer1\.1'"):
        archspec.compile(archspec.loads(text))


def test_a_bad_expect_on_a_use_names_the_figure() -> None:
    found = errors(
        BASIC.replace("with: {channels: 16}}", "with: {channels: 16}, expect: {params: many}}")
    )
    (line,) = found
    assert line == "b.yaml:14:84: error: expect.params: expected a valid integer"
