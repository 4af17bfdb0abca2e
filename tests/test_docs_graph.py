"""``archspec graph``: Mermaid and DOT text of the layer graph, and rendering through Graphviz."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from archspec.analysis import analyze
from archspec.cli.main import main
from archspec.docs.diagram import diagram_graph, dot, mermaid
from archspec.spec import loads

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

# A stem, a two-branch block joined by concat, and a residual add around it.
BRANCHING = """\
archspec: 1
name: branching
input: {shape: [3, 16, 16]}
layers:
  - {name: stem, type: conv2d, out_channels: 8, kernel: 3, padding: 1, activation: relu}
  - {name: a, type: conv2d, out_channels: 4, kernel: 1, inputs: [stem]}
  - {name: b, type: conv2d, out_channels: 4, kernel: 3, padding: 1, inputs: [stem]}
  - {name: cat, type: concat, inputs: [a, b]}
  - {name: res, type: add, inputs: [cat, stem]}
  - {name: end, type: relu}
"""

MERMAID = """\
flowchart TD
    n_input[/"input<br/>3×16×16 float32"/]
    n_stem["stem<br/>conv2d+relu<br/>8×16×16"]
    n_a["a<br/>conv2d<br/>4×16×16"]
    n_b["b<br/>conv2d<br/>4×16×16"]
    n_cat["cat<br/>concat<br/>8×16×16"]
    n_res["res<br/>add<br/>8×16×16"]
    n_end(["end<br/>relu<br/>8×16×16"])
    n_input --> n_stem
    n_stem --> n_a
    n_stem --> n_b
    n_a --> n_cat
    n_b --> n_cat
    n_cat --> n_res
    n_stem --> n_res
    n_res --> n_end
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "branching.yaml"
    path.write_text(BRANCHING, encoding="utf-8")
    return path


def test_diagram_graph_follows_the_inputs() -> None:
    g = diagram_graph(analyze(loads(BRANCHING)))
    assert list(g.nodes) == ["input", "stem", "a", "b", "cat", "res", "end"]
    assert list(g.predecessors("cat")) == ["a", "b"]
    assert list(g.predecessors("res")) == ["cat", "stem"]
    assert g.nodes["cat"]["lines"] == ("cat", "concat", "8×16×16")
    assert g.nodes["end"]["role"] == "output"


def test_mermaid_text() -> None:
    # "end" is a Mermaid keyword: node ids are prefixed so any layer name is safe
    assert mermaid(analyze(loads(BRANCHING))) == MERMAID


def test_dot_text() -> None:
    text = dot(analyze(loads(BRANCHING)))
    assert text.startswith('digraph "branching" {\n')
    assert (
        '    "stem" [label="stem\\nconv2d+relu\\n8×16×16", shape=box, style="rounded"];\n' in text
    )
    assert (
        '    "input" [label="input\\n3×16×16 float32", shape=parallelogram, style="solid"];\n'
        in text
    )
    edges = [line.strip() for line in text.splitlines() if "->" in line]
    assert edges == [
        '"input" -> "stem";',
        '"stem" -> "a";',
        '"stem" -> "b";',
        '"a" -> "cat";',
        '"b" -> "cat";',
        '"cat" -> "res";',
        '"stem" -> "res";',
        '"res" -> "end";',
    ]
    assert text.endswith("}\n")


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_graph_works_on_every_shipped_spec(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    analysis = analyze(loads(path.read_text(encoding="utf-8"), str(path)))
    for fmt, arrow in (("mermaid", " --> "), ("dot", " -> ")):
        assert main(["graph", str(path), "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert out.count(arrow) == sum(len(r.inputs) for r in analysis.rows)


def test_graph_output_file(
    spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "g.mmd"
    assert main(["graph", str(spec_file), "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert out.read_text(encoding="utf-8") == MERMAID


def test_graph_of_a_broken_spec_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        BRANCHING.replace("padding: 1, inputs: [stem]", "inputs: [stem]"), encoding="utf-8"
    )
    assert main(["graph", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"{path}:8:39: error: layer 'cat' (concat) on input 4×16×16, 4×14×14: cannot concatenate "
        "4×16×16 and 4×14×14 along axis 0: all other axes must match\n"
    )


def _fake_dot(folder: Path, script: str) -> None:
    """A stand-in for Graphviz's dot, so the plumbing is tested where Graphviz is absent."""
    exe = folder / "dot"
    exe.write_text(f"#!{sys.executable}\n{script}", encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


def test_render_without_graphviz_is_one_line_exit_2(
    spec_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no dot anywhere on PATH
    out = tmp_path / "g.svg"
    assert main(["graph", str(spec_file), "--render", str(out), "-o", str(tmp_path / "g.mmd")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "archspec: error: rendering needs Graphviz's 'dot' program, which is not on PATH"
    )
    assert err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "g.mmd").exists()  # nothing half-done


def test_render_rejects_unknown_image_types(
    spec_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["graph", str(spec_file), "--render", str(tmp_path / "g.jpg")]) == 2
    assert "the file name must end in .svg, .png, .pdf" in capsys.readouterr().err


def test_render_passes_dot_text_to_graphviz(
    spec_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # records its arguments and its input in the output file it is told to write
    _fake_dot(
        bindir,
        "import sys\nopen(sys.argv[3], 'w').write(' '.join(sys.argv[1:3]) + '\\n' + sys.stdin.read())\n",
    )
    monkeypatch.setenv("PATH", str(bindir))
    out = tmp_path / "g.svg"
    assert main(["graph", str(spec_file), "--render", str(out)]) == 0
    head, body = out.read_text(encoding="utf-8").split("\n", 1)
    assert head == "-Tsvg -o"
    assert body == dot(analyze(loads(BRANCHING)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "branching.yaml", "g.svg"]


def test_render_reports_a_graphviz_failure(
    spec_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_dot(
        bindir, "import sys\nsys.stderr.write('Error: syntax error in line 1\\n')\nsys.exit(1)\n"
    )
    monkeypatch.setenv("PATH", str(bindir))
    out = tmp_path / "g.png"
    assert main(["graph", str(spec_file), "--render", str(out)]) == 2
    assert capsys.readouterr().err == (
        "archspec: error: Graphviz's dot failed (exit 1): Error: syntax error in line 1\n"
    )
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bin",
        "branching.yaml",
    ]  # no temporary left


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_render_with_graphviz(spec_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    assert main(["graph", str(spec_file), "--render", str(out)]) == 0
    svg = out.read_text(encoding="utf-8")
    assert "<svg" in svg
    for name in ("stem", "cat", "res", "8×16×16"):
        assert f">{name}</text>" in svg
    assert os.stat(out).st_size > 1000
