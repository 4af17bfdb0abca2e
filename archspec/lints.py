"""The lints archspec emits, enumerable: each one's stable id, what it claims, and its proof.

A warning is a claim about the model ("no window reads row 223"). Each lint is
declared next to its rule with :func:`declare`, naming the test that proves the
claim against PyTorch, so the generated spec reference can list every lint with
its proof and a test can check that each proof exists. The id is the
diagnostic's ``code`` in ``check --format json``; ids never change meaning.

A neutral module at the bottom of the import graph: layers/ and graph.py
declare their lints here, docs/ and the diagnostics read them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lint:
    """One kind of warning: ``code`` is its stable id, ``proof`` the test that proves its claim."""

    code: str
    summary: str
    proof: str  # "tests/FILE.py::test_name"


LINTS: dict[str, Lint] = {}
"""Every declared lint by id, in declaration order (filled as the declaring modules import)."""


def declare(code: str, summary: str, proof: str) -> Lint:
    """Register a lint; declaring the same id twice with different text is a programming error."""
    lint = Lint(code, summary, proof)
    if LINTS.setdefault(code, lint) != lint:
        raise ValueError(f"lint id {code!r} declared twice")
    return lint


def all_lints() -> list[Lint]:
    """Every lint archspec can emit, sorted by id (imports the modules that declare them)."""

    return sorted(LINTS.values(), key=lambda lint: lint.code)
