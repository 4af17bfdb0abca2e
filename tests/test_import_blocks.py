"""Imported specs use blocks where the model repeats itself (archspec/importers/fold.py).

Each case is an imported model given as its flat layers; the written spec must, expanded,
be exactly those layers (names, fields, inputs) with the same figures, and fold what a
person would fold — and nothing that a block cannot say.
"""

from __future__ import annotations

from typing import Any

import yaml

from archspec.analysis import analyze
from archspec.diagnose import verify
from archspec.importers import Imported, spec_text
from archspec.spec import loads


def model(layers: list[dict[str, Any]]) -> Imported:
    return Imported("m", None, "a test", [4, 8, 8], layers)


def conv(name: str, out: int, **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": "conv2d", "out_channels": out, "kernel": 3, "padding": 1, **kw}


def unit(prefix: str, out: int, **kw: Any) -> list[dict[str, Any]]:
    """conv, relu, conv, and the unit's input added back: one residual unit."""
    return [
        conv(f"{prefix}.conv1", out, **kw),
        {"name": f"{prefix}.relu", "type": "relu"},
        conv(f"{prefix}.conv2", out),
    ]


def residual(prefix: str, source: str, out: int) -> list[dict[str, Any]]:
    return [
        *unit(prefix, out),
        {"name": f"{prefix}.add", "type": "add", "inputs": [f"{prefix}.conv2", source]},
    ]


def written(layers: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The spec's text and its YAML, after checking that expanded it is the flat spec."""
    m = model(layers)
    text, flat = spec_text(m), spec_text(m, flat=True)
    a, b = loads(text, "folded.yaml"), loads(flat, "flat.yaml")
    assert [la.model_dump(exclude={"expect"}) for la in a.layers] == [
        la.model_dump(exclude={"expect"}) for la in b.layers
    ]
    rows = [(r.name, r.inputs, r.output, r.params, r.macs) for r in analyze(a).rows]
    assert rows == [(r.name, r.inputs, r.output, r.params, r.macs) for r in analyze(b).rows]
    return text, yaml.safe_load(text)


def test_identical_units_in_a_row_are_one_use_with_repeat() -> None:
    layers = [
        conv("stem", 8),
        *residual("stage.0", "stem", 8),
        *residual("stage.1", "stage.0.add", 8),
        *residual("stage.2", "stage.1.add", 8),
    ]
    _, doc = written(layers)
    assert list(doc["blocks"]) == ["stage"]
    block = doc["blocks"]["stage"]
    assert block["params"] == {}  # nothing differs
    assert [la["name"] for la in block["layers"]] == ["conv1", "relu", "conv2", "add"]
    assert block["layers"][-1]["inputs"] == ["conv2", "input"]  # 'input': the block's input
    assert doc["layers"][1] == {"name": "stage", "block": "stage", "repeat": 3}


def test_units_that_differ_in_a_value_are_uses_with_parameters() -> None:
    layers = [
        *residual("a", "input", 4),
        *unit("b", 16, stride=2),  # not residual: another block
        *unit("c", 16),
        *unit("d", 32, stride=2),
    ]
    _, doc = written(layers)
    assert list(doc["blocks"]) == ["b"]  # a has no like; b, c, d are one block
    block = doc["blocks"]["b"]
    # out_channels differs and is required; stride takes the kind's default, 1, where unset
    assert block["params"] == {"out_channels": None, "stride": 1}
    assert block["layers"][0] == {
        "name": "conv1", "type": "conv2d", "out_channels": "$out_channels", "kernel": 3,
        "padding": 1, "stride": "$stride",
    }  # fmt: skip
    uses = [la for la in doc["layers"] if "block" in la]
    assert [(u["name"], u["with"]) for u in uses] == [
        ("b", {"out_channels": 16, "stride": 2}),
        ("c", {"out_channels": 16}),
        ("d", {"out_channels": 32, "stride": 2}),
    ]


def test_what_a_block_cannot_say_stays_flat() -> None:
    layers = [
        conv("stem", 4),
        # reads two values from outside itself (its input and the stem): no unit
        conv("x.conv1", 4),
        {"name": "x.add", "type": "add", "inputs": ["x.conv1", "stem", "input"]},
        conv("y.conv1", 4),
        {"name": "y.add", "type": "add", "inputs": ["y.conv1", "stem", "x.add"]},
        # like each other but one has an activation the other leaves unset
        conv("p.conv1", 4, activation="relu"),
        {"name": "p.bn", "type": "batchnorm2d"},
        conv("q.conv1", 4),
        {"name": "q.bn", "type": "batchnorm2d"},
    ]
    text, doc = written(layers)
    assert "blocks" not in doc and "blocks:" not in text


def test_a_use_states_its_layers_figures_added_up() -> None:
    """expect: on a use holds what its layers' own expect: stated — the last layer's output,
    the parameters summed (a relu states none and has none) — and check verifies it."""
    layers = [*unit("s.0", 4), *unit("s.1", 8)]
    c_in = {"s.0.conv1": 4, "s.0.conv2": 4, "s.1.conv1": 4, "s.1.conv2": 8}
    for layer in layers:
        if layer["type"] == "conv2d":
            out = layer["out_channels"]
            layer["expect"] = {"output": [out, 8, 8], "params": c_in[layer["name"]] * 9 * out + out}
    text, doc = written(layers)
    uses = [la for la in doc["layers"] if "block" in la]
    assert [(u["name"], u["with"], u["expect"]) for u in uses] == [
        ("s.0", {"out_channels": 4}, {"output": [4, 8, 8], "params": 2 * (4 * 9 * 4 + 4)}),
        (
            "s.1",
            {"out_channels": 8},
            {"output": [8, 8, 8], "params": 4 * 9 * 8 + 8 + 8 * 9 * 8 + 8},
        ),
    ]
    assert "expect" not in str(doc["blocks"])  # the layers' figures differ between the uses
    assert not [d for d in verify(analyze(loads(text, "x"))) if d.severity.value == "error"]
