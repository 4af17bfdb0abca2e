"""Export a spec's compiled module to ONNX, every layer's output a named value.

Why the dynamo exporter (``torch.onnx.export(..., dynamo=True)``): on
AlexNet it emits 40 nodes where the TorchScript exporter emits 148 — the
latter expands each LRN into ``If``/``ConstantOfShape``/``Shape``/``Gather``
chains — and it is the maintained exporter (TorchScript's is deprecated). It
costs about 5 s more CPU per process, mostly fixed start-up (docs/onnx.md has
the measurements). It needs opset 18 or newer for the LRN specs: its 18→17
version converter has no adapter for ``Pad``.

How the layer names get into the graph: a wrapper's ``forward`` returns
every layer's output (:meth:`SpecModule.forward_layers`), so each one is a
graph output the exporter must keep; :mod:`archspec.onnx.names` then gives
them their layer names and demotes all but the model's output to
intermediate values. ONNX Runtime therefore runs exactly the model graph,
while ``with_outputs`` can still expose any layer for verification.

A failure anywhere leaves no file: the model is built and shape-checked in
memory, written to a temporary file through :func:`archspec.output_files.atomic_path`,
checked there with ``onnx.checker``, and only then renamed into place.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.analysis import Analysis, analyze
from archspec.capture import captured_output
from archspec.errors import RuntimeInputError, one_line
from archspec.onnx import model as meta
from archspec.onnx.names import PLACEHOLDER, cast_layer_values, name_layer_values
from archspec.onnx.shapes import check_shapes
from archspec.output_files import atomic_path, check_output_path
from archspec.spec import Spec
from archspec.torch.weights import WeightsError, load_weights
from archspec.version import __version__
from archspec.vocab import DEFAULT_OPSET, DTYPES, MIN_OPSET

if TYPE_CHECKING:
    import onnx
    import torch

    from archspec.torch.build import SpecModule

# Exporting holds the weights about four times over: the module, the traced
# program's constants, the ModelProto and its serialised bytes (AlexNet-2012,
# 244 MB of weights: 1.36 GB peak RSS, of which ~0.45 GB is torch and onnx).
EXPORT_COPIES = 4
WRAPPER_ATTR = "model"


class ExportError(RuntimeInputError):
    """The spec cannot be exported as asked (an unreachable opset, an exporter failure)."""


@dataclass(frozen=True)
class ExportResult:
    """What was written, and the facts a caller needs to run or check it."""

    path: Path
    spec_name: str
    opset: int
    dtype: str  # element type of the weights, input and output
    seconds: float  # wall time of export_spec, compile included
    # seconds per step: compile, trace, finish, shapes, serialize, write, check
    timings: dict[str, float]
    input_name: str
    output_name: str
    value_names: tuple[str, ...]  # one named ONNX value per spec layer, in graph order
    shapes: dict[str, list[int | str | None] | None]  # ONNX shape inference's shape per layer
    metadata: dict[str, str]
    size_bytes: int
    nodes: int
    weights: str  # "seed:N", "file:NAME" or "module"
    model: onnx.ModelProto | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "spec": self.spec_name,
            "opset": self.opset,
            "dtype": self.dtype,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "input": self.input_name,
            "output": self.output_name,
            "values": list(self.value_names),
            "size_bytes": self.size_bytes,
            "nodes": self.nodes,
            "weights": self.weights,
            "metadata": self.metadata,
        }


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Keep torch.onnx's warnings, progress lines and logger chatter off the terminal."""
    names = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), captured_output():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


_REGISTRIES: dict[Any, Any] = {}


@contextlib.contextmanager
def _reuse_torchlib_registry() -> Iterator[None]:
    """Build torch.onnx's table of ATen→ONNX functions once per process, not once per export.

    ``torch.onnx.export`` rebuilds it on every call (about 2 s of CPU on torch
    2.13, a fifth of an AlexNet export and most of a LeNet one); it is not
    modified during an export, so a second export in the same process (tests,
    ``run`` after ``export``, benchmarks) can reuse it. This touches a private
    torch API, so where that API is not as expected we leave torch alone.
    """
    try:
        from torch.onnx._internal.exporter import _registration

        cls = _registration.ONNXRegistry
        original = cls.__dict__["from_torchlib"]
        build = original.__func__
    except (ImportError, AttributeError, KeyError):
        yield
        return

    def from_torchlib(klass: type, *args: Any, **kwargs: Any) -> Any:
        key = (klass, args, tuple(sorted(kwargs.items())))
        if key not in _REGISTRIES:
            _REGISTRIES[key] = build(klass, *args, **kwargs)
        return _REGISTRIES[key]

    setattr(cls, "from_torchlib", classmethod(from_torchlib))  # noqa: B010
    try:
        yield
    finally:
        setattr(cls, "from_torchlib", original)  # noqa: B010


def _wrapper(module: SpecModule) -> torch.nn.Module:
    """A module whose forward returns every layer's output, so each becomes a graph output."""
    import torch

    class AllLayers(torch.nn.Module):
        def __init__(self, inner: SpecModule) -> None:
            super().__init__()
            setattr(self, WRAPPER_ATTR, inner)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            inner: SpecModule = getattr(self, WRAPPER_ATTR)
            return tuple(inner.forward_layers(x).values())

    return AllLayers(module).eval()


def _prepare_module(
    spec: Spec,
    analysis: Analysis,
    *,
    seed: int | None,
    weights: str | os.PathLike[str] | None,
    dtype: str,
    module: SpecModule | None,
    max_params: int | None,
) -> tuple[SpecModule, str]:
    """The module to export, in ``dtype``, and a record of where its weights came from."""
    import torch

    from archspec.torch.build import TORCH_DTYPES, compile_spec

    if module is not None:
        plan = [step[0] for step in getattr(module, "plan", [])]
        if plan != [row.name for row in analysis.rows]:
            raise ExportError(f"the module given does not have the layers of spec {spec.name}")
        if weights is not None:
            load_weights(module, weights, spec.name)
        want = TORCH_DTYPES[dtype]
        current = next(iter(module.state_dict().values()), torch.empty(0, dtype=want)).dtype
        if current != want:  # never convert the caller's module in place
            module = copy.deepcopy(module).to(want)
        source = f"file:{Path(weights).name}" if weights is not None else "module"
        return module.eval(), source
    built = compile_spec(spec, seed=seed, analysis=analysis, max_params=max_params, dtype=dtype)
    if weights is not None:
        load_weights(built, weights, spec.name)
        return built, f"file:{Path(weights).name}"
    return built, f"seed:{seed}" if seed is not None else "unseeded"


def output_order(analysis: Analysis) -> str:
    """How the output ranks classes: ascending where the smallest is best (a distance)."""
    output = analysis.graph.layers[analysis.graph.output]
    return "ascending" if output.smaller_is_better else "descending"


def choose_opset(analysis: Analysis, opset: int | None) -> int:
    """``opset`` if given, else the newer of the default and the oldest every layer accepts.

    Each layer states the oldest opset that computes it as PyTorch does
    (``Layer.onnx_opset``); asking for an older one is an ExportError naming the layer.
    """
    needs = [
        (need, row.name, why)
        for row in analysis.rows
        if (found := analysis.graph.layers[row.name].onnx_opset(row.input_shapes)) is not None
        for need, why in [found]
    ]
    if opset is None:
        return max([DEFAULT_OPSET, *(need for need, _, _ in needs)])
    for need, name, why in needs:
        if opset < need:
            raise ExportError(
                f"layer '{name}': {why}; opset {opset} cannot express it: "
                f"use --opset {need} or newer (or leave --opset out)"
            )
    return opset


def export_opset(analysis: Analysis, opset: int | None) -> int:
    """The opset to write (the one asked for, else the newest any layer needs), refused with
    :class:`ExportError` when older than archspec writes or newer than this onnx knows.
    Both exporters (native and via torch) start here."""
    if opset is not None and (not isinstance(opset, int) or opset < MIN_OPSET):
        raise ExportError(f"opset {opset} is too old; archspec exports opset {MIN_OPSET} or newer")
    opset = choose_opset(analysis, opset)
    import onnx

    if opset > onnx.defs.onnx_opset_version():
        raise ExportError(
            f"opset {opset} is newer than this onnx {onnx.__version__} knows "
            f"(up to {onnx.defs.onnx_opset_version()})"
        )
    return opset


def export_spec(
    spec: Spec,
    path: str | os.PathLike[str],
    *,
    seed: int | None = 0,
    weights: str | os.PathLike[str] | None = None,
    opset: int | None = None,
    fp16: bool = False,
    module: SpecModule | None = None,
    analysis: Analysis | None = None,
    max_params: int | None = None,
    keep_model: bool = False,
) -> ExportResult:
    """Export ``spec`` to an ONNX file at ``path`` with a dynamic batch axis.

    Weights come from ``weights`` (a state_dict file) if given, else from
    ``module`` (an already compiled :class:`SpecModule`, exported as is), else
    from ``seed``. ``fp16`` converts weights, input and output to float16.
    The model passes ``onnx.checker.check_model(full_check=True)`` and ONNX
    shape inference must give every layer the calculator's shape, or
    :class:`ExportError` is raised and nothing is written.
    ``keep_model`` returns the ModelProto in the result (saves re-reading it).
    """
    start = time.perf_counter()
    timings: dict[str, float] = {}
    target = check_output_path(path)
    analysis = analysis or analyze(spec)
    opset = export_opset(analysis, opset)
    import onnx

    dtype = "float16" if fp16 else spec.input.dtype
    if weights is not None and not Path(weights).is_file():
        raise WeightsError(f"{weights}: no such weights file")

    if module is None:
        from archspec.resources import check_fits

        check_fits(analysis, max_params, dtype, copies=EXPORT_COPIES, purpose="export")
    t = time.perf_counter()
    mod, source = _prepare_module(
        spec,
        analysis,
        seed=seed,
        weights=weights,
        dtype=dtype,
        module=module,
        max_params=max_params,
    )
    timings["compile"] = time.perf_counter() - t

    t = time.perf_counter()
    model = _trace(spec, analysis, mod, opset, dtype)
    timings["trace"] = time.perf_counter() - t

    t = time.perf_counter()
    names = tuple(row.name for row in analysis.rows)
    output = analysis.graph.output
    text_hash, canonical_hash = meta.spec_hashes(spec)
    import torch

    props = {
        meta.KEY_VERSION: __version__,
        meta.KEY_SPEC_NAME: spec.name,
        meta.KEY_SPEC_SHA256: text_hash,
        meta.KEY_SPEC_CANONICAL: canonical_hash,
        meta.KEY_WEIGHTS: source,
        meta.KEY_DTYPE: dtype,
        meta.KEY_LAYERS: json.dumps(list(names)),
        meta.KEY_OUTPUT: output,
        meta.KEY_OUTPUT_ORDER: output_order(analysis),
        meta.KEY_EXPORTER: f"torch {torch.__version__} (dynamo exporter)",
    }
    if weights is not None:
        props[meta.KEY_WEIGHTS_SHA256] = meta.sha256_file(weights)
    _finish(model, spec, props)
    timings["finish"] = time.perf_counter() - t

    t = time.perf_counter()
    shape_check = check_shapes(model, analysis)
    if not shape_check.ok:
        more = len(shape_check.mismatches) - 1
        raise ExportError(
            f"ONNX shape inference disagrees with the calculator on {spec.name}: "
            f"{shape_check.mismatches[0]}" + (f" (and {more} more layers)" if more else "")
        )
    timings["shapes"] = time.perf_counter() - t

    t = time.perf_counter()
    try:
        data = model.SerializeToString()
    except ValueError:  # protobuf refuses messages over 2 GiB
        raise ExportError(
            f"{spec.name} exports to more than 2 GiB, protobuf's limit for one .onnx file"
        ) from None
    size = len(data)
    timings["serialize"] = time.perf_counter() - t
    with atomic_path(target) as tmp:
        t = time.perf_counter()
        tmp.write_bytes(data)
        del data
        timings["write"] = time.perf_counter() - t
        # Checking the written file lets the C++ checker read it directly: 0.8 s for
        # AlexNet, where checking the in-memory proto re-serializes it first (2.5 s).
        t = time.perf_counter()
        try:
            onnx.checker.check_model(os.fspath(tmp), full_check=True)
        except Exception as exc:
            raise ExportError(
                f"the exported graph of {spec.name} fails onnx.checker: {one_line(str(exc))}"
            ) from None
        timings["check"] = time.perf_counter() - t

    return ExportResult(
        path=target,
        spec_name=spec.name,
        opset=opset,
        dtype=dtype,
        seconds=time.perf_counter() - start,
        timings=timings,
        input_name=model.graph.input[0].name,
        output_name=output,
        value_names=names,
        shapes=shape_check.shapes,
        metadata=props,
        size_bytes=size,
        nodes=len(model.graph.node),
        weights=source,
        model=model if keep_model else None,
    )


def _trace(
    spec: Spec, analysis: Analysis, module: SpecModule, opset: int, dtype: str
) -> onnx.ModelProto:
    """Run torch.onnx's dynamo exporter on the all-layers wrapper; name the layer values."""
    import torch

    from archspec.torch.build import TORCH_DTYPES

    names = [row.name for row in analysis.rows]
    placeholders = {PLACEHOLDER.format(i): name for i, name in enumerate(names)}
    # Batch 2, not 1: torch.export specialises size-1 axes, which would fix the batch at 1.
    example = torch.zeros(2, *analysis.input_shape, dtype=TORCH_DTYPES[dtype])
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet_export(), _reuse_torchlib_registry():
            program = torch.onnx.export(
                _wrapper(module),
                (example,),
                None,
                input_names=["input"],
                output_names=list(placeholders),
                opset_version=opset,
                dynamo=True,
                external_data=False,
                dynamic_shapes={"x": {0: batch}},
                optimize=True,
                verbose=False,
            )
    except Exception as exc:
        raise ExportError(f"torch.onnx cannot export {spec.name}: {one_line(str(exc))}") from None
    if program is None:  # only the TorchScript path returns None
        raise ExportError(f"torch.onnx returned no program for {spec.name}")
    model = program.model_proto
    del program
    got = {o.domain: o.version for o in model.opset_import}.get("", 0)
    if got != opset:
        raise ExportError(
            f"torch.onnx cannot express {spec.name} in opset {opset} (its converter stopped at "
            f"opset {got}); use --opset {max(got, DEFAULT_OPSET)} or newer"
        )
    name_layer_values(
        model, placeholders, keep_output=analysis.graph.output, strip_prefix=f"{WRAPPER_ATTR}."
    )
    cast_layer_values(model, names, DTYPES[dtype].onnx)
    return model


def _finish(model: onnx.ModelProto, spec: Spec, props: dict[str, str]) -> None:
    """Producer, graph name, description and archspec's provenance in ``metadata_props``."""
    import onnx

    model.producer_name = "archspec"
    model.producer_version = props[meta.KEY_VERSION]
    model.graph.name = spec.name
    model.doc_string = " — ".join(x for x in (spec.title, spec.source) if x) or spec.name
    kept = {p.key: p.value for p in model.metadata_props if not p.key.startswith(meta.PREFIX)}
    onnx.helper.set_model_props(model, {**kept, **props})
