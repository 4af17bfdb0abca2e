"""The engines a benchmark times: ONNX Runtime and PyTorch, behind one small interface.

An engine is prepared for one batch (inputs placed where it computes,
outputs preallocated where it can), then called repeatedly; ``run()``
returns only when the result is complete, so wall-clock time around it is
the latency. Each engine carries the :class:`MemoryMeter` that fits where
its memory lives (process RSS on a CPU, the CUDA allocator or the device's
used memory on a GPU).

The GPU paths (device-resident IO binding, CUDA graphs for ORT and torch)
are written for the CUDA and TensorRT providers but could not be run where
they were written: no GPU was lent. docs/benchmarks.md says so.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from archspec.errors import RuntimeInputError

if TYPE_CHECKING:
    import onnxruntime
    import torch

ENGINE_ORT = "onnxruntime"
ENGINE_TORCH = "torch"
ENGINE_COMPILE = "torch-compile"


class EngineError(RuntimeInputError):
    """The model cannot be run as asked (an unsupported input type): one line, exit 2."""


# --------------------------------------------------------------------------- memory


class MemoryMeter:
    """Peak memory while one engine runs.

    ``rss``: the process's resident-set high-water mark (VmHWM in
    /proc/self/status), reset before each engine by writing 5 to
    /proc/self/clear_refs, so each engine's figure is the peak while it ran
    (it includes the interpreter, the libraries and every engine's weights,
    which all stay loaded). Where the reset is refused, ``ru_maxrss`` (the
    peak since the process started) is reported instead and the source says so.
    ``cuda-allocator``: ``torch.cuda.max_memory_allocated`` (PyTorch engines on a GPU).
    ``cuda-device``: device memory in use (cudaMemGetInfo) for ORT on a GPU,
    whose arena torch cannot see; it counts other processes on that GPU too.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._before: int | None = None
        self._peak_device_used = 0

    @property
    def source(self) -> str:
        if self.kind == "rss":
            return "process-rss-peak" if _can_reset_hwm() else "process-rss-peak-since-start"
        return self.kind

    def reset(self) -> None:
        if self.kind == "rss":
            if _can_reset_hwm():
                with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                    fh.write("5")
            self._before = _status_kb("VmRSS")
        elif self.kind == "cuda-allocator":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._before = torch.cuda.memory_allocated()
        else:
            self._before = self._device_used()
            self._peak_device_used = self._before or 0

    def sample(self) -> None:
        """Note the current level (device memory has no high-water mark, so it is sampled)."""
        if self.kind == "cuda-device":
            self._peak_device_used = max(self._peak_device_used, self._device_used() or 0)

    def read(self) -> tuple[int | None, int | None]:
        """(peak bytes, peak minus the level at reset)."""
        peak: int | None
        if self.kind == "rss":
            peak = _status_kb("VmHWM") if _can_reset_hwm() else None
            if peak is None:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        elif self.kind == "cuda-allocator":
            import torch

            peak = int(torch.cuda.max_memory_allocated())
        else:
            self.sample()
            peak = self._peak_device_used or None
        if peak is None or self._before is None:
            return peak, None
        return peak, max(0, peak - self._before)

    @staticmethod
    def _device_used() -> int | None:
        try:
            import torch

            if not torch.cuda.is_available():
                return None
            free, total = torch.cuda.mem_get_info()
            return int(total - free)
        except Exception:  # no torch CUDA: the figure is simply unknown
            return None


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


_HWM_RESETTABLE: bool | None = None


def _can_reset_hwm() -> bool:
    """Whether this kernel lets the process reset its own RSS high-water mark (Linux ≥ 4.0)."""
    global _HWM_RESETTABLE
    if _HWM_RESETTABLE is None:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
            _HWM_RESETTABLE = _status_kb("VmHWM") is not None
        except OSError:
            _HWM_RESETTABLE = False
    return _HWM_RESETTABLE


# --------------------------------------------------------------------------- engines


class Engine:
    """One way of running a model: prepared for a batch, then called repeatedly.

    ``run()`` returns only when the outputs are complete (on a GPU: after a
    synchronisation), so wall-clock time around it is the latency.
    """

    name: str
    provider: str
    cuda_graph: bool = False
    meter: MemoryMeter

    def prepare(self, x: np.ndarray, out_shape: tuple[int, ...]) -> None:
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def output(self) -> np.ndarray:
        raise NotImplementedError

    def release(self) -> None:
        """Drop the per-batch buffers (and captured graphs) before the next batch."""


class OrtEngine(Engine):
    """ONNX Runtime through IO binding: input and preallocated output bound once per batch.

    Binding once means a timed call does no allocation and, on a GPU, no
    host↔device copy: it measures the graph, as a serving loop would run it.
    """

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        provider: str,
        *,
        device: str,
        io_binding: bool = True,
        cuda_graph: bool = False,
    ) -> None:
        self.name = ENGINE_ORT
        self.provider = provider
        self.session = session
        self.device = device
        self.io_binding = io_binding or device == "cuda"
        self.cuda_graph = cuda_graph
        self.meter = MemoryMeter("cuda-device" if device == "cuda" else "rss")
        self._graph_ids = 0
        self._run: Callable[[], None] = _unprepared
        self._output: Callable[[], np.ndarray] = _no_output

    def prepare(self, x: np.ndarray, out_shape: tuple[int, ...]) -> None:
        """Bind the model's one input to ``x`` and a preallocated first output of ``out_shape``."""
        self.prepare_feeds({self.session.get_inputs()[0].name: x}, [out_shape])

    def prepare_feeds(
        self, feeds: dict[str, np.ndarray], out_shapes: list[tuple[int, ...]] | None = None
    ) -> None:
        """Bind every input, and every output preallocated: ``out_shapes`` in the session's
        output order, or (None: an ONNX file whose output shapes the caller does not know)
        the shapes of one untimed run."""
        import onnxruntime as ort

        outs = self.session.get_outputs()
        feeds = {
            i.name: np.ascontiguousarray(feeds[i.name].astype(_ort_numpy_dtype(i.type)))
            for i in self.session.get_inputs()
        }
        if not self.io_binding:
            names = [o.name for o in outs]
            result: list[Any] = []

            def run_plain() -> None:
                result[:] = self.session.run(names, feeds)

            self._run = run_plain
            self._output = lambda: np.asarray(result[0])
            return
        if out_shapes is None:
            out_shapes = [np.shape(v) for v in self.session.run(None, feeds)]
        where, index = ("cuda", 0) if self.device == "cuda" else ("cpu", 0)
        binding = self.session.io_binding()
        keep: list[Any] = []  # the buffers must outlive the binding
        for name, value in feeds.items():
            keep.append(ort.OrtValue.ortvalue_from_numpy(value, where, index))
            binding.bind_ortvalue_input(name, keep[-1])
        for out, shape in zip(outs, out_shapes, strict=False):
            keep.append(
                ort.OrtValue.ortvalue_from_shape_and_type(
                    list(shape), _ort_numpy_dtype(out.type), where, index
                )
            )
            binding.bind_ortvalue_output(out.name, keep[-1])
        for extra in outs[len(out_shapes) :]:  # shapes not given: ORT allocates on the device
            binding.bind_output(extra.name, where, index)
        options = ort.RunOptions()
        if self.cuda_graph:
            # One captured graph per batch size: ORT keys its graphs by this id
            # (untested here: no GPU was lent).
            self._graph_ids += 1
            options.add_run_config_entry("gpu_graph_id", str(self._graph_ids))

        def run_bound() -> None:
            self.session.run_with_iobinding(binding, options)
            if self.device == "cuda":
                binding.synchronize_outputs()
            _ = keep

        self._run = run_bound
        if len(keep) > len(feeds):
            first = keep[len(feeds)]
            self._output = lambda: np.asarray(first.numpy())
        else:
            self._output = lambda: np.asarray(binding.copy_outputs_to_cpu()[0])

    def run(self) -> None:
        self._run()

    def output(self) -> np.ndarray:
        return self._output()

    def release(self) -> None:
        self._run = _unprepared
        self._output = _no_output


class TorchEngine(Engine):
    """PyTorch eager (``torch``) or ``torch.compile`` (``torch-compile``) under inference_mode.

    ``torch-compile`` is recompiled for each batch (``dynamic=False``, after
    ``torch._dynamo.reset()``): static shapes give inductor its best kernels,
    and the reset keeps dynamo's per-function cache limit from silently
    sending later batch sizes back to eager.
    """

    def __init__(
        self, module: torch.nn.Module, *, compiled: bool, device: str, cuda_graph: bool = False
    ) -> None:
        self.name = ENGINE_COMPILE if compiled else ENGINE_TORCH
        self.provider = device
        self.module = module
        self.compiled = compiled
        self.device = device
        self.cuda_graph = cuda_graph and device == "cuda"
        self.meter = MemoryMeter("cuda-allocator" if device == "cuda" else "rss")
        self._x: torch.Tensor | None = None
        self._out: torch.Tensor | None = None
        self._run: Callable[[], None] = _unprepared

    def prepare(self, x: np.ndarray, out_shape: tuple[int, ...]) -> None:
        import torch

        dtype = next(self.module.parameters()).dtype
        self._x = torch.from_numpy(x).to(device=self.device, dtype=dtype)
        fn: Callable[[torch.Tensor], torch.Tensor] = self.module
        if self.compiled:
            torch._dynamo.reset()
            mode = "reduce-overhead" if self.cuda_graph else None  # inductor's own CUDA graphs
            fn = torch.compile(self.module, dynamic=False, mode=mode)
        if self.cuda_graph and not self.compiled:
            self._run = self._capture(fn)
            return
        sync = torch.cuda.synchronize if self.device == "cuda" else None

        def run_torch() -> None:
            with torch.inference_mode():
                self._out = fn(self._x)  # type: ignore[arg-type]
            if sync is not None:
                sync()

        self._run = run_torch

    def _capture(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        """Capture one forward in a CUDA graph; each call replays it (untested here: no GPU)."""
        import torch

        assert self._x is not None
        static_x = self._x
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode(), torch.cuda.stream(stream):
            for _ in range(3):  # let cuDNN pick its algorithms outside the capture
                fn(static_x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            static_out = fn(static_x)
        self._out = static_out

        def replay() -> None:
            graph.replay()
            torch.cuda.synchronize()

        return replay

    def run(self) -> None:
        self._run()

    def output(self) -> np.ndarray:
        assert self._out is not None, "run() first"
        return np.asarray(self._out.detach().float().cpu().numpy())

    def release(self) -> None:
        self._x = self._out = None
        self._run = _unprepared


def _unprepared() -> None:
    raise RuntimeError("engine.prepare() must be called before run()")


def _no_output() -> np.ndarray:
    raise RuntimeError("engine.prepare() and run() must be called before output()")


def _ort_numpy_dtype(type_name: str) -> type[np.generic]:
    """numpy dtype for an ORT type string such as ``tensor(float16)``."""
    table: dict[str, type[np.generic]] = {
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(double)": np.float64,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(int8)": np.int8,
        "tensor(uint8)": np.uint8,
        "tensor(bool)": np.bool_,
    }
    if type_name not in table:
        raise EngineError(f"unsupported ONNX input/output type {type_name}")
    return table[type_name]
