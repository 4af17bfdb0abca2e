"""Compile a spec into a PyTorch module whose submodules are named like the spec's layers.

``state_dict`` keys therefore read like the spec (``C1.weight``), and
``forward`` runs the layers in the graph's topological order, so DAGs with
several consumers of one tensor work.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archspec.analysis import Analysis, analyze
from archspec.graph import INPUT
from archspec.layers.base import TorchCall
from archspec.resources import check_fits
from archspec.spec import Spec
from archspec.torch import modules
from archspec.torch.names import check_layer_names
from archspec.vocab import DTYPES

# archspec.vocab.DTYPES in torch's terms
TORCH_DTYPES: dict[str, torch.dtype] = {n: getattr(torch, d.torch) for n, d in DTYPES.items()}


def instantiate(call: TorchCall) -> nn.Module:
    """Construct the module a :class:`TorchCall` describes (the code generator prints the same call)."""
    if call.callable.startswith("nn."):
        factory = getattr(nn, call.callable[3:])
    else:
        factory = getattr(modules, call.callable)
    module: nn.Module = factory(*call.args, **call.kwargs)
    return module


class SpecModule(nn.Module):
    """The compiled model: one submodule per spec layer, run in topological order."""

    def __init__(self, analysis: Analysis) -> None:
        super().__init__()
        graph = analysis.graph
        self.spec_name = analysis.spec.name
        self.input_shape = tuple(analysis.input_shape)
        self.output_name = graph.output
        self.plan: list[tuple[str, tuple[str, ...], str | None]] = []
        self._by_name: dict[
            str, nn.Module
        ] = {}  # dotted layer name → its module (no lookups in forward)
        for row in analysis.rows:
            layer = graph.layers[row.name]
            self._place(row.name, instantiate(layer.torch_call(row.input_shapes)))
            self.plan.append((row.name, row.inputs, row.activation))
        # After which step each tensor can be dropped, so forward holds only live tensors.
        last_use: dict[str, int] = {}
        for step, (_, srcs, _) in enumerate(self.plan):
            for src in srcs:
                last_use[src] = step
        last_use[self.output_name] = len(self.plan)
        self._drop_after: list[list[str]] = [[] for _ in self.plan]
        for name, step in last_use.items():
            if step < len(self.plan):
                self._drop_after[step].append(name)

    def _place(self, name: str, module: nn.Module) -> None:
        """Add a layer's module at its name; a dotted name (``layer1.0.conv1``, from a block)
        nests it in plain containers, so state_dict keys are PyTorch's usual module paths."""
        *path, leaf = name.split(".")
        parent: nn.Module = self
        for part in path:
            child = parent._modules.get(part)
            if child is None:
                child = nn.Module()
                parent.add_module(part, child)
            parent = child
        parent.add_module(leaf, module)
        self._by_name[name] = module

    def _layer(self, name: str) -> nn.Module:
        return self._by_name[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {INPUT: x}
        for step, (name, srcs, activation) in enumerate(self.plan):
            out = self._layer(name)(*(values[s] for s in srcs))
            values[name] = modules.ACTIVATIONS[activation](out) if activation else out
            for dead in self._drop_after[step]:
                del values[dead]
        return values[self.output_name]

    def forward_layers(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's output by name, in graph order (for verification and ONNX naming)."""
        values: dict[str, torch.Tensor] = {INPUT: x}
        outputs: dict[str, torch.Tensor] = {}
        for name, srcs, activation in self.plan:
            out = self._layer(name)(*(values[s] for s in srcs))
            values[name] = outputs[name] = (
                modules.ACTIVATIONS[activation](out) if activation else out
            )
        return outputs

    def extra_repr(self) -> str:
        return f"spec={self.spec_name!r}, input={list(self.input_shape)}"


def compile_spec(
    spec: Spec,
    seed: int | None = 0,
    *,
    analysis: Analysis | None = None,
    max_params: int | None = None,
    dtype: str | None = None,
    **_: Any,
) -> SpecModule:
    """Build the module with weights drawn from ``seed`` (same seed, same weights), in eval mode.

    Refuses (ResourceError) before allocating anything when the weights would
    exceed ``max_params`` or the memory available now, and (SpecError) a layer
    name that nn.Module already uses as an attribute.
    """
    analysis = analysis or analyze(spec)
    check_layer_names(spec, extra=dir(SpecModule))
    target = dtype or spec.input.dtype
    # Weights are drawn in float32 (float64 stays float64) and cast afterwards, so
    # the float32 copy is what must fit, even for a float16 spec.
    check_fits(analysis, max_params, "float64" if target == "float64" else "float32")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        module = SpecModule(analysis)
    module.to(TORCH_DTYPES[target])
    return module.eval()
