"""Benchmarking ONNX Runtime against PyTorch on the same weights, device, batch and threads.

Why it is built this way:

- **One process, one run, one set of weights.** Each spec is compiled once
  (``compile_spec(spec, seed)``) and that very module is exported
  (``export_spec(..., module=m)``), so every engine computes the same function;
  the outputs are compared (``max_abs_diff``) so a fast wrong graph is caught.
- **Interleaved rounds** (A B C A B C …): on a shared or thermally throttled
  machine the speed drifts over seconds; timing one engine after another
  would charge the drift to whichever ran last. Each round gives every engine
  about the same slice of wall time.
- **Medians.** Latency percentiles come from every timed call; throughput
  and FLOP/s use the median (p50) latency, which other processes' bursts
  barely move, where the mean would absorb them.
- **Fair threads.** ORT's intra-op pool and ``torch.set_num_threads`` get the
  same count (default: the CPUs this process may use), and the roofline
  probe runs with it too.
- **Measured roof.** The roofline fraction divides by the FLOP/s of a dense
  matmul measured in the same run (:mod:`archspec.bench.roofline`).

On a GPU (CUDA or TensorRT provider) inputs and outputs stay on the device
(ORT IO binding, torch tensors on ``cuda``), each timed call ends with a
synchronisation, and ``cuda_graph=True`` replays captured CUDA graphs for
both ORT and PyTorch. That path could not be run where this was written
(no GPU was lent); docs/benchmarks.md says so.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from archspec.analysis import Analysis, analyze
from archspec.bench.engines import (
    ENGINE_COMPILE,
    ENGINE_ORT,
    ENGINE_TORCH,
    Engine,
    OrtEngine,
    TorchEngine,
)
from archspec.bench.environment import available_cpus, collect_environment
from archspec.bench.model_file import ModelFile, ShapeOption, is_onnx, read_model_file
from archspec.bench.peak import PhysicalPeak, Roof, choose_roof, device_peak
from archspec.bench.probes import numpy_gemm, ort_gemm, triad_bandwidth
from archspec.bench.roofline import PRECISIONS, PeakProbe, measure_peak, torch_threads
from archspec.errors import RuntimeInputError
from archspec.runtime.providers import OrtProvider, ProviderChoice
from archspec.spec import Spec, load
from archspec.vocab import PROVIDER_CHOICES

ENGINES = (ENGINE_ORT, ENGINE_TORCH, ENGINE_COMPILE)  # the names results carry
BASELINES = (ENGINE_TORCH, ENGINE_COMPILE)

# Interleaving: each engine gets about min_time / TARGET_ROUNDS of wall time
# per round, and there are never fewer than MIN_ROUNDS rounds, so even a
# tiny --min-time alternates the engines a few times.
TARGET_ROUNDS = 5
MIN_ROUNDS = 3
MAX_ROUNDS = 10_000

ProgressFn = Callable[[str, float], None]
"""Called with a description of the current step and the fraction of the whole run done (0..1)."""


class BenchError(RuntimeInputError):
    """The benchmark cannot run as asked (bad setting, torch without CUDA, ...): one line, exit 2."""


@dataclass(frozen=True)
class OrtTuning:
    """ONNX Runtime settings; the defaults are the fastest measured (docs/benchmarks.md).

    ``graph_optimization="all"`` is the one that matters on a CPU: it enables
    the layout transformer that runs convolutions in ORT's blocked NCHWc
    format with the ReLU fused (MLAS kernels), which the lower levels leave
    in plain NCHW. Everything else measured (execution mode, arena, memory
    pattern, spinning, prepacking) is best at ORT's default, so the session
    keeps those defaults: sequential execution with one inter-op thread.
    ``provider_options`` go to the GPU provider (e.g. CUDA's ``prefer_nhwc``).
    """

    graph_optimization: str = "all"  # "disable" | "basic" | "extended" | "all"
    io_binding: bool = True  # input and preallocated output bound once per batch
    provider_options: tuple[tuple[str, str], ...] = ()
    # ORT's intra-op threads spin between runs (its default, 7 % faster on this CPU). Turning
    # it off does not stop torch's slow-down on a busy machine: that is torch's own OpenMP
    # team waiting for a descheduled thread (docs/benchmarks.md, "Why ratios exploded").
    spinning: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "graph_optimization": self.graph_optimization,
            "execution_mode": "sequential",
            "inter_op_threads": 1,
            "io_binding": self.io_binding,
            "provider_options": dict(self.provider_options),
            "spinning": self.spinning,
        }


@dataclass(frozen=True)
class BenchSettings:
    """Everything that decides what is measured and how."""

    batches: tuple[int, ...] = (1, 8)
    provider: str = "auto"
    baselines: tuple[str, ...] = (ENGINE_TORCH,)
    precision: str = "fp32"
    warmup: int = 3
    min_time: float = 1.0  # seconds of timed calls per engine, per spec and batch
    threads: int | None = None  # None: every CPU this process may use
    seed: int = 0
    opset: int | None = None  # None: the exporter's default
    cuda_graph: bool = False
    ort: OrtTuning = field(default_factory=OrtTuning)
    peak_min_time: float | None = None  # None: same as min_time
    # ONNX files (archspec.bench.model_file): free axes fixed per input, and the spec a
    # file exported by archspec came from (its FLOPs and PyTorch reference)
    shapes: tuple[ShapeOption, ...] = ()
    spec: str | None = None

    def validate(self) -> None:
        """Raise :class:`BenchError` for settings no run could honour, before any work starts."""
        if not self.batches or any(b < 1 for b in self.batches):
            raise BenchError("batch sizes must be positive integers")
        if self.provider not in PROVIDER_CHOICES:
            raise BenchError(f"provider must be one of {', '.join(PROVIDER_CHOICES)}")
        if unknown := [b for b in self.baselines if b not in BASELINES]:
            raise BenchError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}")
        if self.precision not in PRECISIONS:
            raise BenchError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.warmup < 0:
            raise BenchError("--warmup must be 0 or more")
        if not self.min_time > 0:
            raise BenchError("--min-time must be a positive number of seconds")
        if self.threads is not None and self.threads < 1:
            raise BenchError("--threads must be at least 1")

    def to_json(self) -> dict[str, Any]:
        return {
            "batches": list(self.batches),
            "provider": self.provider,
            "baselines": list(self.baselines),
            "precision": self.precision,
            "warmup": self.warmup,
            "min_time_s": self.min_time,
            "threads": self.threads,
            "seed": self.seed,
            "opset": self.opset,
            "cuda_graph": self.cuda_graph,
            "onnxruntime": self.ort.to_json(),
            "interleaving": f"rounds of A B C …, about {TARGET_ROUNDS} rounds, at least {MIN_ROUNDS}",
            "shapes": {name: list(dims) for name, dims in self.shapes},
            "spec": self.spec,
        }


@dataclass(frozen=True)
class Latency:
    """Milliseconds per call over every timed call (percentiles by linear interpolation)."""

    p50: float
    p90: float
    p99: float
    mean: float
    min: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
        return cls(p50=p50, p90=p90, p99=p99, mean=float(ms.mean()), min=float(ms.min()))

    def to_json(self) -> dict[str, float]:
        return {
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "mean": self.mean,
            "min": self.min,
        }


@dataclass(frozen=True)
class BenchResult:
    """One spec × engine × batch."""

    spec: str
    file: str | None
    engine: str
    provider: str
    batch: int
    precision: str
    latency: Latency
    samples: int
    throughput: float  # samples per second, at the median latency
    # the calculator's FLOPs × batch / median latency, and its fraction of the roof; None for
    # an ONNX file whose FLOPs archspec cannot count
    flops_per_s: float | None
    roofline_fraction: float | None
    peak_memory_bytes: int | None
    peak_memory_source: str
    memory_increase_bytes: int | None  # peak minus what was in use before this engine's runs
    max_abs_diff: float | None  # against the torch engine's output on the same input
    cuda_graph: bool
    cpu_share: float | None = None  # see _Timing.cpu_share: below ~0.8, the machine was busy
    gemm_ratio: float | None = None  # achieved / the best GEMM measured in this run (may exceed 1)
    # throughput over torch eager's (same spec, batch, precision) and its 95 % bootstrap
    # interval over the interleaved rounds; None for torch itself or without a torch baseline
    vs_torch: tuple[float, float, float] | None = None
    unreliable: tuple[str, ...] = ()  # why these figures should not be trusted (empty: fine)
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # as fed, by input

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "file": self.file,
            "engine": self.engine,
            "provider": self.provider,
            "batch": self.batch,
            "precision": self.precision,
            "latency_ms": self.latency.to_json(),
            "samples": self.samples,
            "throughput": self.throughput,
            "flops_per_s": self.flops_per_s,
            "roofline_fraction": self.roofline_fraction,
            "gemm_ratio": self.gemm_ratio,
            "peak_memory_bytes": self.peak_memory_bytes,
            "peak_memory_source": self.peak_memory_source,
            "memory_increase_bytes": self.memory_increase_bytes,
            "max_abs_diff": self.max_abs_diff,
            "cuda_graph": self.cuda_graph,
            "cpu_share": self.cpu_share,
            "vs_torch": None
            if self.vs_torch is None
            else dict(zip(("ratio", "ci_low", "ci_high"), self.vs_torch, strict=True)),
            "reliable": not self.unreliable,
            "unreliable_reasons": list(self.unreliable),
            "input_shapes": {name: list(shape) for name, shape in self.input_shapes.items()},
        }


@dataclass(frozen=True)
class BenchReport:
    """A whole run: where, how, the roof, and one result per spec × engine × batch."""

    environment: dict[str, Any]
    settings: BenchSettings
    provider: dict[str, Any]
    peak: PeakProbe
    results: tuple[BenchResult, ...]
    flops: dict[
        str, int | None
    ]  # per sample, by spec name: the calculator's figure (None: unknown)
    wall_s: float
    files: tuple[str, ...] = ()  # the spec files as given (loaded Spec objects have none)
    notes: tuple[str, ...] = ()  # caveats a reader of the figures must know (also on stderr)
    physical: PhysicalPeak | None = None  # the hardware's peak, every input with its source
    gemm_probes: tuple[tuple[str, float], ...] = ()  # measured GEMM FLOP/s by library
    bandwidth_bytes_per_s: float | None = None  # streaming triad
    roof: Roof | None = None  # what roofline_fraction divides by
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # ONNX files, by result name

    @property
    def command(self) -> str:
        """An ``archspec bench`` command line that repeats this run, every setting spelled out."""
        return command_line(self.files, self.settings)

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "environment": self.environment,
            "settings": self.settings.to_json(),
            "provider": self.provider,
            "peak_flops_per_s": self.roof.flops_per_s if self.roof else self.peak.flops_per_s,
            "roof": self.roof.to_json() if self.roof else None,
            "physical_peak": self.physical.to_json() if self.physical else None,
            "gemm_probes": {name: flops for name, flops in self.gemm_probes},
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "roofline": self.peak.to_json(),
            "flops_per_sample": self.flops,
            "models": self.models,
            "wall_s": self.wall_s,
            "notes": list(self.notes),
            "results": [r.to_json() for r in self.results],
        }


def command_line(files: Sequence[str], settings: BenchSettings) -> str:
    """The CLI form of a run, for reports and docs ("the exact command that produced it")."""
    import shlex

    argv = ["archspec", "bench", *files]
    argv += ["--batch", ",".join(map(str, settings.batches))]
    argv += ["--provider", settings.provider]
    argv += ["--baseline", ",".join(settings.baselines) or "none"]
    argv += ["--precision", settings.precision]
    argv += ["--warmup", str(settings.warmup), "--min-time", f"{settings.min_time:g}"]
    if settings.threads is not None:
        argv += ["--threads", str(settings.threads)]
    if settings.seed != 0:
        argv += ["--seed", str(settings.seed)]
    if settings.cuda_graph:
        argv.append("--cuda-graph")
    for key, value in settings.ort.provider_options:
        argv += ["--ort-option", f"{key}={value}"]
    for name, dims in settings.shapes:
        argv += ["--shape", f"{name}={','.join(map(str, dims))}"]
    if settings.spec is not None:
        argv += ["--spec", settings.spec]
    return shlex.join(argv)


# --------------------------------------------------------------------------- timing


@dataclass
class _Timing:
    seconds: list[float] = field(default_factory=list)
    rounds: list[float] = field(default_factory=list)  # each interleaved round's median call
    cpu_seconds: float = 0.0  # process CPU time (all threads) during the timed calls
    peak_memory: int | None = None
    memory_increase: int | None = None

    def cpu_share(self, threads: int) -> float | None:
        """CPU time the process got over what ``threads`` busy threads would get in that wall time.

        About 1 on an idle machine (idle pool threads spin, which counts);
        well below 1 means other processes took the cores, and the
        latencies are longer than this machine gives when idle.
        """
        wall = sum(self.seconds)
        return self.cpu_seconds / (threads * wall) if wall > 0 else None


def time_engines(
    engines: Sequence[Engine],
    *,
    warmup: int,
    min_time: float,
    on_fraction: Callable[[float], None] | None = None,
) -> list[_Timing]:
    """Warm every engine, then time them in interleaved rounds until each has ``min_time`` s.

    Each round gives every engine about ``min_time / TARGET_ROUNDS`` seconds
    (at least one call), in a fixed order A B C; so whatever slows the machine
    during the measurement slows every engine alike. The engines must be prepared.
    """
    timings = [_Timing() for _ in engines]
    estimate: list[float] = []
    for engine, timing in zip(engines, timings, strict=True):
        engine.meter.reset()
        calls = [_timed(engine) for _ in range(max(1, warmup))]
        timing.peak_memory, timing.memory_increase = engine.meter.read()
        estimate.append(min(calls))
    slice_s = min_time / TARGET_ROUNDS
    per_round = [max(1, round(slice_s / max(e, 1e-9))) for e in estimate]
    rounds = 0
    while rounds < MAX_ROUNDS:
        for engine, timing, n in zip(engines, timings, per_round, strict=True):
            cpu = time.process_time()
            calls = [_timed(engine) for _ in range(n)]
            timing.seconds.extend(calls)
            timing.rounds.append(float(np.median(calls)))
            timing.cpu_seconds += time.process_time() - cpu
        rounds += 1
        done = min(sum(t.seconds) / min_time for t in timings)
        if on_fraction is not None:
            on_fraction(min(1.0, done))
        if rounds >= MIN_ROUNDS and done >= 1.0:
            break
    return timings


BOOTSTRAP = 2000
# A result is marked unreliable when: its engine got less than this share of its threads'
# CPU time; its 95 % interval against torch spans more than this factor; its p90 is more
# than this many times its p50; or the GEMM probes of the run disagree by more than this.
BUSY_SHARE = 0.8
WIDE_INTERVAL = 1.5
WIDE_SPREAD = 3.0
PROBES_DISAGREE = 2.0


def ratio_interval(
    reference: Sequence[float], other: Sequence[float], *, seed: int = 0
) -> tuple[float, float, float]:
    """``median(reference) / median(other)`` over the rounds, with a 95 % percentile-bootstrap
    interval that resamples whole rounds (paired: round k of both engines ran back to back,
    under the same load)."""
    ref, oth = np.asarray(reference), np.asarray(other)
    n = min(len(ref), len(oth))
    ref, oth = ref[:n], oth[:n]
    ratio = float(np.median(ref) / np.median(oth))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(BOOTSTRAP, n))
    samples = np.median(ref[picks], axis=1) / np.median(oth[picks], axis=1)
    lo, hi = (float(v) for v in np.percentile(samples, [2.5, 97.5]))
    return ratio, lo, hi


def reliability(result: BenchResult, probes: dict[str, float]) -> tuple[str, ...]:
    """Why a result's figures should not be trusted, if they should not."""
    reasons = []
    if result.cpu_share is not None and result.cpu_share < BUSY_SHARE:
        reasons.append(
            f"the engine got {100 * result.cpu_share:.0f}% of its threads' CPU time "
            "(other processes took the cores)"
        )
    if result.vs_torch is not None:
        _, lo, hi = result.vs_torch
        if lo > 0 and hi / lo > WIDE_INTERVAL:
            reasons.append(f"the ratio to torch is uncertain: 95% interval {lo:.2f}–{hi:.2f}×")
    if result.latency.p90 > WIDE_SPREAD * result.latency.p50:
        reasons.append(
            f"latency spread: p90 {result.latency.p90:.3g} ms is over {WIDE_SPREAD:g}× p50"
        )
    if probes and max(probes.values()) > PROBES_DISAGREE * min(probes.values()):
        reasons.append(
            "the GEMM probes disagree: "
            + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in probes.items())
            + " GFLOP/s"
        )
    return tuple(reasons)


def _timed(engine: Engine) -> float:
    start = time.perf_counter()
    engine.run()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- the run


@dataclass
class _Prepared:
    """A spec or an ONNX file ready to benchmark: its FLOPs, inputs and engines."""

    name: str
    file: str | None
    flops: int | None  # per sample; None: an ONNX file archspec cannot count
    engines: list[Engine]
    # a batch → every input fed at it, and the output shape to preallocate (None: learn it)
    feeds: Callable[[int], tuple[dict[str, np.ndarray], tuple[int, ...] | None]]
    batches: tuple[int, ...]
    precision: str


_Item = tuple[str | None, Spec, Analysis] | ModelFile  # a loaded spec, or an ONNX file


def run_bench(
    specs: Sequence[str | os.PathLike[str] | Spec],
    settings: BenchSettings | None = None,
    *,
    progress: ProgressFn | None = None,
) -> BenchReport:
    """Benchmark every spec with ONNX Runtime and the requested PyTorch baselines.

    ``specs`` are paths (loaded and analysed here; a bad file raises
    :class:`~archspec.spec.diagnostics.SpecError`), loaded specs, or ``.onnx``
    files (:mod:`archspec.bench.model_file`: ``settings.shapes`` fixes their
    free axes). Returns a :class:`BenchReport`; raises :class:`BenchError`
    when the run cannot be done as asked.
    """
    settings = settings or BenchSettings()
    settings.validate()
    started = time.perf_counter()
    report = progress or (lambda _d, _f: None)
    loaded = load_items(specs, settings)
    precisions = {i.precision if isinstance(i, ModelFile) else settings.precision for i in loaded}
    if len(precisions) == 1:  # ONNX files alone, all fp16: the roof is measured at fp16
        settings = replace(settings, precision=precisions.pop())

    from archspec.runtime.providers import choose

    choice = choose(settings.provider)  # ProviderError (exit 2) says which provider and why
    device = "cpu" if choice.name == "cpu" else "cuda"
    if settings.cuda_graph and device == "cpu":
        raise BenchError(
            "--cuda-graph needs a GPU provider (cuda or tensorrt); this run is on the cpu"
        )
    _check_torch_device(device, settings)
    threads = settings.threads or available_cpus()
    steps = 1 + sum(1 + len(_batches(item, settings)) for item in loaded)
    done = 0.0

    def step(description: str, fraction: float = 0.0) -> None:
        report(description, min(1.0, (done + fraction) / steps))

    results: list[BenchResult] = []
    flops: dict[str, int | None] = {}
    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="archspec-bench-") as tmp:
        step(f"roofline probe ({settings.precision} matmul on {device})")
        peak = measure_peak(
            device,
            settings.precision,
            threads=threads,
            min_time=settings.peak_min_time
            if settings.peak_min_time is not None
            else settings.min_time,
        )
        physical = device_peak(device, settings.precision, threads)
        probe_time = min(
            settings.peak_min_time if settings.peak_min_time is not None else settings.min_time,
            1.0,
        )
        gemms = {"torch matmul": peak.flops_per_s}
        bandwidth = None
        if device == "cpu":
            if settings.precision == "fp32":
                gemms["numpy matmul"] = numpy_gemm(peak.size, probe_time)
                gemms["onnxruntime MatMul"] = ort_gemm(peak.size, probe_time, threads)
            bandwidth = triad_bandwidth(probe_time)
        done += 1
        for item in loaded:
            if isinstance(item, ModelFile):
                step(f"{item.name}: session")
                prepared = _prepare_file(item, settings, choice, device, threads)
            else:
                step(f"{item[1].name}: compile, export, session")
                prepared = _prepare_spec(*item, settings, choice, device, threads, Path(tmp))
            flops[prepared.name] = prepared.flops
            done += 1
            for batch in prepared.batches:
                label = f"{prepared.name} batch {batch}"
                step(label)
                results.extend(
                    _bench_batch(
                        prepared,
                        batch,
                        settings,
                        peak,
                        threads,
                        lambda f, label=label: step(label, f),  # type: ignore[misc]
                    )
                )
                done += 1
            for engine in prepared.engines:
                engine.release()
            del prepared
            _return_freed_memory()
        step("done", 0.0)
        environment = collect_environment(
            threads=threads,
            device=device,
            ort_providers=[p if isinstance(p, str) else p[0] for p in choice.ort_providers],
        )
    # The roof: the physical peak, or, where its clock is only nominal and something in this
    # run went faster, the fastest figure measured (see archspec.bench.peak.choose_roof).
    measured = {
        **gemms,
        **{
            f"{r.engine} on {r.spec} at batch {r.batch}": r.flops_per_s
            for r in results
            if r.flops_per_s is not None
        },
    }
    roof = choose_roof(physical, measured)
    best_gemm = max(gemms.values())
    results = [
        r
        if r.flops_per_s is None
        else replace(
            r,
            roofline_fraction=r.flops_per_s / roof.flops_per_s,
            gemm_ratio=r.flops_per_s / best_gemm,
        )
        for r in results
    ]
    results = [replace(r, unreliable=reliability(r, gemms)) for r in results]
    return BenchReport(
        physical=physical,
        gemm_probes=tuple(gemms.items()),
        bandwidth_bytes_per_s=bandwidth,
        roof=roof,
        notes=tuple(
            [
                *_file_notes(loaded, settings),
                *_notes(settings, device, environment, results),
            ]
        ),
        environment=environment,
        settings=replace(settings, threads=threads),
        provider=_describe_choice(choice),
        peak=peak,
        results=tuple(results),
        flops=flops,
        wall_s=time.perf_counter() - started,
        files=tuple(f for f in map(_file, loaded) if f is not None),
        models={item.name: item.to_json() for item in loaded if isinstance(item, ModelFile)},
    )


def load_items(
    specs: Sequence[str | os.PathLike[str] | Spec], settings: BenchSettings
) -> list[_Item]:
    """Load and analyse every spec, read every ONNX file, before any work: a bad file fails in
    a second, not after minutes. ``--shape`` and ``--spec`` must each be for a file given."""
    loaded: list[_Item] = []
    several = sum(map(is_onnx, specs)) > 1
    for item in specs:
        if isinstance(item, Spec):
            loaded.append((None, item, analyze(item)))
        elif is_onnx(item):
            loaded.append(
                read_model_file(
                    os.fspath(item),
                    settings.shapes,
                    spec_file=settings.spec,
                    reference=bool(settings.baselines),
                    others=several,
                )
            )
        else:
            spec = load(item)
            loaded.append((str(item), spec, analyze(spec)))
    if not loaded:
        raise BenchError("no spec to benchmark")
    files = [item for item in loaded if isinstance(item, ModelFile)]
    if settings.shapes and not files:
        raise BenchError("--shape is for .onnx files, and none is given (specs state their shapes)")
    if settings.spec and not files:
        raise BenchError("--spec is for .onnx files archspec exported, and none is given")
    for name, _ in settings.shapes:
        if not any(name in f.template for f in files):
            inputs = ", ".join(sorted({n for f in files for n in f.template}))
            where = files[0].path if len(files) == 1 else "the .onnx files given"
            raise BenchError(f"--shape {name}: {where} has no input '{name}' (inputs: {inputs})")
    if settings.spec is not None:
        from archspec.spec import load as load_spec

        name = load_spec(settings.spec).name
        if not any(f.spec_name == name for f in files):
            recorded = ", ".join(
                f"{f.name}: {f.spec_name or 'no archspec metadata'}" for f in files
            )
            raise BenchError(
                f"--spec {settings.spec} is spec '{name}', which no .onnx given was exported "
                f"from ({recorded})"
            )
    return loaded


def _file(item: _Item) -> str | None:
    return item.path if isinstance(item, ModelFile) else item[0]


def _batches(item: _Item, settings: BenchSettings) -> tuple[int, ...]:
    return item.batches(settings.batches) if isinstance(item, ModelFile) else settings.batches


def _file_notes(loaded: list[_Item], settings: BenchSettings) -> list[str]:
    """What an ONNX file's figures lack or how they differ from the settings."""
    notes = []
    for item in loaded:
        if not isinstance(item, ModelFile):
            continue
        if item.flops is None:
            notes.append(
                f"{item.name}: GFLOP/s and roofline fractions not available: no FLOP count "
                f"({item.flops_source.removeprefix('none: ')})"
            )
        if item.baseline_note and settings.baselines:
            notes.append(item.baseline_note)
        if item.fixed_batch is not None and settings.batches != (item.fixed_batch,):
            notes.append(
                f"{item.name}: run at batch {item.fixed_batch} only: no input's first axis is free"
            )
        if item.precision != settings.precision:
            notes.append(
                f"{item.name}: runs in its own {item.precision} (--precision is for specs)"
            )
    return notes


# Outputs further apart than this from torch's are worth a reader's attention
# (archspec.vocab.DTYPES tolerances' scale, with room for softmax-free logits).
DIFF_NOTE = {"fp32": 1e-3, "fp16": 5e-2}


def _notes(
    settings: BenchSettings, device: str, environment: dict[str, Any], results: list[BenchResult]
) -> list[str]:
    """Caveats that change how the figures read; empty for an ordinary fp32 run."""
    notes = []
    native_fp16 = {"avx512_fp16", "amx_fp16"} & set(environment.get("cpu_flags", []))
    if settings.precision == "fp16" and device == "cpu" and not native_fp16:
        notes.append(
            "fp16 on a CPU without native fp16 arithmetic: torch's fp16 matmul is emulated, "
            "so the roof is low and roofline fractions above 1 say nothing about the engines"
        )
    shares = [r.cpu_share for r in results if r.cpu_share is not None]
    if device == "cpu" and shares and min(shares) < BUSY_SHARE:
        notes.append(
            f"the machine was busy: the engines got {_span(shares)}% "
            f"of their {settings.threads or available_cpus()} threads' CPU time (cpu_share), so "
            "latencies are longer than on an idle machine; repeat the run when it is idle"
        )
    for r in results:
        if r.max_abs_diff is not None and r.max_abs_diff > DIFF_NOTE[r.precision]:
            notes.append(
                f"{r.spec} batch {r.batch}: {r.engine}'s output differs from torch's by "
                f"{r.max_abs_diff:.3g} (max abs)"
            )
    return notes


def _span(shares: list[float]) -> str:
    low, high = (f"{100 * v:.0f}" for v in (min(shares), max(shares)))
    return low if low == high else f"{low}–{high}"


def _return_freed_memory() -> None:
    """Free the finished spec's module and session, and hand the freed heap back to the OS.

    Peak memory on a CPU is the process's RSS; without this, glibc keeps the
    previous spec's hundreds of MiB of weights mapped and every later spec's
    figure would include them.
    """
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return
    trim(0)


def _describe_choice(choice: ProviderChoice) -> dict[str, Any]:
    return {
        "name": choice.name,
        "ort_providers": [p if isinstance(p, str) else p[0] for p in choice.ort_providers],
        "skipped": dict(choice.skipped),
        "description": choice.describe(),
    }


def _check_torch_device(device: str, settings: BenchSettings) -> None:
    if device != "cuda" or not settings.baselines:
        return
    import torch

    if not torch.cuda.is_available():
        raise BenchError(
            f"the PyTorch baselines must run on the GPU like ONNX Runtime, but this torch "
            f"({torch.__version__}) has no CUDA; use --provider cpu or --baseline none"
        )


def _prepare_spec(
    file: str | None,
    spec: Spec,
    analysis: Analysis,
    settings: BenchSettings,
    choice: ProviderChoice,
    device: str,
    threads: int,
    tmp: Path,
) -> _Prepared:
    """Compile once, export that module, open the ORT session, build the engines."""
    from archspec.runtime.prepare import compile_and_export

    path = tmp / f"{spec.name}.onnx"
    module = compile_and_export(
        spec,
        path,
        analysis=analysis,
        seed=settings.seed,
        opset=settings.opset,
        fp16=settings.precision == "fp16",
        module_dtype="float32",
    ).module
    engines = _engines(str(path), module, settings.precision, settings, choice, device, threads)
    sample, out = analysis.input_shape, analysis.output_shape
    name = engines[0].session.get_inputs()[0].name  # type: ignore[attr-defined]

    def feeds(batch: int) -> tuple[dict[str, np.ndarray], tuple[int, ...] | None]:
        rng = np.random.default_rng(settings.seed)
        return {name: rng.standard_normal((batch, *sample), dtype=np.float32)}, (batch, *out)

    return _Prepared(
        spec.name,
        file,
        analysis.totals.flops,
        engines,
        feeds,
        settings.batches,
        settings.precision,
    )


def _prepare_file(
    item: ModelFile, settings: BenchSettings, choice: ProviderChoice, device: str, threads: int
) -> _Prepared:
    """An ONNX file's session as it is, and its PyTorch reference where it has one."""
    module = item.reference if settings.baselines else None
    engines = _engines(item.path, module, item.precision, settings, choice, device, threads)
    return _Prepared(
        item.name,
        item.path,
        item.flops,
        engines,
        lambda batch: (item.feeds(batch, settings.seed), None),
        item.batches(settings.batches),
        item.precision,
    )


def _engines(
    path: str,
    module: Any | None,
    precision: str,
    settings: BenchSettings,
    choice: ProviderChoice,
    device: str,
    threads: int,
) -> list[Engine]:
    """ORT on the file, then each requested PyTorch baseline on ``module`` (when there is one)."""
    from archspec.runtime.session import create_session

    tuning = settings.ort
    session = create_session(
        path,
        _tuned_choice(choice, replace(settings, precision=precision)),
        intra_op_threads=threads,
        inter_op_threads=1,
        graph_optimization=tuning.graph_optimization,
        spinning=tuning.spinning,
    )
    engines: list[Engine] = [
        OrtEngine(
            session,
            choice.name,
            device=device,
            io_binding=tuning.io_binding,
            cuda_graph=settings.cuda_graph and device == "cuda",
        )
    ]
    if module is None or not settings.baselines:
        return engines
    import torch

    torch_module = module
    if precision == "fp16":
        torch_module = copy.deepcopy(module).to(torch.float16)
    torch_module = torch_module.to(device).eval()
    for name in BASELINES:  # fixed order: torch, then torch-compile
        if name in settings.baselines:
            engines.append(
                TorchEngine(
                    torch_module,
                    compiled=name == ENGINE_COMPILE,
                    device=device,
                    cuda_graph=settings.cuda_graph,
                )
            )
    return engines


def _tuned_choice(choice: ProviderChoice, settings: BenchSettings) -> ProviderChoice:
    """``choice`` with options added to its GPU provider: CUDA graphs, TensorRT fp16, user options.

    The CPU provider has no provider options worth setting (its tuning is the
    session's graph optimisation level), so a CPU choice comes back unchanged.
    Untested here: no GPU was lent while this was written.
    """
    if choice.name == "cpu":
        return choice
    extra: dict[str, Any] = dict(settings.ort.provider_options)
    if choice.name == "cuda" and settings.cuda_graph:
        extra["enable_cuda_graph"] = "1"
    if choice.name == "tensorrt":
        if settings.cuda_graph:
            extra["trt_cuda_graph_enable"] = True
        if settings.precision == "fp16":
            extra["trt_fp16_enable"] = True
    if not extra:
        return choice
    providers: list[OrtProvider] = []
    for i, entry in enumerate(choice.ort_providers):
        name, options = (entry, {}) if isinstance(entry, str) else entry
        providers.append((name, {**options, **extra}) if i == 0 else entry)
    return replace(choice, ort_providers=providers)


def _bench_batch(
    prepared: _Prepared,
    batch: int,
    settings: BenchSettings,
    peak: PeakProbe,
    threads: int,
    on_fraction: Callable[[float], None],
) -> list[BenchResult]:
    feeds, out_shape = prepared.feeds(batch)
    engines = prepared.engines
    for engine in engines:
        if isinstance(engine, OrtEngine):
            engine.prepare_feeds(feeds, None if out_shape is None else [out_shape])
        else:  # a PyTorch reference: a spec's module, which takes one input
            engine.prepare(next(iter(feeds.values())), out_shape or ())
        engine.run()  # first call: torch.compile compiles, ORT allocates, CUDA graphs capture
    reference = next((e.output() for e in engines if e.name == ENGINE_TORCH), None)
    diffs = [
        None
        if reference is None
        else float(np.max(np.abs(e.output().astype(np.float32) - reference.astype(np.float32))))
        for e in engines
    ]
    timings = time_engines(
        engines, warmup=settings.warmup, min_time=settings.min_time, on_fraction=on_fraction
    )
    results = []
    flops = prepared.flops
    torch_timing = next(
        (t for e, t in zip(engines, timings, strict=True) if e.name == ENGINE_TORCH), None
    )
    for engine, timing, diff in zip(engines, timings, diffs, strict=True):
        latency = Latency.of(timing.seconds)
        seconds = latency.p50 / 1e3
        achieved = None if flops is None else flops * batch / seconds
        results.append(
            BenchResult(
                spec=prepared.name,
                file=prepared.file,
                engine=engine.name,
                provider=engine.provider,
                batch=batch,
                precision=prepared.precision,
                latency=latency,
                samples=len(timing.seconds),
                throughput=batch / seconds,
                flops_per_s=achieved,
                roofline_fraction=None if achieved is None else achieved / peak.flops_per_s,
                peak_memory_bytes=timing.peak_memory,
                peak_memory_source=engine.meter.source,
                memory_increase_bytes=timing.memory_increase,
                max_abs_diff=diff,
                cuda_graph=engine.cuda_graph,
                cpu_share=timing.cpu_share(threads),
                vs_torch=None
                if torch_timing is None or engine.name == ENGINE_TORCH
                else ratio_interval(torch_timing.rounds, timing.rounds, seed=settings.seed),
                input_shapes={name: tuple(value.shape) for name, value in feeds.items()},
            )
        )
        engine.release()
    return results
