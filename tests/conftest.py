"""Hypothesis profiles for the fuzz tests, and the shipped specs compiled once per module.

    pytest tests/test_fuzz_differential.py                          # default: quick
    pytest tests/test_fuzz_differential.py --hypothesis-profile=long
    ARCHSPEC_FUZZ_EXAMPLES=20000 pytest ... --hypothesis-profile=long

Each fuzz test scales its own example count from the profile's
``max_examples`` (ONNX export is ~1 s per example, so it takes a fraction).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

import archspec

if TYPE_CHECKING:
    from archspec.analysis import Analysis
    from archspec.torch.build import SpecModule

SPECS = Path(__file__).resolve().parents[1] / "specs"

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("archspec", max_examples=30, deadline=None, suppress_health_check=_SLOW)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("ARCHSPEC_FUZZ_EXAMPLES", "5000")),
    deadline=None,
    suppress_health_check=_SLOW,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "archspec"))


@pytest.fixture(scope="module")
def built() -> Callable[[str], tuple[Analysis, SpecModule]]:
    """``built(name)``: a shipped spec's analysis and module (seed 0), compiled once per test module.

    AlexNet takes about a second to compile; torch is imported only by the tests that ask.
    """
    from archspec.torch.build import compile_spec

    cache: dict[str, tuple[Analysis, SpecModule]] = {}

    def get(name: str) -> tuple[Analysis, SpecModule]:
        if name not in cache:
            spec = archspec.load(SPECS / f"{name}.yaml")
            analysis = archspec.analyze(spec)
            cache[name] = (analysis, compile_spec(spec, seed=0, analysis=analysis))
        return cache[name]

    return get
