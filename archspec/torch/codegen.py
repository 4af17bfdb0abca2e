"""Readable, standalone PyTorch source for a spec.

The generated file needs only torch: one ``nn.Module`` class named after the
spec, ``__init__`` declaring every layer under its spec name and ``forward``
one line per layer with the output shape as a comment — the model as a person
would write it, so it can be read, diffed and edited.

Why the output cannot drift from :func:`archspec.compile`:

* each layer's constructor is its kind's :class:`~archspec.layers.base.TorchCall`,
  the very object the compiler instantiates, printed with its arguments;
* custom layers are copied verbatim from ``archspec/torch/modules.py``, which
  is written so that each definition stands alone;
* submodules carry the spec's layer names, so the compiled module's
  ``state_dict`` loads into the generated one (and back) and both give
  identical outputs — the tests prove it for every shipped spec.

This module only emits text: it imports no torch, so ``archspec codegen``
runs where torch is not installed. It reads ``modules.py`` as source (``ast``)
instead of importing it for :func:`inspect.getsource`.

Long lines are broken the way ruff format (and black) break them, so the
generated file passes ``ruff check`` and ``ruff format --check`` at line
length 100.
"""

from __future__ import annotations

import ast
import keyword
import re
import textwrap
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from archspec.analysis import Analysis, analyze
from archspec.graph import INPUT
from archspec.layers.base import Shape, TorchCall, fmt_shape
from archspec.spec import Spec
from archspec.torch.names import check_layer_names
from archspec.version import __version__
from archspec.vocab import ACTIVATIONS, DTYPES

LINE_LENGTH = 100
INDENT = "    "

# How the ``activation:`` shorthand reads in source; the tests check that each
# expression is the very function archspec.torch.modules.ACTIVATIONS applies.
ACTIVATION_SOURCE = {name: form.torch for name, form in ACTIVATIONS.items()}

MODULES_FILE = Path(__file__).with_name("modules.py")
_IMPORT_NAMES = ("torch", "nn", "F", "math")
_TORCH_DTYPE = {name: f"torch.{d.torch}" for name, d in DTYPES.items()}


# ---------------------------------------------------------------------------
# Expressions, rendered like ruff format / black would render them.


@dataclass(frozen=True)
class Atom:
    """A piece of source that is never split (a name, a number, a short tuple)."""

    text: str


@dataclass(frozen=True)
class Bracket:
    """``head(item, item)`` or ``[item, item]``: split at the brackets when too long."""

    head: str
    open: str
    items: tuple[Node, ...]
    close: str


@dataclass(frozen=True)
class Keyword:
    """``name=value`` inside a call."""

    name: str
    value: Node


Node = Atom | Bracket | Keyword


def flat(node: Node) -> str:
    """The expression on one line."""
    if isinstance(node, Atom):
        return node.text
    if isinstance(node, Keyword):
        return f"{node.name}={flat(node.value)}"
    return f"{node.head}{node.open}{', '.join(flat(i) for i in node.items)}{node.close}"


def render(node: Node, indent: str, prefix: str = "", suffix: str = "") -> list[str]:
    """Lines for ``prefix + node + suffix`` at ``indent``, split as ruff format splits them.

    The rules are black's for calls and literals: keep the line if it fits;
    else break after the opening bracket and try the contents on one indented
    line (no trailing comma); else one item per line with a trailing comma —
    or, for a single item, split that item in turn. An assignment whose
    ``target = callee(`` alone is too long gets its right-hand side in parentheses.
    """
    one_line = f"{indent}{prefix}{flat(node)}{suffix}"
    if len(one_line) <= LINE_LENGTH:
        return [one_line]
    if isinstance(node, Keyword):
        return render(node.value, indent, f"{prefix}{node.name}=", suffix)
    if isinstance(node, Atom) or not node.items:
        return [one_line]
    inner = indent + INDENT
    head = f"{indent}{prefix}{node.head}{node.open}"
    if len(head) > LINE_LENGTH and prefix.endswith(" = "):
        # The target and callee alone are too long: parenthesise the right-hand side.
        return [f"{indent}{prefix}(", *render(node, inner), f"{indent}){suffix}"]
    tail = f"{indent}{node.close}{suffix}"
    body = f"{inner}{', '.join(flat(i) for i in node.items)}"
    if len(body) <= LINE_LENGTH:
        return [head, body, tail]
    if len(node.items) == 1:
        return [head, *render(node.items[0], inner), tail]
    lines = [head]
    for item in node.items:
        lines.extend(render(item, inner, suffix=","))
    return [*lines, tail]


def literal(value: object) -> Node:
    """A TorchCall argument as source: the ``repr`` of a Python literal, strings double-quoted."""
    if isinstance(value, str):
        return Atom(_string(value))
    if isinstance(value, list):
        return Bracket("", "[", tuple(literal(v) for v in value), "]")
    if isinstance(value, tuple) and len(value) != 1:
        return Bracket("", "(", tuple(literal(v) for v in value), ")")
    if isinstance(value, (bool, int, float, tuple)) or value is None:
        return Atom(repr(value))
    raise TypeError(f"cannot print {type(value).__name__} {value!r} as a constructor argument")


def _string(text: str) -> str:
    """repr() with the double quotes that ruff format prefers."""
    body = repr(text)[1:-1]
    if repr(text)[0] == '"':  # repr chose double quotes because the text has a single quote
        return f'"{body}"'
    return '"' + body.replace("\\'", "'").replace('"', '\\"') + '"'


def call_node(call: TorchCall) -> Bracket:
    """The constructor call; ``flat`` of it is ``call.source()`` up to the quotes of strings."""
    items = [literal(a) for a in call.args]
    items += [Keyword(k, literal(v)) for k, v in call.kwargs.items()]
    return Bracket(call.callable, "(", tuple(items), ")")


# ---------------------------------------------------------------------------
# Custom layers, copied from modules.py.


@dataclass(frozen=True)
class Definition:
    name: str
    source: str
    order: int  # position in modules.py, so copies keep the file's order
    uses: frozenset[str] = field(default_factory=frozenset)  # other definitions it names
    names: frozenset[str] = field(default_factory=frozenset)  # every global it reads (F, math)


@cache
def definitions() -> dict[str, Definition]:
    """Every top-level class and function of modules.py, with its source and what it uses."""
    text = MODULES_FILE.read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.splitlines()
    top = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    names = {n.name for n in top}
    found: dict[str, Definition] = {}
    for order, node in enumerate(top):
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = node.end_lineno or node.lineno
        read = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        used = frozenset(read & names - {node.name})
        source = "\n".join(lines[start - 1 : end])
        found[node.name] = Definition(node.name, source, order, used, frozenset(read))
    return found


def needed_definitions(names: set[str]) -> list[Definition]:
    """The named definitions and everything they use, in modules.py's order."""
    table = definitions()
    unknown = sorted(n for n in names if n not in table)
    if unknown:
        raise ValueError(f"no definition of {', '.join(unknown)} in {MODULES_FILE.name}")
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(table[name].uses)
    return sorted((table[n] for n in seen), key=lambda d: d.order)


# ---------------------------------------------------------------------------
# The generated file.


def class_name(spec_name: str) -> str:
    """CamelCase of the spec name: lenet5-lecun1998 → Lenet5Lecun1998.

    A name that the file already uses (``F``, ``RBF``, ``Subsample``) gets
    ``Model`` appended, so the class never shadows what its code calls.
    """
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", spec_name) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    if name in {*_IMPORT_NAMES, *definitions()}:
        name += "Model"
    return name


@dataclass
class _Plan:
    """Names in the generated file: the class, each layer's attribute and each value's variable."""

    cls: str
    variables: dict[str, str | None]  # value (layer or INPUT) → variable; None: never read


def _plan(analysis: Analysis, custom: set[str]) -> _Plan:
    graph = analysis.graph
    cls = class_name(analysis.spec.name)
    globals_ = {*_IMPORT_NAMES, *definitions()}
    consumers: dict[str, list[str]] = {INPUT: []}
    for name in graph.order:
        consumers.setdefault(name, [])
        for src in graph.inputs[name]:
            consumers.setdefault(src, []).append(name)
    steps = [INPUT, *graph.order]
    taken = {*globals_, cls, "self", "x", *custom}
    variables: dict[str, str | None] = {}
    for i, value in enumerate(steps):
        users = consumers[value]
        following = steps[i + 1] if i + 1 < len(steps) else None
        if value == graph.output and following is None:
            variables[value] = "x"
        elif value == graph.output or len(users) > 1 or (users and users[0] != following):
            # layer1.0.relu → layer1_0_relu: a dotted name is no Python variable
            variables[value] = _fresh("x_in" if value == INPUT else value.replace(".", "_"), taken)
        elif users:
            variables[value] = "x"  # read once, by the very next line: let it flow through x
        else:
            variables[value] = None
    return _Plan(cls, variables)


def _fresh(name: str, taken: set[str]) -> str:
    """``name``, or ``name_``, ``name__`` ..., whichever is not a keyword or already used."""
    while keyword.iskeyword(name) or name in taken:
        name += "_"
    taken.add(name)
    return name


def _attribute(name: str) -> str:
    """How forward reaches a layer: ``self.conv1``, or by name for a Python keyword or a
    block's dotted name (``self.get_submodule("layer1.0.conv1")``)."""
    if keyword.iskeyword(name) or "." in name:
        return f'self.get_submodule("{name}")'
    return f"self.{name}"


def _add_module(name: str, node: Node) -> list[str]:
    """``self.add_module(...)`` for a top-level name, else on the container that holds it."""
    parent, _, leaf = name.rpartition(".")
    owner = f'self.get_submodule("{parent}").add_module' if parent else "self.add_module"
    return render(Bracket(owner, "(", (Atom(_string(leaf)), node), ")"), INDENT * 2)


def _comment(shape: Shape) -> str:
    return f"  # {list(shape)}"


def _docstring(text: str, indent: str) -> list[str]:
    """A triple-quoted docstring of ``text``, wrapped to the line length, safe for any text.

    Backslashes, triple quotes and unprintable characters are escaped, so
    the docstring's value is the text; words are never broken, so an escape
    sequence is never split across lines.
    """
    safe = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    width = LINE_LENGTH - len(indent) - 3  # room for the opening quotes on the first line
    lines: list[str] = []
    for para in safe.split("\n\n"):
        if lines:
            lines.append("")
        words = " ".join(para.split())
        words = "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in words
        )
        wrapped = textwrap.wrap(words, width=width, break_long_words=False, break_on_hyphens=False)
        lines.extend(wrapped or [""])
    if len(lines) == 1 and len(indent) + len(lines[0]) + 6 <= LINE_LENGTH:
        end = " " if lines[0].endswith('"') else ""  # not four quotes in a row
        return [f'{indent}"""{lines[0]}{end}"""']
    return [
        f'{indent}"""{lines[0]}',
        *(f"{indent}{line}" if line else "" for line in lines[1:]),
        f'{indent}"""',
    ]


def generate(spec: Spec, analysis: Analysis | None = None) -> str:
    """The Python source of a standalone module for ``spec`` (raises SpecError for a bad spec)."""
    analysis = analysis or analyze(spec)
    check_layer_names(spec)
    graph = analysis.graph
    calls = {row.name: graph.layers[row.name].torch_call(row.input_shapes) for row in analysis.rows}
    custom = {c.callable for c in calls.values() if not c.callable.startswith("nn.")}
    activations = {row.activation for row in analysis.rows if row.activation}
    unknown = sorted(a for a in activations if a not in ACTIVATION_SOURCE)
    if unknown:
        raise ValueError(f"codegen has no source form for activation {', '.join(unknown)}")
    custom |= {ACTIVATION_SOURCE[a] for a in activations} & set(definitions())
    copied = needed_definitions(custom)
    plan = _plan(analysis, {d.name for d in copied})

    init = [f"{INDENT * 2}super().__init__()"]
    containers: set[str] = set()
    for row in analysis.rows:
        node = call_node(calls[row.name])
        if "." in row.name:  # a block's layer: nested in containers, as PyTorch names it
            path = row.name.split(".")[:-1]
            for cut in range(1, len(path) + 1):
                prefix = ".".join(path[:cut])
                if prefix not in containers:
                    containers.add(prefix)
                    init += _add_module(prefix, Atom("nn.Module()"))
            init += _add_module(row.name, node)
        elif keyword.iskeyword(row.name):
            init += render(
                Bracket("self.add_module", "(", (Atom(_string(row.name)), node), ")"), INDENT * 2
            )
        else:
            init += render(node, INDENT * 2, prefix=f"self.{row.name} = ")

    variables = plan.variables
    x_in = variables[INPUT] or "x"
    forward = []
    for row in analysis.rows:
        args = tuple(Atom(variables[s] or "x") for s in row.inputs)
        expr: Node = Bracket(_attribute(row.name), "(", args, ")")
        if row.activation:
            expr = Bracket(ACTIVATION_SOURCE[row.activation], "(", (expr,), ")")
        target = variables[row.name]
        prefix = f"{target} = " if target else ""
        comment = _comment(row.output) + ("" if target else ", never read")
        lines = render(expr, INDENT * 2, prefix=prefix)
        if len(lines) == 1 and len(lines[0] + comment) <= LINE_LENGTH:
            forward.append(lines[0] + comment)
        else:  # the shape goes above, where it cannot push the statement over the limit
            forward.append(f"{INDENT * 2}# {row.name}: {list(row.output)}")
            forward += lines
    forward.append(f"{INDENT * 2}return {variables[graph.output]}")

    spec_title = spec.title or spec.name
    totals = analysis.totals
    dtype = spec.input.dtype
    in_shape = analysis.input_shape
    figures = f"{totals.params:,} trainable parameters"
    if totals.buffers:
        figures += f" and {totals.buffers:,} buffer elements"
    header = [
        f"{spec_title}: PyTorch source generated by archspec {__version__} from spec {spec.name}.",
        *([f"Source: {spec.source}"] if spec.source else []),
        f"Input: a batch [N, {', '.join(map(str, in_shape))}] of {dtype}; output: "
        f"[N, {', '.join(map(str, analysis.output_shape))}]. {figures}; "
        f"{totals.macs:,} multiply-accumulates per sample.",
        f"Regenerate rather than edit: archspec codegen {_spec_file(spec)}",
    ]
    code = [*_docstring("\n\n".join(header), ""), "", "from __future__ import annotations", ""]
    code += _imports(activations, copied)
    for d in copied:
        code += ["", "", d.source]
    class_doc = f"{spec_title}: {fmt_shape(in_shape)} → {fmt_shape(analysis.output_shape)}."
    code += [
        "",
        "",
        f"class {plan.cls}(nn.Module):",
        *_docstring(class_doc, INDENT),
        "",
        f"{INDENT}input_shape = {flat(literal(tuple(in_shape)))}",
        "",
        f"{INDENT}def __init__(self) -> None:",
        *init,
        "",
        f"{INDENT}def forward(self, {x_in}: torch.Tensor) -> torch.Tensor:",
        *forward,
        "",
        "",
        'if __name__ == "__main__":',
        *_demo(plan.cls, dtype),
    ]
    return "\n".join(code) + "\n"


def _imports(activations: set[str], copied: list[Definition]) -> list[str]:
    """What the emitted code reads, nothing more (ruff flags an unused import)."""
    read = {"torch", "nn"} | {ACTIVATION_SOURCE[a].split(".")[0] for a in activations}
    for d in copied:
        read |= d.names
    lines = ["import math", ""] if "math" in read else []
    lines += ["import torch"]
    if "F" in read:
        lines += ["import torch.nn.functional as F"]
    return [*lines, "from torch import nn"]


def _demo(cls: str, dtype: str) -> list[str]:
    """A smoke run when the file is executed: build, run a batch of two, print the figures."""
    to = "" if dtype == "float32" else f".to({_TORCH_DTYPE[dtype]})"
    kw = "" if dtype == "float32" else f", dtype={_TORCH_DTYPE[dtype]}"
    return [
        f"{INDENT}model = {cls}(){to}.eval()",
        f"{INDENT}with torch.no_grad():",
        f"{INDENT * 2}out = model(torch.randn(2, *model.input_shape{kw}))",
        f"{INDENT}params = sum(p.numel() for p in model.parameters())",
        f'{INDENT}print(f"{{type(model).__name__}}: {{params:,}} parameters; output {{list(out.shape)}}")',
    ]


def _spec_file(spec: Spec) -> str:
    doc = spec.document
    if doc is None or doc.file.startswith("<"):  # built in Python or loaded from a string
        return f"{spec.name}.yaml"
    path = Path(doc.file)
    return path.name if path.is_absolute() else path.as_posix()
