"""Compiler-style diagnostics: one line each, pointing at file:line:column.

Every stage reports problems as :class:`Diagnostic` values instead of raising
ad-hoc exceptions, so the CLI can render them uniformly (text or JSON) and
choose the exit code from their kind alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
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

    def render(self) -> str:
        where = self.file
        if self.position is not None:
            where = f"{where}:{self.position.line}:{self.position.column}"
        text = f"{where}: {self.severity.value}: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return " ".join(text.split("\n"))

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["kind"] = self.kind.value
        pos = data.pop("position")
        data["line"] = pos["line"] if pos else None
        data["column"] = pos["column"] if pos else None
        return data


class SpecError(Exception):
    """Raised when a spec cannot be used at all; carries every diagnostic found so far."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


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
