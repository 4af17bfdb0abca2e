"""Benchmark `archspec check` as whole processes (what a user waits for).

Times `archspec check specs/`, generated specs of 10,000 and 20,000 layers
and a 10¹²-channel layer, several runs each, and prints the median and range
and how the time grows from 10,000 to 20,000 layers (2.0 is linear).

    python scripts/bench_check.py [--runs 5] [--json out.json]

Targets (issue 2): specs/ under 1 s, 10,000 layers under 3 s, linear growth.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generated_spec(n_layers: int) -> str:
    """A residual stack of n_layers: conv, relu, conv, add (skip), tanh — convs, activations and DAG edges.

    Flow style and short names keep 20,000 layers inside the 1 MiB file limit.
    """
    lines = ["archspec: 1", f"name: generated-{n_layers}", "input: {shape: [8, 16, 16]}", "layers:"]
    block_in = "input"
    for start in range(0, n_layers, 5):
        n = [f"l{start + k}" for k in range(5)]
        block = [
            f"- {{name: {n[0]}, type: conv2d, out_channels: 8, kernel: 3, padding: 1}}",
            f"- {{name: {n[1]}, type: relu}}",
            f"- {{name: {n[2]}, type: conv2d, out_channels: 8, kernel: 3, padding: 1}}",
            f"- {{name: {n[3]}, type: add, inputs: [{block_in}, {n[2]}]}}",
            f"- {{name: {n[4]}, type: tanh}}",
        ]
        take = min(5, n_layers - start)
        if take < 5:  # keep the count exact with elementwise layers
            block = [f"- {{name: {n[k]}, type: relu}}" for k in range(take)]
        lines.extend(block)
        block_in = n[take - 1]
    return "\n".join(lines) + "\n"


def trillion_channels() -> str:
    return (
        "archspec: 1\nname: huge\ninput: {shape: [3, 224, 224]}\nlayers:\n"
        "  - {name: wide, type: conv2d, out_channels: 1000000000000, kernel: 3, padding: 1}\n"
    )


def hostile_inputs(tmp: Path) -> dict[str, Path]:
    """The bad inputs of issue 2, each of which must be refused (exit 2) within a second."""
    files = {
        "alias bomb (10^10 values)": "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)),
        "!!python/object tag": "!!python/object/apply:os.system ['echo pwned']\n",
        "10 MB file": "archspec: 1\n" + "#" * (10 * 1024 * 1024) + "\n",
        "nesting 10,000 deep": "a: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "kernel larger than input": "archspec: 1\nname: k\ninput: {shape: [1, 4, 4]}\n"
        "layers:\n  - {name: c, type: conv2d, out_channels: 1, kernel: 5}\n",
        "cycle": "archspec: 1\nname: c\ninput: {shape: [4]}\nlayers:\n"
        "  - {name: a, type: relu, inputs: [b]}\n  - {name: b, type: relu, inputs: [a]}\n",
    }
    paths = {}
    for i, (label, text) in enumerate(files.items()):
        paths[label] = tmp / f"hostile{i}.yaml"
        paths[label].write_text(text)
    paths["non-UTF-8 bytes"] = tmp / "latin1.yaml"
    paths["non-UTF-8 bytes"].write_bytes(b"archspec: 1\nname: caf\xe9\n")
    return paths


def time_runs(
    args: list[str], runs: int, expect: tuple[int, ...] = (0, 1)
) -> tuple[list[float], int]:
    cmd = [sys.executable, "-m", "archspec.cli.main", "check", "--format", "json", *args]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)  # warm the file cache
    times = []
    code = 0
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        code = out.returncode
        if code not in expect or b"Traceback" in out.stderr:
            raise SystemExit(f"check exited {code} on {args}: {out.stderr.decode()[:500]}")
    return times, code


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for n in (10_000, 20_000):
            path = Path(tmp) / f"gen{n}.yaml"
            path.write_text(generated_spec(n))
            files[f"{n:,} layers ({path.stat().st_size:,} bytes)"] = [str(path)]
        huge = Path(tmp) / "huge.yaml"
        huge.write_text(trillion_channels())
        cases = {"specs/ (7 shipped specs)": ["specs"], **files, "10^12 channels": [str(huge)]}
        hostile = {label: [str(p)] for label, p in hostile_inputs(Path(tmp)).items()}
        results = {}
        for label, case_args in [*cases.items(), *hostile.items()]:
            t, code = time_runs(case_args, args.runs, (2,) if label in hostile else (0, 1))
            results[label] = {
                "median_s": statistics.median(t),
                "min_s": min(t),
                "max_s": max(t),
                "runs": len(t),
                "exit": code,
            }

    print(
        f"{'case':40} {'median':>8} {'min':>8} {'max':>8} {'exit':>5}   (seconds, whole process, {args.runs} runs)"
    )
    for label, r in results.items():
        print(f"{label:40} {r['median_s']:8.3f} {r['min_s']:8.3f} {r['max_s']:8.3f} {r['exit']:5}")
    keys = list(results)
    t10, t20 = results[keys[1]]["median_s"], results[keys[2]]["median_s"]
    base = results[keys[3]]["median_s"]  # one-layer spec ≈ the fixed start-up cost
    growth = (t20 - base) / (t10 - base)
    print(
        f"growth 10,000 → 20,000 layers: ×{t20 / t10:.2f} in total, ×{growth:.2f} after start-up (2.00 = linear)"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"results": results, "growth_after_startup": growth}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
