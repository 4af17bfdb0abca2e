"""The unused-input lint, proved against PyTorch: the rows it names are exactly the rows no window reads.

PyTorch is the judge. For an input of n rows, a batch of n probes (probe j is 1
at row j and 0 elsewhere) goes through the module archspec compiles for the
layer, with every weight 1 and every bias 0: real row j is read iff probe j
reaches some output (> 0). That holds for max pooling too, whose padding is
−∞ (a gradient would only reach each window's argmax), and for average pooling
whatever ``count_include_pad`` says. Inputs are n×1 or 1×n, so one axis varies
and the other is read completely.

Each windowed kind gets ``CASES_PER_EXAMPLE`` random (size, kernel, stride,
padding, dilation, ceil_mode) cases per Hypothesis example: 3,000 per kind with
the default profile, far more with ``--hypothesis-profile=long``.

    python tests/test_lint_unused_pixels.py 10000    # how often the old rule was wrong
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archspec.layers import LAYER_KINDS, Layer, ShapeError
from archspec.layers.window import Axis, unread
from archspec.torch.build import instantiate

KINDS = ("conv2d", "maxpool2d", "avgpool2d", "subsample")
CASES_PER_EXAMPLE = 100
N = settings().max_examples


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """Tiny convolutions run ~20× faster on one thread than fighting over a shared machine's cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class Case:
    """One windowed layer on an n×1 (or, transposed, 1×n) single-channel input."""

    kind: str
    size: int
    kernel: int
    stride: int
    padding: int | str
    dilation: int
    ceil: bool
    transpose: bool
    count_include_pad: bool = True

    def _pair(self, value: int, other: int) -> list[int]:
        return [other, value] if self.transpose else [value, other]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, *self._pair(self.size, 1))  # type: ignore[return-value]

    def layer(self) -> Layer:
        fields: dict[str, Any] = {
            "name": "w",
            "type": self.kind,
            "kernel": self._pair(self.kernel, 1),
            "stride": self._pair(self.stride, 1),
        }
        if self.kind == "conv2d":
            fields["out_channels"] = 1
            fields["bias"] = False
        if self.kind != "subsample":
            fields["padding"] = (
                self.padding if isinstance(self.padding, str) else self._pair(self.padding, 0)
            )
        if self.kind in ("conv2d", "maxpool2d"):
            fields["dilation"] = self._pair(self.dilation, 1)
        if self.kind in ("maxpool2d", "avgpool2d"):
            fields["ceil_mode"] = self.ceil
        if self.kind == "avgpool2d":
            fields["count_include_pad"] = self.count_include_pad
        return LAYER_KINDS[self.kind].model_validate(fields)

    def axis(self) -> Axis:
        """The axis that varies, as the layer describes it to its lint."""
        h, w = self.layer().window_axes(self.shape)  # type: ignore[attr-defined]
        return w if self.transpose else h  # type: ignore[no-any-return]

    def valid(self) -> bool:
        try:
            self.layer().output_shape([self.shape])
        except ShapeError:
            return False
        return True


def make_case(kind: str, pick: Callable[[int, int], int]) -> Case:
    """A random case from ``pick(lo, hi)`` (Hypothesis' integers or random.randint): one set of bounds."""
    size, kernel, stride = pick(1, 40), pick(1, 9), pick(1, 9)
    dilation = pick(1, 4) if kind in ("conv2d", "maxpool2d") else 1
    padding: int | str = 0
    if kind == "conv2d":
        padding = "same" if pick(0, 9) == 0 else pick(0, 10)
        if padding == "same":
            stride = 1
    elif kind in ("maxpool2d", "avgpool2d"):
        padding = pick(0, kernel // 2)
    ceil = kind in ("maxpool2d", "avgpool2d") and pick(0, 1) == 1
    return Case(
        kind, size, kernel, stride, padding, dilation, ceil, pick(0, 1) == 1, pick(0, 1) == 1
    )


@st.composite
def cases(draw: st.DrawFn, kind: str) -> Case:
    return make_case(kind, lambda lo, hi: draw(st.integers(lo, hi)))


@cache
def _probes(n: int) -> torch.Tensor:
    return torch.eye(n).view(n, 1, n, 1)


def torch_unread(case: Case, size: int | None = None) -> set[int]:
    """Rows of the varying axis that reach no output of the compiled module: PyTorch's answer."""
    size = case.size if size is None else size
    probes = _probes(size)
    if case.transpose:
        probes = probes.transpose(2, 3)
    module = instantiate(case.layer().torch_call([(1, *case._pair(size, 1))]))
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.fill_(1.0 if "weight" in name else 0.0)
        out = module(probes)
    reached = out.flatten(1).amax(1) > 0
    return {j for j in range(size) if not reached[j]}


def old_rule(case: Case) -> set[int]:
    """The rule this lint replaced: ``span % stride`` trailing rows, padding included; none with ceil_mode or 'same'."""
    if case.ceil or case.padding == "same":
        return set()
    pad_total = 0 if isinstance(case.padding, str) else 2 * case.padding
    span = case.size + pad_total - case.dilation * (case.kernel - 1) - 1
    left = span % case.stride if span >= 0 else 0
    return set(range(case.size - left, case.size))


def _hinted_sizes(hint: str | None, transpose: bool) -> set[int]:
    if not hint:
        return set()
    pairs = re.findall(r"(\d+)×(\d+)", hint)
    return {int(w if transpose else h) for h, w in pairs}


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=N)
@given(data=st.data())
def test_unread_rows_match_pytorch(kind: str, data: st.DataObject) -> None:
    """For each case: the rule's unread rows == PyTorch's; a finding iff any; its hint sizes are read fully."""
    batch = data.draw(
        st.lists(
            cases(kind).filter(Case.valid), min_size=CASES_PER_EXAMPLE, max_size=CASES_PER_EXAMPLE
        )
    )
    for case in batch:
        truth = torch_unread(case)
        axis = case.axis()
        assert all(axis.reads(r) == (r not in truth) for r in range(case.size)), case
        found = unread(axis)
        assert found.exact, case
        assert found.rows() == truth, case
        assert found.count == len(truth), case
        findings = case.layer().lint([case.shape])
        assert bool(findings) == bool(truth), case
        if findings:
            noun = "column" if case.transpose else "row"
            assert f" {len(truth):,} {noun}" in findings[0].message, (case, findings[0])
            assert findings[0].lint == "unused-input"
            for size in _hinted_sizes(findings[0].hint, case.transpose) - {case.size}:
                assert torch_unread(case, size) == set(), (case, size, findings[0].hint)


def test_every_windowed_kind_is_proved() -> None:
    """A new kind with windows must join KINDS (and get its PyTorch probe checked above)."""
    windowed = {k for k, cls in LAYER_KINDS.items() if hasattr(cls, "window_axes")}
    assert windowed == set(KINDS)


# --------------------------------------------------------------------------- the examples


def _grad_unread_2d(
    n: int, kernel: int, stride: int, padding: int, pool: bool = False
) -> tuple[set[int], set[int]]:
    """The issue's check: gradient of the sum of outputs, ones weights, ones input; zero = unread."""
    x = torch.ones(1, 1, n, n, requires_grad=True)
    if pool:  # coverage of a max pool: an average pool of the same geometry, zeros padded
        y = torch.nn.functional.avg_pool2d(x, kernel, stride, padding)
    else:
        y = torch.nn.functional.conv2d(x, torch.ones(1, 1, kernel, kernel), None, stride, padding)
    y.sum().backward()
    assert x.grad is not None
    g = x.grad[0, 0]
    return {i for i in range(n) if g[i].abs().sum() == 0}, {
        j for j in range(n) if g[:, j].abs().sum() == 0
    }


def _conv(n: int, kernel: int, stride: int, padding: int) -> list[Any]:
    layer = LAYER_KINDS["conv2d"].model_validate(
        {
            "name": "c",
            "type": "conv2d",
            "out_channels": 8,
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
        }
    )
    return layer.lint([(3, n, n)])


@pytest.mark.parametrize(
    ("n", "kernel", "stride", "padding", "pool"),
    [
        (224, 11, 4, 2, False),  # torchvision AlexNet conv1
        (224, 7, 2, 3, False),  # ResNet stem
        (112, 3, 2, 1, True),  # ResNet max pool
        (56, 3, 2, 1, False),  # ResNet 3×3 stride-2 conv
        (28, 3, 2, 1, False),
    ],
)
def test_padded_windows_that_read_everything_get_no_warning(
    n: int, kernel: int, stride: int, padding: int, pool: bool
) -> None:
    rows, cols = _grad_unread_2d(n, kernel, stride, padding, pool)
    assert rows == set() and cols == set()  # PyTorch: every pixel has a gradient
    if pool:
        layer = LAYER_KINDS["maxpool2d"].model_validate(
            {"name": "p", "type": "maxpool2d", "kernel": kernel, "stride": stride, "padding": 1}
        )
        assert layer.lint([(64, n, n)]) == []
    else:
        assert _conv(n, kernel, stride, padding) == []


def test_resnet_downsample_reads_every_other_row() -> None:
    rows, cols = _grad_unread_2d(56, 1, 2, 0)
    assert rows == cols == set(range(1, 56, 2))  # 28 odd rows and columns
    (finding,) = _conv(56, 1, 2, 0)
    assert "reads no pixel of 28 rows and 28 columns of its 3×56×56 input" in finding.message
    assert "every other row (1, 3, …, 55) and every other column (1, 3, …, 55)" in finding.message
    assert finding.hint is None  # no input size fixes a stride wider than the window


def test_d2l_alexnet_conv1_leaves_the_last_row_and_column() -> None:
    rows, cols = _grad_unread_2d(224, 11, 4, 0)
    assert rows == cols == {223}
    for size in (227, 223):  # the hint's sizes, checked by PyTorch
        assert _grad_unread_2d(size, 11, 4, 0) == (set(), set())
    (finding,) = _conv(224, 11, 4, 0)
    assert "1 row and 1 column of its 3×224×224 input" in finding.message
    assert "the last row (223) and the last column (223)" in finding.message
    assert finding.hint == "an input of 227×227 or 223×223 uses every pixel"


def test_trailing_rows_behind_a_gap() -> None:
    """Kernel 2, stride 3 on 10 rows: PyTorch leaves rows 2, 5, 8, 9 unread."""
    rows, _ = _grad_unread_2d(10, 2, 3, 0)
    assert rows == {2, 5, 8, 9}
    (finding,) = _conv(10, 2, 3, 0)
    assert "4 rows and 4 columns" in finding.message
    assert "rows 2, 5, 8–9 and columns 2, 5, 8–9" in finding.message


@pytest.mark.parametrize(
    "axis",
    [
        Axis(10**12, 1, 2),
        Axis(10**12, 11, 4),
        Axis(10**12, 5, 7, 0, 3),
        Axis(10**12, 3, 10**9),
        Axis(10**12, 1000, 100_003, 0, 7),
        Axis(10**12, 10**6, 10**6 + 1, 0, 10**6 - 1),
    ],
)
def test_huge_axes_are_counted_without_enumerating_them(axis: Axis) -> None:
    """10¹² rows: the runs listed near both ends are the rows that :meth:`Axis.reads` rejects."""
    found = unread(axis)
    ends = [(0, 3000), (axis.size - 3000, axis.size)]
    for lo, hi in ends:
        rejected = {r for r in range(lo, hi) if not axis.reads(r)}
        listed: set[int] = set()
        for a, b in found.runs(lo):
            if a >= hi:
                break
            listed.update(range(a, min(b + 1, hi)))
        if found.exact:
            assert listed == rejected, (lo, hi)
        else:  # a lower bound names only rows that are really unread
            assert listed <= rejected, (lo, hi)
    assert found.count >= 1


# --------------------------------------------------------------------------- the old rule


def count_old_rule_errors(cases_per_kind: int, seed: int = 0) -> dict[str, dict[str, int]]:
    """Per kind, PyTorch judging: how many cases the old and the new rule got wrong.

    ``old_false``: the old rule called a row unused that a window reads (padding counted as
    input); ``old_missed``: it missed a row no window reads (gaps, ceil_mode, 'same').
    """
    rng = random.Random(seed)
    result = {}
    for kind in KINDS:
        tally = dict.fromkeys(("cases", "old_wrong", "old_false", "old_missed", "new_wrong"), 0)
        while tally["cases"] < cases_per_kind:
            case = make_case(kind, rng.randint)
            if not case.valid():
                continue
            truth, old = torch_unread(case), old_rule(case)
            tally["cases"] += 1
            tally["old_wrong"] += old != truth
            tally["old_false"] += bool(old - truth)
            tally["old_missed"] += bool(truth - old)
            tally["new_wrong"] += unread(case.axis()).rows() != truth
        result[kind] = tally
    return result


def test_the_old_rule_was_wrong_and_the_new_one_is_not() -> None:
    for kind, tally in count_old_rule_errors(200).items():
        assert tally["cases"] == 200 and tally["new_wrong"] == 0, kind
        assert tally["old_missed"] > 0, kind
        if kind != "subsample":  # subsample has no padding for the old rule to miscount
            assert tally["old_false"] > 0, kind


if __name__ == "__main__":
    torch.set_num_threads(1)
    per_kind = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for kind, t in count_old_rule_errors(per_kind).items():
        print(
            f"{kind:10} {t['cases']:,} random cases: old rule wrong in {t['old_wrong']:,} "
            f"({t['old_false']:,} named a row that a window reads, {t['old_missed']:,} missed "
            f"an unread row); new rule wrong in {t['new_wrong']:,}"
        )
