"""The errors archspec reports to a user in one line (exit 2), and how a message becomes one line.

They sit at the bottom of the package so that every stage can raise them and
the CLI can catch them without importing the stage. A ``SpecError`` (which
carries positioned diagnostics) lives with the diagnostics in
:mod:`archspec.spec.diagnostics`.
"""

from __future__ import annotations

import re


class UsageError(Exception):
    """Bad command-line usage or option value: one ``archspec: error:`` line, exit 2."""


class OutputError(Exception):
    """An output path cannot be written (the CLI reports it in one line, exit 2)."""


class ResourceError(Exception):
    """The spec is valid but too large to build here (the CLI reports it in one line, exit 2)."""


class RuntimeInputError(Exception):
    """Input that export or run cannot use: a corrupt ``.onnx``, a bad ``--input`` array, an
    unusable weights file, an unavailable provider, a spec that does not match a model.

    The CLI prints it as one ``archspec: error: ...`` line and exits 2, the same
    contract as a bad spec: the user gave us something we cannot work with,
    which is not a bug in archspec.
    """


class MissingExtraError(Exception):
    """A command needs an optional dependency that is not installed (one line, exit 2)."""


_SOURCE_PREFIX = re.compile(r"/\S+\.(?:cc|cpp|h):\d+ (?:[^()\n]*\([^()]*\)\s*)?")
_STATUS_PREFIX = re.compile(r"\[ONNXRuntimeError\] : \d+ : \w+ : ")


def one_line(text: str, limit: int = 300) -> str:
    """A library's message as one readable line: no C++ source locations or signatures, no newlines.

    ONNX Runtime's messages carry ``/onnxruntime_src/...cc:46 void onnxruntime::f(const
    std::unordered_map<...>&, ...)`` before the sentence that matters, and
    some span several lines; we drop the former and join the latter.
    """
    line = _STATUS_PREFIX.sub("", _SOURCE_PREFIX.sub("", text))
    line = " ".join(line.split())
    if not line:
        return "unknown error"
    return line if len(line) <= limit else line[: limit - 1] + "…"
