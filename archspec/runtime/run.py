"""Running one model on ONNX Runtime, as ``archspec run`` does: feed it, time it, rank, check parity.

MODEL is a ``.onnx`` file or a spec; a spec is exported on the fly into a
temporary directory (:func:`archspec.runtime.prepare.export_for_run`) and
the module it was exported from serves as the parity reference.

Parity (``verify``) compares every layer, not just the output: ONNX Runtime
is asked for each named layer value in a second session, PyTorch's
``forward_layers`` gives the reference, and the worst error must be within
the dtype's tolerance (:data:`archspec.vocab.DTYPES`).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import RuntimeInputError

if TYPE_CHECKING:
    import numpy as np

    from archspec.runtime.prepare import Loaded
    from archspec.runtime.providers import ProviderChoice

MAX_TIMING_SECONDS = 5.0  # stop repeating once this much time has gone into timed runs

Echo = Callable[[str], None]


@dataclass(frozen=True)
class RunOptions:
    """What to run and how; the names are ``archspec run``'s options."""

    model: str
    batch: int | None = None
    input: str | None = None
    provider: str = "auto"
    verify: bool = False
    top_k: int | None = None
    seed: int | None = None
    spec: str | None = None
    weights: str | None = None
    fp16: bool = False
    opset: int | None = None
    repeat: int = 10
    threads: int | None = None

    @property
    def is_onnx(self) -> bool:
        return Path(self.model).suffix.lower() == ".onnx"

    def check(self) -> None:
        """Refuse contradictory or out-of-range options before any output or work."""
        for flag, value, low in (
            ("--batch", self.batch, 1),
            ("--top-k", self.top_k, 1),
            ("--repeat", self.repeat, 0),
            ("--threads", self.threads, 1),
        ):
            if value is not None and value < low:
                raise RuntimeInputError(f"{flag} must be at least {low}, not {value}")
        if self.verify:
            from archspec.extras import require

            require("torch", "run --verify (its reference is the PyTorch module)")
        if not self.is_onnx:
            if self.spec:
                raise RuntimeInputError("--spec is for a .onnx MODEL; MODEL is already a spec here")
            return
        for flag, given in (("--fp16", self.fp16), ("--opset", self.opset is not None)):
            if given:
                raise RuntimeInputError(
                    f"{flag} applies when MODEL is a spec; {self.model} is already exported"
                )
        if self.weights and not self.verify:
            raise RuntimeInputError(
                f"--weights with a .onnx MODEL only serves --verify; {self.model} already holds its weights"
            )


def run_model(options: RunOptions, echo: Echo | None = None) -> tuple[dict[str, Any], bool]:
    """Run ``options.model``; return the JSON report and whether parity held (True without verify).

    ``echo`` receives each line of the text report as soon as it is known
    (the provider before a slow export, the latency after the runs).
    """
    from archspec.onnx.model import KEY_OUTPUT_ORDER
    from archspec.runtime.feeds import check_top_k, input_batch, top_k
    from archspec.runtime.parity import layer_parity, parity_line
    from archspec.runtime.prepare import export_for_run, load_onnx
    from archspec.runtime.providers import choose

    say = echo or (lambda _line: None)
    options.check()
    choice = choose(options.provider)  # first: `--provider cuda` without CUDA fails before any work
    say(choice.describe())
    ok = True
    with tempfile.TemporaryDirectory(prefix="archspec-run-") as tmp:
        if options.is_onnx:
            loaded = load_onnx(
                options.model,
                reference=options.verify,
                spec_file=options.spec,
                seed=options.seed,
                weights=options.weights,
            )
        else:
            loaded = export_for_run(
                options.model,
                Path(tmp),
                seed=options.seed,
                weights=options.weights,
                opset=options.opset,
                fp16=options.fp16,
                reference=options.verify,
            )
        check_top_k(options.top_k, loaded.model)
        x, input_note = input_batch(
            loaded.info, options.input, batch=options.batch, seed=options.seed
        )
        say(loaded.description)
        say(f"input: {loaded.info.input_name} {x.dtype} {list(x.shape)} ({input_note})")
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
        outputs = _timed_runs(options, loaded, choice, x, report)
        output = outputs[0]
        report["output"] = {
            "name": loaded.info.output_name,
            "dtype": str(output.dtype),
            "shape": list(output.shape),
        }
        say(f"output: {loaded.info.output_name} {output.dtype} {list(output.shape)}")
        say(latency_line(report["latency"], x.shape[0]))
        if options.top_k:
            smallest = loaded.info.metadata.get(KEY_OUTPUT_ORDER) == "ascending"
            report["top_k"] = top_k(output, options.top_k, smallest=smallest)
            report["top_k_order"] = "smallest first" if smallest else "largest first"
            for line in top_k_lines(report["top_k"], options.top_k, smallest):
                say(line)
        if options.verify:
            parity = layer_parity(loaded, choice, x, options.threads)
            report["verify"] = {
                "ok": parity.ok,
                "dtype": parity.dtype,
                "tolerance": parity.tolerance,
                "layers": [e.to_json() for e in parity.layers],
            }
            say(parity_line(parity, loaded.info.output_name))
            ok = parity.ok
    return report, ok


def _timed_runs(
    options: RunOptions,
    loaded: Loaded,
    choice: ProviderChoice,
    x: np.ndarray,
    report: dict[str, Any],
) -> list[np.ndarray]:
    """One first run (allocation, TensorRT engine build), then up to ``repeat`` timed runs."""
    from archspec.runtime.session import create_session, run_session

    start = time.perf_counter()
    session = create_session(loaded.path, choice, intra_op_threads=options.threads)
    created = time.perf_counter() - start
    feeds = {loaded.info.input_name: x}
    outputs, first = run_session(session, feeds, [loaded.info.output_name])
    times: list[float] = []
    budget_start = time.perf_counter()
    for _ in range(options.repeat):
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


def latency_line(lat: dict[str, Any], batch: int) -> str:
    if lat["runs"]:
        return (
            f"latency: {_ms(lat['median_seconds'])} median of {lat['runs']} runs at batch {batch} "
            f"({_ms(lat['median_seconds'] / batch)} per sample; min {_ms(lat['min_seconds'])}; "
            f"first run {_ms(lat['first_seconds'])}; session {_ms(lat['session_seconds'])})"
        )
    return f"latency: {_ms(lat['first_seconds'])} (one run at batch {batch}; session {_ms(lat['session_seconds'])})"


def top_k_lines(top: list[list[dict[str, float]]], k: int, smallest: bool = False) -> list[str]:
    which = "smallest first: the output is a distance" if smallest else "largest first"
    lines = [f"top-{k} per sample (index: value, {which}):"]
    for n, items in enumerate(top):
        lines.append(f"  {n}: " + ", ".join(f"{int(e['index'])}: {e['value']:.6g}" for e in items))
    return lines
