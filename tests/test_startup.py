"""What ``archspec check`` does to start quickly gives the same answers as the slow way.

Start-up is measured by ``scripts/bench_startup.py``, never timed here. Each
shortcut is compared with what it stands in for: validating kind by kind with
validating against the union of every kind, the kind index with discovering
every kind, the pinned table widths with rich's own measurement, the command's
own parser with the whole command line, and the stand-in plugin loader with
pydantic's.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fuzz_strategies import GeneratedSpec, specs
from hypothesis import given, settings
from rich.console import Console

import archspec.layers as layers_package
import archspec.tables as tables
from archspec.analysis import analyze
from archspec.layers import LAYER_KINDS, kind_of
from archspec.report import terminal_table
from archspec.spec import load, loads
from archspec.spec.diagnostics import SpecError
from archspec.spec.schema import Spec, validate_by_kind

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "specs").glob("*.yaml"))
LENET = "specs/lenet5-lecun1998.yaml"


def _full(data: dict[str, Any]) -> Spec:
    return Spec.model_validate(data)


# --- validating kind by kind is validating against the union ------------------------------


def _expanded(path: Path) -> dict[str, Any]:
    """The spec's data as validation sees it (blocks expanded), loaded the normal way."""
    document = load(path).document
    assert document is not None
    data: dict[str, Any] = document.data
    return data


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_specs_validate_the_same_kind_by_kind(path: Path) -> None:
    data = _expanded(path)
    fast = validate_by_kind(data)
    assert fast is not None
    assert fast == _full(data)
    assert fast.model_fields_set == _full(data).model_fields_set
    assert [type(layer) for layer in fast.layers] == [type(layer) for layer in _full(data).layers]


@settings(max_examples=60)
@given(gen=specs(max_layers=8))
def test_random_specs_validate_the_same_kind_by_kind(gen: GeneratedSpec) -> None:
    data = loads(gen.text, "gen.yaml").document.data  # type: ignore[union-attr]
    assert validate_by_kind(data) == _full(data)


BROKEN = {
    "a wrong type in a layer": ("layers", 0, "out_channels", "six"),
    "an unknown key in a layer": ("layers", 0, "kernal", 5),
    "an unknown kind": ("layers", 0, "type", "conv3d"),
    "a kind that is not a string": ("layers", 0, "type", 2),
    "a wrong header": ("name", None, None, "9lenet"),
    "an unknown header key": ("owner", None, None, "me"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_spec_that_fails_goes_to_the_union_for_its_errors(case: str, tmp_path: Path) -> None:
    """Kind by kind returns None on anything wrong, so the diagnostics stay the union's."""
    key, index, field, value = BROKEN[case]
    data = json.loads(json.dumps(_expanded(ROOT / LENET)))
    if index is None:
        data[key] = value
    else:
        data[key][index][field] = value
    assert validate_by_kind(data) is None
    with pytest.raises(Exception) as raised:
        _full(data)
    assert type(raised.value).__name__ == "ValidationError"
    path = tmp_path / "broken.yaml"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError) as error:
        load(path)
    assert error.value.diagnostics and all(d.position for d in error.value.diagnostics)


# --- the kind index finds what discovering every kind finds ------------------------------


def test_the_registry_lists_every_kind_once_in_a_stable_order() -> None:
    from archspec.layers._index import KIND_MODULES

    assert list(LAYER_KINDS) == list(KIND_MODULES)
    for kind, cls in LAYER_KINDS.items():
        assert kind_of(cls) == kind
        assert (cls.__module__.rsplit(".", 1)[1], cls.__name__) == KIND_MODULES[kind]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return set(eval(out.strip().splitlines()[-1]))


def test_asking_for_a_kind_imports_its_module_alone() -> None:
    loaded = _modules_after("from archspec.layers import LAYER_KINDS; LAYER_KINDS['maxpool2d']")
    kinds = {m for m in loaded if m.startswith("archspec.layers.")}
    assert kinds == {
        "archspec.layers._index",
        "archspec.layers.base",
        "archspec.layers.pool",
        "archspec.layers.window",
    }


def test_check_imports_only_the_kinds_a_spec_uses_and_no_plugin_lookup() -> None:
    loaded = _modules_after(
        "import io, contextlib, archspec.cli.main as m\n"
        f"with contextlib.redirect_stdout(io.StringIO()): m.main(['check', '{LENET}'])"
    )
    kinds = {m.rsplit(".", 1)[1] for m in loaded if m.startswith("archspec.layers.")}
    # conv2d, flatten, linear, rbf, subsample (and the window arithmetic they share)
    assert kinds == {"_index", "base", "window", "conv", "structure", "linear", "lenet1998"}
    assert "importlib.metadata" not in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "onnx", "onnxruntime")}


def test_a_stale_index_still_finds_every_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kind the index misses, or places in the wrong module, is found by discovery."""
    import archspec.layers._index as index

    registry = layers_package._Registry()
    wrong = dict(index.KIND_MODULES)
    wrong["maxpool2d"] = ("conv", "MaxPool2d")
    del wrong["relu"]
    monkeypatch.setattr(index, "KIND_MODULES", wrong)
    assert registry.get("relu") is LAYER_KINDS["relu"]
    registry = layers_package._Registry()
    assert registry["maxpool2d"] is LAYER_KINDS["maxpool2d"]
    assert registry.get("conv3d") is None
    assert "conv3d" not in registry and "conv2d" in registry
    with pytest.raises(KeyError):
        registry["conv3d"]


# --- pinned column widths print what rich's own measurement prints -----------------------


def _render(path: Path, width: int) -> str:
    out = Console(width=width, file=io.StringIO(), highlight=False)
    out.print(terminal_table(analyze(load(path)), out), soft_wrap=True)
    text: str = out.file.getvalue()  # type: ignore[attr-defined]
    return text


@pytest.mark.parametrize("width", [200, 100, 72, 50])
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_pinned_widths_print_what_rich_measures(
    path: Path, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = _render(path, width)
    with monkeypatch.context() as patched:
        patched.setattr(tables, "_text_column_widths", lambda table: None)  # rich measures
        theirs = _render(path, width)
    assert ours == theirs


# --- the command's own parser is the whole command line's --------------------------------


def test_one_commands_parser_reads_what_the_whole_parser_reads() -> None:
    from archspec.cli.main import _command_names, build_parser

    argv = ["check", LENET, "--format", "json", "--strict", "--depth", "2", "--batch", "4"]
    whole = build_parser().parse_args(argv)
    alone = build_parser("check").parse_args(argv)
    assert vars(whole) == vars(alone)
    assert len(_command_names()) == len(ORDER_NAMES)


ORDER_NAMES = [
    "check", "fit", "compile", "codegen", "export", "run", "bench", "import", "diff", "schema",
    "doc", "graph",
]  # fmt: skip


def test_top_level_help_and_an_unknown_command_list_every_command() -> None:
    run = [sys.executable, "-m", "archspec.cli.main"]
    helped = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert helped.returncode == 0
    wrong = subprocess.run([*run, "chek", LENET], capture_output=True, text=True, cwd=ROOT)
    assert wrong.returncode == 2
    for name in ORDER_NAMES:
        assert f"    {name} " in helped.stdout or f"    {name}\n" in helped.stdout
        assert f"'{name}'" in wrong.stderr


# --- the stand-in plugin loader says what pydantic's says with plugins off ----------------


def test_with_plugins_left_on_pydantic_loads_its_own_loader() -> None:
    code = (
        "import os; os.environ['PYDANTIC_DISABLE_PLUGINS'] = ''\n"
        "import io, contextlib, archspec.cli.main as m\n"
        f"with contextlib.redirect_stdout(io.StringIO()): m.main(['check', '{LENET}'])"
    )
    assert "importlib.metadata" in _modules_after(code)


def test_the_stand_in_hands_over_anything_else_to_the_real_loader() -> None:
    code = (
        "import archspec.cli.main, sys\n"
        "from pydantic.plugin import _loader as stand_in  # as pydantic imports it\n"
        "assert tuple(stand_in.get_plugins()) == ()\n"
        "assert stand_in.PYDANTIC_ENTRY_POINT_GROUP == 'pydantic'\n"
        "assert sys.modules['pydantic.plugin._loader'] is not stand_in"
    )
    assert "importlib.metadata" in _modules_after(code)
