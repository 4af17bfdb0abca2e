"""Which shipped specs each per-spec test stage runs on.

Cheap stages (check, schema, tables, docs cards) run on every spec in specs/.
Heavy stages (compile, codegen, ONNX export and ONNX Runtime) run by default on
the original seven and on the new specs whose weights are small
(≤ :data:`SMALL_WEIGHT_BYTES`); ``ARCHSPEC_ALL_SPECS=1`` runs them on every
spec (VGG's 130–140 M parameters, ZFNet's and ResNet-50's are the ones left out:
each takes several seconds and hundreds of MB per stage, on 2 cores).

Specs whose layer names are dotted (blocks, torchvision's module paths) need
the compiler to accept dotted names; until it does, their heavy stages are
expected failures, and the mark lifts itself once it does.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

import archspec

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"
ALL_SPECS = sorted(SPECS_DIR.glob("*.yaml"))
ALL_NAMES = [p.stem for p in ALL_SPECS]

# The seven specs of the first stage (DESIGN.md's table): always in every stage.
ORIGINAL = (
    "alexnet",
    "alexnet-d2l",
    "alexnet-krizhevsky2012",
    "alexnet-torchvision",
    "lenet5-d2l",
    "lenet5-lecun1998",
    "lenet5-maxpool",
)
SMALL_WEIGHT_BYTES = 50 * 2**20  # float32 weights of ResNet-18 (45 MiB) and below
ALL_ENV = "ARCHSPEC_ALL_SPECS"


def all_specs_requested() -> bool:
    return os.environ.get(ALL_ENV, "") not in ("", "0")


@functools.cache
def _weight_bytes(name: str) -> int:
    return archspec.analyze(SPECS_DIR / f"{name}.yaml").totals.param_bytes


def heavy_names() -> list[str]:
    """Spec names for the heavy stages: the original seven and the small ones, or every one."""
    if all_specs_requested():
        return list(ALL_NAMES)
    return [n for n in ALL_NAMES if n in ORIGINAL or _weight_bytes(n) <= SMALL_WEIGHT_BYTES]


def has_dotted_names(name: str) -> bool:
    return any("." in row.name for row in archspec.analyze(SPECS_DIR / f"{name}.yaml").rows)


@functools.cache
def compiler_takes_dotted_names() -> bool:
    """Whether ``archspec.compile`` builds a layer named ``a.b`` (imports torch)."""
    spec = archspec.loads(
        "archspec: 1\nname: probe\ninput: {shape: [1, 4, 4]}\n"
        "layers:\n  - {name: a.b, type: conv2d, out_channels: 1, kernel: 1}\n"
    )
    try:
        archspec.compile(spec)
    except Exception:
        return False
    return True


DOTTED_PENDING = (
    "the compiler does not accept dotted layer names yet (being finished on another "
    "branch, issue 12); this mark lifts itself once it does"
)


def heavy_params(paths: bool = False) -> list[object]:
    """:func:`heavy_names` as pytest params (names, or spec paths with ``paths``), with the
    dotted-name specs marked as expected failures while the compiler refuses them."""
    params: list[object] = []
    for name in heavy_names():
        marks = []
        if has_dotted_names(name) and not compiler_takes_dotted_names():
            marks.append(pytest.mark.xfail(reason=DOTTED_PENDING, strict=True))
        value = SPECS_DIR / f"{name}.yaml" if paths else name
        params.append(pytest.param(value, marks=marks, id=name))
    return params


def heavy_ready() -> list[str]:
    """The heavy-stage names a shared fixture can build now (no expected failures among them)."""
    return [n for n in heavy_names() if not has_dotted_names(n) or compiler_takes_dotted_names()]


def flat_specs() -> list[Path]:
    """Specs without ``blocks:``, for the text-mutation tests (see tests/test_mutation_specs.py)."""
    return [p for p in ALL_SPECS if "\nblocks:" not in p.read_text(encoding="utf-8")]
