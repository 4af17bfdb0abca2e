"""The CLI's contract beyond one command: exit statuses in --help, one error format,
a closed pipe, ``python -m archspec``, and a missing install extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from archspec.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
LENET = "specs/lenet5-lecun1998.yaml"


def archspec(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archspec", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_python_dash_m_archspec_runs_the_cli() -> None:
    proc = archspec("check", LENET, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert '"name": "lenet5-lecun1998"' in proc.stdout


def test_help_states_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "exit status: 0 all good; 1 a published figure failed" in " ".join(
        capsys.readouterr().out.split()
    )
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():  # type: ignore[union-attr]
        help_text = " ".join(p.format_help().split())
        assert "exit status: 0 success;" in help_text, name
        if name in ("check", "compile", "run", "doc", "diff", "fit", "bench"):
            assert "; 1 " in help_text, name
        else:
            assert "It never exits 1." in help_text, name
    check = " ".join(sub.choices["check"].format_help().split())  # type: ignore[index]
    assert "--format {table,json,markdown} table: one per spec" in check
    bench = " ".join(sub.choices["bench"].format_help().split())  # type: ignore[index]
    assert "--precision {fp32,fp16} fp32 (default), or fp16" in bench


def test_usage_errors_read_archspec_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", LENET, "--format", "yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archspec: error: argument --format: invalid choice: 'yaml'")
    assert err.rstrip().endswith("see 'archspec check --help'")
    assert main(["compile", LENET, "--seed", "-1"]) == 2
    assert capsys.readouterr().err.startswith(
        "archspec: error: argument --seed: seed -1 is outside"
    )
    assert main(["export", LENET, "-o", "x.onnx", "--seed", "2**70"]) == 2
    assert capsys.readouterr().err.startswith("archspec: error: argument --seed: invalid seed")


def test_max_params_is_parsed_alike_by_compile_and_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["compile", LENET], ["export", LENET, "-o", str(tmp_path / "x.onnx")]):
        assert main([*command, "--max-params", "1e3"]) == 2
        err = capsys.readouterr().err
        assert "above --max-params 1,000" in err, err


def test_bench_refuses_an_empty_onnx_file_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    assert main(["bench", str(model), "--provider", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{model}: error: not a valid ONNX model")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_a_closed_pipe_is_not_a_failure(fmt: str) -> None:
    """`archspec check specs | head -1`: exit 0, nothing on stderr but the spec warnings."""
    proc = subprocess.run(
        f"{sys.executable} -m archspec check specs --format {fmt} | head -c 20; "
        "echo; echo status=${PIPESTATUS[0]}",
        shell=True,
        executable="/bin/bash",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout.rstrip().endswith("status=0"), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert all(": warning: " in line for line in proc.stderr.splitlines()), proc.stderr


# Make torch, onnx and onnxruntime look uninstalled: find_spec answers None and import fails.
NO_FRAMEWORKS = """
import importlib.util, sys
BLOCKED = {"torch", "onnx", "onnxruntime", "onnxscript", "safetensors", "matplotlib"}
real = importlib.util.find_spec
def find_spec(name, package=None):
    return None if name.split(".")[0] in BLOCKED else real(name, package)
importlib.util.find_spec = find_spec
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
from archspec.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def core_only(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_FRAMEWORKS, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_core_commands_run_without_the_frameworks(tmp_path: Path) -> None:
    assert core_only("check", "specs", "--format", "json").returncode == 0
    assert core_only("codegen", LENET, "-o", str(tmp_path / "m.py")).returncode == 0
    assert core_only("schema").returncode == 0
    assert core_only("doc", LENET).returncode == 0
    assert core_only("graph", LENET).returncode == 0


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["compile", LENET], "torch"),
        (["export", LENET, "-o", "m.onnx"], "onnx"),
        (["run", LENET], "onnx"),
        (["bench", LENET], "onnx"),
    ],
)
def test_a_missing_extra_is_one_line_that_installs_it(args: list[str], extra: str) -> None:
    proc = core_only(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"archspec: error: archspec {args[0]} needs ")
    assert line.endswith(f"not installed: pip install 'archspec[{extra}]'")


@pytest.mark.slow
@pytest.mark.skipif(
    not __import__("os").environ.get("ARCHSPEC_CORE_VENV_TEST"),
    reason="builds a venv and installs the core's dependencies from the index: "
    "set ARCHSPEC_CORE_VENV_TEST=1 to run it",
)
def test_a_real_core_only_install(tmp_path: Path) -> None:
    """pip install archspec (no extras) in a fresh venv: check passes, compile/export/run say
    which extra to install (scripts/core_only_venv.sh checks each exit status)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "core_only_venv.sh"), str(tmp_path / "venv")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "pip install 'archspec[onnx]'" in proc.stdout
