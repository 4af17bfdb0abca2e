"""Reading models that already exist elsewhere as specs (``archspec import``).

Each source format has a module that walks its graph; which archspec kind a
foreign layer or op becomes is declared by the kinds themselves (see
:attr:`archspec.layers.base.Layer.caffe_types`), so a new kind is still one class.
"""

from __future__ import annotations

from pathlib import Path

from archspec.importers.emit import Imported, spec_text
from archspec.spec.diagnostics import Diagnostic, Kind, Severity, SpecError

__all__ = ["Imported", "import_model", "spec_text"]

FORMATS = {".prototxt": "Caffe prototxt", ".pbtxt": "Caffe prototxt"}


def import_model(source: str) -> Imported:
    """Read ``source`` (a ``.prototxt``) as an :class:`Imported` model."""
    suffix = Path(source).suffix.lower()
    if suffix in (".prototxt", ".pbtxt"):
        from archspec.importers.caffe import import_caffe

        return import_caffe(source)
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
