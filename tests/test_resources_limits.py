"""Resource limits: `check` answers any input up to the size limit in bounded time and memory,
and `compile` refuses what would not fit before allocating it.

Each `check` runs as its own process; its CPU time comes from ``os.wait4``
(that child's own rusage, not RUSAGE_CHILDREN's running total) and its peak
RSS from its own VmHWM (see HWM_WRAPPER). CPU time rather than wall time,
because the test machines are shared: the bounds are generous on purpose,
several times what the cases take on an idle machine (docs/reliability.md
lists the measurements).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import archspec
from archspec.resources import ResourceError
from archspec.spec.loader import MAX_BYTES, MAX_DEPTH, MAX_NODES

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20

# Small hostile inputs (refused before any real work): an answer within these.
CPU_S, RSS_MB = 5.0, 500
# Inputs that fill the 1 MiB limit and are parsed, validated and analysed in full
# (2-5 s of CPU on the shared 2-core test machine).
BIG_CPU_S, BIG_RSS_MB = 10.0, 500
# A flood of 524,000 errors (1 MiB of two-byte values, every one wrong): the YAML tree
# and pydantic's list of errors are linear in the file but not small.
FLOOD_CPU_S, FLOOD_RSS_MB = 15.0, 1024


@dataclass
class Run:
    code: int
    out: str
    err: str
    cpu_s: float
    wall_s: float
    rss_mb: float


# Runs a command module the way `python -m` does, then writes the process's peak RSS
# (VmHWM) to the file named by ARCHSPEC_HWM_FILE. ru_maxrss cannot be used: Linux keeps
# it across exec, so a child forked from pytest (with torch loaded) inherits pytest's peak.
HWM_WRAPPER = """
import atexit, os, runpy, sys
def _report():
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    with open(os.environ["ARCHSPEC_HWM_FILE"], "w") as out:
        out.write(str(kb))
atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def measured(args: list[str], tmp: Path, timeout: float = 120) -> Run:
    """Run ``python -m MODULE ARGS…``: its exit code, output, CPU time and peak RSS."""
    out_path, err_path, hwm = tmp / "stdout.txt", tmp / "stderr.txt", tmp / "hwm.txt"
    env = {**os.environ, "ARCHSPEC_HWM_FILE": str(hwm)}
    cmd = [sys.executable, "-c", HWM_WRAPPER, *args]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU time
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        code=proc.returncode,
        out=out_path.read_text(errors="replace"),
        err=err_path.read_text(errors="replace"),
        cpu_s=usage.ru_utime + usage.ru_stime,
        wall_s=wall,
        rss_mb=int(hwm.read_text()) / 1024 if hwm.exists() else float("inf"),
    )


def check(path: Path, tmp: Path, *args: str) -> Run:
    run = measured(["archspec.cli.main", "check", *args, str(path)], tmp)
    assert run.code >= 0, f"killed by signal {-run.code}: {run.err[-500:]}"
    assert "Traceback" not in run.out + run.err, run.err[-2000:]
    return run


def fill(head: str, item: Callable[[int], str], tail: str = "", size: int = MAX_BYTES) -> str:
    """``head + item(0) + item(1) + … + tail``, as many items as fit in ``size`` bytes."""
    parts, total, i = [head], len(head) + len(tail), 0
    while total + len(nxt := item(i)) <= size:
        parts.append(nxt)
        total += len(nxt)
        i += 1
    return "".join(parts) + tail


SPEC_HEAD = "archspec: 1\nname: big\ninput: {shape: [4]}\nlayers:\n"


def residual_spec() -> str:
    """A valid spec just under 1 MiB: residual blocks of conv, relu, conv, add, tanh (~20,000 layers)."""
    lines = ["archspec: 1", "name: generated", "input: {shape: [8, 16, 16]}", "layers:"]
    size, block_in, i = 80, "input", 0
    while True:
        n = [f"l{i + k}" for k in range(5)]
        block = [
            f"- {{name: {n[0]}, type: conv2d, out_channels: 8, kernel: 3, padding: 1}}",
            f"- {{name: {n[1]}, type: relu}}",
            f"- {{name: {n[2]}, type: conv2d, out_channels: 8, kernel: 3, padding: 1}}",
            f"- {{name: {n[3]}, type: add, inputs: [{block_in}, {n[2]}]}}",
            f"- {{name: {n[4]}, type: tanh}}",
        ]
        grow = sum(len(b) + 1 for b in block)
        if size + grow > MAX_BYTES:
            return "\n".join(lines) + "\n"
        lines.extend(block)
        size += grow
        block_in, i = n[4], i + 5


def cycle_spec() -> str:
    """As many layers as fit in 1 MiB, each reading the next, the last reading the first."""
    n = fill(SPEC_HEAD, lambda i: f"  - {{name: l{i}, type: relu, inputs: [l{i + 1}]}}\n").count(
        "\n"
    )
    n -= SPEC_HEAD.count("\n") + 1
    rows = [f"  - {{name: l{i}, type: relu, inputs: [l{(i + 1) % n}]}}\n" for i in range(n)]
    return SPEC_HEAD + "".join(rows)


def alias_bomb() -> str:
    """Billion laughs: 10⁹ values from a few hundred bytes."""
    rows = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    rows += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "\n".join(rows) + "\n"


# (file content, expected exit code, a phrase the answer must contain, bounds)
NORMAL = (CPU_S, RSS_MB)
BIG = (BIG_CPU_S, BIG_RSS_MB)
FLOOD = (FLOOD_CPU_S, FLOOD_RSS_MB)
CASES: dict[str, tuple[str | bytes, int, str, tuple[float, float]]] = {
    "alias bomb": (alias_bomb(), 2, "alias bomb", NORMAL),
    "recursive alias": ("a: &a [1, *a]\n", 2, "error", NORMAL),
    "flow nesting 500,000 deep": (
        "a: " + "[" * (MiB // 2 - 4) + "]" * (MiB // 2 - 4) + "\n",
        2,
        f"deeper than {MAX_DEPTH} levels",
        NORMAL,
    ),
    "mapping nesting 200,000 deep": (
        "a: " + "{a: " * 200_000 + "1" + "}" * 200_000 + "\n",
        2,
        f"deeper than {MAX_DEPTH} levels",
        NORMAL,
    ),
    "block nesting 1,400 deep": (
        "".join(" " * i + f"k{i}:\n" for i in range(1400)),
        2,
        f"deeper than {MAX_DEPTH} levels",
        NORMAL,
    ),
    "10 MB file": ("archspec: 1\n" + "#" * (10 * MiB) + "\n", 2, "limited to", NORMAL),
    "1 MiB title on one line": (
        SPEC_HEAD.replace("name: big", "name: big\ntitle: " + "t" * (MAX_BYTES - 200))
        + "  - {name: r, type: relu}\n",
        0,
        "big",
        NORMAL,
    ),
    "10^12 channels": (
        "archspec: 1\nname: huge\ninput: {shape: [3, 224, 224]}\nlayers:\n"
        "  - {name: wide, type: conv2d, out_channels: 1000000000000, kernel: 3, padding: 1}\n"
        "  - {name: pool, type: adaptive_avgpool2d, output_size: 1000000000000}\n",
        0,
        "huge",
        NORMAL,
    ),
    "valid 1 MiB spec (20,000 layers)": (residual_spec(), 0, "generated", BIG),
    "30,000 unknown layer types": (
        fill(SPEC_HEAD, lambda i: f"  - {{name: l{i}, type: rleu}}\n"),
        2,
        "more errors like these not shown",
        BIG,
    ),
    "90,000 unknown keys in one layer": (
        fill(SPEC_HEAD + "  - {name: b, type: relu", lambda i: f", k{i}: 1", "}\n"),
        2,
        "unknown key",
        BIG,
    ),
    "30,000 dangling inputs": (
        fill(SPEC_HEAD, lambda i: f"  - {{name: l{i}, type: relu, inputs: [m{i}]}}\n"),
        2,
        "which is not a layer",
        BIG,
    ),
    "20,000-layer cycle": (cycle_spec(), 2, "the layers form a cycle", BIG),
    "350,000 duplicate inputs": (
        fill(
            SPEC_HEAD + "  - {name: a, type: relu}\n  - {name: b, type: concat, inputs: [a",
            lambda i: ", a",
            "]}\n",
        ),
        2,
        "more errors like these not shown",
        BIG,
    ),
    "524,000 non-mapping layers": (
        fill("archspec: 1\nname: big\ninput: {shape: [4]}\nlayers: [1", lambda i: ",1", "]\n"),
        2,
        "more errors like these not shown",
        FLOOD,
    ),
    "!!python/object tag": (
        "!!python/object/apply:os.system ['echo pwned']\n",
        2,
        "not allowed",
        NORMAL,
    ),
    "NUL bytes": ("archspec: 1\nname: a\x00b\n", 2, "NUL byte", NORMAL),
    "non-UTF-8 bytes": (b"archspec: 1\nname: caf\xe9\n", 2, "not UTF-8", NORMAL),
}


@pytest.mark.parametrize("case", list(CASES))
def test_check_is_bounded(case: str, tmp_path: Path) -> None:
    content, code, phrase, (cpu_s, rss_mb) = CASES[case]
    path = tmp_path / "case.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    run = check(path, tmp_path, "--format", "json" if code == 0 else "table")
    assert run.code == code, run.err[-1000:]
    if code == 0:
        (doc,) = json.loads(run.out)["specs"]
        assert doc["ok"], doc["diagnostics"][:3]
        assert doc["name"] == phrase
    else:
        lines = run.err.splitlines()
        assert phrase in run.err, run.err[-1000:]
        assert all(line.startswith(f"{path}:") for line in lines), lines[:3]
        assert len(lines) <= 101 + 1  # at most MAX_ERRORS errors, plus the "more" line
    _record(case, run)
    assert run.cpu_s < cpu_s, f"{case}: {run.cpu_s:.2f} s of CPU"
    assert run.rss_mb < rss_mb, f"{case}: {run.rss_mb:.0f} MB peak RSS"


def _record(case: str, run: Run) -> None:
    """With ARCHSPEC_RESOURCES_LOG=FILE, append each case's figures (for docs/reliability.md)."""
    log = os.environ.get("ARCHSPEC_RESOURCES_LOG")
    if log:
        first = run.err.splitlines()[0] if run.err else run.out[:200]
        row = {"case": case, "exit": run.code, "cpu_s": round(run.cpu_s, 2)}
        row |= {"wall_s": round(run.wall_s, 2), "rss_mb": round(run.rss_mb), "first": first}
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def test_cases_are_at_the_limits() -> None:
    """The generated inputs are as big as the loader lets through (or bigger, where refused)."""
    sizes = {k: len(v if isinstance(v, bytes) else v.encode()) for k, (v, *_) in CASES.items()}
    for case in ("valid 1 MiB spec (20,000 layers)", "30,000 unknown layer types"):
        assert MAX_BYTES - 200 < sizes[case] <= MAX_BYTES
    assert sizes["10 MB file"] > 10 * MAX_BYTES
    text = CASES["524,000 non-mapping layers"][0]  # the most values 1 MiB can hold
    assert isinstance(text, str) and text.count(",") + 1 > MAX_NODES
    assert CASES["20,000-layer cycle"][0].count("\n") > 20_000


def test_table_output_of_a_1_mib_spec_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(residual_spec(), encoding="utf-8")
    run = check(path, tmp_path)
    _record("valid 1 MiB spec, table output", run)
    assert run.code == 0, run.err[-1000:]
    assert "generated" in run.out
    assert run.cpu_s < BIG_CPU_S, f"{run.cpu_s:.2f} s of CPU"
    assert run.rss_mb < BIG_RSS_MB, f"{run.rss_mb:.0f} MB peak RSS"


def test_trillion_channels_are_exact_integers() -> None:
    c = 10**12
    spec = archspec.loads(str(CASES["10^12 channels"][0]))
    analysis = archspec.analyze(spec)
    conv, pool = analysis.rows
    assert conv.output == (c, 224, 224)
    assert conv.params == 3 * 3 * 3 * c + c
    assert conv.macs == 27 * c * 224 * 224
    # Adaptive pooling to 10¹² × 10¹²: windows of 1 or 2 pixels, counted in closed form.
    assert pool.output == (c, c, c)
    # Σ window widths = n + m − gcd(n, m) on each axis; gcd(224, 10¹²) = 32.
    assert pool.connections == c * (224 + c - 32) ** 2


def test_error_floods_list_the_first_errors_and_count_the_rest() -> None:
    """Each stage describes at most MAX_ERRORS input errors, then one line counting the rest."""
    from archspec.spec.diagnostics import MAX_ERRORS, SpecError

    graph_errors = SPEC_HEAD + "".join(
        f"  - {{name: l{i}, type: relu, inputs: [m{i}]}}\n" for i in range(300)
    )
    schema_errors = SPEC_HEAD + "".join(f"  - {{name: l{i}, type: rleu}}\n" for i in range(250))
    for text, total in ((graph_errors, 300), (schema_errors, 250)):
        with pytest.raises(SpecError) as info:
            archspec.analyze(archspec.loads(text, "flood.yaml"))
        diagnostics = info.value.diagnostics
        assert len(diagnostics) == MAX_ERRORS + 1
        last = diagnostics[-1].render()
        assert last.startswith(f"flood.yaml:{MAX_ERRORS + 5}:")
        assert f"{total - MAX_ERRORS:,} more errors like these not shown" in last


# ---------------------------------------------------------------------------
# compile refuses what would not fit, before allocating.

GIANT = (
    "archspec: 1\nname: giant\ninput: {shape: [3, 8, 8]}\nlayers:\n"
    "  - {name: wide, type: conv2d, out_channels: 1000000000, kernel: 3}\n"
    "  - {name: flat, type: flatten}\n"
    "  - {name: fc, type: linear, out_features: 1000000000}\n"
)


def test_compile_refuses_max_params() -> None:
    spec = archspec.load(ROOT / "specs" / "lenet5-d2l.yaml")
    with pytest.raises(ResourceError, match="above --max-params 61,705"):
        archspec.compile(spec, max_params=61_705)
    assert sum(p.numel() for p in archspec.compile(spec, max_params=61_706).parameters()) == 61_706


def test_compile_refuses_a_billion_channels_before_allocating(tmp_path: Path) -> None:
    code = (
        "import sys, archspec\n"
        "from archspec.resources import ResourceError\n"
        "try:\n"
        "    archspec.compile(archspec.loads(sys.stdin.read()))\n"
        "except ResourceError as exc:\n"
        "    print('refused:', exc)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    out, err = proc.communicate(GIANT, timeout=120)
    assert proc.returncode == 0, err
    assert out.startswith("refused: giant needs"), out
    assert "nothing was allocated" in out


@pytest.mark.parametrize(
    ("command", "suffix", "says"),
    [
        ("compile", ".safetensors", "for its"),
        # the native export holds the weights once (one tensor at a time, streamed)
        ("export", ".onnx", "weights to export"),
    ],
)
def test_cli_refuses_a_billion_channels(
    command: str, suffix: str, says: str, tmp_path: Path
) -> None:
    spec = tmp_path / "giant.yaml"
    spec.write_text(GIANT, encoding="utf-8")
    output = tmp_path / f"giant{suffix}"
    run = measured(["archspec.cli.main", command, str(spec), "-o", str(output)], tmp_path)
    assert run.code == 2, run.err
    assert "Traceback" not in run.err
    (line,) = run.err.splitlines()
    assert line.startswith("archspec: error: giant needs"), line
    assert says in line and "nothing was allocated" in line, line
    assert not output.exists()
    assert list(tmp_path.glob(".giant*")) == []
    assert run.rss_mb < 1024, f"{run.rss_mb:.0f} MB"  # torch itself is most of it


def test_export_counts_every_copy_of_the_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights that fit once but not four times are refused by export, not by compile."""
    import archspec.resources as resources
    from archspec.onnx.export import EXPORT_COPIES

    analysis = archspec.analyze(archspec.load(ROOT / "specs" / "lenet5-d2l.yaml"))
    weight_bytes = (61_706 + 0) * 4  # lenet5-d2l: 61,706 float32 parameters, no buffers
    monkeypatch.setattr(resources, "available_memory", lambda: weight_bytes * 2)
    resources.check_fits(analysis)  # one copy fits
    with pytest.raises(ResourceError, match=f"{EXPORT_COPIES} copies of 61,706 weights"):
        resources.check_fits(analysis, copies=EXPORT_COPIES, purpose="export")
