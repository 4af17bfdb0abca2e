"""Mutation tests: every shipped spec, broken at random, through ``archspec check``.

Each test takes a spec from specs/, applies one class of mutation to its text
(keeping the rest of the file, comments and layout as they are) and runs
``archspec check`` in-process. Whatever the mutation, the answer is an exit
code of 0, 1 or 2 and one located line per diagnostic on stderr, never a
traceback. Where the mutation class decides the outcome, the test asserts it
exactly: the exit code, and the line:column of the node that was changed.

Exit codes (DESIGN.md): 0 fine, 1 valid but an expectation failed, 2 unusable.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from spec_sets import flat_specs

from archspec.cli.main import main
from archspec.layers import LAYER_KINDS
from archspec.spec.loader import parse_document

ROOT = Path(__file__).resolve().parents[1]
# Specs without blocks: the mutations locate each error at the edited node, and in a
# block a value given with with: is reported where the block uses it (see spec_sets).
SPECS = flat_specs()
N = settings().max_examples

Path_ = tuple[str | int, ...]

# Layer fields whose values must be ≥ 1 (every element of a [h, w] pair too).
POSITIVE = {"out_channels", "kernel", "stride", "dilation", "groups", "size", "out_features"}
POSITIVE |= {"output_size"}
# Fields that change no figure archspec computes or checks.
NEUTRAL = {"title", "source", "activation", "alpha", "beta", "k", "p"}
RESERVED = ["input", "self", "x", "F", "torch", "nn", "forward", "training"]


# ---------------------------------------------------------------------------
# The spec text as a node tree, and edits on it.


@dataclass(frozen=True)
class Entry:
    path: Path_
    key: yaml.Node | None  # the key node when the value sits in a mapping
    value: yaml.Node
    parent: yaml.Node


@functools.cache
def original(spec: Path) -> tuple[str, tuple[Entry, ...]]:
    text = spec.read_text(encoding="utf-8")
    return text, tuple(_entries(text))


def _entries(text: str) -> Iterator[Entry]:
    def walk(node: yaml.Node, path: Path_) -> Iterator[Entry]:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = (*path, k.value)
                yield Entry(p, k, v, node)
                yield from walk(v, p)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                p = (*path, i)
                yield Entry(p, None, v, node)
                yield from walk(v, p)

    yield from walk(yaml.compose(text, Loader=yaml.SafeLoader), ())


def node_at(text: str, path: Path_) -> yaml.Node:
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    for seg in path:
        if isinstance(node, yaml.MappingNode):
            node = next(v for k, v in node.value if k.value == seg)
        else:
            node = node.value[seg]
    return node


def where(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _end(text: str, node: yaml.Node) -> int:
    """Where a node's text ends; a block collection's end mark lies on the next line."""
    start, end = node.start_mark.index, node.end_mark.index
    if isinstance(node, yaml.CollectionNode) and not node.flow_style:
        nl = text.rfind("\n", start, end)
        if nl > start:
            return nl
    return end


def replace(text: str, node: yaml.Node, new: str) -> str:
    return text[: node.start_mark.index] + new + text[_end(text, node) :]


def delete_pair(text: str, mapping: yaml.MappingNode, j: int) -> str:
    pairs = mapping.value
    if len(pairs) == 1:
        return replace(text, mapping, "{}")
    if j < len(pairs) - 1:
        return text[: pairs[j][0].start_mark.index] + text[pairs[j + 1][0].start_mark.index :]
    return text[: _end(text, pairs[j - 1][1])] + text[_end(text, pairs[j][1]) :]


def set_in(data: Any, path: Path_, value: Any) -> Any:
    node = data
    for seg in path[:-1]:
        node = node[seg]
    node[path[-1]] = value
    return data


def data_of(text: str) -> Any:
    return parse_document(text, "<mutant>").data


# ---------------------------------------------------------------------------
# Running check and judging its answer.

LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): \S")


@dataclass
class Answer:
    code: int
    out: str
    err: str
    seconds: float
    errors: list[tuple[int, int, str]]  # (line, column, whole line) of each error


def check(text: str | bytes, *args: str) -> Answer:
    """``archspec check`` in-process on ``text`` saved as a file; stdout and stderr captured."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutant.yaml"
        if isinstance(text, str):
            path.write_text(text, encoding="utf-8")
        else:
            path.write_bytes(text)
        stdout, stderr = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["check", *args, str(path)])
        seconds = time.perf_counter() - start
        out, err = stdout.getvalue(), stderr.getvalue()
    assert "Traceback" not in out + err
    assert "internal error" not in err, err
    assert code in (0, 1, 2), (code, err)
    with contextlib.suppress(InvalidArgument):  # outside a Hypothesis test: nothing to tally
        event(f"exit {code}")
    errors = []
    for line in err.splitlines():
        m = LINE.match(line)
        assert m, f"not a located one-line diagnostic: {line!r}"
        assert m["file"] == str(path)
        if m["sev"] == "error":
            errors.append((int(m["line"]), int(m["col"]), line))
    if "json" not in args:  # JSON carries the diagnostics in stdout instead
        if code == 2:
            assert errors, "exit 2 without an error line"
        if code == 0:
            assert not errors, err
    return Answer(code, out, err, seconds, errors)


def assert_located(answer: Answer, at: tuple[int, int], what: str = "") -> None:
    spots = [(line, col) for line, col, _ in answer.errors]
    assert at in spots, f"no error at {at} ({what}); got:\n{answer.err}"


def role(path: Path_) -> str:
    """What kind of value sits at ``path`` in a spec, for the mutation oracles."""
    if path == ("archspec",):
        return "version"
    if "expect" in path:
        return "expect"
    if path[:2] == ("input", "shape") and len(path) == 3:
        return "positive"
    if path[0] == "layers" and len(path) >= 3:
        name = path[2]
        if name in POSITIVE:
            return "positive"
        if name in ("padding", "input_maps"):
            return "nonneg"
        if name in ("alpha", "beta"):
            return "nonneg-neutral"
        if name in ("k", "p"):
            return str(name)
    return "other"


def expect_target(path: Path_) -> Path_:
    """The node an expectation error points at: expect.params, or expect.output (not its element)."""
    i = path.index("expect")
    return path[: i + 2]


def numbers(entries: tuple[Entry, ...]) -> list[Entry]:
    return [
        e
        for e in entries
        if isinstance(e.value, yaml.ScalarNode)
        and e.value.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]


specs_ = st.sampled_from(SPECS)


# ---------------------------------------------------------------------------
# Mutation classes.


@settings(max_examples=N)
@given(spec=specs_, data=st.data())
def test_delete_a_key(spec: Path, data: st.DataObject) -> None:
    text, entries = original(spec)
    e = data.draw(st.sampled_from([e for e in entries if e.key is not None]), label="key")
    j = next(i for i, (k, _) in enumerate(e.parent.value) if k is e.key)
    mutant = delete_pair(text, e.parent, j)
    expected = data_of(text)
    parent = expected
    for seg in e.path[:-1]:
        parent = parent[seg]
    del parent[e.path[-1]]
    assert data_of(mutant) == expected

    answer = check(mutant)
    name = e.path[-1]
    layer_kind = None
    if e.path[0] == "layers" and len(e.path) == 3:
        layer_kind = LAYER_KINDS.get(str(parent.get("type")))
    required = (
        (len(e.path) == 1 and name in ("archspec", "name", "input", "layers"))
        or e.path == ("input", "shape")
        or (len(e.path) == 3 and e.path[0] == "layers" and name in ("name", "type"))
        or (layer_kind is not None and layer_kind.model_fields[str(name)].is_required())
    )
    if required:
        assert answer.code == 2
        assert_located(answer, where(node_at(mutant, e.path[:-1])), f"missing {name}")
        assert str(name) in answer.err
    elif "expect" in e.path or name in NEUTRAL or e.path == ("input", "dtype"):
        assert answer.code == 0, answer.err
    elif layer_kind is not None and layer_kind.model_fields[str(name)].default == e_value(e):
        assert answer.code == 0, answer.err  # the default was spelt out


def e_value(e: Entry) -> Any:
    return yaml.safe_load(yaml.serialize(e.value))


def _other_kinds(value: yaml.Node) -> list[str]:
    """Flow YAML for values of a kind the node's field never accepts."""
    if isinstance(value, yaml.MappingNode):
        return ["zz", "[zz]", "7", "true", "2.5"]
    if isinstance(value, yaml.SequenceNode):
        return ["zz", "{zz: 1}", "true", "2.5"]
    tag = value.tag.rsplit(":", 1)[-1]
    return {
        "int": ["zz", "{zz: 1}", "[zz]", "true", "2.5"],
        "float": ["zz", "{zz: 1}", "[zz]", "true"],
        "bool": ["zz", "{zz: 1}", "[zz]", "7", "2.5"],
        "str": ["{zz: 1}", "[zz]", "true", "2.5"],
    }[tag]


@settings(max_examples=N)
@given(spec=specs_, data=st.data())
def test_change_a_type(spec: Path, data: st.DataObject) -> None:
    text, entries = original(spec)
    e = data.draw(st.sampled_from(entries), label="value")
    new = data.draw(st.sampled_from(_other_kinds(e.value)), label="new")
    mutant = replace(text, e.value, new)
    assert data_of(mutant) == set_in(data_of(text), e.path, yaml.safe_load(new))
    answer = check(mutant)
    assert answer.code == 2
    assert_located(answer, where(node_at(mutant, e.path)), f"{new} at {e.path}")


@settings(max_examples=N)
@given(spec=specs_, data=st.data())
def test_number_to_string(spec: Path, data: st.DataObject) -> None:
    text, entries = original(spec)
    e = data.draw(st.sampled_from(numbers(entries)), label="number")
    quote = data.draw(st.sampled_from(['"', "'"]))
    mutant = replace(text, e.value, f"{quote}{e.value.value}{quote}")
    assert data_of(mutant) == set_in(data_of(text), e.path, e.value.value)
    answer = check(mutant)
    assert answer.code == 2
    assert_located(answer, where(node_at(mutant, e.path)), f"string at {e.path}")


@settings(max_examples=N)
@given(spec=specs_, data=st.data())
def test_negative_number(spec: Path, data: st.DataObject) -> None:
    text, entries = original(spec)
    e = data.draw(st.sampled_from(numbers(entries)), label="number")
    value = e_value(e)
    new = -value if value else -1
    mutant = replace(text, e.value, repr(new))
    answer = check(mutant)
    # No field of a shipped spec takes a negative number (softmax's axis would; none is set).
    assert answer.code == 2
    assert_located(answer, where(node_at(mutant, e.path)), f"{new} at {e.path}")


@settings(max_examples=N)
@given(spec=specs_, data=st.data())
def test_zero(spec: Path, data: st.DataObject) -> None:
    text, entries = original(spec)
    e = data.draw(st.sampled_from([e for e in numbers(entries) if e_value(e) != 0]), label="number")
    zero = "0" if isinstance(e_value(e), int) else "0.0"
    mutant = replace(text, e.value, zero)
    answer = check(mutant)
    kind = role(e.path)
    if kind in ("version", "positive", "k"):
        assert answer.code == 2
        assert_located(answer, where(node_at(mutant, e.path)), f"0 at {e.path}")
    elif kind == "expect":
        assert answer.code == 1
        assert_located(answer, where(node_at(mutant, expect_target(e.path))), f"0 at {e.path}")
    elif kind in ("nonneg-neutral", "p"):
        assert answer.code == 0, answer.err


HUGE_INTS = [10**12, 2**63, 10**100]


@settings(max_examples=N)
@given(spec=specs_, data=st.data())
def test_huge_number(spec: Path, data: st.DataObject) -> None:
    text, entries = original(spec)
    e = data.draw(st.sampled_from(numbers(entries)), label="number")
    is_int = isinstance(e_value(e), int)
    new = data.draw(st.sampled_from(HUGE_INTS)) if is_int else 1e300
    mutant = replace(text, e.value, repr(new))
    answer = check(mutant)
    assert answer.seconds < 5, f"check took {answer.seconds:.1f} s on {new} at {e.path}"
    kind = role(e.path)
    if kind == "version":
        assert answer.code == 2
    elif kind == "expect":
        assert answer.code == 1
        assert_located(answer, where(node_at(mutant, expect_target(e.path))), f"{new} at {e.path}")
    elif kind == "p":
        assert answer.code == 2
        assert_located(answer, where(node_at(mutant, e.path)), f"{new} at {e.path}")
    elif kind == "nonneg-neutral" or (kind == "k" and not is_int):
        assert answer.code == 0, answer.err


def _near_misses(kind: str) -> list[str]:
    out = {kind[:i] + kind[i + 1 :] for i in range(len(kind))}  # one letter dropped
    out |= {kind[:i] + kind[i + 1] + kind[i] + kind[i + 2 :] for i in range(len(kind) - 1)}
    return sorted(out - set(LAYER_KINDS) - {""})


@settings(max_examples=N)
@given(spec=specs_, data=st.data())
def test_unknown_layer_type(spec: Path, data: st.DataObject) -> None:
    text, entries = original(spec)
    types = [e for e in entries if e.path[0] == "layers" and e.path[2:] == ("type",)]
    e = data.draw(st.sampled_from(types), label="layer")
    near = data.draw(st.booleans(), label="near miss")
    if near:
        new = data.draw(st.sampled_from(_near_misses(str(e.value.value))))
    else:
        new = data.draw(
            st.from_regex(r"\A[a-z][a-z0-9_]{2,12}\Z").filter(lambda w: w not in LAYER_KINDS)
        )
    mutant = replace(text, e.value, new)
    answer = check(mutant)
    assert answer.code == 2
    at = where(node_at(mutant, e.path))
    assert_located(answer, at, f"type {new}")
    line = next(line for ln, col, line in answer.errors if (ln, col) == at)
    assert f"unknown layer type '{new}'" in line
    assert ("did you mean '" in line) or ("known types: " in line)
    if near and len(new) >= 3:
        assert "did you mean '" in line, line


def _insert_inputs(text: str, layer: yaml.MappingNode, names: str) -> str:
    first = layer.value[0][0]
    at = first.start_mark.index
    if layer.flow_style:
        return text[:at] + f"inputs: [{names}], " + text[at:]
    return text[:at] + f"inputs: [{names}]\n" + " " * first.start_mark.column + text[at:]


@settings(max_examples=N)
@given(spec=specs_, data=st.data())
def test_dangling_or_cyclic_input(spec: Path, data: st.DataObject) -> None:
    text, entries = original(spec)
    layers = [e for e in entries if e.path[0] == "layers" and len(e.path) == 2]
    i = data.draw(st.integers(0, len(layers) - 1), label="layer")
    names = [str(dict((k.value, v.value) for k, v in e.value.value)["name"]) for e in layers]
    choices = ["ghost", names[i]] + (["later"] if i < len(layers) - 1 else [])
    how = data.draw(st.sampled_from(choices), label="reads")
    target = names[data.draw(st.integers(i + 1, len(layers) - 1))] if how == "later" else how
    mutant = _insert_inputs(text, layers[i].value, target)
    answer = check(mutant)
    assert answer.code == 2
    if how == "later":
        assert "cycle" in answer.err
        assert_located(answer, where(node_at(mutant, ("layers", i, "inputs"))), "cycle")
    else:
        assert_located(answer, where(node_at(mutant, ("layers", i, "inputs", 0))), target)
        assert ("which is not a layer" if how == "ghost" else "reads itself") in answer.err


@settings(max_examples=N)
@given(spec=specs_, data=st.data())
def test_duplicate_or_reserved_name(spec: Path, data: st.DataObject) -> None:
    text, entries = original(spec)
    names = [e for e in entries if e.path[0] == "layers" and e.path[2:] == ("name",)]
    i = data.draw(st.integers(0, len(names) - 1), label="layer")
    if data.draw(st.booleans(), label="reserved"):
        new = data.draw(st.sampled_from(RESERVED))
        flagged = i
        message = f"'{new}' is a reserved name"
    else:
        j = data.draw(st.integers(0, len(names) - 1).filter(lambda j: j != i), label="copy")
        new = str(names[j].value.value)
        flagged = max(i, j)
        message = f"duplicate layer name '{new}'"
    mutant = replace(text, names[i].value, new)
    answer = check(mutant)
    assert answer.code == 2
    assert_located(answer, where(node_at(mutant, ("layers", flagged, "name"))), message)
    assert message in answer.err


@settings(max_examples=2 * N)
@given(spec=specs_, data=st.data())
def test_random_byte_edits(spec: Path, data: st.DataObject) -> None:
    """Flip, overwrite, insert or delete bytes, or truncate: any answer but a crash, and a
    consistent one: the exit code follows from the kinds of the diagnostics."""
    raw = bytearray(spec.read_bytes())
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        at = data.draw(st.integers(0, len(raw) - 1), label="offset")
        how = data.draw(st.sampled_from(["flip", "byte", "insert", "delete", "truncate"]))
        if how == "flip":
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "byte":
            raw[at] = data.draw(st.integers(0, 255))
        elif how == "insert":
            raw[at:at] = bytes([data.draw(st.integers(0, 255))])
        elif how == "delete":
            del raw[at]
        else:
            del raw[at:]
        if not raw:
            raw = bytearray(b"\n")
    answer = check(bytes(raw))
    as_json = check(bytes(raw), "--format", "json")
    assert as_json.code == answer.code
    (doc,) = json.loads(as_json.out)["specs"]
    kinds = {(d["kind"], d["severity"]) for d in doc["diagnostics"]}
    want = 2 if ("input", "error") in kinds else 1 if ("expect", "error") in kinds else 0
    assert answer.code == want, doc["diagnostics"]
    assert doc["ok"] == (want == 0)
    rendered = sum(1 for d in doc["diagnostics"] if d["line"] is not None)
    assert rendered == len(doc["diagnostics"]), "a diagnostic without a line"
    assert len(answer.err.splitlines()) == len(doc["diagnostics"])


# ---------------------------------------------------------------------------
# Regression tests: minimal examples of what these tests found.


@pytest.mark.parametrize("value", [".inf", "-.inf", "1e400", ".nan"])
def test_non_finite_hyperparameters_are_refused(value: str) -> None:
    """`alpha: .inf` (or 1e400, read as inf) passed every range check and made LRN output 0."""
    text, _ = original(ROOT / "specs" / "alexnet-krizhevsky2012.yaml")
    mutant = text.replace("alpha: 0.0001", f"alpha: {value}", 1)
    answer = check(mutant)
    assert answer.code == 2
    ((line, col, message),) = answer.errors
    assert "layers[1].alpha: expected a finite number" in message or "nan" in message
    assert (line, col) == where(node_at(mutant, ("layers", 1, "alpha")))


def test_huge_adaptive_output_size_is_answered_at_once() -> None:
    """An adaptive pool to 10¹²×10¹² looped over every output row (hours); now closed form."""
    text, _ = original(ROOT / "specs" / "alexnet-torchvision.yaml")
    answer = check(text.replace("output_size: 6", "output_size: 1000000000000", 1))
    assert answer.code == 1
    assert answer.seconds < 5


# ---------------------------------------------------------------------------
# A few of the same through a real process (the console script's own exit path).

SUBPROCESS_CASES = {
    "bad type": ("lenet5-d2l.yaml", b"kernel: 5, padding: 2", b"kernel: five, padding: 2", 2),
    "huge channels": ("alexnet.yaml", b"out_channels: 96", b"out_channels: 1000000000000", 1),
    "dangling": ("lenet5-maxpool.yaml", b"{name: pool1,", b"{name: pool1, inputs: [ghost],", 2),
    "byte flip": ("alexnet-torchvision.yaml", b"layers:", b"lay\xffers:", 2),
}


@pytest.mark.parametrize("case", sorted(SUBPROCESS_CASES))
def test_mutants_through_the_console_script(case: str, tmp_path: Path) -> None:
    name, old, new, code = SUBPROCESS_CASES[case]
    raw = (ROOT / "specs" / name).read_bytes()
    assert old in raw
    path = tmp_path / name
    path.write_bytes(raw.replace(old, new, 1))
    exe = Path(sys.executable).parent / "archspec"
    out = subprocess.run([str(exe), "check", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    lines = out.stderr.splitlines()
    assert any(": error: " in line for line in lines)
    assert all(LINE.match(line) and line.startswith(str(path)) for line in lines), lines
