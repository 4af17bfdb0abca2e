"""archspec: compile and verify neural-network architecture specs.

The checking API (``load``, ``analyze``, ``check``) imports no deep-learning
framework; ``compile``, ``codegen`` and ``export_onnx`` import torch/onnx only
when called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from archspec.analysis import Analysis, Row, Totals
from archspec.analysis import analyze as _analyze
from archspec.spec import Spec, SpecError, load, loads
from archspec.spec.diagnostics import Diagnostic
from archspec.verify import verify

if TYPE_CHECKING:
    import torch

__all__ = [
    "Analysis",
    "Diagnostic",
    "Row",
    "Spec",
    "SpecError",
    "Totals",
    "analyze",
    "check",
    "codegen",
    "compile",
    "export_onnx",
    "load",
    "loads",
    "verify",
]
__version__ = "0.1.0"

SpecLike = Spec | str | os.PathLike[str]


def as_spec(spec: SpecLike) -> Spec:
    return spec if isinstance(spec, Spec) else load(spec)


def analyze(spec: SpecLike) -> Analysis:
    """Every layer's shape and figures; raises :class:`SpecError` for an unusable spec."""
    return _analyze(as_spec(spec))


def check(spec: SpecLike) -> tuple[Analysis, list[Diagnostic]]:
    """Analyse and verify: the figures plus every failed expectation and lint warning."""
    analysis = analyze(spec)
    return analysis, verify(analysis)


def compile(spec: SpecLike, seed: int | None = 0, **kwargs: Any) -> torch.nn.Module:
    """Build a PyTorch ``nn.Module`` from a spec (imports torch)."""
    from archspec.torch.build import compile_spec

    return compile_spec(as_spec(spec), seed=seed, **kwargs)


def codegen(spec: SpecLike) -> str:
    """Readable, standalone PyTorch source for a spec (needs no torch to generate)."""
    from archspec.torch.codegen import generate

    return generate(as_spec(spec))


def export_onnx(spec: SpecLike, path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Export a spec's compiled module to ONNX (imports torch and onnx)."""
    from archspec.onnx.export import export_spec

    return export_spec(as_spec(spec), path, **kwargs)
