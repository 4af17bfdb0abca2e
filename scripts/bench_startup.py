"""Start-up of ``archspec check``: whole-process wall time, median of several runs.

    python scripts/bench_startup.py [--runs 9] [--root DIR] [--json out.json]

Times what a user waits for: ``python -m archspec.cli.main check`` (what the
``archspec`` script runs) on one spec (LeNet-5, the smallest; AlexNet, which
uses six of the eight modules of layer kinds; ResNet-50, 175 layers in
blocks) and on the shipped specs/, table output (rich, into a pipe) and
JSON. Each case runs once untimed first to warm the file cache and to write
the bytecode cache, as ``pip install`` does: the runs are timed with
PYTHONDONTWRITEBYTECODE removed from their environment, since compiling
archspec's modules on every run (when it is set and no cache exists yet) is
not what an installed archspec does. ``--root`` runs another checkout of archspec (e.g. an older commit
unpacked with ``git archive``) with this Python, to compare before and after.
Where the time goes: ``python -X importtime -m archspec check SPEC``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = "specs/lenet5-lecun1998.yaml"
ALEXNET = "specs/alexnet-krizhevsky2012.yaml"
CASES = {
    f"check {SPEC}": ["check", SPEC],
    f"check {SPEC} --format json": ["check", SPEC, "--format", "json"],
    f"check {ALEXNET}": ["check", ALEXNET],
    f"check {ALEXNET} --format json": ["check", ALEXNET, "--format", "json"],
    "check specs/resnet50.yaml": ["check", "specs/resnet50.yaml"],
    "check specs/": ["check", "specs"],
    "check specs/ --format json": ["check", "specs", "--format", "json"],
    "python -c pass (the interpreter alone)": None,
}


def command(args: list[str] | None) -> list[str]:
    if args is None:
        return [sys.executable, "-c", "pass"]
    return [sys.executable, "-m", "archspec.cli.main", *args]


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_runs(cmd: list[str], runs: int, root: Path) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of each run."""
    subprocess.run(cmd, cwd=root, capture_output=True, check=False, env=ENV)
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, capture_output=True, check=False, env=ENV)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-500:]!r}")
    return times, cpu


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9, help="timed runs per case (default 9)")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the archspec checkout to run (default: this one)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5: a median of fewer says little")
    results = {}
    load = os.getloadavg()[0]
    print(f"load average (1 min) before: {load:.2f} on {os.cpu_count()} CPUs")
    print(
        f"{'case':52} {'median':>8} {'min':>8} {'max':>8} {'cpu':>8}   "
        f"(seconds, whole process, {args.runs} runs; cpu: median user+system)"
    )
    for label, case in CASES.items():
        t, cpu = time_runs(command(case), args.runs, args.root)
        r = {
            "median_s": statistics.median(t),
            "min_s": min(t),
            "max_s": max(t),
            "cpu_median_s": statistics.median(cpu),
        }
        results[label] = r
        print(
            f"{label:52} {r['median_s']:8.3f} {r['min_s']:8.3f} {r['max_s']:8.3f} "
            f"{r['cpu_median_s']:8.3f}",
            flush=True,
        )
    if args.json:
        doc = {"runs": args.runs, "load_before": load, "results": results}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
