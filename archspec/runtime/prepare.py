"""A model ready to run: a spec compiled and exported, or a ``.onnx`` file read with its reference.

:func:`compile_and_export` is the one compile → export sequence: the
benchmark, ``archspec run`` on a spec and the tuning script all call it and
then open a session on the file (:func:`archspec.runtime.session.create_session`),
so every engine computes the function of the very module that was exported.

A ``.onnx`` file records the spec and the weights it was made from (see
:mod:`archspec.onnx.model`), so :func:`reference_for` rebuilds its PyTorch
reference from ``--spec FILE`` and the recorded seed, or from a weights file
whose hash must match the recorded one; anything that does not match is
refused in one line rather than reported as a numerical mismatch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from archspec.analysis import Analysis, analyze
from archspec.errors import RuntimeInputError
from archspec.spec import Spec, load

if TYPE_CHECKING:
    import onnx

    from archspec.onnx.export import ExportResult
    from archspec.onnx.model import ModelInfo
    from archspec.torch.build import SpecModule


@dataclass
class Exported:
    """A compiled module and the ONNX file exported from it."""

    module: SpecModule  # in module_dtype: float32 for a float16 export
    result: ExportResult
    seconds: float  # compile and export


def compile_and_export(
    spec: Spec,
    path: str | os.PathLike[str],
    *,
    analysis: Analysis | None = None,
    seed: int = 0,
    weights: str | os.PathLike[str] | None = None,
    opset: int | None = None,
    fp16: bool = False,
    module_dtype: str | None = None,
) -> Exported:
    """Compile ``spec`` (weights from ``seed``, or ``weights``), export that very module to ``path``.

    A float16 export compiles in float32 (``module_dtype``'s default then): the
    exporter converts a copy, and the float32 module stays a reference that
    computes in float32 (PyTorch has no float16 CPU kernel for some layers,
    LRN's avg_pool3d).
    """
    from archspec.onnx.export import export_spec
    from archspec.torch.build import compile_spec
    from archspec.torch.weights import load_weights

    analysis = analysis or analyze(spec)
    start = time.perf_counter()
    dtype = module_dtype or ("float32" if fp16 else None)
    module = compile_spec(spec, seed=seed, analysis=analysis, dtype=dtype)
    if weights:
        load_weights(module, weights, spec.name)
    result = export_spec(
        spec,
        path,
        seed=seed,
        module=module,
        analysis=analysis,
        opset=opset,
        fp16=fp16,
        keep_model=True,
    )
    return Exported(module, result, time.perf_counter() - start)


@dataclass
class Loaded:
    """A model ready to run, and what a parity check needs to compare it with PyTorch."""

    path: Path
    model: onnx.ModelProto
    info: ModelInfo
    description: str
    reference: SpecModule | None  # the float32 PyTorch module with the model's weights
    layers: tuple[str, ...]  # the layer values to compare


def module_from_arrays(
    spec: Spec, arrays: Mapping[str, np.ndarray], analysis: Analysis | None = None
) -> SpecModule:
    """The float32 (float64 for such a spec) PyTorch module of ``spec`` holding ``arrays``,
    by state_dict name (num_batches_tracked, which no ONNX graph reads, may be absent).

    The native exporter draws seeded weights with NumPy, not PyTorch's generator, so
    its PyTorch reference is the compiled module given those tensors: equal weights by
    construction (float16 ones widened exactly)."""
    import torch

    from archspec.torch.build import compile_spec

    dtype = "float64" if spec.input.dtype == "float64" else "float32"
    module = compile_spec(spec, seed=0, analysis=analysis, dtype=dtype)
    state = module.state_dict()
    missing = [k for k in state if k not in arrays and not k.endswith("num_batches_tracked")]
    if missing:
        raise RuntimeInputError(f"no tensor '{missing[0]}' for spec {spec.name}'s module")
    with torch.no_grad():
        for key, target in state.items():
            if key in arrays:
                array = np.asarray(arrays[key]).astype(dtype)
                target.copy_(torch.from_numpy(array).reshape(target.shape))
    return module.eval()


def module_from_model(
    spec: Spec, model: onnx.ModelProto, analysis: Analysis | None = None
) -> SpecModule:
    """:func:`module_from_arrays` with ``model``'s own initializers."""
    from onnx import numpy_helper

    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return module_from_arrays(spec, arrays, analysis)


def export_for_run(
    spec_file: str,
    directory: Path,
    *,
    seed: int | None = None,
    weights: str | None = None,
    opset: int | None = None,
    fp16: bool = False,
    reference: bool = True,
    via: str = "native",
) -> Loaded:
    """Export a spec into ``directory``; with ``reference``, the PyTorch module to compare.

    Natively by default (no torch unless ``reference``): the reference is then the
    compiled module holding the exported model's own tensors. ``via="torch"`` exports
    the compiled module itself through torch.onnx.
    """
    from archspec.onnx.model import model_info

    spec = load(spec_file)
    seed = 0 if seed is None else seed
    if via == "native":
        from archspec.onnx.native import export_native

        start = time.perf_counter()
        analysis = analyze(spec)
        result = export_native(
            spec,
            directory / f"{spec.name}.onnx",
            seed=seed,
            weights=weights,
            opset=opset,
            fp16=fp16,
            analysis=analysis,
            keep_model=True,
        )
        assert result.model is not None
        module = module_from_model(spec, result.model, analysis) if reference else None
        source = f"{weights}" if weights else f"numpy seed {seed}"
        description = (
            f"model: {spec.name} from {spec_file} (exported natively in "
            f"{time.perf_counter() - start:.1f} s: opset {result.opset}, {result.dtype}, "
            f"weights from {source})"
        )
        return Loaded(
            result.path,
            result.model,
            model_info(result.model, str(result.path)),
            description,
            module,
            result.value_names,
        )
    done = compile_and_export(
        spec, directory / f"{spec.name}.onnx", seed=seed, weights=weights, opset=opset, fp16=fp16
    )
    result, module = done.result, done.module
    assert result.model is not None
    if fp16:  # the reference computes in float32 on the float16-rounded weights
        module.half().float()
    source = f"{weights}" if weights else f"seed {seed}"
    description = (
        f"model: {spec.name} from {spec_file} (exported on the fly in {done.seconds:.1f} s: "
        f"opset {result.opset}, {result.dtype}, weights from {source})"
    )
    return Loaded(
        result.path,
        result.model,
        model_info(result.model, str(result.path)),
        description,
        module,
        result.value_names,
    )


def load_onnx(
    model_file: str,
    *,
    reference: bool = False,
    spec_file: str | None = None,
    seed: int | None = None,
    weights: str | None = None,
) -> Loaded:
    """Read a .onnx; with ``reference``, rebuild its PyTorch module from the spec and recorded weights."""
    from archspec.onnx.model import KEY_WEIGHTS, load_model, model_info

    path = Path(model_file)
    model = load_model(path)
    info = model_info(model, str(path))
    meta = info.metadata
    name = info.spec_name or "a model without archspec metadata"
    description = (
        f"model: {name} from {path} "
        f"(opset {_opset(model)}, {info.input_dtype}, weights {meta.get(KEY_WEIGHTS, 'unknown')})"
    )
    module = None
    layers: tuple[str, ...] = ()
    if reference:
        module, layers = reference_for(model_file, info, spec_file, seed=seed, weights=weights)
    return Loaded(path, model, info, description, module, layers)


def _opset(model: onnx.ModelProto) -> int:
    return {o.domain: o.version for o in model.opset_import}.get("", 0)


def reference_for(
    model_file: str,
    info: ModelInfo,
    spec_file: str | None,
    *,
    seed: int | None = None,
    weights: str | None = None,
) -> tuple[SpecModule, tuple[str, ...]]:
    """The float32 module a .onnx was exported from, rebuilt from its spec and its recorded weights."""
    from archspec.onnx import model as m
    from archspec.torch.build import compile_spec
    from archspec.torch.weights import load_weights

    meta = info.metadata
    if m.KEY_SPEC_NAME not in meta:
        raise RuntimeInputError(
            f"{model_file} carries no archspec metadata, so --verify cannot know its spec and weights; "
            "export it with archspec export"
        )
    recorded = meta[m.KEY_SPEC_NAME]
    if not spec_file:
        raise RuntimeInputError(
            f"--verify on a .onnx needs the spec it was exported from: add --spec FILE "
            f"(the model records spec '{recorded}', sha256 {meta.get(m.KEY_SPEC_SHA256, '?')[:12]}…)"
        )
    spec = load(spec_file)
    text_hash, canonical_hash = m.spec_hashes(spec)
    if spec.name != recorded:
        raise RuntimeInputError(
            f"{spec_file} is spec '{spec.name}', but {model_file} was exported from '{recorded}'"
        )
    if canonical_hash != meta.get(m.KEY_SPEC_CANONICAL) and text_hash != meta.get(
        m.KEY_SPEC_SHA256
    ):
        raise RuntimeInputError(
            f"{spec_file} differs from the '{recorded}' spec {model_file} was exported from "
            f"(sha256 {text_hash[:12]}…, the model records {meta.get(m.KEY_SPEC_SHA256, '?')[:12]}…); "
            "re-export the model or use the spec it came from"
        )
    analysis = analyze(spec)
    half = info.input_dtype == "float16" and spec.input.dtype != "float16"
    ref_dtype = "float32" if half else None
    source = meta.get(m.KEY_WEIGHTS, "")
    if source.startswith("numpy-seed:"):
        # a native export: its seeded tensors drawn again (NumPy), given to the module
        from archspec.onnx.native import seeded_state

        recorded_seed = int(source[11:])
        if seed is not None and seed != recorded_seed:
            raise RuntimeInputError(
                f"{model_file} was exported with weights from seed {recorded_seed}, not --seed {seed}"
            )
        if weights:
            raise RuntimeInputError(
                f"{model_file} was exported with weights from seed {recorded_seed}, not from a file; drop --weights"
            )
        arrays = seeded_state(spec, recorded_seed, info.input_dtype, analysis)
        module = module_from_arrays(spec, arrays, analysis)
    elif source.startswith("seed:"):
        recorded_seed = int(source[5:])
        if seed is not None and seed != recorded_seed:
            raise RuntimeInputError(
                f"{model_file} was exported with weights from seed {recorded_seed}, not --seed {seed}"
            )
        if weights:
            raise RuntimeInputError(
                f"{model_file} was exported with weights from seed {recorded_seed}, not from a file; drop --weights"
            )
        module = compile_spec(spec, seed=recorded_seed, analysis=analysis, dtype=ref_dtype)
    elif source.startswith("file:"):
        if not weights:
            raise RuntimeInputError(
                f"{model_file} was exported with weights from {source[5:]}: add --weights FILE to verify it"
            )
        digest = m.sha256_file(weights) if Path(weights).is_file() else None
        if digest is not None and digest != meta.get(m.KEY_WEIGHTS_SHA256):
            raise RuntimeInputError(
                f"{weights} is not the weights file {model_file} was exported with (sha256 differs)"
            )
        module = compile_spec(spec, seed=0, analysis=analysis, dtype=ref_dtype)
        load_weights(module, weights, spec.name)
    else:
        raise RuntimeInputError(
            f"{model_file} records weights '{source or 'unknown'}', which cannot be rebuilt for --verify; "
            "export with --seed or --weights"
        )
    if half:  # the model's weights are these rounded to float16
        module.half().float()
    layers = tuple(row.name for row in analysis.rows)
    if info.layers and info.layers != layers:
        raise RuntimeInputError(
            f"{model_file} names layers {list(info.layers)}, the spec {list(layers)}"
        )
    return module, layers
