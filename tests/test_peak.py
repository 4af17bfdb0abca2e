"""The physical peak and the roof: every input with its source, and no fraction above 1."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from archspec.bench.peak import PhysicalPeak, choose_roof, cpu_peak, gpu_peak

ZEN4 = """\
processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 17
model name	: AMD EPYC
cpu MHz		: 2596.146
flags		: fpu sse2 avx avx2 fma avx512f avx512bw

processor	: 1
"""
SKYLAKE = (
    ZEN4.replace("AuthenticAMD", "GenuineIntel").replace(": 25", ": 6").replace(": 17", ": 85")
)
HASWELL = SKYLAKE.replace(" avx512f avx512bw", "")


def test_zen4_two_cores_at_the_nominal_clock() -> None:
    peak = cpu_peak(2, cpuinfo=ZEN4, max_clock_hz=None)
    # 2 cores × 2 FMA pipes × (256 / 32) lanes × 2 FLOP × 2.596146 GHz
    assert peak.flops_per_s == 2 * 2 * 8 * 2 * 2_596_146_000
    assert peak.clock == "nominal" and "cpu MHz" in peak.sources["clock_hz"]
    assert "Zen 4" in peak.sources["fma_units"]


def test_intel_avx512_and_avx2_from_the_flags_and_a_maximum_clock() -> None:
    sky = cpu_peak(1, cpuinfo=SKYLAKE, max_clock_hz=3.5e9)
    assert sky.flops_per_s == 1 * 2 * 16 * 2 * 3.5e9 and sky.clock == "maximum"
    has = cpu_peak(1, cpuinfo=HASWELL, max_clock_hz=3.5e9)
    assert has.flops_per_s == 1 * 2 * 8 * 2 * 3.5e9


def test_unknown_clock_is_said() -> None:
    peak = cpu_peak(1, cpuinfo=ZEN4.replace("cpu MHz\t\t: 2596.146\n", ""), max_clock_hz=None)
    assert peak.flops_per_s is None and peak.clock == "unknown"


def test_h100_from_its_properties() -> None:
    # NVIDIA's H100 SXM5 figures: 989.4 dense fp16 tensor TFLOP/s (132 SMs at 1.83 GHz) and
    # 66.9 fp32 TFLOP/s (at 1.98 GHz): the table's FMA counts reproduce both
    fp16 = gpu_peak("fp16", sms=132, capability=(9, 0), clock_hz=1.83e9, clock_source="test")
    fp32 = gpu_peak("fp32", sms=132, capability=(9, 0), clock_hz=1.98e9, clock_source="test")
    assert round(fp16.flops_per_s / 1e12, 1) == 989.4
    assert round(fp32.flops_per_s / 1e12, 1) == 66.9


@given(
    physical=st.one_of(st.none(), st.floats(1e9, 1e12)),
    measured=st.dictionaries(st.text(min_size=1, max_size=5), st.floats(1e8, 2e12), min_size=1),
)
def test_no_fraction_exceeds_one(physical: float | None, measured: dict[str, float]) -> None:
    peak = PhysicalPeak(physical, "cpu", "fp32", clock="nominal")
    roof = choose_roof(peak, measured)
    assert all(v / roof.flops_per_s <= 1 for v in measured.values())
    if physical is not None and physical >= max(measured.values()):
        assert roof.source == "physical" and roof.flops_per_s == physical
    else:
        assert roof.source == "measured" and roof.flops_per_s == max(measured.values())
