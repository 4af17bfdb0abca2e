#!/usr/bin/env python
"""Run the published benchmarks and regenerate docs/benchmarks.md's tables from their JSON.

Two steps, so a table can always be rebuilt from saved figures without
re-measuring:

    # measure every shipped spec (writes the JSON report)
    python scripts/bench_all.py run -o docs/benchmarks-cpu.json -- --provider cpu --min-time 3

    # rewrite the marked regions of docs/benchmarks.md from saved reports
    python scripts/bench_all.py docs --cpu docs/benchmarks-cpu.json
    python scripts/bench_all.py docs --gpu gpu-fp32.json gpu-fp16.json

and the per-layer pages, one ``archspec bench SPEC --profile`` per spec into
docs/profiles/SPEC.json, each rendered as SPEC.md and SPEC-roofline.png, with
an index (README.md). A spec whose report is already there, from the same
command and the same spec text, is not measured again (so an interrupted run
resumes); ``--force`` measures every one, ``--render-only`` none:

    python scripts/bench_all.py profiles                      # every shipped spec
    python scripts/bench_all.py profiles --specs specs/alexnet.yaml -- --min-time 1

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
PROFILES = ROOT / "docs" / "profiles"
GPU_BATCHES = (1, 8, 64, 256)
# the per-layer pages: batch 1, a short timing (the profile itself is 20 calls per engine)
PROFILE_OPTIONS = ("--batch", "1", "--provider", "cpu", "--baseline", "torch", "--min-time", "0.5")


def _load(path: str) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"bench_all: cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or "results" not in doc:
        raise SystemExit(f"bench_all: {path} is not an archspec bench report")
    return doc


def cpu_section(doc: dict[str, Any]) -> str:
    """The CPU region: command, machine, reliability, table, roof."""
    from archspec.bench.pages import machine_line, reliability_note, roof_line
    from archspec.bench.render import markdown_table

    note = reliability_note(doc)
    return "\n".join(
        [
            "Produced by:",
            "",
            "```sh",
            doc.get("command", "archspec bench ..."),
            "```",
            "",
            f"Machine: {machine_line(doc)} Run took {doc.get('wall_s', 0):.0f} s.",
            "",
            *([roof_line(doc), ""] if roof_line(doc) else []),
            *([note, ""] if note else []),
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


def shipped_specs(given: list[str] | None) -> list[str]:
    """The specs to measure, relative to the repository where they lie in it."""
    paths = [Path(p).resolve() for p in given] if given else sorted((ROOT / "specs").glob("*.yaml"))
    return [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths]


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    specs = shipped_specs(args.specs)
    argv = ["archspec", "bench", *specs, "--batch", "1,8", "--baseline", "torch"]
    argv += [*extra, "--format", "json", "-o", args.output]
    print("+", " ".join(argv), file=sys.stderr)
    return subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=False).returncode


def cmd_docs(args: argparse.Namespace) -> int:
    from archspec.output_files import write_atomic

    target = Path(args.page)
    text = target.read_text(encoding="utf-8")
    if args.cpu:
        text = replace_region(text, "cpu", cpu_section(_load(args.cpu)))
    if args.gpu:
        text = replace_region(text, "gpu", gpu_section([_load(p) for p in args.gpu]))
    write_atomic(target, text)
    return 0


def _sha256(path: str) -> str:
    import hashlib

    return hashlib.sha256((ROOT / path).read_bytes()).hexdigest()


def cmd_profiles(args: argparse.Namespace, extra: list[str]) -> int:
    """Measure each spec's profile (unless its report is current), then render every page."""
    import time

    from archspec.output_files import write_atomic

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = shipped_specs(args.specs)
    started = time.perf_counter()
    for spec in specs if not args.render_only else []:
        name = _spec_name(spec)
        report = out / f"{name}.json"
        argv = ["archspec", "bench", spec, *PROFILE_OPTIONS, *extra, "--profile"]
        argv += ["--format", "json", "--quiet"]
        if report.exists() and not args.force:
            saved = _load(str(report))
            if saved.get("page", {}).get("argv") == argv[1:] and saved["page"].get(
                "spec_sha256"
            ) == _sha256(spec):
                print(f"= {name}: {report} is current", file=sys.stderr)
                continue
        print("+", " ".join(argv), file=sys.stderr)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        doc = json.loads(proc.stdout)
        doc["page"] = {"argv": argv[1:], "spec_sha256": _sha256(spec)}
        write_atomic(report, json.dumps(doc, indent=2) + "\n")
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    render_profiles(out, [_spec_name(s) for s in specs])
    print(f"profiles: {time.perf_counter() - started:.0f} s in all", file=sys.stderr)
    return 0


def _spec_name(path: str) -> str:
    from archspec.spec import load

    return load(ROOT / path).name


def render_profiles(out: Path, names: list[str]) -> None:
    """Each SPEC.json in ``out`` as SPEC.md and SPEC-roofline.png, and the index of all there."""
    from archspec.bench.pages import profile_index, profile_page
    from archspec.bench.plot import plot_roofline
    from archspec.bench.render import summary
    from archspec.output_files import write_atomic

    script = "python scripts/bench_all.py profiles"
    docs = {}
    for path in sorted(out.glob("*.json")):
        doc = _load(str(path))
        if "profile" not in doc:
            continue
        name = next(iter(doc["profile"]))
        docs[name] = doc
        rows = doc["profile"][name]["onnxruntime"]
        chart = None
        if any(r["flops"] for r in rows):
            chart = f"{name}-roofline.png"
            title = f"{name}, batch {doc['profile'][name]['batch']}: layers on ONNX Runtime"
            plot_roofline(
                rows,
                doc["profile"][name].get("roof", {}).get("flops_per_s", doc["peak_flops_per_s"]),
                doc.get("bandwidth_bytes_per_s"),
                out / chart,
                f"{title}\n{summary(doc).split(';')[0]}",
            )
        write_atomic(out / f"{name}.md", profile_page(doc, name, chart, script))
    missing = [n for n in names if n not in docs]
    if missing:
        print(f"profiles: no report for {', '.join(missing)}", file=sys.stderr)
    write_atomic(out / "README.md", profile_index(docs, script))


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
    run.add_argument("--specs", nargs="+", metavar="SPEC", help="these specs only")
    docs = sub.add_parser("docs", help="rewrite docs/benchmarks.md's tables from saved reports")
    docs.add_argument("--cpu", metavar="JSON")
    docs.add_argument("--gpu", metavar="JSON", nargs="+")
    docs.add_argument("--page", default=str(DOCS), help="the page to rewrite (default %(default)s)")
    prof = sub.add_parser("profiles", help="per-layer pages of every shipped spec (docs/profiles)")
    prof.add_argument("--specs", nargs="+", metavar="SPEC", help="these specs only")
    prof.add_argument("--out", default=str(PROFILES), help="where (default %(default)s)")
    prof.add_argument("--force", action="store_true", help="measure even current reports")
    prof.add_argument("--render-only", action="store_true", help="measure nothing; render pages")
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args, extra)
    if args.command == "profiles":
        return cmd_profiles(args, extra)
    return cmd_docs(args)


if __name__ == "__main__":
    sys.exit(main())
