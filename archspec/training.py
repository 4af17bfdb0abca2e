"""The training budget: backward FLOPs, what autograd saves, memory of a step, and the largest batch.

Static, like :mod:`archspec.analysis`: exact integers, no framework. Each layer
kind states its own figures (:meth:`archspec.layers.base.Layer.training`: the
MACs of its input and weight gradients and the tensors PyTorch saves for its
backward pass); this module resolves them for one training set-up — batch,
optimizer, precision, device — and walks one step to find the peak:

    forward (layer by layer) ─▶ backward (in reverse) ─▶ optimizer step

The step is ``out = model(x)`` (under torch.autocast for an ``amp-*``
precision), ``out.backward(g)`` with ``g`` the loss's gradient (one
output-sized tensor, allocated with the batch), ``del out``,
``optimizer.step()``, ``optimizer.zero_grad(set_to_none=True)``; in the steady
state, so the optimizer's state exists and no gradient is held before the
forward pass. Conventions: docs/training.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from archspec.analysis import Analysis
from archspec.graph import INPUT
from archspec.layers import LAYER_KINDS
from archspec.layers.base import Saved, TrainContext, Training, numel
from archspec.vocab import DEVICES, DTYPES, OPTIMIZERS, PRECISIONS

DTYPE_BYTES = {name: d.bytes for name, d in DTYPES.items()}
ITEMSIZE = {**DTYPE_BYTES, "int64": 8, "bool": 1}
MASTER = "float32"  # weights, gradients and optimizer state, in every set-up


@dataclass(frozen=True)
class Setup:
    """One training set-up: what ``--batch``, ``--optimizer``, ``--precision``, ``--device`` choose."""

    batch: int = 1
    optimizer: str = "adam"
    precision: str = "fp32"
    device: str = "cuda"

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}")

    @property
    def autocast(self) -> bool:
        return self.precision != "fp32"

    @property
    def low(self) -> str:
        """The type autocast computes convolutions and matmuls in (float32 without autocast)."""
        return PRECISIONS[self.precision]

    def describe(self) -> str:
        return f"batch {self.batch}, {self.optimizer}, {self.precision}, {self.device}"


# ---------------------------------------------------------------------------
# Sizes linear in the batch: (bytes independent of it, bytes per sample).


@dataclass(frozen=True)
class Size:
    fixed: int = 0
    per_sample: int = 0

    def at(self, batch: int) -> int:
        return self.fixed + self.per_sample * batch

    def __add__(self, other: Size) -> Size:
        return Size(self.fixed + other.fixed, self.per_sample + other.per_sample)

    def __sub__(self, other: Size) -> Size:
        return Size(self.fixed - other.fixed, self.per_sample - other.per_sample)


ZERO = Size()


def total(sizes: Sequence[Size]) -> Size:
    out = ZERO
    for s in sizes:
        out = out + s
    return out


@dataclass(frozen=True)
class Tensor:
    """One tensor of the step (its storage): a layer output, a saved copy, a gradient."""

    key: str
    elements: int
    dtype: str
    per_sample: bool = True

    @property
    def size(self) -> Size:
        n = self.elements * ITEMSIZE[self.dtype]
        return Size(0, n) if self.per_sample else Size(n, 0)


# ---------------------------------------------------------------------------
# Per layer.


@dataclass(frozen=True)
class TrainRow:
    """A layer's training figures at the set-up's batch."""

    name: str
    grad_input_flops: int
    grad_weight_flops: int
    saved: Size  # bytes this layer's forward saves that no earlier layer saved
    saved_tensors: tuple[str, ...]  # what they are, for people
    batch: int

    @property
    def backward_flops(self) -> int:
        return self.grad_input_flops + self.grad_weight_flops

    @property
    def saved_bytes(self) -> int:
        return self.saved.at(self.batch)

    def to_json(self) -> dict[str, Any]:
        return {
            "backward_flops": self.backward_flops,
            "grad_input_flops": self.grad_input_flops,
            "grad_weight_flops": self.grad_weight_flops,
            "saved_bytes": self.saved_bytes,
        }


@dataclass(frozen=True)
class Snapshot:
    """What is live at one moment of the step, by category."""

    moment: str
    parts: dict[str, Size]

    def at(self, batch: int) -> int:
        return sum(s.at(batch) for s in self.parts.values())


CATEGORIES = ("weights", "gradients", "optimizer_state", "saved_activations", "transient")


@dataclass(frozen=True)
class TrainAnalysis:
    setup: Setup
    rows: tuple[TrainRow, ...]
    forward_flops: int
    weights: Size
    gradients: Size
    optimizer_state: Size
    saved_activations: Size
    snapshots: tuple[Snapshot, ...]

    @property
    def backward_flops(self) -> int:
        return sum(r.backward_flops for r in self.rows)

    @property
    def train_flops(self) -> int:
        return self.forward_flops + self.backward_flops

    def peak(self, batch: int | None = None) -> tuple[int, Snapshot]:
        b = self.setup.batch if batch is None else batch
        best = max(self.snapshots, key=lambda s: s.at(b))
        return best.at(b), best

    def memory_json(self) -> dict[str, Any]:
        b = self.setup.batch
        peak, snap = self.peak()
        return {
            "weights": self.weights.at(b),
            "gradients": self.gradients.at(b),
            "optimizer_state": self.optimizer_state.at(b),
            "saved_activations": self.saved_activations.at(b),
            "peak": peak,
            "peak_at": snap.moment,
            "at_peak": {c: snap.parts.get(c, ZERO).at(b) for c in CATEGORIES},
        }

    def totals_json(self) -> dict[str, Any]:
        return {
            "train_setup": {
                "batch": self.setup.batch,
                "optimizer": self.setup.optimizer,
                "precision": self.setup.precision,
                "device": self.setup.device,
            },
            "forward_flops": self.forward_flops,
            "backward_flops": self.backward_flops,
            "train_flops": self.train_flops,
            "saved_bytes": self.saved_activations.at(self.setup.batch),
            "train_memory_bytes": self.memory_json(),
        }


# ---------------------------------------------------------------------------
# The walk.


@dataclass
class _State:
    """Mutable bookkeeping of the walk: tensors by value name, saved storages, rows."""

    setup: Setup
    value: dict[str, Tensor] = field(default_factory=dict)  # value name → its storage
    needs_grad: dict[str, bool] = field(default_factory=dict)
    saved: dict[str, Tensor] = field(
        default_factory=dict
    )  # storage key → tensor, first saver's order
    first_saver: dict[str, tuple[int, int]] = field(default_factory=dict)  # (layer, 0 op / 1 act)
    saved_by: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # the inverse
    made: list[list[Tensor]] = field(default_factory=list)  # per layer: new tensors it allocates
    made_by_op: list[int] = field(default_factory=list)  # how many of them before the activation


def _dtype(setup: Setup, rule: str, inputs: Sequence[Tensor]) -> str:
    if not setup.autocast:
        return MASTER
    if rule == "low":
        return setup.low
    if rule == "float32":
        return "float32"
    if rule == "promote":
        return max((t.dtype for t in inputs), key=lambda d: ITEMSIZE[d])
    return inputs[0].dtype if inputs else MASTER


def _resolve(
    st: _State,
    owner: str,
    item: Saved,
    inputs: Sequence[Tensor],
    output: Tensor,
    made: list[Tensor],
) -> Tensor | None:
    """The storage one :class:`Saved` entry names, making it (a cast copy, a mask) when new."""
    setup = st.setup
    if item.autocast_only and not setup.autocast:
        return None
    if item.tensor.startswith("input") or item.tensor == "output":
        src = output if item.tensor == "output" else inputs[int(item.tensor[5:] or 0)]
        if item.dtype == "low" and setup.autocast and ITEMSIZE[src.dtype] > ITEMSIZE[setup.low]:
            copy = Tensor(f"{owner}:{item.tensor} as {setup.low}", src.elements, setup.low)
            made.append(copy)
            return copy
        return src
    if item.dtype in ("int64", "bool", "float32"):
        dtype = item.dtype
    elif item.dtype == "low":
        dtype = setup.low if setup.autocast else MASTER
    else:  # "input" / "as-is": the input's type
        dtype = inputs[0].dtype if inputs and setup.autocast else MASTER
    new = Tensor(f"{owner}:{item.tensor}", item.elements, dtype, item.per_sample)
    made.append(new)
    return new


def _activation_kind(name: str) -> Any:
    return LAYER_KINDS[name].model_construct(name="activation", type=name)


def analyze_training(analysis: Analysis, setup: Setup) -> TrainAnalysis:
    """Every layer's backward FLOPs and saved bytes, and the memory of one step, for ``setup``."""
    graph = analysis.graph
    st = _State(setup)
    x = Tensor(INPUT, numel(analysis.input_shape), MASTER)
    st.value[INPUT] = x
    st.needs_grad[INPUT] = False
    rows: list[TrainRow] = []
    live_layers = _reach_output(analysis)
    ops: list[tuple[Training, Training | None, Tensor, Tensor]] = []
    param_tensors: list[int] = []
    params = 0
    for i, row in enumerate(analysis.rows):
        layer = graph.layers[row.name]
        inputs = [st.value[s] for s in row.inputs]
        needs = tuple(st.needs_grad[s] for s in row.inputs)
        ctx = TrainContext(needs, setup.autocast, setup.device)
        tr = layer.training(row.input_shapes, row.output, ctx)
        made: list[Tensor] = []
        if tr.aliases_input:
            op_out = inputs[0]
        else:
            dtype = _dtype(setup, tr.output_dtype, inputs)
            op_out = Tensor(row.name + (":pre" if row.activation else ""), numel(row.output), dtype)
            made.append(op_out)
        op_needs = any(needs) or row.params > 0
        saved = [(0, _resolve(st, row.name, s, inputs, op_out, made)) for s in tr.saved]
        act_tr: Training | None = None
        out = op_out
        st.made_by_op.append(len(made))
        if row.activation:
            act = _activation_kind(row.activation)
            act_ctx = TrainContext((op_needs,), setup.autocast, setup.device)
            act_tr = act.training([row.output], row.output, act_ctx)
            out = Tensor(row.name, numel(row.output), _dtype(setup, act_tr.output_dtype, [op_out]))
            made.append(out)
            saved += [
                (1, _resolve(st, row.name + ":act", s, [op_out], out, made)) for s in act_tr.saved
            ]
        first: list[Tensor] = []
        for part, t in saved:
            if t is not None and t.key not in st.saved:
                st.saved[t.key] = t
                st.first_saver[t.key] = (i, part)
                st.saved_by.setdefault((i, part), []).append(t.key)
                first.append(t)
        st.made.append(made)
        st.value[row.name] = out
        st.needs_grad[row.name] = op_needs
        ops.append((tr, act_tr, op_out, out))
        param_tensors.extend(tr.param_tensors)
        params += row.params
        b = setup.batch
        runs = row.name in live_layers  # a layer the output does not read gets no gradient
        rows.append(
            TrainRow(
                name=row.name,
                grad_input_flops=2 * b * tr.grad_input_macs if runs else 0,
                grad_weight_flops=2 * b * tr.grad_weight_macs if runs else 0,
                saved=total([t.size for t in first]),
                saved_tensors=tuple(
                    t.key.split(":", 1)[1] if ":" in t.key else t.key for t in first
                ),
                batch=b,
            )
        )
    weights = Size((analysis.totals.params + analysis.totals.buffers) * ITEMSIZE[MASTER], 0)
    gradients = Size(params * ITEMSIZE[MASTER], 0)
    state = OPTIMIZERS[setup.optimizer] * params * ITEMSIZE[MASTER]
    if setup.optimizer in ("adam", "adamw"):
        state += len(param_tensors) * ITEMSIZE["float32"]  # each parameter's step counter
    optimizer_state = Size(state, 0)
    snapshots = _walk_step(analysis, st, ops, weights, optimizer_state, param_tensors)
    return TrainAnalysis(
        setup=setup,
        rows=tuple(rows),
        forward_flops=2 * setup.batch * analysis.totals.macs,
        weights=weights,
        gradients=gradients,
        optimizer_state=optimizer_state,
        saved_activations=total([t.size for t in st.saved.values()]),
        snapshots=tuple(snapshots),
    )


def _reach_output(analysis: Analysis) -> set[str]:
    """The layers the model's output depends on (the others' backward never runs)."""
    graph = analysis.graph
    found = {graph.output}
    stack = [graph.output]
    while stack:
        for src in graph.inputs[stack.pop()]:
            if src != INPUT and src not in found:
                found.add(src)
                stack.append(src)
    return found


def _walk_step(
    analysis: Analysis,
    st: _State,
    ops: list[tuple[Training, Training | None, Tensor, Tensor]],
    weights: Size,
    optimizer_state: Size,
    param_tensors: list[int],
) -> list[Snapshot]:
    """Live memory at each moment of one step, by category (see the module docstring)."""
    rows = analysis.rows
    graph = analysis.graph
    setup = st.setup
    out_name = graph.output
    output = st.value[out_name]
    grad_out = Tensor("grad of output", output.elements, output.dtype)
    last_use: dict[str, int] = {}
    for i, row in enumerate(rows):
        for s in row.inputs:
            last_use[st.value[s].key] = i
    persistent = {st.value[INPUT].key, grad_out.key}
    live = _Live(set(st.saved))
    for t in (st.value[INPUT], grad_out):
        live[t.key] = t
    grads_held = ZERO
    snaps: list[Snapshot] = []

    def snap(moment: str, grads: Size = ZERO) -> None:
        saved, other = live.saved, live.other
        snaps.append(
            Snapshot(
                moment,
                {
                    "weights": weights,
                    "gradients": grads_held + grads,
                    "optimizer_state": optimizer_state,
                    "saved_activations": saved,
                    "transient": other,
                },
            )
        )

    # Forward: each layer allocates what it makes; unsaved tensors go after their last reader.
    for i, row in enumerate(rows):
        n_op = st.made_by_op[i]
        for t in st.made[i][:n_op]:
            live[t.key] = t
        tr_i = ops[i][0]
        for k, w in enumerate(tr_i.forward_workspace):
            dtype = ops[i][2].dtype if w.dtype in ("input", "as-is") else w.dtype
            live[f"workspace{k}"] = Tensor(f"workspace{k}", w.elements, dtype, w.per_sample)
        snap(f"forward of {row.name}")
        for k in range(len(tr_i.forward_workspace)):
            live.pop(f"workspace{k}", None)
        if len(st.made[i]) > n_op:
            for t in st.made[i][n_op:]:
                live[t.key] = t
            snap(f"forward of {row.name}'s activation")
        for t in st.made[i]:
            if t is not st.value[row.name] and t.key not in st.saved:
                del live[t.key]
        for s in row.inputs:
            t = st.value[s]
            if (
                last_use.get(t.key) == i
                and t.key not in st.saved
                and t.key not in persistent
                and t.key in live
            ):
                del live[t.key]
    # A layer the output does not read is dropped with its autograd graph as forward returns.
    reached = _reach_output(analysis)
    dead = {i for i, row in enumerate(rows) if row.name not in reached}
    for key, (i, _) in st.first_saver.items():
        if i in dead and key in live and key not in persistent:
            del live[key]
    # Backward, in reverse: gradients of values, parameter gradients accumulating.
    grad_of: dict[str, Tensor] = {out_name: grad_out}
    persistent.add(output.key)
    for i in range(len(rows) - 1, -1, -1):
        row = rows[i]
        tr, act_tr, op_out, _out = ops[i]
        g = grad_of.get(row.name)
        if g is None or not st.needs_grad[row.name]:
            continue
        new: list[Tensor] = []
        g_op = g
        if act_tr is not None:
            # The activation's backward turns the output's gradient into the pre-activation's.
            g_op = Tensor(f"grad of {row.name}:pre", op_out.elements, op_out.dtype)
            live[g_op.key] = g_op
            snap(f"backward of {row.name}'s activation")
            _release(live, st, (i, 1), persistent)
            if g.key in live and g.key not in persistent:
                del live[g.key]
        for s in row.inputs:
            if not st.needs_grad[s]:
                continue
            if tr.aliases_input:
                grad_of.setdefault(s, g_op)
                continue
            if s not in grad_of:
                src = st.value[s]
                grad_of[s] = Tensor(f"grad of {s}", src.elements, src.dtype)
                new.append(grad_of[s])
        param_grads = Size(row.params * ITEMSIZE[MASTER], 0)
        for t in new:
            live[t.key] = t
        if tr.workspace or tr.workspace_fixed:
            live["workspace"] = Tensor("workspace", tr.workspace, op_out.dtype)
            live["workspace:fixed"] = Tensor(
                "workspace:fixed", tr.workspace_fixed, op_out.dtype, False
            )
        snap(f"backward of {row.name}", param_grads)
        live.pop("workspace", None)
        live.pop("workspace:fixed", None)
        grads_held = grads_held + param_grads
        # The node frees what it saved (once its earliest saver has run) and the
        # gradient of its output is dropped unless the caller holds it.
        _release(live, st, (i, 0), persistent)
        for t in (g, g_op):
            if t.key in live and t.key not in persistent and not _aliased(t, grad_of, row, tr):
                del live[t.key]
    # Optimizer step: `out` is gone; the gradients and the state are all there.
    if output.key != st.value[INPUT].key:
        live.pop(output.key, None)
    for key in list(live):
        if key.startswith("grad of ") and key != grad_out.key:
            del live[key]
    snaps.append(
        Snapshot(
            "optimizer step",
            {
                "weights": weights,
                "gradients": grads_held,
                "optimizer_state": optimizer_state,
                "saved_activations": ZERO,
                "transient": total([t.size for t in live.values()])
                + Size(_optimizer_transient(setup, param_tensors), 0),
            },
        )
    )
    return snaps


class _Live(dict[str, Tensor]):
    """The live tensors of the walk, with running totals of the saved ones and the others."""

    def __init__(self, saved_keys: set[str]) -> None:
        super().__init__()
        self.saved_keys = saved_keys
        self.saved = ZERO
        self.other = ZERO

    def _count(self, key: str, size: Size, sign: int) -> None:
        if key in self.saved_keys:
            self.saved = self.saved + size if sign > 0 else self.saved - size
        else:
            self.other = self.other + size if sign > 0 else self.other - size

    def __setitem__(self, key: str, t: Tensor) -> None:
        if key in self:
            del self[key]
        super().__setitem__(key, t)
        self._count(key, t.size, 1)

    def __delitem__(self, key: str) -> None:
        self._count(key, self[key].size, -1)
        super().__delitem__(key)

    def pop(self, key: str, default: Any = None) -> Any:
        if key not in self:
            return default
        t = self[key]
        del self[key]
        return t


def _release(live: _Live, st: _State, node: tuple[int, int], keep: set[str]) -> None:
    """A backward node has run: free what it saved, unless a node still to run saved it too."""
    for key in st.saved_by.get(node, ()):
        if key in live and key not in keep:
            del live[key]


def _aliased(t: Tensor, grad_of: dict[str, Tensor], row: Any, tr: Training) -> bool:
    """Whether a gradient tensor lives on as an input's gradient (a view kind passes it through)."""
    return any(grad_of.get(s) is t for s in row.inputs)


def _optimizer_transient(setup: Setup, param_tensors: list[int]) -> int:
    """Temporaries of ``optimizer.step()``: Adam's denominator √v / √(1 − β₂ᵗ).

    On the CPU PyTorch updates one tensor at a time and holds √v and its
    quotient together (2 × the largest tensor); on CUDA its foreach
    implementation makes √v for every tensor at once (all parameters).
    SGD, with or without momentum, updates in place.
    """
    if setup.optimizer not in ("adam", "adamw") or not param_tensors:
        return 0
    item = ITEMSIZE[MASTER]
    if setup.device == "cpu":
        return 2 * max(param_tensors) * item
    return sum(param_tensors) * item


# ---------------------------------------------------------------------------
# Inference and the largest batch.


def inference_snapshots(analysis: Analysis, device: str = "cuda") -> list[Snapshot]:
    """An inference pass under torch.no_grad at the spec's dtype, layer by layer.

    Weights plus the live activations, as ``check``'s peak activation memory
    counts them (a tensor lives until its last reader has run), plus what a
    layer's forward pass allocates and frees again on ``device`` (the CPU
    convolution's blocked output).
    """
    graph = analysis.graph
    rows = analysis.rows
    itemsize = DTYPE_BYTES[analysis.spec.input.dtype]
    weights = Size(analysis.totals.param_bytes, 0)
    last_use: dict[str, int] = {INPUT: -1}
    for i, r in enumerate(rows):
        for src in r.inputs:
            last_use[src] = i
    last_use[graph.output] = len(rows)
    sizes = {INPUT: numel(analysis.input_shape) * itemsize}
    sizes.update({r.name: r.output_bytes for r in rows})
    frees: dict[int, list[str]] = {}
    for name, when in last_use.items():
        frees.setdefault(when, []).append(name)
    live = sizes[INPUT] if last_use[INPUT] >= 0 else 0
    snaps = [Snapshot("inference input", {"weights": weights, "transient": Size(0, live)})]
    for i, r in enumerate(rows):
        live += r.output_bytes
        ctx = TrainContext((False,) * len(r.inputs), False, device, inference=True)
        tr = graph.layers[r.name].training(r.input_shapes, r.output, ctx)
        work = ZERO
        for w in tr.forward_workspace:
            n = w.elements * (itemsize if w.dtype in ("input", "as-is") else ITEMSIZE[w.dtype])
            work = work + (Size(0, n) if w.per_sample else Size(n, 0))
        snaps.append(
            Snapshot(
                f"inference, {r.name}", {"weights": weights, "transient": Size(0, live) + work}
            )
        )
        for name in frees.get(i, []):
            live -= sizes[name]
    return snaps


@dataclass(frozen=True)
class Fit:
    """The largest batch that fits (None: not even 1), its peak and where, and the next batch's peak."""

    batch: int | None
    peak: int
    moment: str
    next_peak: int


def fit(snapshots: Sequence[Snapshot], budget: int) -> Fit:
    """The largest batch whose predicted peak is at most ``budget`` bytes.

    Every moment's live memory is a + b·batch, so the peak is the largest of
    a few lines and the answer is exact: min over moments of ⌊(budget − a)/b⌋.
    """
    sizes = [total(list(s.parts.values())) for s in snapshots]
    peak1, snap1 = peak_at(snapshots, 1)
    if peak1 > budget:
        return Fit(None, peak1, snap1.moment, peak1)
    best = min(
        ((budget - s.fixed) // s.per_sample for s in sizes if s.per_sample),
        default=2**63 - 1,
    )
    peak, snap = peak_at(snapshots, best)
    return Fit(best, peak, snap.moment, peak_at(snapshots, best + 1)[0])


def peak_at(snapshots: Sequence[Snapshot], batch: int) -> tuple[int, Snapshot]:
    best = max(snapshots, key=lambda s: s.at(batch))
    return best.at(batch), best


UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_size(text: str) -> int:
    """``24GiB``, ``24GB``, ``512MiB``, ``512 MB``, ``1.5GiB`` or plain bytes → bytes; ValueError otherwise."""
    import re
    from decimal import Decimal, InvalidOperation

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in UNITS:
        raise ValueError(
            f"cannot read memory size {text!r}: write a number and a unit, as 24GiB, 24GB, "
            "512MiB, 512MB or plain bytes"
        )
    try:
        value = Decimal(m.group(1)) * UNITS[m.group(2).upper()]
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"cannot read memory size {text!r}") from None
    n = int(value)
    if n <= 0:
        raise ValueError(f"memory size {text!r} is not positive")
    return n
