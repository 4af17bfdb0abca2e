"""The code's layout holds: imports point down, no circles, thin commands, one vocabulary.

Rooms, from the top: cli → bench → runtime → onnx → torch → docs → analysis /
graph → spec / layers → the neutral modules (errors, vocab, version, ...).
Every ``import`` counts, the ones inside functions (lazy imports) included,
since a lazy import that points up is still a dependency that points up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "archspec"

# room → level; an import may go to the same level or lower, never higher.
LEVELS = {
    "archspec.errors": 0,
    "archspec.vocab": 0,
    "archspec.version": 0,
    "archspec.capture": 0,
    "archspec.output_files": 0,
    "archspec.extras": 0,
    "archspec.lints": 0,
    "archspec.tables": 0,
    "archspec.layers": 1,
    "archspec.spec": 1,
    "archspec.graph": 2,
    "archspec.analysis": 3,
    "archspec.diagnose": 3,
    "archspec.report": 3,
    "archspec.resources": 3,
    "archspec.training": 3,
    "archspec.training_report": 3,
    "archspec.docs": 4,
    "archspec.importers": 4,
    "archspec.diff": 4,
    "archspec.torch": 5,
    "archspec.onnx": 6,
    "archspec.runtime": 7,
    "archspec.bench": 8,
    "archspec.cli": 9,
    "archspec.__main__": 9,
    "archspec": 9,  # the package root: the public API, a facade over everything
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room(module: str) -> str:
    """The longest LEVELS key that is the module or a package above it."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in LEVELS:
            return candidate
    raise AssertionError(f"{module} belongs to no room: add it to LEVELS")


def imports() -> dict[str, set[str]]:
    """Every archspec module → the archspec modules it imports anywhere (functions included)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: relative import"
                base = node.module or ""
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    # `from archspec.onnx import model` imports a module, not a name
                    is_module = (PACKAGE.parent / (full.replace(".", "/") + ".py")).is_file()
                    targets.add(full if is_module else base)
        found[name] = {t for t in targets if t == "archspec" or t.startswith("archspec.")}
    return found


def test_every_module_has_a_room() -> None:
    for name in imports():
        room(name)


def test_imports_point_down() -> None:
    upward = [
        f"{src} ({room(src)}, level {LEVELS[room(src)]}) imports {dst} "
        f"({room(dst)}, level {LEVELS[room(dst)]})"
        for src, targets in imports().items()
        for dst in sorted(targets)
        if LEVELS[room(dst)] > LEVELS[room(src)]
    ]
    assert not upward, "\n".join(upward)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circles_between_modules() -> None:
    found = imports()
    graph = {src: {d for d in dsts if d in found and d != src} for src, dsts in found.items()}
    cycle = _cycle(graph)
    assert cycle is None, " → ".join(cycle or [])


def test_no_circles_between_rooms() -> None:
    graph: dict[str, set[str]] = {}
    for src, dsts in imports().items():
        for dst in dsts:
            if room(dst) != room(src):
                graph.setdefault(room(src), set()).add(room(dst))
    cycle = _cycle(graph)
    assert cycle is None, " → ".join(cycle or [])


def test_the_checker_detects_an_upward_import_and_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert LEVELS[room("archspec.onnx.export")] > LEVELS[room("archspec.torch.build")]
    assert room("archspec.bench.run") == "archspec.bench"


COMMANDS = sorted((PACKAGE / "cli" / "commands").glob("*.py"))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.name)
def test_command_modules_are_thin(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines < 200, f"{path.name} has {lines} lines; move the work into the library"


def test_each_vocabulary_is_written_once() -> None:
    """The dtype and activation names appear as string literals only in archspec/vocab.py
    (and in files generated from the registry, such as archspec/layers/_index.py)."""
    words = {"float32", "float16", "bfloat16", "float64", "scaled_tanh", "sigmoid"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name == "vocab.py" or "Generated by archspec.docs.generate; do not edit" in text:
            continue
        tree = ast.parse(text)
        # a tuple, list, set or dict display of two or more of them is a copy of the table
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
                items = node.keys if isinstance(node, ast.Dict) else node.elts
                named = {i.value for i in items if isinstance(i, ast.Constant) and i.value in words}
                if len(named) >= 2:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {sorted(named)}")
    assert not found, "\n".join(found)
