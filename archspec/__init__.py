"""archspec: compile and verify neural-network architecture specs.

The checking API (``load``, ``analyze``, ``check``) imports no deep-learning
framework; ``compile``, ``codegen`` and ``export_onnx`` import torch/onnx only
when called. Nothing is imported until it is used: ``import archspec`` is
instant, and so is the start of every command.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from archspec.version import __version__

if TYPE_CHECKING:
    import torch

    from archspec.analysis import Analysis, Row, Totals
    from archspec.diagnose import verify
    from archspec.spec import Spec, SpecError, load, loads
    from archspec.spec.diagnostics import Diagnostic

__all__ = [
    "Analysis",
    "Diagnostic",
    "Row",
    "Spec",
    "SpecError",
    "Totals",
    "__version__",
    "analyze",
    "check",
    "codegen",
    "compile",
    "export_onnx",
    "load",
    "loads",
    "verify",
]

# name → the module that defines it, imported on first use (PEP 562)
_LAZY = {
    "Analysis": "archspec.analysis",
    "Row": "archspec.analysis",
    "Totals": "archspec.analysis",
    "Spec": "archspec.spec",
    "SpecError": "archspec.spec",
    "load": "archspec.spec",
    "loads": "archspec.spec",
    "Diagnostic": "archspec.spec.diagnostics",
    "verify": "archspec.diagnose",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")


def as_spec(spec: Spec | str | os.PathLike[str]) -> Spec:
    from archspec.spec import Spec, load

    return spec if isinstance(spec, Spec) else load(spec)


def analyze(spec: Spec | str | os.PathLike[str]) -> Analysis:
    """Every layer's shape and figures; raises :class:`SpecError` for an unusable spec."""
    from archspec.analysis import analyze as _analyze

    return _analyze(as_spec(spec))


def check(spec: Spec | str | os.PathLike[str]) -> tuple[Analysis, list[Diagnostic]]:
    """Analyse and verify: the figures plus every failed expectation and lint warning."""
    from archspec.diagnose import verify

    analysis = analyze(spec)
    return analysis, verify(analysis)


def compile(
    spec: Spec | str | os.PathLike[str], seed: int | None = 0, **kwargs: Any
) -> torch.nn.Module:
    """Build a PyTorch ``nn.Module`` from a spec (imports torch)."""
    from archspec.extras import require

    require("torch", "archspec.compile")
    from archspec.torch.build import compile_spec

    return compile_spec(as_spec(spec), seed=seed, **kwargs)


def codegen(spec: Spec | str | os.PathLike[str]) -> str:
    """Readable, standalone PyTorch source for a spec (needs no torch to generate)."""
    from archspec.torch.codegen import generate

    return generate(as_spec(spec))


def export_onnx(
    spec: Spec | str | os.PathLike[str], path: str | os.PathLike[str], **kwargs: Any
) -> Any:
    """Export a spec to ONNX: natively (``via="native"``, the default: onnx only), or its
    compiled module through torch.onnx (``via="torch"``, or when ``module=`` is given)."""
    from archspec.extras import require

    via = kwargs.pop("via", "torch" if "module" in kwargs else "native")
    require("onnx", "archspec.export_onnx")
    if via == "native":
        from archspec.onnx.native import export_native

        return export_native(as_spec(spec), path, **kwargs)
    require("torch-onnx", "archspec.export_onnx(via='torch')")
    from archspec.onnx.export import export_spec

    return export_spec(as_spec(spec), path, **kwargs)
