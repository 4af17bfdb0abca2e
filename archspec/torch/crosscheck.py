"""The verification triangle, part 1: the static calculator against a real PyTorch module.

The calculator derives every layer's output shape and its trainable and
non-trainable element counts from formulas; the compiled module has real
tensors. Running one batch through the module and comparing, layer by layer,
catches a formula or a builder that is wrong for one kind, one option or one
combination of options, which no number of hand-picked unit tests would.

The module is observed through forward hooks on the submodules named like the
spec's layers, so the same check works for the compiled
:class:`~archspec.torch.build.SpecModule` and for the class that
``archspec codegen`` generates. An ``activation:`` shorthand is applied after
the submodule and never changes a shape, so the hook's shape is the layer's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archspec.analysis import Analysis
from archspec.layers.base import fmt_shape


@dataclass(frozen=True)
class Mismatch:
    """One figure on which the calculator and the module disagree."""

    layer: str | None  # None: the whole model (totals, final output)
    figure: str  # "output" (batch first), "params", "buffers", "missing" or "error"
    calculator: Any
    module: Any

    def describe(self) -> str:
        who = f"layer '{self.layer}'" if self.layer is not None else "model"
        if self.figure in ("missing", "error"):
            return f"{who}: {self.module}"
        if self.figure == "output":
            return (
                f"{who}: output shape (batch first): calculator {fmt_shape(self.calculator)}, "
                f"module {fmt_shape(self.module)}"
            )
        return (
            f"{who}: {self.figure}: calculator {self.calculator:,}, module {self.module:,} "
            f"(off by {self.module - self.calculator:+,})"
        )


def state_counts(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) elements: parameters that require grad, and the rest with buffers.

    A frozen parameter is state the optimiser never changes, which is what the
    calculator calls a buffer (LeNet-5's fixed RBF centres).
    """
    trainable = frozen = 0
    for p in module.parameters():
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return trainable, frozen + sum(b.numel() for b in module.buffers())


def verify_module(
    analysis: Analysis, module: nn.Module, batch: int = 2, seed: int = 0
) -> list[Mismatch]:
    """Run one random batch through ``module`` and list every disagreement with ``analysis``.

    Mismatches come in graph order (a layer's shape before its counts), then
    the totals; an empty list means the module and the calculator agree on
    every layer. The module's mode (train/eval) is left as it was; the batch
    runs in eval mode under ``torch.no_grad`` so dropout cannot change shapes
    or waste memory on autograd.

    A module built from a wrong calculator can fail to run (a linear layer
    sized for a flatten that is really smaller): that is reported as an
    ``error`` mismatch on the layer that raised, after the shapes of the
    layers that ran before it, which usually show the cause.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    submodules: dict[str, nn.Module] = {}
    for row in analysis.rows:
        try:
            submodules[row.name] = module.get_submodule(row.name)
        except AttributeError:
            return [Mismatch(row.name, "missing", None, "the module has no such submodule")]

    shapes: dict[str, tuple[int, ...]] = {}
    running: list[str] = []  # layers entered and not yet left: the last one raised, if any

    def enter(name: str) -> Callable[..., None]:
        return lambda *_: running.append(name)

    def leave(name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, _inputs: Any, output: Any) -> None:
            running.pop()
            if isinstance(output, torch.Tensor):
                shapes[name] = tuple(output.shape)

        return hook

    handles = [h for name, sub in submodules.items() for h in _hooks(sub, enter(name), leave(name))]
    dtype = next((p.dtype for p in module.parameters()), None) or _spec_dtype(analysis)
    x = torch.randn(batch, *analysis.input_shape, generator=torch.Generator().manual_seed(seed))
    was_training = module.training
    out: Any = None
    failure: str | None = None
    try:
        module.eval()
        with torch.no_grad():
            out = module(x.to(dtype))
    except Exception as exc:  # the module could not run the batch: that is the finding
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        failure = f"failed to run the batch: {type(exc).__name__}: {first}".rstrip(": ")
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    failed_layer = running[-1] if failure and running else None

    found: list[Mismatch] = []
    for row in analysis.rows:
        want = (batch, *row.output)
        if row.name == failed_layer:
            found.append(Mismatch(row.name, "error", None, failure))
        elif row.name in shapes:
            if shapes[row.name] != want:
                found.append(Mismatch(row.name, "output", want, shapes[row.name]))
        elif failure is None:
            found.append(Mismatch(row.name, "missing", None, "its submodule never ran"))
        params, buffers = state_counts(submodules[row.name])
        if params != row.params:
            found.append(Mismatch(row.name, "params", row.params, params))
        if buffers != row.buffers:
            found.append(Mismatch(row.name, "buffers", row.buffers, buffers))

    totals = analysis.totals
    params, buffers = state_counts(module)
    if failure is not None and failed_layer is None:
        found.append(Mismatch(None, "error", None, failure))
    if params != totals.params:
        found.append(Mismatch(None, "params", totals.params, params))
    if buffers != totals.buffers:
        found.append(Mismatch(None, "buffers", totals.buffers, buffers))
    if failure is None:
        want = (batch, *analysis.output_shape)
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
        if got != want:
            found.append(Mismatch(None, "output", want, got))
    return found


def _hooks(
    sub: nn.Module, before: Callable[..., None], after: Callable[..., None]
) -> list[torch.utils.hooks.RemovableHandle]:
    return [sub.register_forward_pre_hook(before), sub.register_forward_hook(after)]


def _spec_dtype(analysis: Analysis) -> torch.dtype:
    from archspec.torch.build import TORCH_DTYPES

    return TORCH_DTYPES[analysis.spec.input.dtype]
