"""The torchvision specs agree with torchvision itself, layer by layer (scripts/crosscheck_torchvision.py).

torchvision does not load beside the CPU build of torch in .venv, so the script
runs under a second interpreter that has it: ``$ARCHSPEC_TORCHVISION_PYTHON``, or
``/work/tvenv/bin/python`` where that exists. Without one the test is skipped
and says why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "crosscheck_torchvision.py"
DEFAULT_PYTHON = "/work/tvenv/bin/python"


def torchvision_python() -> str | None:
    """An interpreter that imports torchvision, or None."""
    candidate = os.environ.get("ARCHSPEC_TORCHVISION_PYTHON", DEFAULT_PYTHON)
    if not Path(candidate).exists():
        return None
    probe = subprocess.run(
        [candidate, "-c", "import torchvision"], capture_output=True, timeout=120, check=False
    )
    return candidate if probe.returncode == 0 else None


def spec_names() -> list[str]:
    """The specs the script knows a torchvision model for (parsed, not imported: no torch here)."""
    text = SCRIPT.read_text(encoding="utf-8")
    block = text.split("MODELS: dict", 1)[1].split("\n}\n", 1)[0]
    known = re.findall(r'^    "([^"]+)": \(', block, flags=re.M)
    return [n for n in known if (ROOT / "specs" / f"{n}.yaml").exists()]


@pytest.mark.slow
def test_every_torchvision_spec_agrees_with_torchvision() -> None:
    python = torchvision_python()
    if python is None:
        pytest.skip(
            "no interpreter with torchvision: set ARCHSPEC_TORCHVISION_PYTHON to one "
            f"(default {DEFAULT_PYTHON}); torchvision does not load beside .venv's CPU torch"
        )
    names = spec_names()
    assert {"vgg16", "resnet50", "googlenet", "squeezenet1.0"} <= set(names)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [python, str(SCRIPT), *names],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
        check=False,
    )
    sys.stdout.write(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in names:
        assert re.search(rf"^{re.escape(name)}: OK; ", done.stdout, flags=re.M), done.stdout
    assert f"{len(names)} of {len(names)} specs agree with torchvision" in done.stdout


def test_the_script_knows_the_shipped_torchvision_specs() -> None:
    """Cheap and torch-free: a new torchvision spec gets an entry in the script's table."""
    names = set(spec_names())
    for path in (ROOT / "specs").glob("*.yaml"):
        if "torchvision.models." in path.read_text(encoding="utf-8") and path.stem != (
            "alexnet-torchvision"  # underscore names from before dotted names: not by module path
        ):
            assert path.stem in names, f"{path.name} cites torchvision but the cross-check skips it"
