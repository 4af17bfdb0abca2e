"""Tables never cut a figure: at 80, 100 and 200 columns every figure of the JSON is printed whole.

rich shrinks a table wider than the terminal by cutting cells
(``1,135,256,0…``). The figures here come from the JSON documents (``check
--format json``, a saved bench report), formatted as a person reads them,
and each must appear on its own layer's (or result's) row, as a whole token:
not cut, not split across lines, not glued to another number.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from archspec.bench.render import OPTIONAL, fmt_ms, rich_tables, summary
from archspec.cli.main import main
from archspec.tables import console

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
WIDTHS = (80, 100, 200)


def _token(text: str) -> re.Pattern[str]:
    """``text`` as a whole figure: no digit, comma, point or × glued on either side."""
    return re.compile(rf"(?<![\w,.×]){re.escape(text)}(?![\w,×]|\.\d)")


def _check(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(["check", *argv])
    return capsys.readouterr().out


def _segments(lines: list[str], heads: list[str], stop: str) -> list[str]:
    """For each head in order, its lines: from the line it starts up to the next head's (or ``stop``)."""
    starts: list[int] = []
    at = 0
    for head in [*heads, stop]:
        pattern = re.compile(rf"^\W*{re.escape(head)}(?![\w.])")
        at = next(i for i in range(at, len(lines)) if pattern.match(lines[i]))
        starts.append(at)
        at += 1
    return ["\n".join(lines[a:b]) for a, b in itertools.pairwise(starts)]


def _assert_whole(text: str, figures: list[str], where: str) -> None:
    for figure in figures:
        assert _token(figure).search(text), f"{where}: {figure!r} not whole in:\n{text}"


def _assert_fits(out: str, width: int) -> None:
    assert "…" not in out
    summary_line = re.compile(r"^\S+: [\d,]+ params")  # one long line, wrapped by the terminal
    table_lines = [line for line in out.splitlines() if not summary_line.match(line)]
    assert max(len(line.rstrip()) for line in table_lines) <= width


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_check_table_shows_every_figure_whole(
    spec: Path, width: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (doc,) = json.loads(_check(capsys, "--format", "json", str(spec)))["specs"]
    monkeypatch.setenv("COLUMNS", str(width))
    out = _check(capsys, str(spec))
    _assert_fits(out, width)
    layers = doc["layers"]
    lines = out.splitlines()
    segments = _segments(lines, [x["name"] for x in layers], "total")
    for layer, text in zip(layers, segments, strict=True):
        figures = [f"{layer[k]:,}" for k in ("params", "connections", "macs")]
        figures.append("×".join(map(str, layer["output"])))
        figures += [f"{layer['buffers']:,}"] if layer["buffers"] else []
        _assert_whole(text, figures, f"{spec.stem} at {width}, layer {layer['name']}")
    (total,) = _segments(lines, ["total"], doc["name"] + ":")
    t = doc["totals"]
    figures = [f"{t[k]:,}" for k in ("params", "connections", "macs")]
    figures += ["×".join(map(str, doc["output"]))] + ([f"{t['buffers']:,}"] if t["buffers"] else [])
    _assert_whole(total, figures, f"{spec.stem} at {width}, total")


def test_the_console_honours_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "93")
    assert console().width == 93
    monkeypatch.delenv("COLUMNS")
    assert console().width == 160  # not a terminal: wide enough for every shipped spec's table


def test_a_wide_table_keeps_its_box_and_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    out = _check(capsys, str(ROOT / "specs" / "alexnet.yaml"))
    assert "┃ layer" in out and " memory " in out and " RF " in out and "not shown" not in out
    monkeypatch.setenv("COLUMNS", "80")
    out = _check(capsys, str(ROOT / "specs" / "alexnet.yaml"))
    assert "not shown at this width: memory" in out  # said, not silently dropped


GIANT = """archspec: 1
name: giant
input: {shape: [3, 64, 64]}
layers:
  - {name: wide_convolution_layer, type: conv2d, out_channels: 123456789012, kernel: 3, padding: 1, activation: relu}
  - {name: pool, type: maxpool2d, kernel: 2}
  - {name: flatten, type: flatten}
  - {name: head, type: linear, out_features: 9876543210}
"""


@pytest.mark.parametrize("width", (40, *WIDTHS))
def test_figures_too_wide_for_any_table_are_stacked_whole(
    width: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = tmp_path / "giant.yaml"
    spec.write_text(GIANT, encoding="utf-8")
    (doc,) = json.loads(_check(capsys, "--format", "json", str(spec)))["specs"]
    monkeypatch.setenv("COLUMNS", str(width))
    out = _check(capsys, str(spec))
    assert "…" not in out
    for layer in doc["layers"]:
        for key in ("params", "connections", "macs"):
            _assert_whole(out, [f"{layer[key]:,}"], f"giant at {width}")
        _assert_whole(out, ["×".join(map(str, layer["output"]))], f"giant at {width}")


def test_long_models_get_a_plain_table_that_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    layers = "".join(f"  - {{name: relu_{i}, type: relu}}\n" for i in range(1_001))
    spec = tmp_path / "long.yaml"
    spec.write_text(
        "archspec: 1\nname: long\ninput: {shape: [64, 999, 999]}\nlayers:\n"
        "  - {name: c, type: conv2d, out_channels: 4096, kernel: 3}\n" + layers,
        encoding="utf-8",
    )
    (doc,) = json.loads(_check(capsys, "--format", "json", str(spec)))["specs"]
    for width in WIDTHS:
        monkeypatch.setenv("COLUMNS", str(width))
        out = _check(capsys, str(spec))
        _assert_fits(out, width)
        first = doc["layers"][0]
        (text,) = _segments(out.splitlines(), ["c"], "relu_0")
        _assert_whole(text, [f"{first[k]:,}" for k in ("params", "connections", "macs")], "c")


# --------------------------------------------------------------------------- bench tables


def _rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _bench_figures(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Each result's figures by column, formatted from the JSON as a reader expects them."""
    eager = {
        (r["spec"], r["batch"], r["precision"]): r["throughput"]
        for r in doc["results"]
        if r["engine"] == "torch"
    }
    out = []
    for r in doc["results"]:
        base = eager.get((r["spec"], r["batch"], r["precision"]))
        # the report's own ratio (median over the interleaved rounds) where it has one; the
        # ratio of the two p50 throughputs can round differently (1.32× against 1.31×)
        ratio = (
            r["vs_torch"]["ratio"]
            if r.get("vs_torch")
            else r["throughput"] / base
            if base
            else None
        )
        figures = {
            "batch": str(r["batch"]),
            "p50 ms": fmt_ms(r["latency_ms"]["p50"]),
            "p90 ms": fmt_ms(r["latency_ms"]["p90"]),
            "p99 ms": fmt_ms(r["latency_ms"]["p99"]),
            "samples/s": _rate(r["throughput"]),
            "GFLOP/s": f"{r['flops_per_s'] / 1e9:.1f}",
            "roofline": f"{100 * r['roofline_fraction']:.1f}%",
            "peak memory": f"{r['peak_memory_bytes'] / 1024**2:,.0f}",
        }
        if ratio is not None:
            figures["vs torch"] = (
                f"{ratio:.0f}×"
                if ratio >= 100
                else f"{ratio:.1f}×"
                if ratio >= 10
                else f"{ratio:.2f}×"
            )
        if r.get("cpu_share") is not None:
            figures["CPU share"] = f"{100 * r['cpu_share']:.0f}%"
        out.append(figures)
    return out


def _wide_doc() -> dict[str, Any]:
    """A GPU-like report: two providers and precisions (more columns), large figures."""
    results = []
    for provider, precision, p50 in (("tensorrt", "fp16", 0.0123), ("cuda", "fp32", 1234.5)):
        for engine in ("onnxruntime", "torch-compile", "torch"):
            results.append(
                {
                    "spec": "alexnet-krizhevsky2012",
                    "engine": engine,
                    "provider": provider,
                    "batch": 4096,
                    "precision": precision,
                    "cuda_graph": provider == "tensorrt",
                    "latency_ms": {"p50": p50, "p90": p50 * 1.5, "p99": p50 * 3},
                    "throughput": 4096 / (p50 / 1e3),
                    "flops_per_s": 123456.7e9,
                    "roofline_fraction": 0.987,
                    "peak_memory_bytes": 123456 * 1024**2,
                    "cpu_share": 1.0,
                }
            )
    return {
        "environment": {"gpu": "Test GPU", "threads": {"intra_op": 16}},
        "peak_flops_per_s": 9e14,
        "roofline": {"precision": "fp16", "size": 8192},
        "results": results,
    }


BENCH_DOCS = {
    "cpu": lambda: json.loads((ROOT / "docs" / "benchmarks-cpu.json").read_text(encoding="utf-8")),
    "wide": _wide_doc,
}


@pytest.mark.parametrize("width", (40, *WIDTHS))
@pytest.mark.parametrize("name", BENCH_DOCS)
def test_bench_table_shows_every_figure_whole(
    name: str, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saved report renders as the live run would (``rich_tables`` reads the JSON)."""
    doc = BENCH_DOCS[name]()
    monkeypatch.setenv("COLUMNS", str(width))
    out = console()
    with out.capture() as captured:
        for renderable in rich_tables(doc, out):
            out.print(renderable, soft_wrap=True)
    text = captured.get()
    _assert_fits(text, width)
    lines = text.splitlines()
    engines = sorted({r["engine"] for r in doc["results"]}, key=len, reverse=True)
    head = re.compile(rf"^\s*({'|'.join(map(re.escape, engines))})(?![\w-])")
    titles = tuple(r["spec"] for r in doc["results"])
    starts = [i for i, line in enumerate(lines) if head.match(line)]
    assert len(starts) == len(doc["results"])
    for r, figures, i in zip(doc["results"], _bench_figures(doc), starts, strict=True):
        j = next(
            (j for j in range(i + 1, len(lines)) if not lines[j].startswith("    ")), len(lines)
        )
        table_end = next(
            (k for k in range(j, len(lines)) if lines[k].startswith(titles)), len(lines)
        )
        caption = next((x for x in lines[j:table_end] if x.startswith("not shown")), "")
        left_out = {c for c in OPTIONAL if c in caption}
        shown = [v for k, v in figures.items() if k not in left_out]
        _assert_whole(
            "\n".join(lines[i:j]), shown, f"{name} at {width}, {r['engine']} b{r['batch']}"
        )
        assert width < 200 or not left_out
    assert summary(doc)  # the summary line is printed after the tables, unwrapped
