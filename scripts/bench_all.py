#!/usr/bin/env python
"""Run the published benchmarks and regenerate docs/benchmarks.md's tables from their JSON.

Two steps, so a table can always be rebuilt from saved figures without
re-measuring:

    # measure every shipped spec (writes the JSON report)
    python scripts/bench_all.py run -o docs/benchmarks-cpu.json -- --provider cpu --min-time 3

    # rewrite the marked regions of docs/benchmarks.md from saved reports
    python scripts/bench_all.py docs --cpu docs/benchmarks-cpu.json
    python scripts/bench_all.py docs --gpu gpu-fp32.json gpu-fp16.json

``run`` calls the ``archspec bench`` command itself (so the figures come
from exactly the published command, which the report records in
``command``). ``docs`` replaces only the text between
``<!-- bench:cpu:begin -->`` / ``<!-- bench:cpu:end -->`` (and the ``gpu``
pair), atomically, and leaves the prose alone.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
GPU_BATCHES = (1, 8, 64, 256)


def _load(path: str) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"bench_all: cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or "results" not in doc:
        raise SystemExit(f"bench_all: {path} is not an archspec bench report")
    return doc


def cpu_section(doc: dict[str, Any]) -> str:
    """The CPU region: command, machine, table, roof."""
    from archspec.bench.render import markdown_table, summary

    env = doc["environment"]
    versions = ", ".join(
        f"{name} {env.get(key)}"
        for name, key in (
            ("Python", "python"),
            ("torch", "torch"),
            ("onnx", "onnx"),
            ("onnxruntime", "onnxruntime"),
        )
    )
    return "\n".join(
        [
            "Produced by:",
            "",
            "```sh",
            doc.get("command", "archspec bench ..."),
            "```",
            "",
            f"Machine: {summary(doc)}. {versions}; {env.get('platform')}. "
            f"Run took {doc.get('wall_s', 0):.0f} s.",
            "",
            markdown_table(doc),
        ]
    )


def gpu_section(docs: list[dict[str, Any]]) -> str:
    """The GPU region: samples/s at batches 1, 8, 64, 256 for each precision, from saved reports."""
    from archspec.bench.render import pivot_markdown

    commands = [d.get("command", "archspec bench ...") for d in docs]
    env = docs[0]["environment"]
    gpu = f"{env.get('gpu')} (driver {env.get('gpu_driver')}, CUDA {env.get('cuda_runtime')})"
    return "\n".join(
        [
            "Produced by:",
            "",
            "```sh",
            *commands,
            "```",
            "",
            f"GPU: {gpu}. Samples/s:",
            "",
            pivot_markdown(docs, GPU_BATCHES),
        ]
    )


def replace_region(text: str, name: str, body: str) -> str:
    """Replace the text between the ``bench:NAME`` markers; fail if the markers are missing."""
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"bench_all: {DOCS} has no {begin} … {end} region")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text, count=1)


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    specs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("*.yaml"))
    argv = ["archspec", "bench", *specs, "--batch", "1,8", "--baseline", "torch"]
    argv += [*extra, "--format", "json", "-o", args.output]
    print("+", " ".join(argv), file=sys.stderr)
    return subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=False).returncode


def cmd_docs(args: argparse.Namespace) -> int:
    from archspec.output_files import write_atomic

    text = DOCS.read_text(encoding="utf-8")
    if args.cpu:
        text = replace_region(text, "cpu", cpu_section(_load(args.cpu)))
    if args.gpu:
        text = replace_region(text, "gpu", gpu_section([_load(p) for p in args.gpu]))
    write_atomic(DOCS, text)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="benchmark every shipped spec; extra bench options after --")
    run.add_argument("-o", "--output", default="docs/benchmarks-cpu.json")
    docs = sub.add_parser("docs", help="rewrite docs/benchmarks.md's tables from saved reports")
    docs.add_argument("--cpu", metavar="JSON")
    docs.add_argument("--gpu", metavar="JSON", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args, extra)
    return cmd_docs(args)


if __name__ == "__main__":
    sys.exit(main())
