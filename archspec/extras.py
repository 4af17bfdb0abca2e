"""Optional dependencies, grouped as the install extras that pyproject.toml declares.

The core (``pip install archspec``) checks, documents and generates code;
each extra adds a backend. A command that needs a missing extra stops with
one line that installs it (:func:`require`), found without importing
anything (``importlib.util.find_spec``).
"""

from __future__ import annotations

import importlib.util

from archspec.errors import MissingExtraError

# extra → the modules it provides (the import names, not the distributions)
EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "safetensors"),
    # export --via torch: torch.onnx's exporter also needs onnxscript (in the torch extra)
    "torch-onnx": ("torch", "safetensors", "onnxscript", "onnx"),
    "onnx": ("onnx", "onnxruntime", "safetensors"),
    "plot": ("matplotlib",),
    "onnxfile": ("onnx",),  # reading an .onnx needs onnx alone; installed by the onnx extra
}


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def install_line(extra: str) -> str:
    return f"pip install 'archspec[{INSTALLED_BY.get(extra, extra)}]'"


# requirements that no extra of their own installs: the extra that brings them
INSTALLED_BY = {"onnxfile": "onnx"}


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` naming ``what`` needs and the line that installs it."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(
            f"{what} needs {', '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} "
            f"not installed: {install_line(extra)}"
        )
