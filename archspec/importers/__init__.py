"""Reading models that already exist elsewhere as specs (``archspec import``).

Each source format has a module that walks its graph — ``caffe`` (a prototxt),
``onnxfile`` (an ONNX graph), ``pytorch`` (a module traced with torch.fx);
which archspec kind a foreign layer, op chain or module becomes is declared by
the kinds themselves (:attr:`~archspec.layers.base.Layer.caffe_types`,
``onnx_patterns``, ``torch_modules``), so a new kind is still one class. onnx
and torch are imported only inside the functions that read those sources.
"""

from __future__ import annotations

from pathlib import Path

from archspec.importers.emit import Imported, spec_text
from archspec.spec.diagnostics import Diagnostic, Kind, Severity, SpecError

__all__ = ["Imported", "import_model", "spec_text"]

FORMATS = {
    ".prototxt": "Caffe prototxt",
    ".pbtxt": "Caffe prototxt",
    ".onnx": "ONNX",
    "module.path:factory": "PyTorch module",
    "file.py:name": "PyTorch module",
}


def is_module_reference(source: str) -> bool:
    """``pkg.module:factory`` or ``file.py:name`` (a PyTorch module to trace)."""
    head, sep, tail = source.rpartition(":")
    return bool(sep and head and tail.isidentifier() and not Path(source).exists())


def import_model(source: str, input_shape: list[int] | None = None) -> Imported:
    """Read ``source`` (a ``.prototxt``, an ``.onnx`` or a module reference) as an
    :class:`Imported` model; ``input_shape`` (C, H, W) where the source lacks one."""
    suffix = Path(source).suffix.lower()
    if suffix in (".prototxt", ".pbtxt"):
        from archspec.importers.caffe import import_caffe

        return import_caffe(source)
    if suffix == ".onnx":
        from archspec.extras import require

        require("onnxfile", "importing an .onnx file")
        from archspec.importers.onnxfile import import_onnx

        return import_onnx(source, input_shape)
    if is_module_reference(source):
        from archspec.extras import require

        require("torch", "importing a PyTorch module")
        from archspec.importers.pytorch import import_module

        return import_module(source, input_shape)
    known = ", ".join(sorted(FORMATS))
    raise SpecError(
        [
            Diagnostic(
                Severity.ERROR,
                Kind.INPUT,
                f"cannot import {source}: archspec imports {known} files",
                source,
            )
        ]
    )
