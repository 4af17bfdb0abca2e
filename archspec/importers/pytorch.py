"""A PyTorch module → spec, by tracing it with ``torch.fx``.

``pkg.module:factory`` or ``file.py:name`` names it: a factory (a function or
a class) is called with no arguments, a module instance is used as it is.
``torch.fx.symbolic_trace`` records the forward pass, so functional calls
(``torch.flatten``, ``F.relu``, ``x + y``) are layers as much as submodules
are. Which kind a submodule or call becomes is each kind's own declaration
(:attr:`~archspec.layers.base.Layer.torch_modules`, ``torch_functions`` and
``from_torch``): a submodule whose class a kind names is traced as one layer;
other submodules are traced through. Layer names are the module paths
(``features.0``); a function call takes its name within the enclosing module.

``expect:`` holds PyTorch's own figures: each submodule's parameter and
buffer elements, and each layer's output shape as the traced module computes
it on a zero input of ``--input``'s shape.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.importers.emit import Imported, layer_entry
from archspec.layers import LAYER_KINDS
from archspec.layers.base import NAME_PATTERN, RESERVED_NAMES, ForeignError, Layer
from archspec.spec.diagnostics import Diagnostic, Kind, Severity, SpecError

if TYPE_CHECKING:
    import torch
    from torch import fx

KIND_NAMES = {cls: name for name, cls in LAYER_KINDS.items()}


def _error(source: str, message: str, hint: str | None = None) -> SpecError:
    return SpecError([Diagnostic(Severity.ERROR, Kind.INPUT, message, source, None, hint)])


@dataclass
class Call:
    """One traced submodule or function call, as a kind's ``from_torch`` sees it."""

    target: str  # the module's class name, or the function / method name
    module: torch.nn.Module | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...] | None
    constant_operands: bool = False  # a number or a stored tensor among the operands

    def arg(self, i: int, name: str, default: Any) -> Any:
        """Argument ``i`` (counting the tensor) or keyword ``name``, else ``default``."""
        if len(self.args) > i:
            return self.args[i]
        return self.kwargs.get(name, default)


def resolve(source: str) -> Any:
    """The object that ``pkg.module:name`` or ``file.py:name`` names."""
    where, _, name = source.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise _error(source, f"cannot import {source}: no file {where}")
            spec = importlib.util.spec_from_file_location(f"archspec_import_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise _error(source, f"cannot import {where}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except SpecError:
        raise
    except Exception as exc:
        raise _error(source, f"cannot import {where}: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, name):
        raise _error(source, f"{where} has no attribute '{name}'")
    return getattr(module, name)


def _instantiate(source: str, obj: Any) -> torch.nn.Module:
    import torch

    if not isinstance(obj, torch.nn.Module):
        if not callable(obj):
            raise _error(source, f"{source} is neither a module nor a factory")
        try:
            obj = obj()
        except Exception as exc:
            raise _error(
                source, f"calling {source}() failed: {type(exc).__name__}: {exc}"
            ) from None
    if not isinstance(obj, torch.nn.Module):
        raise _error(source, f"{source}() returned a {type(obj).__name__}, not a torch.nn.Module")
    return obj.eval()


def _tables() -> tuple[dict[str, list[type[Layer]]], dict[str, list[type[Layer]]]]:
    modules: dict[str, list[type[Layer]]] = {}
    functions: dict[str, list[type[Layer]]] = {}
    for cls in LAYER_KINDS.values():
        for name in cls.torch_modules:
            modules.setdefault(name, []).append(cls)
        for name in cls.torch_functions:
            functions.setdefault(name, []).append(cls)
    return modules, functions


def _trace(
    source: str, model: torch.nn.Module, modules: dict[str, Any], functions: set[str]
) -> fx.GraphModule:
    from torch import fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
            return type(m).__name__ in modules or super().is_leaf_module(m, qualname)

    # Plain Python functions that a kind names (codegen's scaled_tanh) stay one call.
    defining = sys.modules.get(type(model).__module__)
    wrap = (
        tuple(
            f for f in vars(defining).values() if inspect.isfunction(f) and f.__name__ in functions
        )
        if defining is not None
        else ()
    )
    try:
        graph = Tracer(autowrap_functions=wrap).trace(model)
    except Exception as exc:
        raise _error(
            source,
            f"torch.fx cannot trace {source}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            hint="archspec traces with torch.fx.symbolic_trace: data-dependent control flow "
            "cannot be traced",
        ) from None
    return fx.GraphModule(model, graph)


def _name(raw: str, taken: set[str]) -> str:
    """A module path as a layer name: dots kept (as blocks' names), other characters _."""
    name = re.sub(r"[^A-Za-z0-9_.]", "_", raw).strip(".") or "layer"
    name = re.sub(r"\.+", ".", name)
    if not re.match(NAME_PATTERN, name):
        name = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if not name[:1].isalpha() and name[:1] != "_":
            name = "_" + name
    base, n = name, 1
    while name in taken or name in RESERVED_NAMES:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


@dataclass
class _State:
    source: str
    layers: list[dict[str, Any]] = field(default_factory=list)
    kinds: list[type[Layer]] = field(default_factory=list)
    value: dict[str, str] = field(default_factory=dict)  # fx node → layer (or 'input')
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    readers: dict[str, int] = field(default_factory=dict)


def import_module(source: str, input_shape: list[int] | None) -> Imported:
    """Trace the module that ``source`` names on a zero input of ``input_shape`` (C, H, W)."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    if input_shape is None:
        raise _error(source, "a PyTorch module states no input shape", hint="give --input C,H,W")
    model = _instantiate(source, resolve(source))
    modules, functions = _tables()
    gm = _trace(source, model, modules, set(functions))
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
    except Exception as exc:
        raise _error(
            source,
            f"the module fails on a 1×{'×'.join(map(str, input_shape))} input: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
        ) from None
    state = _State(source)
    nodes = list(gm.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise _error(source, f"forward takes {len(placeholders)} inputs; archspec specs take one")
    state.value[placeholders[0].name] = "input"
    state.shapes["input"] = tuple(input_shape)
    for n in nodes:
        for a in n.all_input_nodes:
            state.readers[a.name] = state.readers.get(a.name, 0) + 1
    output = None
    for n in nodes:
        if n.op in ("call_module", "call_function", "call_method"):
            if _is_tensor(n):
                _import_node(state, gm, n, modules, functions)
        elif n.op == "output":
            output = n
    if not state.layers:
        raise _error(source, "the module has no layers archspec can import")
    result: Any = output.args[0] if output is not None else None
    if getattr(result, "name", None) not in state.value or (
        state.value[result.name] != state.layers[-1]["name"]
    ):
        raise _error(source, "the module's output is not its last layer's (one tensor expected)")
    where = source.rpartition(":")[2]
    name = re.sub(r"[^A-Za-z0-9.-]", "-", where).strip("-") or "model"
    if not name[:1].isalpha():
        name = "m" + name
    return Imported(
        name=name,
        title=type(model).__name__,
        source=f"imported from {source} (PyTorch, traced with torch.fx) by archspec import",
        input_shape=list(input_shape),
        layers=state.layers,
    )


def _is_tensor(n: fx.Node) -> bool:
    meta = n.meta.get("tensor_meta")
    return meta is not None and hasattr(meta, "shape")


def _shape(n: Any) -> tuple[int, ...] | None:
    meta = getattr(n, "meta", {}).get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(int(d) for d in meta.shape[1:])


def _data_inputs(n: fx.Node) -> list[fx.Node]:
    """The tensors computed from the input that the call reads (not get_attr, not sizes)."""
    found: list[fx.Node] = []
    for a in n.all_input_nodes:
        if a.op != "get_attr" and _is_tensor(a) and a not in found:
            found.append(a)
    return found


def _import_node(
    state: _State,
    gm: fx.GraphModule,
    n: fx.Node,
    modules: dict[str, list[type[Layer]]],
    functions: dict[str, list[type[Layer]]],
) -> None:
    module = gm.get_submodule(str(n.target)) if n.op == "call_module" else None
    if module is not None:
        target = type(module).__name__
        candidates = modules.get(target, [])
        where = f"module '{n.target}' ({target})"
        raw_name = str(n.target)
    else:
        target = (
            n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n.target))
        )
        candidates = functions.get(target, [])
        where = f"call '{n.name}' ({target})"
        stack = n.meta.get("nn_module_stack") or {}
        scope = next(reversed(stack.values()), None) if stack else None
        path = scope[0] if isinstance(scope, tuple) else None
        base = target.strip("_") or n.name  # fx's own names count across the whole graph
        raw_name = f"{path}.{base}" if path else base
    sources = _data_inputs(n)
    if not candidates:
        raise _error(state.source, f"{where}, which archspec cannot import")
    missing = [s.name for s in sources if s.name not in state.value]
    if missing or not sources:
        raise _error(state.source, f"{where} reads a tensor that no layer computes")
    constant = any(a.op == "get_attr" for a in n.all_input_nodes) or any(
        isinstance(a, (int, float)) for a in n.args if not isinstance(a, bool)
    )
    call = Call(
        target=target,
        module=module,
        args=tuple(n.args),
        kwargs=dict(n.kwargs),
        in_shapes=[_shape(s) or () for s in sources],
        out_shape=_shape(n),
        constant_operands=constant and module is None,
    )
    for cls in candidates:
        try:
            fields = cls.from_torch(call)
        except ForeignError as exc:
            raise _error(state.source, f"{where}: {exc.message} cannot be imported") from None
        if fields is not None:
            break
    else:
        raise _error(state.source, f"{where} has options no archspec kind expresses")
    layer_sources = [state.value[s.name] for s in sources]
    expect: dict[str, Any] = {}
    if call.out_shape is not None:
        expect["output"] = list(call.out_shape)
    if module is not None:
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers())
        if params:
            expect["params"] = params
        if buffers:
            expect["buffers"] = buffers
    type_name = KIND_NAMES[cls]
    prev = state.layers[-1] if state.layers else None
    if (
        prev is not None
        and not fields
        and not expect.get("params")
        and not expect.get("buffers")
        and layer_sources == [prev["name"]]
        and state.readers.get(sources[0].name, 0) == 1
        and "activation" not in prev
        and type_name != "identity"
        and state.kinds[-1].takes_activation(type_name)
    ):
        prev["activation"] = type_name
        for key in ("inputs", "expect"):
            if key in prev:
                prev[key] = prev.pop(key)
        state.value[n.name] = prev["name"]
        return
    name = _name(raw_name, state.taken)
    previous = state.layers[-1]["name"] if state.layers else "input"
    try:
        entry, out = layer_entry(
            cls, name, type_name, fields, list(layer_sources), state.shapes, previous, expect
        )
    except ForeignError as exc:
        raise _error(state.source, f"{where}: {exc.message}") from None
    state.layers.append(entry)
    state.kinds.append(cls)
    state.shapes[name] = out
    state.value[n.name] = name
