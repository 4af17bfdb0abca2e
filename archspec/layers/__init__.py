"""Layer kinds, discovered: every concrete :class:`Layer` subclass in this package is a kind.

The registry names no kind itself, so adding a kind is adding one class.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing

from archspec.layers.base import Counts, Layer, ReceptiveField, Shape, ShapeError, TorchCall

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def _kind(cls: type[Layer]) -> str | None:
    annotation = cls.model_fields["type"].annotation
    if typing.get_origin(annotation) is typing.Literal:
        return str(typing.get_args(annotation)[0])
    return None


def _concrete(cls: type[Layer]) -> list[type[Layer]]:
    found = [cls] if _kind(cls) else []
    for sub in cls.__subclasses__():
        found.extend(_concrete(sub))
    return found


LAYER_KINDS: dict[str, type[Layer]] = {
    kind: cls for cls in _concrete(Layer) if (kind := _kind(cls)) is not None
}

__all__ = ["LAYER_KINDS", "Counts", "Layer", "ReceptiveField", "Shape", "ShapeError", "TorchCall"]
