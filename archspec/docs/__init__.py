"""Documentation generated from the code, so that it cannot drift from it.

Every generated page is a pure function of the layer classes, the pydantic
schema and the shipped specs: :mod:`archspec.docs.schema` (JSON Schema),
:mod:`archspec.docs.reference` (the spec language reference),
:mod:`archspec.docs.card` (one model card per spec) and
:mod:`archspec.docs.diagram` (Mermaid and Graphviz diagrams).
:mod:`archspec.docs.generate` lists every generated file of the repository
so that one script writes them and one test proves they are current.

Nothing here imports torch, onnx or onnxruntime.
"""

from __future__ import annotations

REGENERATE = "python scripts/gen_docs.py"
"""The one command that rewrites every generated file (named in stale-file messages)."""
