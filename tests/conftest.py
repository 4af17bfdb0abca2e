"""Hypothesis profiles for the fuzz tests (nothing else here; other tests do not use it).

    pytest tests/test_fuzz_differential.py                          # default: quick
    pytest tests/test_fuzz_differential.py --hypothesis-profile=long
    ARCHSPEC_FUZZ_EXAMPLES=20000 pytest ... --hypothesis-profile=long

Each fuzz test scales its own example count from the profile's
``max_examples`` (ONNX export is ~1 s per example, so it takes a fraction).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

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
