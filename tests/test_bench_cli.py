"""`archspec bench` end to end on LeNet-5 (fast settings), and its refusals of bad input.

Speed is never asserted here: timings on a shared CI machine prove nothing.
These tests check that the run completes, that the JSON contract holds,
that files are written atomically, and that bad input is one line and exit 2.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from archspec.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
LENET = str(ROOT / "specs" / "lenet5-lecun1998.yaml")
FAST = ["--provider", "cpu", "--min-time", "0.02", "--warmup", "1", "--quiet"]

RESULT_KEYS = {
    "spec",
    "engine",
    "provider",
    "batch",
    "precision",
    "latency_ms",
    "throughput",
    "flops_per_s",
    "roofline_fraction",
    "peak_memory_bytes",
}


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    """One CLI run shared by the tests below: JSON on stdout, -o file, --plot file.

    In-process (not a subprocess) so the exporter's imports are paid once for the module.
    """
    out = tmp_path_factory.mktemp("bench")
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["bench", LENET, "--batch", "1,2", "--baseline", "torch", "--format", "json"]
    argv += ["-o", str(out / "r.json"), "--plot", str(out / "r.png"), *FAST]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    assert code == 0, stderr.getvalue()
    return json.loads(stdout.getvalue()), stderr.getvalue(), out


def test_json_has_every_key(bench_run: tuple[dict, str, Path]) -> None:
    doc, _, _ = bench_run
    assert {"environment", "peak_flops_per_s", "results"} <= doc.keys()
    env = doc["environment"]
    for key in ("cpu", "gpu", "gpu_driver", "threads", "python", "torch", "onnx", "onnxruntime"):
        assert key in env
    assert env["gpu"] is None and env["gpu_driver"] is None  # --provider cpu claims no GPU
    assert env["threads"]["intra_op"] == env["threads"]["torch_num_threads"]
    assert doc["peak_flops_per_s"] > 0
    results = doc["results"]
    assert {(r["engine"], r["batch"]) for r in results} == {
        (e, b) for e in ("onnxruntime", "torch") for b in (1, 2)
    }
    for r in results:
        assert r.keys() >= RESULT_KEYS
        assert r["spec"] == "lenet5-lecun1998" and r["provider"] == "cpu"
        assert r["precision"] == "fp32"
        lat = r["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert r["throughput"] == pytest.approx(r["batch"] / (lat["p50"] / 1e3))
        assert r["roofline_fraction"] == pytest.approx(r["flops_per_s"] / doc["peak_flops_per_s"])
        assert r["peak_memory_bytes"] > 0
        assert r["max_abs_diff"] is not None and r["max_abs_diff"] < 1e-3  # same weights


def test_flops_come_from_the_calculator(bench_run: tuple[dict, str, Path]) -> None:
    from archspec.analysis import analyze
    from archspec.spec import load

    doc, _, _ = bench_run
    flops = analyze(load(LENET)).totals.flops
    assert doc["flops_per_sample"] == {"lenet5-lecun1998": flops}
    for r in doc["results"]:
        assert r["flops_per_s"] == pytest.approx(
            flops * r["batch"] / (r["latency_ms"]["p50"] / 1e3)
        )


def test_output_file_equals_stdout_and_plot_is_png(bench_run: tuple[dict, str, Path]) -> None:
    doc, _, out = bench_run
    assert json.loads((out / "r.json").read_text()) == doc
    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == ["r.json", "r.png"]  # no temporary left


def test_progress_and_notes_stay_off_stdout(bench_run: tuple[dict, str, Path]) -> None:
    _, stderr, _ = bench_run
    assert "provider: cpu" in stderr


def test_markdown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["bench", LENET, "--batch", "1", "--baseline", "none", "--format", "markdown", *FAST]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("| spec | engine |")
    assert "| lenet5-lecun1998 | onnxruntime | cpu | 1 | fp32 |" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--batch", "0"], "positive integers"),
        (["--batch", "one"], "comma-separated"),
        (["--baseline", "tensorflow"], "unknown baseline"),
        (["--min-time", "-1"], "positive number"),
        (["--warmup", "-2"], "integer"),
        (["--threads", "0"], "integer"),
        (["--precision", "int8"], "invalid choice"),
        (["--ort-option", "novalue"], "KEY=VALUE"),
        (["-o", "/nonexistent-dir/r.json"], "does not exist"),
        (["--plot", "/nonexistent-dir/r.png"], "does not exist"),
    ],
)
def test_bad_options_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", LENET, *argv, "--provider", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_and_invalid_specs_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", str(tmp_path / "nope.yaml"), *FAST]) == 2
    assert "no such spec file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "archspec: 1\nname: x\ninput: {shape: [1, 8, 8]}\nlayers:\n  - {name: a, type: conv9d}\n"
    )
    assert main(["bench", str(bad), *FAST]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:" in err and "Traceback" not in err


def test_unusable_provider_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    import onnxruntime

    from archspec.runtime.providers import probe

    if (
        probe().get("cuda") is None
        and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    ):
        pytest.skip("this machine can run the CUDA provider")
    code = main(["bench", LENET, "--provider", "cuda", "--min-time", "0.01", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cuda" in err and len(err.strip().splitlines()) == 1


def test_command_module_imports_no_framework() -> None:
    """`archspec check` imports every command module; bench's must not pull in torch or ORT."""
    code = (
        "import sys, archspec.cli.main as m; m.build_parser(); "
        "import archspec.cli.commands.bench; "
        "heavy = [n for n in ('torch', 'onnx', 'onnxruntime', 'matplotlib') if n in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
