"""Which ONNX Runtime execution provider runs a model: probe quietly, choose GPU first.

``onnxruntime-gpu`` lists the TensorRT and CUDA providers whether or not the
machine can load them, and when a session asks for one it cannot load it logs
a coloured error to the C-level stderr, prints an "EP Error" banner from
Python, and silently runs on the CPU. None of that is acceptable on a user's
terminal, and none of it tells the user in one line what happened. So we:

* lower ORT's default logger to errors only,
* redirect the C-level file descriptors 1 and 2 (and Python's ``sys.stdout``
  and ``sys.stderr``) while we try each GPU provider on a one-node model,
* read back what ORT wrote to turn it into a short reason
  (``unavailable (libcublasLt.so.13 not found)``),
* and trust ``session.get_providers()`` — not the list we asked for — to say
  whether the provider really loaded.

The probe runs once per process (it costs about 10 ms where the libraries
are missing; loading CUDA where they are present takes longer).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archspec.capture import captured_output
from archspec.errors import RuntimeInputError, one_line
from archspec.vocab import PROVIDER_CHOICES, PROVIDERS

PREFERENCE = tuple(PROVIDERS)  # what ``auto`` tries, in order
CHOICES = PROVIDER_CHOICES
EXECUTION_PROVIDERS = PROVIDERS
QUIET_SEVERITY = 3  # ORT's logging levels: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal

OrtProvider = str | tuple[str, dict[str, Any]]


class ProviderError(RuntimeInputError):
    """A provider was asked for by name but cannot run here (one line, exit 2)."""


@dataclass(frozen=True)
class ProviderChoice:
    """The provider that will run a model, and why any better one was passed over."""

    name: str  # 'tensorrt' | 'cuda' | 'cpu'
    ort_providers: list[OrtProvider]  # for InferenceSession(providers=...), fallbacks included
    skipped: dict[str, str] = field(default_factory=dict)  # provider name → reason it was skipped
    requested: str = "auto"

    @property
    def execution_provider(self) -> str:
        """ORT's name of the chosen provider, to compare with ``session.get_providers()[0]``."""
        return EXECUTION_PROVIDERS[self.name]

    def describe(self) -> str:
        """One line for the terminal: the provider that runs, and each one skipped with its reason."""
        notes = [f"{name}: {reason}" for name, reason in self.skipped.items()]
        if self.requested == self.name and not notes:
            notes.append("requested")
        return f"provider: {self.name}" + (f" ({'; '.join(notes)})" if notes else "")


def _tiny_model() -> bytes:
    """A one-node float model: enough for a provider to load its libraries and claim the node."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(lib[\w.+-]*?\.so[\w.]*): cannot open shared object file"), r"\1 not found"),
    (re.compile(r"no CUDA-capable device", re.I), "no CUDA device"),
    (re.compile(r"CUDA driver version is insufficient", re.I), "CUDA driver too old"),
    (re.compile(r"install TensorRT libraries", re.I), "TensorRT libraries not found"),
    (re.compile(r"(cudaError\w*)"), r"\1"),
)


def reason_from(text: str) -> str | None:
    """The first recognisable cause in ORT's output, as a few words; None when there is none."""
    for pattern, template in _REASONS:
        match = pattern.search(text)
        if match:
            return match.expand(template)
    return None


_preloaded: str | None = None


def preload_gpu_libraries() -> str:
    """Call ``onnxruntime.preload_dlls()`` once, quietly; return what it printed.

    onnxruntime-gpu does not ship CUDA, cuBLAS or cuDNN; ``preload_dlls``
    loads them from the ``nvidia-*`` wheels that a CUDA build of torch
    installs (and registers ORT's bundled CUDA plugin), so the CUDA provider
    finds them without LD_LIBRARY_PATH. It prints each library it cannot load,
    which we keep as a fallback reason instead of showing it.
    """
    global _preloaded
    if _preloaded is None:
        import onnxruntime as ort

        with captured_output() as out:
            try:
                preload = getattr(ort, "preload_dlls", None)
                if preload is not None:
                    preload()
            except Exception as exc:  # a broken CUDA install must not stop a CPU run
                print(f"preload_dlls failed: {exc}")
        _preloaded = out.text
    return _preloaded


def _try_provider(execution_provider: str, extra: list[OrtProvider] | None = None) -> str | None:
    """Create a session on the tiny model with one GPU provider; None if it really loaded."""
    import onnxruntime as ort

    preload_text = preload_gpu_libraries()
    options = ort.SessionOptions()
    options.log_severity_level = QUIET_SEVERITY
    error = ""
    with captured_output() as out:
        try:
            session = ort.InferenceSession(
                _tiny_model(),
                sess_options=options,
                providers=[execution_provider, *(extra or [])],
                enable_fallback=0,
            )
            used = session.get_providers()
        except Exception as exc:
            used, error = [], str(exc)
    if used and used[0] == execution_provider:
        return None
    cause = reason_from(out.text) or reason_from(error) or reason_from(preload_text)
    if cause is None:
        cause = (
            one_line(error or out.text, 120) if (error or out.text.strip()) else "fell back to CPU"
        )
    return f"unavailable ({cause})"


@functools.cache
def probe() -> dict[str, str | None]:
    """Each provider's usability: None when usable, else a short reason. Quiet; cached per process."""
    import onnxruntime as ort

    ort.set_default_logger_severity(QUIET_SEVERITY)
    available = set(ort.get_available_providers())
    status: dict[str, str | None] = {}
    for name in PREFERENCE:
        ep = EXECUTION_PROVIDERS[name]
        if ep not in available:
            status[name] = "not in this onnxruntime build (install onnxruntime-gpu)"
        elif name == "cpu":
            status[name] = None
        else:
            status[name] = _try_provider(ep)
    return status


def tensorrt_options() -> dict[str, Any]:
    """TensorRT provider options: cache built engines, since building one takes seconds to minutes.

    The cache lives in ``$ARCHSPEC_CACHE_DIR/tensorrt`` (default
    ``~/.cache/archspec/tensorrt``); TensorRT keys each engine by the model and
    the GPU, so a changed model builds a new one.
    """
    root = os.environ.get("ARCHSPEC_CACHE_DIR") or str(Path.home() / ".cache" / "archspec")
    return {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(Path(root) / "tensorrt"),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(Path(root) / "tensorrt"),
    }


def ort_providers(name: str) -> list[OrtProvider]:
    """The provider list for a session on ``name``, with the fallbacks ORT should use per node.

    TensorRT hands the nodes it cannot build to CUDA, and CUDA the ones it has
    no kernel for to the CPU; listing them keeps one unsupported node from
    failing the whole model.
    """
    if name == "tensorrt":
        return [
            (EXECUTION_PROVIDERS["tensorrt"], tensorrt_options()),
            EXECUTION_PROVIDERS["cuda"],
            EXECUTION_PROVIDERS["cpu"],
        ]
    if name == "cuda":
        return [EXECUTION_PROVIDERS["cuda"], EXECUTION_PROVIDERS["cpu"]]
    return [EXECUTION_PROVIDERS["cpu"]]


def choose(requested: str = "auto") -> ProviderChoice:
    """The provider to run on: ``auto`` takes TensorRT, then CUDA, then CPU; a name must be usable.

    Raises :class:`ProviderError` for an unknown name, or for a named provider
    this machine cannot run (``--provider cuda`` without CUDA), rather than
    quietly running somewhere else than the user asked.
    """
    if requested not in CHOICES:
        raise ProviderError(f"unknown provider '{requested}'; choose one of {', '.join(CHOICES)}")
    if requested == "cpu":  # no need to load GPU libraries just to be told to skip them
        return ProviderChoice("cpu", ort_providers("cpu"), {}, requested)
    status = probe()
    if requested != "auto":
        reason = status[requested]
        if reason is not None:
            raise ProviderError(
                f"provider {requested} is not usable on this machine: {reason}; "
                "use --provider auto to run on the best available one"
            )
        return ProviderChoice(requested, ort_providers(requested), {}, requested)
    skipped: dict[str, str] = {}
    for name in PREFERENCE:
        reason = status[name]
        if reason is None:
            return ProviderChoice(name, ort_providers(name), skipped, requested)
        skipped[name] = reason
    raise ProviderError(
        "no ONNX Runtime provider is usable: " + "; ".join(f"{n}: {r}" for n, r in skipped.items())
    )
