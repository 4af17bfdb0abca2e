"""Running exported models with ONNX Runtime: providers, sessions, benchmarks.

This package's ``__init__`` stays free of heavy imports — the CLI imports
:class:`RuntimeInputError` at start-up to map it to a one-line error, and
``archspec check`` must never load onnxruntime. The modules that need
onnxruntime (``providers``, ``session``, ``bench``) import it themselves.
"""

from __future__ import annotations


class RuntimeInputError(Exception):
    """Input that export or run cannot use: a corrupt ``.onnx``, a bad ``--input`` array, an
    unusable weights file, an unavailable provider, a spec that does not match a model.

    The CLI prints it as one ``archspec: error: ...`` line and exits 2, the same
    contract as a bad spec: the user gave us something we cannot work with,
    which is not a bug in archspec.
    """
