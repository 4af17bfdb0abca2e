"""The JSON Schema: printed by ``archspec schema``, shipped in docs/schema/, and true to the loader.

The schema is generated from the pydantic models, so these tests are about
the three ways it could still drift: the shipped copy going stale, a shipped
spec that an editor would flag, and the schema and the loader disagreeing on
what a valid spec is.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from archspec.cli.main import main
from archspec.docs import REGENERATE
from archspec.docs.schema import SCHEMA_FILE, schema_text
from archspec.layers import LAYER_KINDS
from archspec.spec import SpecError, loads
from archspec.spec.schema import json_schema

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../docs/schema/archspec-spec-v1.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)  # the schema itself is well formed
    return jsonschema.Draft202012Validator(schema)


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json_schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert printed["required"] == ["archspec", "name", "input", "layers"]
    # a layer entry is one of the registered kinds (by its type) or a block use
    kinds, use = printed["properties"]["layers"]["items"]["anyOf"]
    assert sorted(kinds["discriminator"]["mapping"]) == sorted(LAYER_KINDS)
    assert use == {"$ref": "#/$defs/BlockUse"}
    assert printed["$defs"]["BlockUse"]["required"] == ["name", "block"]


def test_schema_output_file_is_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    out.write_text("old", encoding="utf-8")
    assert main(["schema", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == schema_text()
    assert [p.name for p in tmp_path.iterdir()] == ["schema.json"]  # no temporary file left


def test_schema_output_into_missing_directory_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "-o", str(tmp_path / "missing" / "schema.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archspec: error: cannot write ")
    assert "does not exist" in err
    assert err.count("\n") == 1


def test_shipped_schema_is_current() -> None:
    shipped = (ROOT / SCHEMA_FILE).read_text(encoding="utf-8")
    assert shipped == schema_text(), f"{SCHEMA_FILE} is stale; regenerate it with: {REGENERATE}"


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_every_shipped_spec_validates_against_the_schema(
    path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == SCHEMA_LINE  # editors find the schema from this line
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(yaml.safe_load(text))
    ]
    assert errors == []


# --------------------------------------------------------------------------- schema == loader

_BASE: dict[str, Any] = {
    "archspec": 1,
    "name": "probe",
    "input": {"shape": [3, 32, 32]},
    "layers": [
        {
            "name": "conv1",
            "type": "conv2d",
            "out_channels": 8,
            "kernel": 3,
            "padding": 1,
            "activation": "relu",
        },
        {"name": "pool1", "type": "maxpool2d", "kernel": 2},
        {
            "name": "left",
            "type": "conv2d",
            "out_channels": 4,
            "kernel": [1, 1],
            "inputs": ["pool1"],
        },
        {
            "name": "right",
            "type": "conv2d",
            "out_channels": 4,
            "kernel": 3,
            "padding": "same",
            "inputs": ["pool1"],
        },
        {"name": "cat", "type": "concat", "inputs": ["left", "right"]},
        {"name": "flatten", "type": "flatten"},
        {"name": "drop", "type": "dropout", "p": 0.25},
        {"name": "fc", "type": "linear", "out_features": 10, "expect": {"params": 2570}},
    ],
    "expect": {"output": [10]},
}


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()

VALID = {
    "as is": (("name",), "probe"),
    "dtype": (("input", "dtype"), "float16"),
    "pair kernel": (("layers", 1, "kernel"), [2, 2]),
    "title": (("title",), "A probe"),
    "int for a float": (("layers", 6, "p"), 0),
    "trainable rbf": (
        ("layers", 7),
        {"name": "fc", "type": "rbf", "out_features": 10, "trainable": True},
    ),
}

INVALID = {
    "unknown top-level key": (("author",), "me"),
    "unknown layer key": (("layers", 0, "kernal"), 3),
    "unknown layer type": (("layers", 0, "type"), "conv2"),
    "missing required field": (("layers", 0, "out_channels"), _DELETE),
    "missing name": (("name",), _DELETE),
    "wrong version": (("archspec",), 2),
    "string for an int": (("layers", 0, "out_channels"), "8"),
    "bool for an int": (("layers", 0, "out_channels"), True),
    "zero kernel": (("layers", 0, "kernel"), 0),
    "three-element kernel": (("layers", 0, "kernel"), [3, 3, 3]),
    "bad padding word": (("layers", 0, "padding"), "full"),
    "bad activation": (("layers", 0, "activation"), "swish"),
    "layer name with a dash": (("layers", 0, "name"), "conv-1"),
    "dropout p of 1": (("layers", 6, "p"), 1.0),
    "empty inputs": (("layers", 2, "inputs"), []),
    "negative expectation": (("layers", 7, "expect", "params"), -1),
    "unknown expect key": (("expect", "latency"), 3),
    "bad dtype": (("input", "dtype"), "int8"),
    "empty layers": (("layers",), []),
    "zero-size input": (("input", "shape"), [3, 0, 32]),
}


def _loader_accepts(data: dict[str, Any]) -> bool:
    try:
        loads(yaml.safe_dump(data, sort_keys=False), "probe.yaml")
    except SpecError:
        return False
    return True


@pytest.mark.parametrize("case", VALID, ids=list(VALID))
def test_schema_and_loader_accept_the_same_specs(
    case: str, validator: jsonschema.Draft202012Validator
) -> None:
    data = _set(_BASE, *VALID[case])
    assert validator.is_valid(data)
    assert _loader_accepts(data)


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_schema_and_loader_reject_the_same_specs(
    case: str, validator: jsonschema.Draft202012Validator
) -> None:
    data = _set(_BASE, *INVALID[case])
    assert not validator.is_valid(data), "the schema accepts what the loader rejects"
    assert not _loader_accepts(data), "the loader accepts what the schema rejects"


def test_doc_commands_import_no_framework(tmp_path: Path) -> None:
    """schema, doc and graph must work where torch, onnx and onnxruntime are not installed."""
    spec = ROOT / "specs" / "lenet5-d2l.yaml"
    code = f"""
import sys
from archspec.cli.main import main
codes = [
    main(["schema", "-o", {str(tmp_path / "s.json")!r}]),
    main(["doc", {str(spec)!r}, "-o", {str(tmp_path / "card.md")!r}]),
    main(["graph", {str(spec)!r}, "--format", "dot", "-o", {str(tmp_path / "g.dot")!r}]),
]
heavy = sorted(m for m in ("torch", "onnx", "onnxruntime") if m in sys.modules)
print(codes, heavy)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.stdout.strip() == "[0, 0, 0] []", proc.stderr
