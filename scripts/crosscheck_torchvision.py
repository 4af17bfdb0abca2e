"""Cross-check the torchvision specs against torchvision itself, an independent implementation.

Run with an interpreter that has torchvision (archspec's own figures need no torch)::

    PYTHONPATH=. /work/tvenv/bin/python scripts/crosscheck_torchvision.py [names...]

For every spec it builds torchvision's model (``weights=None``), records with
forward hooks the output (and input) shape of every call of every module on one
batch, and compares, layer by layer, with ``archspec.analyze``:

- a spec layer named like a module (its module path): its output shape, and the
  module's own parameters and buffers (``recurse=False``) against the row's
  ``params`` and ``buffers``;
- a spec layer without a module (concat, add, flatten, an activation that
  torchvision applies functionally or through a shared module): its output shape
  against the recorded input of a layer that reads it and has a module; where no
  reader has one it is skipped and reported;
- every torchvision leaf module without a spec layer must hold no parameters or
  buffers (the ReLUs written as ``activation:``); they are reported;
- ``state_dict()``: every key ``X.attr`` names a spec layer ``X``, whose
  parameters and buffers add up to the row's;
- the totals (parameters, buffers) and archspec's ``macs`` against the
  ``num_params`` and ``GFLOPS`` that torchvision's documentation publishes
  (``Weights.meta``, from which the documentation pages are generated).

It prints one summary line per spec and exits 1 on any disagreement (2 when
torchvision cannot be imported).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import archspec

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

# spec name -> (torchvision builder, keyword arguments, weights enum holding the published figures)
MODELS: dict[str, tuple[str, dict[str, Any], str]] = {
    # init_weights=False skips torchvision's random initialisation (seconds for VGG's 138M
    # parameters); the weights' values play no part in what is compared.
    "vgg11": ("vgg11", {"init_weights": False}, "VGG11_Weights"),
    "vgg16": ("vgg16", {"init_weights": False}, "VGG16_Weights"),
    "vgg19": ("vgg19", {"init_weights": False}, "VGG19_Weights"),
    "vgg16-bn": ("vgg16_bn", {"init_weights": False}, "VGG16_BN_Weights"),
    "squeezenet1.0": ("squeezenet1_0", {}, "SqueezeNet1_0_Weights"),
    "squeezenet1.1": ("squeezenet1_1", {}, "SqueezeNet1_1_Weights"),
    "resnet18": ("resnet18", {}, "ResNet18_Weights"),
    "resnet50": ("resnet50", {}, "ResNet50_Weights"),
    "googlenet": (
        "googlenet",
        {"aux_logits": False, "transform_input": False, "init_weights": False},
        "GoogLeNet_Weights",
    ),
    "mobilenet-v2": ("mobilenet_v2", {}, "MobileNet_V2_Weights"),
}


@dataclass
class Result:
    name: str
    problems: list[str] = field(default_factory=list)
    matched: int = 0
    via_reader: int = 0
    skipped: list[str] = field(default_factory=list)
    spare_modules: Counter[str] = field(default_factory=Counter)
    keys: int = 0
    line: str = ""
    values: str = ""


def _shape(t: Any) -> tuple[int, ...] | None:
    import torch

    if isinstance(t, torch.Tensor):
        return tuple(int(d) for d in t.shape[1:])
    return None


def crosscheck(name: str, spec_path: Path) -> Result:
    import torch
    import torchvision.models as tvm

    builder, kwargs, weights_enum = MODELS[name]
    res = Result(name)
    analysis = archspec.analyze(spec_path)
    rows = {r.name: r for r in analysis.rows}

    model = getattr(tvm, builder)(weights=None, **kwargs).eval()
    modules = dict(model.named_modules())
    modules.pop("", None)
    outputs: dict[str, list[tuple[int, ...] | None]] = {}
    inputs: dict[str, list[tuple[int, ...] | None]] = {}

    def hook(mod_name: str) -> Any:
        def record(_m: Any, args: tuple[Any, ...], out: Any) -> None:
            outputs.setdefault(mod_name, []).append(_shape(out))
            inputs.setdefault(mod_name, []).append(_shape(args[0]) if args else None)

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    with torch.no_grad():
        final = model(torch.zeros(1, *analysis.input_shape))
    for h in handles:
        h.remove()

    if _shape(final) != analysis.output_shape:
        res.problems.append(f"model output {_shape(final)} != spec {analysis.output_shape}")

    readers: dict[str, list[str]] = {}
    for r in analysis.rows:
        for src in r.inputs:
            readers.setdefault(src, []).append(r.name)

    def own(mod: torch.nn.Module) -> tuple[int, int]:
        p = sum(t.numel() for t in mod.parameters(recurse=False))
        b = sum(t.numel() for t in mod.buffers(recurse=False))
        return p, b

    for r in analysis.rows:
        if r.name in modules:
            mod = modules[r.name]
            calls = outputs.get(r.name)
            if not calls:
                res.problems.append(f"{r.name}: torchvision never calls this module")
                continue
            # A module called several times (ResNet's shared relu): the spec layer is its last call.
            if calls[-1] != r.output:
                res.problems.append(f"{r.name}: output {list(r.output)} != torchvision {calls[-1]}")
            p, b = own(mod)
            if (p, b) != (r.params, r.buffers):
                res.problems.append(
                    f"{r.name}: params/buffers {r.params}/{r.buffers} != torchvision {p}/{b}"
                )
            res.matched += 1
            continue
        if r.params or r.buffers:
            res.problems.append(f"{r.name}: has {r.params} params, {r.buffers} buffers, no module")
        seen = [rd for rd in readers.get(r.name, []) if rd in modules and inputs.get(rd)]
        if not seen:
            res.skipped.append(f"{r.name} ({r.type})")
            continue
        for rd in seen:
            if r.output not in inputs[rd]:
                res.problems.append(
                    f"{r.name}: output {list(r.output)} is not an input of {rd} ({inputs[rd]})"
                )
        res.via_reader += 1

    for n, mod in modules.items():
        if n in rows or any(True for _ in mod.children()):
            continue
        p, b = own(mod)
        if p or b:
            res.problems.append(f"torchvision module {n} ({p} params, {b} buffers) has no layer")
        else:
            res.spare_modules[type(mod).__name__] += 1

    state = model.state_dict()
    per_layer: dict[str, list[int]] = {}
    buffer_names = {n for n, _ in model.named_buffers()}
    for key, tensor in state.items():
        layer, _, _attr = key.rpartition(".")
        if layer not in rows:
            res.problems.append(f"state_dict key {key}: no spec layer {layer!r}")
            continue
        counts = per_layer.setdefault(layer, [0, 0])
        counts[1 if key in buffer_names else 0] += tensor.numel()
        res.keys += 1
    for layer, (p, b) in per_layer.items():
        if (p, b) != (rows[layer].params, rows[layer].buffers):
            res.problems.append(
                f"state_dict of {layer}: {p} params, {b} buffers != spec {rows[layer].params}, "
                f"{rows[layer].buffers}"
            )
    for r in analysis.rows:
        if (r.params or r.buffers) and r.name not in per_layer:
            res.problems.append(f"{r.name}: {r.params} params but no state_dict key")

    _compare_outputs(res, analysis, model, spec_path)

    t = analysis.totals
    tv_params = sum(p.numel() for p in model.parameters())
    tv_buffers = sum(b.numel() for b in model.buffers())
    if (tv_params, tv_buffers) != (t.params, t.buffers):
        res.problems.append(
            f"totals {t.params} params, {t.buffers} buffers != torchvision {tv_params}, {tv_buffers}"
        )
    meta = next(iter(getattr(tvm, weights_enum))).meta
    doc_params, doc_gflops = meta["num_params"], meta["_ops"]
    if t.params != doc_params:
        res.problems.append(f"params {t.params} != documented num_params {doc_params}")
    # The documentation prints GFLOPS to 2 decimals; the enum keeps 3: hold to those.
    if abs(t.macs / 1e9 - doc_gflops) > 0.0005 + 1e-12:
        res.problems.append(f"macs {t.macs / 1e9:.4f}G != documented GFLOPS {doc_gflops}")

    spare = ", ".join(f"{k}×{v}" for k, v in sorted(res.spare_modules.items())) or "none"
    res.line = (
        f"{name}: {'OK' if not res.problems else 'FAIL'}; {len(analysis.rows)} layers: "
        f"{res.matched} matched to modules (shape, params, buffers), {res.via_reader} via a reader's "
        f"input, {len(res.skipped)} skipped; parameter-free modules without a layer: {spare}; "
        f"state_dict {res.keys} keys -> {len(per_layer)} layers; params {t.params:,} "
        f"(torchvision {tv_params:,}, documented {doc_params:,}); buffers {t.buffers:,} "
        f"(torchvision {tv_buffers:,}); macs {t.macs:,} = {t.macs / 1e9:.3f}G "
        f"(documented GFLOPS {doc_gflops}); {res.values or 'values not compared'}"
    )
    return res


def _compare_outputs(res: Result, analysis: Any, model: Any, spec_path: Path) -> None:
    """Load torchvision's state_dict into archspec's compiled module by name (strict: every
    key must match) and compare every layer's values and the model's output on one batch."""
    import torch

    compiled = archspec.compile(archspec.load(spec_path)).eval()
    try:
        compiled.load_state_dict(model.state_dict(), strict=True)
    except RuntimeError as exc:
        res.problems.append(f"state_dict does not load by name: {str(exc)[:300]}")
        return
    x = torch.randn(2, *analysis.input_shape, generator=torch.Generator().manual_seed(0))
    # the first call of each module, copied: torchvision's ReLUs work in place (and
    # ResNet's one relu module is called twice per block: its first call is the layer)
    captured: dict[str, torch.Tensor] = {}
    calls: dict[str, int] = {}
    modules = dict(model.named_modules())

    def keep(name: str) -> Any:
        def hook(_m: Any, _a: Any, out: torch.Tensor) -> None:  # None: the output stays as is
            calls[name] = calls.get(name, 0) + 1
            if name not in captured:
                captured[name] = out.clone()

        return hook

    handles = [
        modules[r.name].register_forward_hook(keep(r.name))
        for r in analysis.rows
        if r.name in modules and not r.activation  # activation: applied after the module
    ]
    with torch.no_grad():
        theirs = model(x)
        ours = compiled.forward_layers(x)
    for h in handles:
        h.remove()
    # A module torchvision calls twice (ResNet's one relu per block) has no single value to
    # compare with the layer of that name: its shape was compared above, its effect is in
    # the next layers' values.
    shared = [name for name, n in calls.items() if n > 1]
    for name in shared:
        del captured[name]
    worst = 0.0
    for name, value in captured.items():
        err = float((ours[name] - value).abs().max() / max(1.0, float(value.abs().max())))
        worst = max(worst, err)
        if err > 1e-4:
            res.problems.append(f"{name}: values differ (relative error {err:.2g})")
    final = ours[analysis.rows[-1].name]
    err = float((final - theirs).abs().max() / max(1.0, float(theirs.abs().max())))
    if err > 1e-4:
        res.problems.append(f"output differs from torchvision's (relative error {err:.2g})")
    res.values = (
        f"weights loaded by name; {len(captured)} layers' values and the output agree "
        f"(worst relative error {max(worst, err):.1e}"
        + (f"; {len(shared)} shared modules not compared by value" if shared else "")
        + ")"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="spec names (default: every one with a model)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list skipped layers")
    args = parser.parse_args(argv)
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # torchvision missing or not loadable beside this torch
        print(f"torchvision cannot be imported: {exc}", file=sys.stderr)
        return 2
    names = args.names or [n for n in MODELS if (SPECS / f"{n}.yaml").exists()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"no torchvision model known for: {', '.join(unknown)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        res = crosscheck(name, SPECS / f"{name}.yaml")
        print(res.line)
        for p in res.problems:
            print(f"  disagreement: {p}")
        if res.skipped and (args.verbose or res.problems):
            print(f"  skipped (no module, no reader with one): {', '.join(res.skipped)}")
        failed += bool(res.problems)
    print(f"{len(names) - failed} of {len(names)} specs agree with torchvision")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
