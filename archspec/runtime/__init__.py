"""Running exported models with ONNX Runtime: providers (probe and choose), sessions, parity.

This package's ``__init__`` stays free of heavy imports; the modules that
need onnxruntime import it themselves. Benchmarking is :mod:`archspec.bench`.
"""

from __future__ import annotations

from archspec.errors import RuntimeInputError

__all__ = ["RuntimeInputError"]
