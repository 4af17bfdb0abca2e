"""Compiler-style diagnostics: one line each, pointing at file:line:column.

Every stage reports problems as :class:`Diagnostic` values instead of raising
ad-hoc exceptions, so the CLI can render them uniformly (text or JSON) and
choose the exit code from their kind alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Kind(StrEnum):
    """Why a diagnostic exists; decides the exit code (2 for INPUT, 1 for the others)."""

    INPUT = "input"  # the spec cannot be used: unreadable, bad YAML, schema or shape error
    EXPECT = "expect"  # the spec is valid but a published figure disagrees
    LINT = "lint"  # legal but suspicious


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    kind: Kind
    message: str
    file: str
    position: Position | None = None
    hint: str | None = None
    code: str | None = None  # a lint's stable id (archspec.lints), None for other diagnostics
    # Where a layer that a block brought in was used ("in block 'basic' used as 'layer1.0' at …"):
    # the position is the line in the block's definition, the note names the use.
    note: str | None = None

    def render(self) -> str:
        where = self.file
        if self.position is not None:
            where = f"{where}:{self.position.line}:{self.position.column}"
        text = f"{where}: {self.severity.value}: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        if self.note:
            text += f" [{self.note}]"
        return " ".join(text.split("\n"))

    def to_json(self) -> dict[str, object]:
        # Built by hand: dataclasses.asdict deep-copies every field, which dominates
        # `check --format json` on a spec with thousands of errors.
        pos = self.position
        return {
            "severity": self.severity.value,
            "kind": self.kind.value,
            "message": self.message,
            "file": self.file,
            "hint": self.hint,
            "line": pos.line if pos else None,
            "column": pos.column if pos else None,
            "code": self.code,
            "note": self.note,
        }


class SpecError(Exception):
    """Raised when a spec cannot be used at all; carries every diagnostic found so far."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


# Like a compiler's error limit: a stage describes at most this many input errors and
# counts the rest in one last line, so a file of 100,000 broken values is answered in
# about the time of a valid one (describing each error costs far more than finding it).
MAX_ERRORS = 100


def more_errors(file: str, position: Position | None, count: int) -> Diagnostic:
    """The line that stands for the ``count`` errors beyond :data:`MAX_ERRORS`, at the first of them."""
    return Diagnostic(
        Severity.ERROR,
        Kind.INPUT,
        f"{count:,} more error{'s' if count != 1 else ''} like these not shown "
        f"(archspec lists the first {MAX_ERRORS})",
        file,
        position,
    )


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The hint compilers give for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def exit_code(diagnostics: Iterable[Diagnostic], strict: bool = False) -> int:
    """DESIGN.md's contract: 2 unusable input, 1 failed expectation (or warning with --strict)."""
    code = 0
    for d in diagnostics:
        if d.kind is Kind.INPUT and d.severity is Severity.ERROR:
            return 2
        if d.severity is Severity.ERROR or strict:
            code = 1
    return code
