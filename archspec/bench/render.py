"""Rendering benchmark reports: terminal table, Markdown table, from the JSON document.

Everything here reads the JSON form of a report (``BenchReport.to_json()``),
not the Python objects, so that a saved ``results.json`` renders exactly as
the live run did: ``scripts/bench_all.py`` rebuilds docs/benchmarks.md's
tables from saved files with these same functions. No heavy import here.
"""

from __future__ import annotations

from typing import Any

from archspec.report import human_bytes

COLUMNS = (
    "spec",
    "engine",
    "provider",
    "batch",
    "precision",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "samples/s",
    "GFLOP/s",
    "roofline",
    "vs GEMM",
    "peak memory",
    "vs torch",
    "95% CI",
    "CPU share",
    "reliable",
)
NOT_AVAILABLE = "n/a"  # a figure that needs FLOPs, for an ONNX file archspec cannot count


def _key(r: dict[str, Any]) -> tuple[str, int, str]:
    return (r["spec"], r["batch"], r["precision"])


def speedups(results: list[dict[str, Any]]) -> list[float | None]:
    """Each result's throughput over the ``torch`` engine's at the same spec, batch and precision
    (the median over the interleaved rounds where the report has it)."""
    eager = {_key(r): r["throughput"] for r in results if r["engine"] == "torch"}
    out: list[float | None] = []
    for r in results:
        if r.get("vs_torch"):
            out.append(r["vs_torch"]["ratio"])
        else:
            has = _key(r) in eager and eager[_key(r)]
            out.append(r["throughput"] / eager[_key(r)] if has else None)
    return out


def doubts(doc: dict[str, Any]) -> list[str]:
    """One line per result marked unreliable (a "!" after its ratio in the table), and per
    ``--profile`` marked so, saying why."""
    return [
        f"unreliable: {r['spec']} {r['engine']} batch {r['batch']}: "
        + "; ".join(r["unreliable_reasons"])
        for r in doc["results"]
        if r.get("unreliable_reasons")
    ] + [
        f"unreliable: {name} profile at batch {p['batch']}: " + "; ".join(p["unreliable_reasons"])
        for name, p in doc.get("profile", {}).items()
        if p.get("unreliable_reasons")
    ]


def fmt_ms(v: float) -> str:
    """Milliseconds with three significant digits or so (0.127, 10.66, 144.8, 1,475)."""
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def _bytes(n: int | None) -> str:
    if n is None:
        return "—"
    if n >= 1024**3:
        return f"{n / 1024**3:.2f} GiB"
    if n >= 100 * 1024**2:
        return f"{n / 1024**2:.0f} MiB"
    return human_bytes(n)


def _mib(n: int | None) -> str:
    return "—" if n is None else f"{n / 1024**2:,.0f}"


def fmt_ratio(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.0f}×" if v >= 100 else f"{v:.1f}×" if v >= 10 else f"{v:.2f}×"


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _times(v: float | None) -> str:
    """A ratio to a measured reference (it may exceed 1: it is not a fraction of a roof)."""
    return NOT_AVAILABLE if v is None else f"{v:.2f}×"


def _percent(v: float | None) -> str:
    return NOT_AVAILABLE if v is None else f"{100 * v:.1f}%"


def fmt_interval(r: dict[str, Any]) -> str:
    """The 95 % interval of the ratio to torch eager, as ``1.52–1.81``."""
    ci = r.get("vs_torch")
    if not ci:
        return "—"
    return f"{fmt_ratio(ci['ci_low']).rstrip('×')}–{fmt_ratio(ci['ci_high'])}"


def rows(doc: dict[str, Any], *, compact: bool = False) -> list[list[str]]:
    """The table's cells, one row per result, in the report's order.

    ``compact`` writes memory as a bare number of MiB (the terminal header says MiB).
    """
    out = []
    results = doc["results"]
    for r, ratio in zip(results, speedups(results), strict=True):
        lat = r["latency_ms"]
        out.append(
            [
                r["spec"],
                r["engine"],
                r["provider"] + (" +graph" if r.get("cuda_graph") else ""),
                str(r["batch"]),
                r["precision"],
                fmt_ms(lat["p50"]),
                fmt_ms(lat["p90"]),
                fmt_ms(lat["p99"]),
                _rate(r["throughput"]),
                NOT_AVAILABLE if r["flops_per_s"] is None else f"{r['flops_per_s'] / 1e9:.1f}",
                _percent(r["roofline_fraction"]),
                "—" if "gemm_ratio" not in r else _times(r["gemm_ratio"]),
                _mib(r.get("peak_memory_bytes")) if compact else _bytes(r.get("peak_memory_bytes")),
                fmt_ratio(ratio) + ("" if r.get("reliable", True) else " !"),
                fmt_interval(r),
                f"{100 * r['cpu_share']:.0f}%" if r.get("cpu_share") is not None else "—",
                "—" if "reliable" not in r else "yes" if r["reliable"] else "no",
            ]
        )
    return out


def summary(doc: dict[str, Any]) -> str:
    """One line naming the machine and the roof every fraction is relative to."""
    env = doc.get("environment", {})
    roof = doc.get("roofline", {})
    device = env.get("gpu") or env.get("cpu") or "unknown device"
    threads = env.get("threads", {}).get("intra_op")
    chosen = doc.get("roof")
    if chosen is None:  # a report from before the physical peak (docs/benchmarks-cpu.json)
        what = f"{roof.get('precision', '?')} {roof.get('size', '?')}² matmul, measured in this run"
    elif chosen["source"] == "physical":
        what = "the physical peak: " + chosen["why"]
    else:
        what = "measured, above the physical estimate at the nominal clock the OS reports"
    return (
        f"{device}, {threads} threads; roof {doc['peak_flops_per_s'] / 1e9:,.1f} GFLOP/s "
        f"({what}); latency over interleaved rounds, throughput at p50"
    )


def markdown_table(doc: dict[str, Any]) -> str:
    """A GitHub Markdown table of every result; numbers right-aligned."""
    numeric = {"batch", *COLUMNS[5:]}
    head = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "|".join("---:" if c in numeric else "---" for c in COLUMNS) + "|"
    body = ["| " + " | ".join(cells) + " |" for cells in rows(doc)]
    return "\n".join([head, rule, *body])


TERMINAL_HEADERS = {
    "p50 ms": "p50\nms",
    "p90 ms": "p90\nms",
    "p99 ms": "p99\nms",
    "samples/s": "samples\n/s",
    "GFLOP/s": "GFLOP\n/s",
    "roofline": "roof-\nline",
    "peak memory": "peak\nMiB",
    "vs torch": "vs\ntorch",
    "CPU share": "CPU\nshare",
    "vs GEMM": "vs\nGEMM",
    "95% CI": "95%\nCI",
    "reliable": "reli-\nable",
}


STACKED_LABELS = {"peak memory": "peak MiB"}

OPTIONAL = ("95% CI", "vs GEMM", "CPU share", "p90 ms", "GFLOP/s", "peak memory")
"""Columns a narrow terminal leaves out, in this order, before stacking (JSON keeps them all)."""


def rich_tables(doc: dict[str, Any], out: Any = None) -> list[Any]:
    """One renderable per spec that fits the console ``out`` with every figure whole.

    The spec goes in the title; so do provider and precision when every row
    of that spec shares them (the usual case); headers take two lines. Where
    the table would be wider than ``out`` (rich would cut its figures), the
    columns of :data:`OPTIONAL` are left out one by one, and past the last
    each result is stacked as ``label figure`` items. No ``out``: every column.
    """
    from rich.text import Text

    from archspec.tables import first_fitting, stacked

    all_cells = rows(doc, compact=True)
    renderables: list[Any] = []
    for spec in dict.fromkeys(c[0] for c in all_cells):
        cells = [c for c in all_cells if c[0] == spec]
        shared = {
            i
            for i, name in enumerate(COLUMNS)
            if name in ("provider", "precision") and len({c[i] for c in cells}) == 1
        }
        title = " — ".join([spec, ", ".join(cells[0][i] for i in sorted(shared))]).rstrip(" —")
        hidden = {0, *shared, COLUMNS.index("reliable")}  # the terminal marks ratios with "!"
        for column in ("CPU share", "vs GEMM", "95% CI"):  # older reports lack them
            if all(c[COLUMNS.index(column)] == "—" for c in cells):
                hidden.add(COLUMNS.index(column))
        drops = [
            hidden | {COLUMNS.index(c) for c in OPTIONAL[:n]} for n in range(len(OPTIONAL) + 1)
        ]
        if out is None:
            renderables.append(_table(title, cells, hidden, []))
            continue
        table = first_fitting(
            out,
            (
                _table(title, cells, d, sorted(d - hidden))
                for d in dict.fromkeys(map(frozenset, drops))
            ),
        )
        if table is None:
            records = [
                (
                    " ".join(c[i] for i in (1, 2, 4) if i not in shared),
                    [
                        f"{STACKED_LABELS.get(COLUMNS[i], COLUMNS[i])} {c[i]}"
                        for i in range(3, len(COLUMNS))
                        if i not in hidden and i != 4
                    ],
                )
                for c in cells
            ]
            table = Text(stacked(title, records, out.width))
        renderables.append(table)
    return renderables


def _table(
    title: str, cells: list[list[str]], hidden: set[int] | frozenset[int], left_out: list[int]
) -> Any:
    """The bench table of one spec without the ``hidden`` columns; a caption names ``left_out``."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        padding=(0, 1),
    )
    if left_out:
        table.caption = "not shown at this width: " + ", ".join(COLUMNS[i] for i in left_out)
    for i, column in enumerate(COLUMNS):
        if i not in hidden:
            numeric = column in {"batch", *COLUMNS[5:]}
            table.add_column(
                TERMINAL_HEADERS.get(column, column),
                justify="right" if numeric else "left",
                no_wrap=True,
            )
    for row in cells:
        table.add_row(*(c for i, c in enumerate(row) if i not in hidden))
    return table


def pivot_markdown(docs: list[dict[str, Any]], batches: tuple[int, ...]) -> str:
    """Samples/s as a grid: one row per spec × engine, one column per batch × precision.

    The GPU layout of docs/benchmarks.md (batches 1, 8, 64, 256 at fp32 and
    fp16), filled from one or more reports (typically one per precision).
    A cell no report covers shows "—"; the last column is the best roofline
    fraction of the row.
    """
    results = [r for doc in docs for r in doc["results"]]
    precisions = list(dict.fromkeys(r["precision"] for r in results)) or ["fp32", "fp16"]
    by_cell = {(r["spec"], r["engine"], r["batch"], r["precision"]): r for r in results}
    keys = list(dict.fromkeys((r["spec"], r["engine"]) for r in results))
    cols = [(b, p) for p in precisions for b in batches]
    head = "| spec | engine | " + " | ".join(f"{p} b{b}" for b, p in cols) + " | best roofline |"
    rule = "|---|---|" + "---:|" * (len(cols) + 1)
    lines = [head, rule]
    for spec, engine in keys:
        cells = []
        fractions = []
        for b, p in cols:
            r = by_cell.get((spec, engine, b, p))
            cells.append(_rate(r["throughput"]) if r else "—")
            if r:
                fractions.append(r["roofline_fraction"])
        known = [f for f in fractions if f is not None]
        best = f"{100 * max(known):.1f}%" if known else NOT_AVAILABLE if fractions else "—"
        lines.append(f"| {spec} | {engine} | " + " | ".join(cells) + f" | {best} |")
    return "\n".join(lines)


PROFILE_COLUMNS = (
    "layer", "ms", "MFLOP", "KiB moved", "FLOP/B", "GFLOP/s", "of roof", "bound", "of attainable",
)  # fmt: skip


def profile_cells(
    r: dict[str, Any], roof: float | None = None, bandwidth: float | None = None
) -> list[str]:
    """One per-layer row of ``bench --profile`` as text ("—" where the FLOPs are unknown).

    ``of roof`` is of the compute roof; ``bound`` and ``of attainable`` place the layer
    in the roofline model (:func:`archspec.bench.profile.attainable`), which needs the
    run's memory bandwidth.
    """
    from archspec.bench.profile import attainable

    if r["flops"] is None:
        return [r["layer"], f"{r['ms']:.3f}", *["—"] * 7]
    fraction = r["fraction_of_roof"]
    bound, of_attainable = attainable(r, roof, bandwidth)
    return [
        r["layer"],
        f"{r['ms']:.3f}",
        f"{r['flops'] / 1e6:,.1f}",
        f"{r['bytes_moved'] / 1024:,.0f}",
        f"{r['arithmetic_intensity']:.1f}",
        f"{r['flops_per_s'] / 1e9:.1f}",
        "—" if fraction is None else f"{100 * fraction:.1f}%",
        bound,
        "—" if of_attainable is None else f"{100 * of_attainable:.1f}%",
    ]


def profile_table(
    spec: str,
    engine: str,
    batch: int,
    rows: list[dict[str, Any]],
    roof: float | None = None,
    bandwidth: float | None = None,
) -> Any:
    """One engine's per-layer profile: time, FLOPs, bytes, intensity, FLOP/s, share of roof."""
    from rich.table import Table

    table = Table(title=_profile_title(spec, engine, {"batch": batch}), title_justify="left")
    for name in PROFILE_COLUMNS:
        table.add_column(name, justify="left" if name == "layer" else "right", no_wrap=True)
    for r in rows:
        table.add_row(*profile_cells(r, roof, bandwidth))
    return table


def profile_markdown(
    rows: list[dict[str, Any]], roof: float | None = None, bandwidth: float | None = None
) -> str:
    """The same rows as a Markdown table (docs/profiles)."""
    head = "| " + " | ".join(PROFILE_COLUMNS) + " |"
    rule = "|---|" + "---:|" * (len(PROFILE_COLUMNS) - 1)
    body = [
        "| " + " | ".join(c.replace("|", "\\|") for c in profile_cells(r, roof, bandwidth)) + " |"
        for r in rows
    ]
    return "\n".join([head, rule, *body])


def _profile_title(name: str, engine: str, profile: dict[str, Any]) -> str:
    return f"{name}, {engine}, batch {profile['batch']}: per layer"


def _roofs(doc: dict[str, Any], profile: dict[str, Any]) -> tuple[float | None, float | None]:
    """A profile's compute roof (its layers' own) and the run's memory bandwidth."""
    roof = (profile.get("roof") or {}).get("flops_per_s", doc.get("peak_flops_per_s"))
    return roof, doc.get("bandwidth_bytes_per_s")


def profile_tables(doc: dict[str, Any]) -> list[Any]:
    """``bench --profile``'s tables for the terminal: one per model and engine timed."""
    return [
        profile_table(name, engine, profile["batch"], profile[engine], *_roofs(doc, profile))
        for name, profile in doc.get("profile", {}).items()
        for engine in ("onnxruntime", "torch")
        if profile[engine]
    ]


def profile_markdowns(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The same as (title, Markdown table) pairs."""
    return [
        (
            _profile_title(name, engine, profile),
            profile_markdown(profile[engine], *_roofs(doc, profile)),
        )
        for name, profile in doc.get("profile", {}).items()
        for engine in ("onnxruntime", "torch")
        if profile[engine]
    ]
