"""Time `archspec export` as a user runs it: the whole process, both paths, median of N.

    python scripts/bench_export.py [--repeat 3] [--via native torch] [SPEC ...]

Each run is a fresh ``python -m archspec export SPEC -o TMP`` (interpreter start,
imports, export, checks, write); the wall time and the peak resident memory
(``ru_maxrss`` of that one child, from ``os.wait4``) are recorded, and the median of
``--repeat`` runs (min and max beside it, then the child's median CPU time, user +
sys, which a shared machine inflates less than the wall time) is printed as a
Markdown table, with the peak as a multiple of the spec's weight bytes. Default specs: LeNet-5 (d2l)
and AlexNet (Krizhevsky 2012), the issue's targets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPECS = ["specs/lenet5-d2l.yaml", "specs/alexnet-krizhevsky2012.yaml"]


def one_run(spec: str, via: str, out: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + sys) and peak RSS bytes of one export process."""
    cmd = [sys.executable, "-m", "archspec", "export", spec, "-o", str(out), "--via", via]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss * 1024  # Linux reports KiB


def weight_bytes(spec: str) -> int:
    sys.path.insert(0, str(ROOT))
    from archspec.analysis import analyze
    from archspec.spec import load

    analysis = analyze(load(ROOT / spec))
    return (analysis.totals.params + analysis.totals.buffers) * 4


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("specs", nargs="*", default=DEFAULT_SPECS)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--via", nargs="+", default=["native", "torch"])
    args = p.parse_args()
    print(
        f"whole process, median of {args.repeat} (min–max); {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print()
    print(
        "| spec | path | wall s (median) | min–max s | CPU s (user + sys, median) "
        "| peak RSS MB | × weight bytes |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.specs:
            weights = weight_bytes(spec)
            for via in args.via:
                runs = [one_run(spec, via, Path(tmp) / f"{via}.onnx") for _ in range(args.repeat)]
                secs = [s for s, _, _ in runs]
                cpu = statistics.median(c for _, c, _ in runs)
                peak = statistics.median(m for _, _, m in runs)
                print(
                    f"| {Path(spec).stem} | {via} | {statistics.median(secs):.2f} | "
                    f"{min(secs):.2f}–{max(secs):.2f} | {cpu:.2f} | {peak / 1e6:.0f} | "
                    f"{peak / weights:.2f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
