"""docs/tutorial.md and README.md are executed: every command they show runs, and its output is real.

The rules for what runs are in tests/runnable_docs.py: ```` ```yaml
file=NAME ```` and ```` ```diff file=NAME ```` blocks write and edit files,
```` ```console ```` blocks hold ``$ command`` lines and the output each
shows. The tutorial runs in one scratch directory from its first block to
its last; the README runs in a scratch copy of ``specs/``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runnable_docs import (
    Block,
    DocumentError,
    apply_diff,
    blocks,
    commands,
    environment,
    matches,
    report,
    run,
)

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
README = ROOT / "README.md"


# --------------------------------------------------------------------------- the machinery itself


def test_matching_rules() -> None:
    assert matches(["a", "b  ", ""], ["a", "b"])
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "...", "d"], ["a", "d"])
    assert matches(["a", "..."], ["a", "b"])
    assert not matches(["a", "c"], ["a", "b"])
    assert not matches(["a"], ["a", "b"])
    assert not matches(["a.c"], ["abc"])  # shown text is literal, not a pattern


def test_table_output_ignores_numbers_and_column_widths() -> None:
    shown = [" engine   p50 ms", " ──────────────", " torch     0.544  3.12×"]
    wider = [" engine    p50 ms", " ───────────────", " torch      12.35  528×"]
    assert matches(shown, wider, numbers=True, padding=True)
    assert not matches(shown, wider, numbers=True)  # the widths differ
    assert not matches(shown, [*wider[:2], " onnx       12.35  528×"], numbers=True, padding=True)
    assert not matches(shown, [wider[0], wider[2]], numbers=True, padding=True)  # no rule


def test_blocks_and_commands() -> None:
    md = "text\n```console exit=2\n$ archspec check x.yaml\nx.yaml:1:1: error: no\n$ ls\n```\n````yaml\n```\n````\n"
    block, nested = blocks(md)
    assert (block.lang, block.options, block.line, block.end) == ("console", {"exit": "2"}, 2, 6)
    assert [(c.command, c.shown, c.line) for c in commands(block)] == [
        ("archspec check x.yaml", ["x.yaml:1:1: error: no"], 3),
        ("ls", [], 5),
    ]
    assert nested.text == "```\n"


def test_diff_application(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("one\ntwo\nthree\n", encoding="utf-8")
    (block,) = blocks("```diff file=a.yaml\n one\n-two\n+2\n```\n")
    apply_diff(path, block)
    assert path.read_text(encoding="utf-8") == "one\n2\nthree\n"
    with pytest.raises(DocumentError, match="exactly once"):
        apply_diff(path, block)


def test_a_wrong_exit_code_or_output_is_caught(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```console\n$ echo hello\nhullo\n```\n```console output=any\n$ date\nwhenever\n```\n",
        encoding="utf-8",
    )
    outcomes = run(doc, tmp_path)
    assert [o.matches for o in outcomes] == [False, True]
    doc.write_text("```console\n$ false\n```\n", encoding="utf-8")
    with pytest.raises(DocumentError, match="exited 1, the document expects 0"):
        run(doc, tmp_path)


def test_unmarked_blocks_are_prose(tmp_path: Path) -> None:
    """```sh and plain ```yaml blocks are for reading: nothing runs, nothing is written."""
    doc = tmp_path / "doc.md"
    doc.write_text("```sh\nfalse\n```\n```yaml\na: 1\n```\n```console\n$ ls\ndoc.md\n```\n")
    outcomes = run(doc, tmp_path)
    assert [(o.command.command, o.output, o.matches) for o in outcomes] == [
        ("ls", ["doc.md"], True)
    ]
    assert Block("sh", {}, "false\n", 1, 3) == blocks(doc.read_text())[0]


# --------------------------------------------------------------------------- the documents

# The tutorial's framework part (compile, export, run, bench) needs torch and ONNX Runtime and
# takes half a minute; everything before it is pure archspec and takes seconds.
FRAMEWORK_PART = "## 6. "


def _check_clean(workdir: Path) -> None:
    """The spec the tutorial ends with checks clean, warnings included, through the console script."""
    proc = subprocess.run(
        ["archspec", "check", "tinyvgg.yaml", "--strict"],
        cwd=workdir,
        env=environment(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def _shown_commands(markdown: Path, until: str) -> tuple[int, list[str]]:
    """How many commands the document shows before ``until``, and the optional programs
    whose blocks this machine cannot run (``requires=PROGRAM`` not on PATH)."""
    text = markdown.read_text(encoding="utf-8")
    stop = next((n for n, line in enumerate(text.splitlines(), 1) if line.startswith(until)), 0)
    shown, missing = 0, []
    for block in blocks(text):
        if block.lang != "console" or (stop and block.line > stop):
            continue
        needs = block.options.get("requires")
        if needs and shutil.which(needs, path=environment()["PATH"]) is None:
            missing.append(needs)
        else:
            shown += len(commands(block))
    return shown, missing


def test_tutorial_writing_and_checking(tmp_path: Path) -> None:
    outcomes = run(TUTORIAL, tmp_path, until=FRAMEWORK_PART)
    shown, _ = _shown_commands(TUTORIAL, FRAMEWORK_PART)
    assert shown > 0 and len(outcomes) == shown  # every command it shows ran, none more
    assert all(o.matches for o in outcomes), report(TUTORIAL, outcomes)
    _check_clean(tmp_path)


def test_tutorial_optional_programs(tmp_path: Path) -> None:
    """Blocks that need an optional program (Graphviz's ``dot``) run only where it is
    installed; elsewhere this test says which one is missing, and no other test's
    count depends on it."""
    _, missing = _shown_commands(TUTORIAL, FRAMEWORK_PART)
    if missing:
        pytest.skip(f"not installed: {', '.join(sorted(set(missing)))} (optional; blocks skipped)")
    run(TUTORIAL, tmp_path, until=FRAMEWORK_PART)
    assert (tmp_path / "tinyvgg.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


@pytest.mark.slow
def test_tutorial_end_to_end(tmp_path: Path) -> None:
    """The whole tutorial, compile, export, run and bench included, in a fresh interpreter.

    A child process keeps torch's and ONNX Runtime's process-wide settings
    (threads, for one) out of this one and costs one interpreter start.
    """
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("runnable_docs.py")),
            str(TUTORIAL),
            str(tmp_path),
        ],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "tinyvgg.onnx").stat().st_size > 100_000
    assert (tmp_path / "tinyvgg_model.py").read_text(encoding="utf-8").startswith('"""TinyVGG')
    steps = [line.split()[:3] for line in TUTORIAL.read_text(encoding="utf-8").splitlines()]
    for step in ("compile", "export", "run", "bench"):
        assert ["$", "archspec", step] in steps


def test_readme(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    outcomes = run(README, tmp_path)
    assert len(outcomes) >= 2
    assert all(o.matches for o in outcomes), report(README, outcomes)


def test_readme_names_every_command() -> None:
    """The CLI-at-a-glance table lists every subcommand archspec has, and the fixed set-up."""
    from archspec.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    readme = README.read_text(encoding="utf-8")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"`archspec {name}" in readme, f"README.md does not mention 'archspec {name}'"
    for setup in ("make demo", "make test"):
        assert f"\n{setup}\n" in readme
    assert "## Benchmarks" in readme and "docs/benchmarks.md" in readme
