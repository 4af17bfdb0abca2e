"""Executable Markdown: the tutorial and the README are run, and their shown output is checked.

A document is its own script. Three kinds of fenced block take part:

- ```` ```yaml file=NAME ```` writes NAME with the block's text;
- ```` ```diff file=NAME ```` edits NAME: the ``-`` lines, with the context
  lines (which start with a space), must occur in the file exactly once and
  are replaced by the ``+`` lines with the same context;
- ```` ```console ```` holds ``$ command`` lines, each followed by the output
  it shows. Each command runs with bash in a scratch directory, its stdout and
  stderr together as a terminal shows them. The shown output must match
  (trailing spaces are ignored; a line ``...`` stands for any number of
  lines). Words after ``console`` change that: ``exit=N`` (every command of
  the block must exit with N; otherwise 0), ``output=numbers`` (any number
  in the shown output matches any number: for timings and rounding inside
  otherwise fixed text), ``output=table`` (as ``numbers``, and a run of
  spaces or of a rule's ``─`` matches any run of them: for timing tables,
  whose column widths follow the numbers; the words, headers and rows are
  still checked), ``output=any`` (only the exit code is checked) and
  ``requires=PROGRAM`` (skipped when PROGRAM is not installed).

Every other block (```` ```sh ```` set-up commands, plain ```` ```yaml ````
excerpts) is prose. GitHub shows only the first word of an info string, so
the options are invisible to readers.

``tests/test_tutorial.py`` runs the documents and fails on any difference;
``scripts/gen_docs.py --examples`` runs them and rewrites the shown output
where it changed (review the diff: a changed output may be a regression).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from archspec.output_files import write_atomic

COMMAND_TIMEOUT_S = 300

_FENCE = re.compile(r"^(`{3,})(\S*)[ \t]*(.*)$")


@dataclass
class Block:
    """One fenced block: language, ``key=value`` options, text, and where it starts."""

    lang: str
    options: dict[str, str]
    text: str
    line: int  # 1-based line of the opening fence
    end: int  # 1-based line of the closing fence


@dataclass
class Command:
    command: str
    shown: list[str] = field(default_factory=list)
    line: int = 0  # 1-based line of the '$ ' line


@dataclass
class Outcome:
    """What running one command gave, beside what the document shows."""

    block: Block
    command: Command
    exit_code: int
    output: list[str]
    mode: str  # the block's output= option: "exact" (the default), "numbers", "table" or "any"

    @property
    def matches(self) -> bool:
        if self.mode == "any":
            return True
        return matches(
            self.command.shown,
            self.output,
            numbers=self.mode in ("numbers", "table"),
            padding=self.mode == "table",
        )


class DocumentError(AssertionError):
    """The document does not run as written (a bad exit code, a diff that does not apply)."""


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, its info string parsed into language and ``key=value`` options."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, rest = m.groups()
        options = dict(word.split("=", 1) for word in rest.split() if "=" in word)
        end = i + 1
        while end < len(lines) and not (
            lines[end].startswith(fence) and not lines[end].strip("`").strip()
        ):
            end += 1
        found.append(
            Block(
                lang, options, "".join(f"{line}\n" for line in lines[i + 1 : end]), i + 1, end + 1
            )
        )
        i = end + 1
    return found


def commands(block: Block) -> list[Command]:
    """The ``$ `` commands of a console block, each with the output lines shown after it."""
    out: list[Command] = []
    for offset, line in enumerate(block.text.splitlines()):
        if line.startswith("$ "):
            out.append(Command(line[2:], line=block.line + 1 + offset))
        elif out:
            out[-1].shown.append(line)
        elif line.strip():
            raise DocumentError(
                f"line {block.line}: console block text before its first '$ ' command"
            )
    return out


def normal(text: str) -> list[str]:
    """Lines without trailing spaces or trailing blank lines (what a reader cannot see)."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


_NUMBER_PATTERN = r"\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?"  # 18.5, 1,024, 1.5e-08
_NUMBER = re.compile(_NUMBER_PATTERN)


_PADDING = re.compile(r"( +|─+)")


def _text_pattern(text: str, padding: bool) -> str:
    if not padding:
        return re.escape(text)
    return "".join(
        f"{re.escape(part[0])}+" if i % 2 else re.escape(part)
        for i, part in enumerate(_PADDING.split(text))
        if part
    )


def _line_pattern(line: str, numbers: bool, padding: bool = False) -> str:
    if line == "...":
        return ".*?"
    if not numbers:
        return _text_pattern(line, padding)
    parts = _NUMBER.split(line)
    return _NUMBER_PATTERN.join(_text_pattern(p, padding) for p in parts)


def matches(
    shown: list[str], actual: list[str], *, numbers: bool = False, padding: bool = False
) -> bool:
    """The shown output equals the actual output, where a line ``...`` matches any run of lines.

    With ``numbers``, each number shown matches any number (``18.5``,
    ``1,024``, ``1.5e-08``): the words around timings are still checked.
    With ``padding``, a run of spaces or of ``─`` matches any run of the
    same character: a table's columns may be wider or narrower, and a bench
    table's reliability mark (``3.12× !``) is ignored, as numbers are.
    """
    want = normal("\n".join(shown))
    # a bench table's "!" (a result marked unreliable) depends on the load, as numbers do
    if padding:
        actual = [line.replace("× !", "×  ") for line in actual]
    pattern = "\n".join(_line_pattern(line, numbers, padding) for line in want)
    pattern = pattern.replace("\n.*?\n", "(?:\n.*?)?\n")  # '...' may also stand for no lines
    return re.fullmatch(pattern, "\n".join(actual), flags=re.DOTALL) is not None


def environment() -> dict[str, str]:
    """This Python's ``archspec`` first on PATH; no colours, so output is the plain text shown."""
    drop = (
        "FORCE_COLOR",
        "TTY_COMPATIBLE",
        "TTY_INTERACTIVE",
        "COLUMNS",
        "LINES",
        "ARCHSPEC_DEBUG",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    bindir = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",  # stdout and stderr interleave as they do in a terminal
        PYTHONIOENCODING="utf-8",
    )
    return env


def apply_diff(path: Path, block: Block) -> None:
    """Edit ``path`` as a ```` ```diff file=... ```` block says (see the module docstring)."""
    old, new = [], []
    for line in block.text.splitlines():
        tag, body = line[:1], line[1:]
        if tag in (" ", ""):
            old.append(body)
            new.append(body)
        elif tag == "-":
            old.append(body)
        elif tag == "+":
            new.append(body)
        else:
            raise DocumentError(f"line {block.line}: diff lines start with ' ', '-' or '+'")
    text = path.read_text(encoding="utf-8")
    before, after = "\n".join(old) + "\n", "\n".join(new) + "\n"
    if text.count(before) != 1:
        raise DocumentError(
            f"line {block.line}: the '-' lines of the diff are not in {path.name} exactly once"
        )
    path.write_text(text.replace(before, after), encoding="utf-8")


_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?~{}\\\[\]!#]")


def _in_process(argv: list[str], workdir: Path) -> tuple[int, str]:
    """Run ``archspec ARGV`` through :func:`archspec.cli.main.main` in this process.

    Same code as the console script, without a new interpreter per command
    (each costs a second or more of imports on a loaded machine); stdout and
    stderr go to one buffer in the order they are written, as in a terminal.
    """
    from archspec.cli.main import main

    buffer = io.StringIO()
    previous = Path.cwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            try:
                code = main(argv)
            except SystemExit as exc:  # --help and --version exit through argparse
                code = exc.code if isinstance(exc.code, int) else 0
    finally:
        os.chdir(previous)
    return code, buffer.getvalue()


def _execute(command: str, workdir: Path, env: dict[str, str], in_process: bool) -> tuple[int, str]:
    words = None if _SHELL_SYNTAX.search(command) else shlex.split(command)
    if in_process and words and words[0] == "archspec":
        return _in_process(words[1:], workdir)
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def run(
    markdown: Path, workdir: Path, *, in_process: bool = True, until: str | None = None
) -> list[Outcome]:
    """Run a document's blocks in order in ``workdir``.

    With ``in_process``, a plain ``archspec ...`` command (no pipes,
    redirections or other shell syntax) calls the CLI's ``main`` here instead
    of starting the console script; everything else runs with bash. With
    ``until``, the run stops at the first line that starts with it (a
    heading, say), so a document's quick part can be tested on its own.
    Raises :class:`DocumentError` at the first command whose exit code is not
    the one the document expects (later steps depend on earlier ones); output
    differences are collected in the outcomes for the caller to judge.
    """
    env = environment()
    outcomes: list[Outcome] = []
    text = markdown.read_text(encoding="utf-8")
    stop = len(text.splitlines()) + 1
    if until is not None:
        stop = next(
            (n for n, line in enumerate(text.splitlines(), 1) if line.startswith(until)), stop
        )
    for block in blocks(text):
        if block.line > stop:
            break
        if "file" in block.options and block.lang in ("yaml", "yml"):
            (workdir / block.options["file"]).write_text(block.text, encoding="utf-8")
        elif "file" in block.options and block.lang == "diff":
            apply_diff(workdir / block.options["file"], block)
        elif block.lang == "console":
            needs = block.options.get("requires")
            if needs and shutil.which(needs, path=env["PATH"]) is None:
                continue
            want = int(block.options.get("exit", "0"))
            for cmd in commands(block):
                code, text = _execute(cmd.command, workdir, env, in_process)
                output = normal(text)
                if code != want:
                    raise DocumentError(
                        f"{markdown.name}:{cmd.line}: '$ {cmd.command}' exited {code}, "
                        f"the document expects {want}:\n" + "\n".join(output)
                    )
                mode = block.options.get("output", "exact")
                if mode not in ("exact", "numbers", "table", "any"):
                    raise DocumentError(
                        f"line {block.line}: output= is exact, numbers, table or any"
                    )
                outcomes.append(Outcome(block, cmd, code, output, mode))
    return outcomes


def update(markdown: Path, outcomes: list[Outcome]) -> bool:
    """Rewrite the shown output of every checked command whose output differs; True if it changed.

    A ``...`` elision cannot be reproduced, so a command that shows one and
    no longer matches is left for a person to edit (it still fails the test).
    An ``output=any`` command that shows nothing gets the output of this run,
    so that readers see a real sample; once shown it is left alone.
    """
    lines = markdown.read_text(encoding="utf-8").splitlines()
    changed = False
    # Work bottom-up so earlier line numbers stay valid.
    for outcome in sorted(outcomes, key=lambda o: o.command.line, reverse=True):
        sample = outcome.mode == "any" and not outcome.command.shown
        if (outcome.matches and not sample) or "..." in outcome.command.shown:
            continue
        start = outcome.command.line  # 0-based index of the first shown line
        stop = start + len(outcome.command.shown)
        lines[start:stop] = outcome.output
        changed = True
    if changed:
        write_atomic(markdown, "\n".join(lines) + "\n")
    return changed


FIX_HINT = (
    "update the shown output with: python scripts/gen_docs.py --examples (and review the diff)"
)


def report(markdown: Path, outcomes: list[Outcome]) -> str:
    """Every command whose output differs from what the document shows, both versions, and the fix."""
    parts = [
        f"{markdown.name}:{o.command.line}: the output of '$ {o.command.command}' differs from "
        "what the document shows\n--- shown\n"
        + "\n".join(o.command.shown)
        + "\n--- actual\n"
        + "\n".join(o.output)
        for o in outcomes
        if not o.matches
    ]
    return "\n\n".join([*parts, FIX_HINT]) if parts else ""


def main(argv: list[str] | None = None) -> int:
    """``python tests/runnable_docs.py DOC WORKDIR``: run a document in a fresh interpreter.

    The tests use it for the parts that load torch and ONNX Runtime, so that
    the frameworks' process-wide settings (threads, for one) stay out of the
    test process. Exit 0 when every command's output matches, 1 when one
    differs (the differences on stdout), 2 when the document does not run.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python tests/runnable_docs.py")
    parser.add_argument("markdown", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--until", help="stop at the first line starting with this text")
    args = parser.parse_args(argv)
    try:
        outcomes = run(args.markdown, args.workdir, until=args.until)
    except DocumentError as exc:
        print(exc)
        return 2
    differences = report(args.markdown, outcomes)
    print(differences or f"{len(outcomes)} commands ran; every output matches")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
