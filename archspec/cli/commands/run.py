"""``archspec run``: run a model on ONNX Runtime, GPU first, and optionally verify it against PyTorch.

MODEL is a ``.onnx`` file or a spec; a spec is exported on the fly into a
temporary directory (with ``--seed``/``--weights``/``--fp16``) and the
module it was exported from serves as the ``--verify`` reference.

A ``.onnx`` file records the spec and the weights it was made from (see
:mod:`archspec.onnx.model`), so ``--verify`` asks for the spec with
``--spec FILE`` and rebuilds the weights from the recorded seed, or from
``--weights FILE`` whose hash must match the recorded one; anything that does
not match is refused in one line rather than reported as a numerical mismatch.

``--verify`` compares every layer, not just the output: ONNX Runtime is
asked for each named layer value in a second session, PyTorch's
``forward_layers`` gives the reference, and the worst error must be within the
dtype's tolerance (:data:`archspec.runtime.session.TOLERANCE`) or the command
exits 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from archspec.onnx.model import ModelInfo
    from archspec.runtime.session import Parity
    from archspec.torch.build import SpecModule

HELP = (
    "run a .onnx model or a spec on ONNX Runtime (TensorRT, CUDA or CPU); --verify against PyTorch"
)

PROVIDERS = ("auto", "tensorrt", "cuda", "cpu")  # mirrors archspec.runtime.providers.CHOICES
MAX_TIMING_SECONDS = 5.0  # stop repeating once this much time has gone into timed runs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model", metavar="MODEL", help="a .onnx file, or a spec file to export on the fly"
    )
    p.add_argument(
        "--batch", type=int, metavar="N", help="batch size of the random input (default 1)"
    )
    p.add_argument(
        "--input",
        metavar="FILE",
        help="a .npy array of shape [N, *sample] (or one sample) in the model's dtype",
    )
    p.add_argument(
        "--provider",
        choices=PROVIDERS,
        default="auto",
        help="default auto: TensorRT, then CUDA, then CPU",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare every layer with the PyTorch module; exit 1 on a mismatch",
    )
    p.add_argument(
        "--top-k",
        type=int,
        metavar="K",
        help="print each sample's K best classes: the largest outputs, or the smallest "
        "where the output is a distance (an rbf layer, as in LeNet-5 1998)",
    )
    p.add_argument(
        "--seed",
        type=int,
        help="weights seed for a spec MODEL (default 0), and the random input's seed; "
        "for a .onnx it must match the seed the model records",
    )
    p.add_argument(
        "--spec",
        metavar="FILE",
        help="the spec a .onnx MODEL was exported from (needed by --verify)",
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="state_dict file (.safetensors or .pt): the weights to export a spec MODEL with, or, "
        "for a .onnx exported with --weights, the same file for --verify",
    )
    p.add_argument("--fp16", action="store_true", help="spec MODEL only: export in float16")
    p.add_argument(
        "--opset",
        type=int,
        help="spec MODEL only: ONNX opset to export (default: as archspec export)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=10,
        metavar="R",
        help="timed runs after the first (default 10)",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="T",
        help="ONNX Runtime intra-op threads (default: all cores)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")


@dataclass
class Loaded:
    """A model ready to run, and what ``--verify`` needs to rebuild its reference."""

    path: Path
    model: onnx.ModelProto
    info: ModelInfo
    description: str
    reference: SpecModule | None  # the float32 PyTorch module with the model's weights
    layers: tuple[str, ...]  # the layer values to compare under --verify


def run(args: argparse.Namespace) -> int:
    from archspec.onnx.model import KEY_OUTPUT_ORDER
    from archspec.runtime.providers import choose

    _check_args(args)
    choice = choose(args.provider)  # first: `--provider cuda` without CUDA fails before any work
    text = args.format == "text"
    if text:
        print(choice.describe(), flush=True)
    with tempfile.TemporaryDirectory(prefix="archspec-run-") as tmp:
        loaded = _load_onnx(args) if _is_onnx(args) else _export_spec(args, Path(tmp))
        _check_top_k(args.top_k, loaded.model)
        x, input_note = _input(args, loaded.info)
        if text:
            print(loaded.description)
            print(
                f"input: {loaded.info.input_name} {x.dtype} {list(x.shape)} ({input_note})",
                flush=True,
            )
        report: dict[str, Any] = {
            "provider": choice.name,
            "skipped": choice.skipped,
            "model": loaded.description,
            "input": {
                "name": loaded.info.input_name,
                "dtype": str(x.dtype),
                "shape": list(x.shape),
            },
        }
        outputs = _timed_runs(args, loaded, choice, x, report)
        output = outputs[0]
        report["output"] = {
            "name": loaded.info.output_name,
            "dtype": str(output.dtype),
            "shape": list(output.shape),
        }
        if text:
            print(f"output: {loaded.info.output_name} {output.dtype} {list(output.shape)}")
            print(_latency_line(report["latency"], x.shape[0]))
        if args.top_k:
            smallest = loaded.info.metadata.get(KEY_OUTPUT_ORDER) == "ascending"
            report["top_k"] = _top_k(output, args.top_k, smallest=smallest)
            report["top_k_order"] = "smallest first" if smallest else "largest first"
            if text:
                _print_top_k(report["top_k"], args.top_k, smallest)
        code = 0
        if args.verify:
            parity = _verify(loaded, choice, x, args)
            report["verify"] = {
                "ok": parity.ok,
                "dtype": parity.dtype,
                "tolerance": parity.tolerance,
                "layers": [e.to_json() for e in parity.layers],
            }
            if text:
                print(_verify_line(parity, loaded.info.output_name))
            code = 0 if parity.ok else 1
    if not text:
        sys.stdout.write(json.dumps(report, indent=2, default=float) + "\n")
    return code


def _check_args(args: argparse.Namespace) -> None:
    """Refuse contradictory or out-of-range options before any output or work."""
    from archspec.runtime import RuntimeInputError

    for flag, value, low in (
        ("--batch", args.batch, 1),
        ("--top-k", args.top_k, 1),
        ("--repeat", args.repeat, 0),
        ("--threads", args.threads, 1),
    ):
        if value is not None and value < low:
            raise RuntimeInputError(f"{flag} must be at least {low}, not {value}")
    if not _is_onnx(args):
        if args.spec:
            raise RuntimeInputError("--spec is for a .onnx MODEL; MODEL is already a spec here")
        return
    for flag, given in (("--fp16", args.fp16), ("--opset", args.opset is not None)):
        if given:
            raise RuntimeInputError(
                f"{flag} applies when MODEL is a spec; {args.model} is already exported"
            )
    if args.weights and not args.verify:
        raise RuntimeInputError(
            f"--weights with a .onnx MODEL only serves --verify; {args.model} already holds its weights"
        )


def _is_onnx(args: argparse.Namespace) -> bool:
    return Path(args.model).suffix.lower() == ".onnx"


def _export_spec(args: argparse.Namespace, tmp: Path) -> Loaded:
    """Compile the spec, export it into ``tmp``; the compiled module is the verify reference."""
    from archspec.analysis import analyze
    from archspec.onnx.export import export_spec, load_weights
    from archspec.onnx.model import model_info
    from archspec.spec import load
    from archspec.torch.build import compile_spec

    spec = load(args.model)
    analysis = analyze(spec)
    seed = 0 if args.seed is None else args.seed
    start = time.perf_counter()
    # float16 exports compute their reference in float32 on the same rounded weights:
    # PyTorch has no float16 CPU kernel for some layers (LRN's avg_pool3d).
    module = compile_spec(
        spec, seed=seed, analysis=analysis, dtype="float32" if args.fp16 else None
    )
    if args.weights:
        load_weights(module, args.weights, spec.name)
    result = export_spec(
        spec,
        tmp / f"{spec.name}.onnx",
        module=module,
        analysis=analysis,
        opset=args.opset,
        fp16=args.fp16,
        keep_model=True,
    )
    assert result.model is not None
    if args.fp16:  # the reference computes in float32 on the float16-rounded weights
        module.half().float()
    weights = f"{args.weights}" if args.weights else f"seed {seed}"
    description = (
        f"model: {spec.name} from {args.model} (exported on the fly in {time.perf_counter() - start:.1f} s: "
        f"opset {result.opset}, {result.dtype}, weights from {weights})"
    )
    return Loaded(
        result.path,
        result.model,
        model_info(result.model, str(result.path)),
        description,
        module,
        result.value_names,
    )


def _load_onnx(args: argparse.Namespace) -> Loaded:
    """Read a .onnx; under --verify, rebuild its PyTorch module from --spec and the recorded weights."""
    from archspec.onnx.model import KEY_WEIGHTS, load_model, model_info

    path = Path(args.model)
    model = load_model(path)
    info = model_info(model, str(path))
    meta = info.metadata
    name = info.spec_name or "a model without archspec metadata"
    description = (
        f"model: {name} from {path} "
        f"(opset {_opset(model)}, {info.input_dtype}, weights {meta.get(KEY_WEIGHTS, 'unknown')})"
    )
    reference = None
    layers: tuple[str, ...] = ()
    if args.verify:
        reference, layers = _reference_for(args, info)
    return Loaded(path, model, info, description, reference, layers)


def _opset(model: onnx.ModelProto) -> int:
    return {o.domain: o.version for o in model.opset_import}.get("", 0)


def _reference_for(args: argparse.Namespace, info: ModelInfo) -> tuple[SpecModule, tuple[str, ...]]:
    """The float32 module a .onnx was exported from, rebuilt from --spec and its recorded weights."""
    from archspec.analysis import analyze
    from archspec.onnx import model as m
    from archspec.onnx.export import load_weights
    from archspec.runtime import RuntimeInputError
    from archspec.spec import load
    from archspec.torch.build import compile_spec

    meta = info.metadata
    if m.KEY_SPEC_NAME not in meta:
        raise RuntimeInputError(
            f"{args.model} carries no archspec metadata, so --verify cannot know its spec and weights; "
            "export it with archspec export"
        )
    recorded = meta[m.KEY_SPEC_NAME]
    if not args.spec:
        raise RuntimeInputError(
            f"--verify on a .onnx needs the spec it was exported from: add --spec FILE "
            f"(the model records spec '{recorded}', sha256 {meta.get(m.KEY_SPEC_SHA256, '?')[:12]}…)"
        )
    spec = load(args.spec)
    text_hash, canonical_hash = m.spec_hashes(spec)
    if spec.name != recorded:
        raise RuntimeInputError(
            f"{args.spec} is spec '{spec.name}', but {args.model} was exported from '{recorded}'"
        )
    if canonical_hash != meta.get(m.KEY_SPEC_CANONICAL) and text_hash != meta.get(
        m.KEY_SPEC_SHA256
    ):
        raise RuntimeInputError(
            f"{args.spec} differs from the '{recorded}' spec {args.model} was exported from "
            f"(sha256 {text_hash[:12]}…, the model records {meta.get(m.KEY_SPEC_SHA256, '?')[:12]}…); "
            "re-export the model or use the spec it came from"
        )
    analysis = analyze(spec)
    half = info.input_dtype == "float16" and spec.input.dtype != "float16"
    ref_dtype = "float32" if half else None
    source = meta.get(m.KEY_WEIGHTS, "")
    if source.startswith("seed:"):
        recorded_seed = int(source[5:])
        if args.seed is not None and args.seed != recorded_seed:
            raise RuntimeInputError(
                f"{args.model} was exported with weights from seed {recorded_seed}, not --seed {args.seed}"
            )
        if args.weights:
            raise RuntimeInputError(
                f"{args.model} was exported with weights from seed {recorded_seed}, not from a file; drop --weights"
            )
        module = compile_spec(spec, seed=recorded_seed, analysis=analysis, dtype=ref_dtype)
    elif source.startswith("file:"):
        if not args.weights:
            raise RuntimeInputError(
                f"{args.model} was exported with weights from {source[5:]}: add --weights FILE to verify it"
            )
        digest = m.sha256_file(args.weights) if Path(args.weights).is_file() else None
        if digest is not None and digest != meta.get(m.KEY_WEIGHTS_SHA256):
            raise RuntimeInputError(
                f"{args.weights} is not the weights file {args.model} was exported with (sha256 differs)"
            )
        module = compile_spec(spec, seed=0, analysis=analysis, dtype=ref_dtype)
        load_weights(module, args.weights, spec.name)
    else:
        raise RuntimeInputError(
            f"{args.model} records weights '{source or 'unknown'}', which cannot be rebuilt for --verify; "
            "export with --seed or --weights"
        )
    if half:  # the model's weights are these rounded to float16
        module.half().float()
    layers = tuple(row.name for row in analysis.rows)
    if info.layers and info.layers != layers:
        raise RuntimeInputError(
            f"{args.model} names layers {list(info.layers)}, the spec {list(layers)}"
        )
    return module, layers


def _input(args: argparse.Namespace, info: ModelInfo) -> tuple[np.ndarray, str]:
    """The input batch: --input's array (checked), or a seeded standard-normal batch."""
    import numpy as np

    from archspec.runtime import RuntimeInputError

    sample = info.sample_shape
    shown = "[N, " + ", ".join(map(str, sample)) + "]"
    if args.input:
        path = Path(args.input)
        try:
            x = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise RuntimeInputError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise RuntimeInputError(f"{path}: is a directory, not a .npy file") from None
        except Exception as exc:
            raise RuntimeInputError(
                f"{path}: not a readable .npy array ({' '.join(str(exc).split())})"
            ) from None
        if not isinstance(x, np.ndarray):
            raise RuntimeInputError(f"{path}: holds several arrays (.npz); give one .npy array")
        if x.dtype != np.dtype(info.input_dtype):
            raise RuntimeInputError(
                f"{path} holds {x.dtype} values; the model takes {info.input_dtype} "
                f"(convert with x.astype('{info.input_dtype}'))"
            )
        if tuple(x.shape) == sample:
            x = x[None]
        if tuple(x.shape[1:]) != sample or x.shape[0] < 1:
            raise RuntimeInputError(f"{path} has shape {list(x.shape)}; the model takes {shown}")
        if args.batch is not None and args.batch != x.shape[0]:
            raise RuntimeInputError(
                f"{path} holds a batch of {x.shape[0]}, but --batch is {args.batch}"
            )
        note = f"from {path}"
    else:
        batch = args.batch or 1
        seed = 0 if args.seed is None else args.seed
        x = np.random.default_rng(seed).standard_normal((batch, *sample)).astype(info.input_dtype)
        note = f"random normal, seed {seed}"
    if isinstance(info.batch, int) and info.batch not in (0, x.shape[0]):
        raise RuntimeInputError(
            f"the model's batch axis is fixed at {info.batch}; this input has {x.shape[0]}"
        )
    return np.ascontiguousarray(x), note


def _timed_runs(
    args: argparse.Namespace, loaded: Loaded, choice: Any, x: np.ndarray, report: dict[str, Any]
) -> list[np.ndarray]:
    """One first run (allocation, TensorRT engine build), then up to --repeat timed runs."""
    from archspec.runtime.session import create_session, run_session

    start = time.perf_counter()
    session = create_session(loaded.path, choice, intra_op_threads=args.threads)
    created = time.perf_counter() - start
    feeds = {loaded.info.input_name: x}
    outputs, first = run_session(session, feeds, [loaded.info.output_name])
    times: list[float] = []
    budget_start = time.perf_counter()
    for _ in range(args.repeat):
        _, seconds = run_session(session, feeds, [loaded.info.output_name])
        times.append(seconds)
        if time.perf_counter() - budget_start > MAX_TIMING_SECONDS and len(times) >= 3:
            break
    report["latency"] = {
        "session_seconds": created,
        "first_seconds": first,
        "runs": len(times),
        "median_seconds": statistics.median(times) if times else first,
        "min_seconds": min(times) if times else first,
    }
    return outputs


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _latency_line(lat: dict[str, Any], batch: int) -> str:
    if lat["runs"]:
        return (
            f"latency: {_ms(lat['median_seconds'])} median of {lat['runs']} runs at batch {batch} "
            f"({_ms(lat['median_seconds'] / batch)} per sample; min {_ms(lat['min_seconds'])}; "
            f"first run {_ms(lat['first_seconds'])}; session {_ms(lat['session_seconds'])})"
        )
    return f"latency: {_ms(lat['first_seconds'])} (one run at batch {batch}; session {_ms(lat['session_seconds'])})"


def _check_top_k(k: int | None, model: onnx.ModelProto) -> None:
    """Refuse --top-k larger than the output's per-sample size before running, where it is known."""
    from archspec.runtime import RuntimeInputError

    if k is None:
        return
    dims = model.graph.output[0].type.tensor_type.shape.dim[1:]
    if all(d.HasField("dim_value") for d in dims):
        size = 1
        for d in dims:
            size *= d.dim_value
        if k > size:
            raise RuntimeInputError(
                f"--top-k {k} exceeds the {size} values of each sample's output"
            )


def _top_k(output: np.ndarray, k: int, *, smallest: bool = False) -> list[list[dict[str, float]]]:
    """The k best values of each sample's output (flattened), best first.

    Best is largest for logits and probabilities; for a distance output (the
    metadata's output order is ascending) it is smallest, else LeNet-5's top-1
    would be the class it considers least likely.
    """
    import numpy as np

    from archspec.runtime import RuntimeInputError

    flat = output.reshape(output.shape[0], -1).astype(np.float64)
    if k > flat.shape[1]:
        raise RuntimeInputError(
            f"--top-k {k} exceeds the {flat.shape[1]} values of each sample's output"
        )
    order = np.argsort(flat if smallest else -flat, axis=1, kind="stable")[:, :k]
    return [
        [{"index": int(i), "value": float(row[i])} for i in idx]
        for row, idx in zip(flat, order, strict=True)
    ]


def _print_top_k(top: list[list[dict[str, float]]], k: int, smallest: bool = False) -> None:
    which = "smallest first: the output is a distance" if smallest else "largest first"
    print(f"top-{k} per sample (index: value, {which}):")
    for n, items in enumerate(top):
        print(f"  {n}: " + ", ".join(f"{int(e['index'])}: {e['value']:.6g}" for e in items))


def _verify(loaded: Loaded, choice: Any, x: np.ndarray, args: argparse.Namespace) -> Parity:
    """Run every layer on ORT (a second session exposing them) and in PyTorch; compare."""
    import torch

    from archspec.onnx.names import with_outputs
    from archspec.runtime.session import compare, create_session, run_session

    assert loaded.reference is not None
    names = list(loaded.layers)
    session = create_session(
        with_outputs(loaded.model, names), choice, intra_op_threads=args.threads
    )
    values, _ = run_session(session, {loaded.info.input_name: x}, names)
    with torch.inference_mode():
        # float16 models are checked against float32 arithmetic on the same rounded weights
        xt = torch.from_numpy(x)
        ref = loaded.reference.forward_layers(xt.float() if xt.dtype == torch.float16 else xt)
    expected = {n: ref[n].numpy() for n in names}
    return compare(dict(zip(names, values, strict=True)), expected, loaded.info.input_dtype)


def _verify_line(parity: Parity, output: str) -> str:
    out = next((e for e in parity.layers if e.name == output), parity.layers[-1])
    worst = parity.worst
    status = (
        "ok"
        if parity.ok
        else f"MISMATCH in {len(parity.failures())} of {len(parity.layers)} layers"
    )
    line = (
        f"verify: {status}: {out.name} max abs error {out.max_abs:.2g}, max rel error {out.max_rel:.2g}; "
        f"worst layer {worst.name} {worst.error:.2g}; tolerance {parity.tolerance:g} ({parity.dtype}, "
        f"error = max abs / max(1, max |ref|)) over {len(parity.layers)} layers"
    )
    if not worst.shape_ok:
        line += f"; {worst.name} has the wrong shape"
    return line
