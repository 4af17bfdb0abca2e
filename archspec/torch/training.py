"""Measure a training step of a compiled spec, to hold :mod:`archspec.training`'s figures against.

Three measurements, each independent of the calculator:

- the bytes autograd saves, layer by layer, through
  ``torch.autograd.graph.saved_tensors_hooks`` (parameters and buffers
  excluded, a storage counted once, by the first layer that saves it);
- the backward FLOPs, through ``torch.utils.flop_counter.FlopCounterMode``;
- the peak memory of one steady-state step: on the CPU from the profiler's
  allocation events (``profile_memory=True``) on top of the bytes live before
  the step; on CUDA from ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from archspec.analysis import Analysis
from archspec.graph import INPUT
from archspec.torch import modules
from archspec.torch.build import SpecModule
from archspec.training import PRECISIONS, Setup
from archspec.vocab import DTYPES

# autocast's compute types, read from the dtype vocabulary (archspec.vocab)
LOW = {
    name: getattr(torch, DTYPES[name].torch) for name in PRECISIONS.values() if name != "float32"
}


def autocast(setup: Setup, device: str = "cpu") -> AbstractContextManager[Any]:
    """torch.autocast for an ``amp-*`` precision, nothing for fp32."""
    if not setup.autocast:
        return nullcontext()
    return torch.autocast(device_type=device, dtype=LOW[PRECISIONS[setup.precision]])


def run_layers(
    module: SpecModule, x: torch.Tensor, around: Callable[[str], AbstractContextManager[Any]]
) -> torch.Tensor:
    """The compiled module's forward pass (its plan, its activations), each layer inside ``around(name)``."""
    values: dict[str, torch.Tensor] = {INPUT: x}
    for name, srcs, activation in module.plan:
        with around(name):
            out = module.get_submodule(name)(*(values[s] for s in srcs))
            values[name] = modules.ACTIVATIONS[activation](out) if activation else out
    return values[module.output_name]


def optimizer(module: nn.Module, name: str) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3)
    if name == "momentum":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3)
    return torch.optim.AdamW(params, lr=1e-3)


def inputs(
    analysis: Analysis, batch: int, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch and the loss's gradient with respect to the output (float32; the output's type is set later)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *analysis.input_shape, generator=gen).to(device)
    g = torch.randn(batch, *analysis.output_shape, generator=gen).to(device)
    return x, g


def saved_bytes(module: SpecModule, setup: Setup, x: torch.Tensor) -> dict[str, int]:
    """Bytes that pass through the saved-tensor hooks during each layer's forward pass.

    Parameters and buffers are excluded; a storage saved twice (a ReLU's output
    that the next convolution saves as its input) counts once, for the first
    layer that saves it. The module is put in training mode (dropout active).
    """
    module.train()
    state = {p.untyped_storage().data_ptr() for p in [*module.parameters(), *module.buffers()]}
    seen: set[int] = set()
    per_layer: dict[str, int] = {}
    current = [""]
    keep: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in state and ptr not in seen:
            seen.add(ptr)
            per_layer[current[0]] = per_layer.get(current[0], 0) + storage.nbytes()
        keep.append(t)
        return t

    @contextmanager
    def layer(name: str) -> Iterator[None]:
        current[0] = name
        per_layer.setdefault(name, 0)
        yield

    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        autocast(setup, x.device.type),
    ):
        run_layers(module, x, layer)
    return per_layer


def backward_flops(module: nn.Module, setup: Setup, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's count of the backward pass: in total and per submodule (layer name)."""
    from torch.utils.flop_counter import FlopCounterMode

    module.train()
    with FlopCounterMode(display=False) as counter:
        with autocast(setup, x.device.type):
            out = module(x)
        before = copy.deepcopy(counter.get_flop_counts())
        total_before = counter.get_total_flops()
        if out.requires_grad:
            out.backward(torch.ones_like(out))
    after = counter.get_flop_counts()
    per_layer: dict[str, int] = {}
    prefix = f"{type(module).__name__}."
    for key, ops in after.items():
        if key.startswith(prefix) and "." not in key[len(prefix) :]:
            done = before.get(key, {})
            per_layer[key[len(prefix) :]] = sum(ops.values()) - sum(done.values())
    return counter.get_total_flops() - total_before, per_layer


def step_function(
    module: nn.Module, setup: Setup, x: torch.Tensor, g: torch.Tensor
) -> tuple[Callable[[], None], torch.optim.Optimizer]:
    """One training step as :mod:`archspec.training` models it, and its optimizer."""
    module.train()
    opt = optimizer(module, setup.optimizer)

    def step() -> None:
        with autocast(setup, x.device.type):
            out = module(x)
        out.backward(g)
        del out
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, opt


def _live_bytes(module: nn.Module, opt: torch.optim.Optimizer, *tensors: torch.Tensor) -> int:
    storages: dict[int, int] = {}
    found = [*module.parameters(), *module.buffers(), *tensors]
    for state in opt.state.values():
        found.extend(v for v in state.values() if isinstance(v, torch.Tensor))
    for t in found:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
    return sum(storages.values())


def measure_peak(module: nn.Module, setup: Setup, x: torch.Tensor, g: torch.Tensor) -> int:
    """Peak bytes of one steady-state step (a first step creates the optimizer's state)."""
    with torch.no_grad(), autocast(setup, x.device.type):
        g = g.to(module(x).dtype)  # the loss's gradient comes in the output's type
    step, opt = step_function(module, setup, x, g)
    step()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated()) - base + _live_bytes(module, opt, x, g)
    from torch.profiler import ProfilerActivity, profile

    base = _live_bytes(module, opt, x, g)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    return base + _cpu_allocation_peak(prof)


def _cpu_allocation_peak(prof: Any) -> int:
    """The most bytes live at once among the CPU allocations a profiler recorded, in order."""
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def measure_inference_peak(module: nn.Module, x: torch.Tensor) -> int:
    """Peak bytes of a forward pass under torch.no_grad (weights, the batch and what it allocates)."""
    from torch.profiler import ProfilerActivity, profile

    module.eval()
    with torch.no_grad():
        module(x)
        base = sum(
            t.untyped_storage().nbytes() for t in [*module.parameters(), *module.buffers(), x]
        )
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            module(x)
    return base + _cpu_allocation_peak(prof)
