"""Every diagnostic path: one located line, the right exit code, never a traceback."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from archspec.cli.main import main

GOOD = """\
archspec: 1
name: tiny
input: {shape: [1, 8, 8]}
layers:
  - {name: conv, type: conv2d, out_channels: 2, kernel: 3}
  - {name: flat, type: flatten}
  - {name: fc, type: linear, out_features: 4}
"""
LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): (?P<msg>.+)$"
)


def check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | bytes, *args: str
) -> tuple[int, str]:
    path = tmp_path / "spec.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    code = main(["check", *args, str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip()


def one_error(err: str) -> tuple[int, int, str]:
    """The single error line's line, column and message."""
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(lines) == 1, err
    m = LINE.match(lines[0])
    assert m, lines[0]
    return int(m["line"]), int(m["col"]), m["msg"]


def test_good_spec_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(tmp_path, capsys, GOOD)
    assert code == 0 and err == ""


@pytest.mark.parametrize(
    ("text", "line", "needle", "message"),
    [
        # a misspelt layer type, with the hint, pointing at the type
        (GOOD.replace("type: conv2d", "type: conv2"), 5, "conv2", "unknown layer type 'conv2'; did you mean 'conv2d'?"),
        # an unknown key, pointing at the key (the missing 'kernel' it stands for is not reported twice)
        (GOOD.replace("kernel: 3", "kernal: 3"), 5, "kernal", "unknown key 'kernal'; did you mean 'kernel'?"),
        # a number where a list belongs
        (GOOD.replace("shape: [1, 8, 8]", "shape: 8"), 3, "8}", "input.shape: expected a valid list, got 8"),
        # a string where a number belongs
        (GOOD.replace("out_channels: 2", "out_channels: '2'"), 5, "'2'", "out_channels: expected a valid integer"),
        # a negative and a zero
        (GOOD.replace("out_channels: 2", "out_channels: -2"), 5, "-2", "expected greater than 0, got -2"),
        (GOOD.replace("out_features: 4", "out_features: 0"), 7, "0}", "expected greater than 0, got 0"),
        # a missing key: the layer it is missing from
        (GOOD.replace(", kernel: 3", ""), 5, "{name", "required key 'kernel' is missing"),
        # version
        (GOOD.replace("archspec: 1\n", ""), 1, "name", "missing the version key"),
        (GOOD.replace("archspec: 1", "archspec: 2"), 1, "2", "spec version 2 is newer than this archspec"),
        # kernel larger than its input
        (GOOD.replace("kernel: 3", "kernel: 9"), 5, "9}", "window 9×9 is larger than its 8×8 input"),
        # graph errors
        (GOOD.replace("{name: flat, type: flatten}", "{name: conv, type: flatten}"), 6, "conv",
         "duplicate layer name 'conv'"),
        (GOOD.replace("{name: flat, type: flatten}", "{name: flat, type: flatten, inputs: [cnv]}"), 6, "cnv",
         "reads 'cnv', which is not a layer; did you mean 'conv'?"),
        (GOOD.replace("{name: flat, type: flatten}", "{name: input, type: flatten}"), 6, "input",
         "'input' is a reserved name"),
        # YAML problems
        (GOOD.replace("layers:", "layers: ["), 5, "- {", "invalid YAML"),
        (GOOD + "name: again\n", 8, "name", "duplicate key 'name'"),
        ("!!python/object/apply:os.system ['echo hi']\n", 1, "!!", "YAML tag '!!python/object/apply:os.system' is not allowed"),
        (GOOD.replace("name: tiny", "name: !custom tiny"), 2, "!custom", "YAML tag '!custom' is not allowed"),
        ("", 1, "", "file is empty"),
        ("- just\n- a list\n", 1, "-", "a spec is a mapping"),
    ],
)  # fmt: skip
def test_located_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    needle: str,
    message: str,
) -> None:
    code, err = check(tmp_path, capsys, text)
    assert code == 2
    got_line, got_col, got_msg = one_error(err)
    assert message in got_msg
    source_line = (text.splitlines() or [""])[line - 1]
    assert (got_line, got_col) == (line, source_line.index(needle) + 1), err


def test_cycle_names_the_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = """\
    archspec: 1
    name: loop
    input: {shape: [4]}
    layers:
      - {name: a, type: relu, inputs: [c]}
      - {name: b, type: relu, inputs: [a]}
      - {name: c, type: add, inputs: [b, input]}
    """
    code, err = check(tmp_path, capsys, text)
    assert code == 2
    line, _, msg = one_error(err)
    assert line == 5
    assert "cycle" in msg and all(n in msg for n in ("a", "b", "c"))


def test_arity_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(
        tmp_path, capsys, GOOD.replace("{name: flat, type: flatten}", "{name: flat, type: add}")
    )
    assert code == 2
    assert "takes at least 2 inputs, got 1" in one_error(err)[2]


def test_non_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(tmp_path, capsys, GOOD.encode().replace(b"tiny", b"t\xffny"))
    assert code == 2
    assert one_error(err)[:2] == (2, 8)
    assert "not UTF-8" in err


def test_alias_bomb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    code, err = check(tmp_path, capsys, "\n".join(lines) + "\n")
    assert code == 2
    assert "alias bomb" in one_error(err)[2]


def test_recursive_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(tmp_path, capsys, "a: &x [1, *x]\n")
    assert code == 2
    assert "recursive alias" in err or "invalid YAML" in err


def test_deep_nesting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(tmp_path, capsys, "a: " + "[" * 200 + "]" * 200 + "\n")
    assert code == 2
    assert "deeper than" in one_error(err)[2]


def test_ten_megabyte_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = check(tmp_path, capsys, GOOD + "#" * (10 * 1024 * 1024) + "\n")
    assert code == 2
    assert "specs are limited to 1,048,576 bytes" in one_error(err)[2]


def test_missing_file_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read file" in capsys.readouterr().err
    assert main(["check", str(tmp_path)]) == 2
    assert "archspec: error: no *.yaml or *.yml specs under" in capsys.readouterr().err


def test_bad_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--format", "xml", "specs"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice: 'xml'" in err


def test_several_schema_errors_each_on_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.replace("out_channels: 2", "out_channels: x").replace(
        "out_features: 4", "out_features: y"
    )
    code, err = check(tmp_path, capsys, text)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2 and all(LINE.match(ln) for ln in lines)
    assert [LINE.match(ln)["line"] for ln in lines] == ["5", "7"]  # type: ignore[index]


def test_warnings_and_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace("input: {shape: [1, 8, 8]}", "input: {shape: [1, 224, 224]}").replace(
        "kernel: 3}", "kernel: 11, stride: 4}"
    )
    code, err = check(tmp_path, capsys, text)
    assert code == 0
    m = LINE.match(err)
    assert m and m["sev"] == "warning"
    # PyTorch agrees (tests/test_lint_unused_pixels.py): 11×11/4 on 224 never reads row 223
    assert "reads no pixel of 1 row and 1 column of its 1×224×224 input" in m["msg"]
    assert "the last row (223) and the last column (223)" in m["msg"]
    assert "an input of 227×227 or 223×223 uses every pixel" in m["msg"]
    code, _ = check(tmp_path, capsys, text, "--strict")
    assert code == 1


@pytest.mark.parametrize(
    ("size", "layer", "warned"),
    [
        (224, "kernel: 11, stride: 4", True),  # d2l's AlexNet: row and column 223 unread
        (224, "kernel: 11, stride: 4, padding: 2", False),  # torchvision's: only padding unread
        (224, "kernel: 7, stride: 2, padding: 3", False),  # ResNet's conv1
        (56, "kernel: 3, stride: 2, padding: 1", False),  # ResNet's strided 3×3
        (56, "kernel: 1, stride: 2", True),  # ResNet's 1×1/2 projection
        (228, "kernel: 11, stride: 4, padding: 1", True),  # 3 left over, 1 of them padding
    ],
)
def test_unused_pixels_are_pixels_not_padding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: int, layer: str, warned: bool
) -> None:
    """Windows that stop short of the far edge warn only when they leave real pixels unread."""
    text = GOOD.replace("[1, 8, 8]", f"[1, {size}, {size}]").replace("kernel: 3}", layer + "}")
    code, err = check(tmp_path, capsys, text, "--strict")
    assert (code, "reads no pixel" in err) == ((1, True) if warned else (0, False)), err
    if (
        size == 228
    ):  # 228 + 2 − 11 = 219 = 54·4 + 3: the last 3 rows of the padded input, 1 of them padding
        assert "reads no pixel of 2 rows and 2 columns of its 1×228×228 input" in err


def test_unused_layer_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace(
        "{name: flat, type: flatten}",
        "{name: side, type: relu}\n  - {name: flat, type: flatten, inputs: [conv]}",
    )
    code, err = check(tmp_path, capsys, text)
    assert code == 0
    assert "the output of layer 'side' is never used" in err
