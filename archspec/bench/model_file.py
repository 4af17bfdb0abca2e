"""An ONNX file benchmarked on its own: its inputs' shapes, its FLOPs, its PyTorch reference.

``archspec bench model.onnx`` times any ONNX file; what it adds to ONNX
Runtime's timings depends on what the file tells (docs/benchmarks.md,
"Any ONNX file"):

- **Shapes.** Each input's axes are what the file states. A free first axis
  (a symbol such as ``batch``, or no size at all) takes each ``--batch``;
  where no input's first axis is free, the file's own batch is the only one
  run. Every other free axis must be fixed by ``--shape NAME=D,D,...`` (the
  input's whole shape; its first number gives way to the batch where that
  axis is free), or by another input's ``--shape`` that fixes the same symbol.
- **FLOPs.** With ``--spec FILE`` (a file exported by archspec, and the spec
  it records), the calculator's figures for that spec; otherwise those of the
  spec ``archspec import`` reads from the graph. Where the importer cannot map
  the graph, there is no FLOP count: GFLOP/s and the roofline fractions are
  reported as not available, never guessed.
- **A PyTorch baseline** only for a file that carries archspec's metadata:
  with ``--spec FILE``, the module rebuilt exactly as ``archspec run --verify``
  rebuilds it (the spec's hash checked against the file, the recorded seed or
  weights); without it, the imported spec's module holding the file's own
  tensors, where every tensor maps (a native export). Otherwise no baseline,
  and a note says why.

Every problem with the file or with ``--shape`` is one ``FILE: error:`` line
(exit status 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archspec.analysis import Analysis, analyze
from archspec.errors import RuntimeInputError
from archspec.spec.diagnostics import Diagnostic, Kind, Severity, SpecError

if TYPE_CHECKING:
    import onnx

BATCH = -1  # the batch axis in a shape template
ShapeOption = tuple[str, tuple[int, ...]]  # --shape NAME=D,D,...


def is_onnx(item: object) -> bool:
    """Whether a bench argument names an ONNX file rather than a spec."""
    return isinstance(item, (str, Path)) and Path(item).suffix.lower() == ".onnx"


def fail(file: str, message: str, hint: str | None = None) -> SpecError:
    """The one-line ``FILE: error: MESSAGE`` of a file without lines (a protobuf)."""
    return SpecError([Diagnostic(Severity.ERROR, Kind.INPUT, message, file, None, hint)])


@dataclass
class ModelFile:
    """A readable ONNX file with every input shape resolved (but the batch)."""

    path: str
    model: onnx.ModelProto
    template: dict[str, tuple[int, ...]]  # per input, BATCH where the batch goes
    dtypes: dict[str, np.dtype[Any]]
    fixed_batch: int | None  # the file's batch where no input's first axis is free
    precision: str  # fp16 when a float input is float16, else fp32
    analysis: Analysis | None = None
    flops_source: str = ""  # where the FLOP count came from, or why there is none
    reference: Any | None = None  # the float32 PyTorch module, where one can be rebuilt
    baseline_note: str | None = None  # why there is no PyTorch baseline
    values: dict[str, str] = field(default_factory=dict)  # ONNX value → spec layer
    spec_name: str | None = None  # the spec the file records (archspec's metadata)

    @property
    def name(self) -> str:
        """How results name the model: its file name (beside specs, which go by name)."""
        return Path(self.path).name

    @property
    def flops(self) -> int | None:
        """FLOPs per sample, where archspec can count them."""
        return None if self.analysis is None else self.analysis.totals.flops

    @property
    def layers(self) -> tuple[str, ...]:
        """The spec layers a profile maps nodes to: the analysed spec's, else the layer values
        archspec's export lists in the metadata (no FLOPs then), else none."""
        if self.analysis is not None:
            return tuple(r.name for r in self.analysis.rows)
        from archspec.onnx.model import model_info

        try:
            return model_info(self.model, self.path).layers
        except RuntimeInputError:  # several inputs, free axes: a foreign model, no metadata
            return ()

    def batches(self, asked: Sequence[int]) -> tuple[int, ...]:
        return tuple(asked) if self.fixed_batch is None else (self.fixed_batch,)

    def shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        return {
            name: tuple(batch if d == BATCH else d for d in dims)
            for name, dims in self.template.items()
        }

    def feeds(self, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded standard-normal floats; integer and boolean inputs all zeros (a valid index)."""
        rng = np.random.default_rng(seed)
        out = {}
        for name, shape in self.shapes(batch).items():
            dtype = self.dtypes[name]
            if dtype.kind == "f":
                out[name] = rng.standard_normal(shape).astype(dtype)
            else:
                out[name] = np.zeros(shape, dtype=dtype)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "inputs": {
                n: ["batch" if d == BATCH else d for d in t] for n, t in self.template.items()
            },
            "batch": "free" if self.fixed_batch is None else self.fixed_batch,
            "precision": self.precision,
            "spec": self.spec_name,
            "flops_per_sample": self.flops,
            "flops_source": self.flops_source,
            "baseline": "torch" if self.reference is not None else None,
            "baseline_note": self.baseline_note,
        }


def read_model_file(
    path: str,
    shapes: Sequence[ShapeOption] = (),
    *,
    spec_file: str | None = None,
    reference: bool = True,
    others: bool = False,
) -> ModelFile:
    """Read ``path``, resolve its input shapes, count its FLOPs and, with ``reference``, rebuild
    its PyTorch module where it carries archspec's metadata. Raises :class:`SpecError` (one line).

    A ``shapes`` name that is not one of the file's inputs is an error, unless ``others``
    (other files are benchmarked too, and the name may be theirs)."""
    from archspec.onnx.model import KEY_SPEC_NAME, ModelFileError, load_model, metadata

    p = Path(path)
    if not p.exists():
        raise fail(path, "no such file")
    try:
        model = load_model(p)
    except ModelFileError as exc:
        raise fail(path, str(exc).removeprefix(f"{p}: ")) from None
    dims, dtypes = _inputs(path, model)
    unknown = [name for name, _ in shapes if name not in dims]
    if unknown and not others:
        raise fail(
            path,
            f"--shape {unknown[0]}: the model has no input '{unknown[0]}'",
            hint=f"its inputs: {', '.join(dims)}",
        )
    template, fixed = _resolve(path, dims, dict(shapes))
    floats = [d for d in dtypes.values() if d.kind == "f"]
    item = ModelFile(
        path=path,
        model=model,
        template=template,
        dtypes=dtypes,
        fixed_batch=fixed,
        precision="fp16" if any(d == np.float16 for d in floats) else "fp32",
        spec_name=metadata(model).get(KEY_SPEC_NAME),
    )
    if spec_file is not None and item.spec_name is not None:
        _from_spec(item, spec_file, reference)
    else:
        _from_graph(item, reference)
    return item


def _inputs(
    path: str, model: onnx.ModelProto
) -> tuple[dict[str, list[int | str | None] | None], dict[str, np.dtype[Any]]]:
    """Each data input's stated axes (a size, a symbol, or None) and numpy dtype."""
    import onnx

    initializers = {t.name for t in model.graph.initializer}
    dims: dict[str, list[int | str | None] | None] = {}
    dtypes: dict[str, np.dtype[Any]] = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            raise fail(path, f"input '{value.name}' is not a tensor; bench feeds tensors only")
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        except Exception:
            dtype = np.dtype(object)
        if dtype.kind not in "fiub":
            raise fail(path, f"input '{value.name}' holds {dtype}; bench feeds numbers only")
        dtypes[value.name] = dtype
        if not tensor.HasField("shape"):
            dims[value.name] = None  # rank unknown: --shape must give it whole
            continue
        dims[value.name] = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor.shape.dim
        ]
    if not dims:
        raise fail(path, "the model has no data input to feed")
    return dims, dtypes


def _resolve(
    path: str,
    dims: dict[str, list[int | str | None] | None],
    given: dict[str, tuple[int, ...]],
) -> tuple[dict[str, tuple[int, ...]], int | None]:
    """Every input's shape, BATCH on free first axes; the file's batch where none is free."""
    for name, axes in dims.items():
        if axes is None and name not in given:
            raise fail(
                path,
                f"input '{name}' has no stated shape",
                hint=f"give it whole with --shape {name}=D,D,...",
            )
    stated: dict[str, list[int | str | None]] = {
        n: list(d) if d is not None else [None] * len(given[n]) for n, d in dims.items()
    }
    for name, values in given.items():
        if name not in stated:
            continue  # another file's input (run_bench refuses a name no file has)
        axes = stated[name]
        shown = "[" + ", ".join("?" if d is None else str(d) for d in axes) + "]"
        if len(values) != len(axes):
            raise fail(
                path,
                f"--shape {name}={','.join(map(str, values))} has {len(values)} axes; "
                f"input '{name}' has {len(axes)} {shown}",
            )
        for axis, (want, have) in enumerate(zip(values, axes, strict=True)):
            if isinstance(have, int) and have != want:
                raise fail(
                    path,
                    f"--shape {name}: axis {axis} of input '{name}' is fixed at {have} "
                    f"{shown}, not {want}",
                )
    free_first = {n: bool(a) and not isinstance(a[0], int) for n, a in stated.items()}
    batch_symbols = {a[0] for n, a in stated.items() if free_first[n] and a[0] is not None}
    symbols: dict[str, int] = {}
    for name, values in given.items():
        for axis, have in enumerate(stated.get(name, [])):
            if isinstance(have, str) and not (axis == 0 and free_first[name]):
                symbols.setdefault(have, values[axis])
    template: dict[str, tuple[int, ...]] = {}
    for name, axes in stated.items():
        out: list[int] = []
        for axis, have in enumerate(axes):
            if isinstance(have, int):
                out.append(have)
            elif (axis == 0 and free_first[name]) or have in batch_symbols:
                out.append(BATCH)
            elif name in given:
                out.append(given[name][axis])
            elif have is not None and have in symbols:
                out.append(symbols[have])
            else:
                what = f"'{have}'" if have else "unnamed"
                example = ",".join(
                    "N" if i == 0 and free_first[name] else str(d) if isinstance(d, int) else "?"
                    for i, d in enumerate(axes)
                )
                raise fail(
                    path,
                    f"input '{name}' axis {axis} ({what}) is free and nothing fixes it",
                    hint=f"fix it with --shape {name}={example} (the batch axis takes --batch)",
                )
        template[name] = tuple(out)
    if any(free_first.values()):
        return template, None
    first = next((t for t in template.values() if t), ())
    return template, (first[0] if first else 1)


def _sample_shape(item: ModelFile) -> list[int] | None:
    """The per-sample shape of a one-input model (what the importer and a spec take)."""
    if len(item.template) != 1:
        return None
    (dims,) = item.template.values()
    return list(dims[1:]) if len(dims) > 1 else None


def _from_spec(item: ModelFile, spec_file: str, reference: bool) -> None:
    """``--spec FILE``: the spec the file records gives the FLOPs (and the reference)."""
    from archspec.onnx import model as m
    from archspec.runtime.prepare import reference_for
    from archspec.spec import load

    spec = load(spec_file)
    if spec.name != item.spec_name:
        return _from_graph(item, reference)  # --spec is for another of the files given
    info = m.model_info(item.model, item.path)
    if reference:
        item.reference, _ = reference_for(item.path, info, spec_file)
    else:
        text_hash, canonical_hash = m.spec_hashes(spec)
        meta = info.metadata
        if text_hash != meta.get(m.KEY_SPEC_SHA256) and canonical_hash != meta.get(
            m.KEY_SPEC_CANONICAL
        ):
            raise RuntimeInputError(
                f"{spec_file} differs from the '{spec.name}' spec {item.path} was exported from"
            )
    item.analysis = analyze(spec)
    item.values = {r.name: r.name for r in item.analysis.rows}  # archspec names values so
    item.flops_source = f"the calculator, on {spec_file} (the spec the file records)"
    return None


def _from_graph(item: ModelFile, reference: bool) -> None:
    """FLOPs from the spec the importer reads off the graph; for an archspec export, the
    PyTorch reference is that spec's module holding the file's tensors."""
    from archspec.importers.emit import spec_text
    from archspec.importers.onnxfile import import_onnx
    from archspec.spec import loads

    sample = _sample_shape(item)
    try:
        if sample is None:
            raise fail(item.path, f"the graph has {len(item.template)} data inputs")
        imported = import_onnx(item.path, sample)
        spec = loads(spec_text(imported), item.path)
        item.analysis = analyze(spec)
    except SpecError as exc:
        reason = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        item.flops_source = f"none: archspec import cannot read the graph ({reason})"
        item.baseline_note = _no_baseline(item, "archspec import cannot read the graph")
        return
    item.values = imported.values
    item.flops_source = "the calculator, on the spec archspec import reads from the graph"
    if item.spec_name is None:
        item.baseline_note = _no_baseline(item, "")
        return
    if not reference:
        return
    from archspec.runtime.prepare import module_from_model

    try:
        item.reference = module_from_model(spec, item.model, item.analysis)
    except RuntimeInputError:
        item.baseline_note = _no_baseline(
            item, "its tensors do not map onto the imported spec's module"
        )


def _no_baseline(item: ModelFile, why: str) -> str:
    if item.spec_name is None:
        return f"{item.name}: no PyTorch baseline (the file carries no archspec metadata)"
    return (
        f"{item.name}: no PyTorch baseline ({why}); add --spec FILE, the spec "
        f"'{item.spec_name}' it was exported from"
    )
