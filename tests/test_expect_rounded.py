"""Published figures printed rounded (torchvision's "GFLOPS: 15.47") hold iff the exact figure rounds to them."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

import archspec
from archspec.layers.base import published_holds
from archspec.spec import SpecError

UNITS = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


@given(
    actual=st.integers(min_value=0, max_value=10**15),
    unit=st.sampled_from(sorted(UNITS)),
    decimals=st.integers(min_value=0, max_value=4),
    nudge=st.integers(min_value=-3, max_value=3),
)
def test_rounded_figure_holds_iff_the_exact_one_rounds_to_it(
    actual: int, unit: str, decimals: int, nudge: int
) -> None:
    """Derived with decimal rounding: the printed number is what round-half-up or
    round-half-even gives (sources use either), nudged to test the neighbours too."""
    exact = Decimal(actual) / UNITS[unit]
    step = Decimal(1).scaleb(-decimals)
    rounded = {exact.quantize(step, rounding=mode) for mode in (ROUND_HALF_UP, ROUND_HALF_EVEN)}
    printed = min(rounded) + nudge * step
    if printed < 0:
        return
    text = f"{printed:.{decimals}f}{unit}"
    assert published_holds(text, actual) == (printed in rounded), text


def test_exact_integers_compare_exactly() -> None:
    assert published_holds(138_357_544, 138_357_544)
    assert not published_holds(138_357_544, 138_357_545)


def test_torchvision_style_figures() -> None:
    # torchvision prints VGG-16's multiply-adds as "GFLOPS 15.47" and AlexNet's as 0.71.
    assert published_holds("15.47G", 15_470_264_320)
    assert published_holds("0.71G", 714_188_480)
    assert not published_holds("0.72G", 714_188_480)
    # the boundary itself: 15.465·10⁹ is within half a unit of 15.47 and of 15.46
    boundary = int(Fraction(15465, 1000) * 10**9)
    assert published_holds("15.47G", boundary) and published_holds("15.46G", boundary)
    assert not published_holds("15.47G", boundary - 1)


SPEC = """\
archspec: 1
name: t
input: {{shape: [3, 32, 32]}}
layers:
  - {{name: c, type: conv2d, out_channels: 8, kernel: 3, expect: {{macs: {macs}}}}}
"""


def test_a_rounded_expectation_is_checked_and_located() -> None:
    # 8 maps × 30×30 positions × 27 taps = 194,400 MACs: 0.19M to two decimals
    _, found = archspec.check(archspec.loads(SPEC.format(macs="0.19M")))
    assert not [d for d in found if d.severity.value == "error"]
    _, found = archspec.check(archspec.loads(SPEC.format(macs="0.21M"), "t.yaml"))
    (error,) = [d for d in found if d.severity.value == "error"]
    assert error.render() == (
        "t.yaml:5:72: error: layer 'c': expected macs 0.21M (as published, rounded), computed 194,400"
    )


@pytest.mark.parametrize("text", ["15.47X", "G", "1e9", "-1.5G", "15.47 G"])
def test_a_malformed_rounded_figure_is_a_located_error(text: str) -> None:
    with pytest.raises(SpecError) as info:
        archspec.loads(SPEC.format(macs=f'"{text}"'), "t.yaml")
    assert info.value.diagnostics[0].render().startswith("t.yaml:5:")
