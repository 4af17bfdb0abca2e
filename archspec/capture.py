"""Capturing what C and C++ libraries write to the terminal, so that it can be read instead of shown.

ONNX Runtime and torch.onnx write logs from C++ straight to file descriptor 2
and banners from Python to ``sys.stdout``; :func:`captured_output` takes both.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Captured:
    """What a :func:`captured_output` block wrote to stdout and stderr, at any level."""

    text: str = ""


@contextlib.contextmanager
def captured_output() -> Iterator[Captured]:
    """Send everything written to fds 1 and 2 (and ``sys.stdout``/``sys.stderr``) into a buffer.

    ORT writes its logs from C++ straight to file descriptor 2 and its fallback
    banner from Python to ``sys.stdout``; redirecting only one of the two
    layers leaves the other on the terminal. Where the descriptors cannot be
    duplicated (closed in a daemon) only the Python layer is captured.
    """
    captured = Captured()
    py_sink = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryFile() as sink:
        saved: list[tuple[int, int]] = []
        try:
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(py_sink), contextlib.redirect_stderr(py_sink):
                yield captured
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace") + py_sink.getvalue()
