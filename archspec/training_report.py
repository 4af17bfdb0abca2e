"""Rendering the training figures: JSON keys, the terminal and Markdown tables, the model card section.

Kept apart from :mod:`archspec.report` so that ``check`` renders the inference
table exactly as before and adds this one only with ``--train``.
"""

from __future__ import annotations

from typing import Any

from archspec.analysis import Analysis
from archspec.report import human_bytes
from archspec.training import Setup, TrainAnalysis, analyze_training

COLUMNS = ("layer", "backward FLOPs", "∂input", "∂weights", "saved")
MEMORY_LABELS = {
    "weights": "weights (float32)",
    "gradients": "gradients (float32)",
    "optimizer_state": "optimizer state (float32)",
    "saved_activations": "saved for backward",
}


def add_json(doc: dict[str, Any], train: TrainAnalysis) -> None:
    """Add the training keys to one spec's ``check --format json`` document (keys only added)."""
    for layer, row in zip(doc["layers"], train.rows, strict=True):
        layer.update(row.to_json())
    doc["totals"].update(train.totals_json())


def table_rows(train: TrainAnalysis) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (
            r.name,
            f"{r.backward_flops:,}",
            f"{r.grad_input_flops:,}",
            f"{r.grad_weight_flops:,}",
            human_bytes(r.saved_bytes),
        )
        for r in train.rows
    ]
    rows.append(
        (
            "total",
            f"{train.backward_flops:,}",
            f"{sum(r.grad_input_flops for r in train.rows):,}",
            f"{sum(r.grad_weight_flops for r in train.rows):,}",
            human_bytes(train.saved_activations.at(train.setup.batch)),
        )
    )
    return rows


def summary_line(analysis: Analysis, train: TrainAnalysis) -> str:
    b = train.setup.batch
    mem = train.memory_json()
    return (
        f"{analysis.spec.name} training ({train.setup.describe()}): {train.train_flops:,} FLOPs a step "
        f"({train.forward_flops:,} forward + {train.backward_flops:,} backward); "
        f"weights {human_bytes(mem['weights'])}, gradients {human_bytes(mem['gradients'])}, "
        f"optimizer state {human_bytes(mem['optimizer_state'])}, saved for backward "
        f"{human_bytes(mem['saved_activations'])}; peak {human_bytes(mem['peak'])} "
        f"({mem['peak']:,} B at {mem['peak_at']}, batch {b:,})"
    )


def rich_table(analysis: Analysis, train: TrainAnalysis) -> Any:
    from rich.table import Table

    table = Table(
        title=f"training — {analysis.spec.name}, {train.setup.describe()}",
        title_justify="left",
    )
    for c in COLUMNS:
        table.add_column(c, justify="left" if c == "layer" else "right", no_wrap=True)
    rows = table_rows(train)
    for cells in rows[:-1]:
        table.add_row(*cells)
    table.add_section()
    table.add_row(*rows[-1], style="bold")
    return table


def plain_table(train: TrainAnalysis) -> str:
    rows = [COLUMNS, *table_rows(train)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = []
    for r in rows:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def markdown_table(train: TrainAnalysis) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 1)]
    rows = table_rows(train)
    for cells in rows[:-1]:
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| " + " | ".join(f"**{c}**" for c in rows[-1]) + " |")
    return "\n".join(lines)


def memory_table(train: TrainAnalysis) -> str:
    """The memory of one step by category, and what is live at its peak."""
    mem = train.memory_json()
    lines = ["| memory of one step | total | live at the peak |", "|---|---:|---:|"]
    for key, label in MEMORY_LABELS.items():
        lines.append(f"| {label} | {mem[key]:,} B | {mem['at_peak'][key]:,} B |")
    lines.append(
        f"| other live tensors (batch, outputs, gradients, workspace) | | "
        f"{mem['at_peak']['transient']:,} B |"
    )
    lines.append(
        f"| **peak** ({mem['peak_at']}) | | **{mem['peak']:,} B ({human_bytes(mem['peak'])})** |"
    )
    return "\n".join(lines)


CARD_BATCHES = (1, 32)


def card_section(analysis: Analysis) -> list[str]:
    """The model card's training section: Adam, float32, CUDA, at batch 1 and 32."""
    from archspec.training import Setup, analyze_training

    trains = [analyze_training(analysis, Setup(batch=b)) for b in CARD_BATCHES]
    lines = [
        "## Training",
        "",
        "One training step (`archspec check --train`): forward, backward, Adam's update, in "
        "float32 on CUDA; conventions in [training.md](../training.md). *∂input* and "
        "*∂weights* are the FLOPs of the input and weight gradients (2 × their MACs); *saved* "
        "is what autograd keeps for the backward pass, each tensor counted once.",
        "",
    ]
    for train in trains:
        b = train.setup.batch
        lines += [
            f"### Batch {b}",
            "",
            f"{train.train_flops:,} FLOPs a step ({train.forward_flops:,} forward + "
            f"{train.backward_flops:,} backward).",
            "",
            markdown_table(train),
            "",
            memory_table(train),
            "",
        ]
    return lines


def renderer(setup: Setup) -> Any:
    """``check --train``'s hook: ``render(target, analysis, fmt)`` adds the training figures.

    fmt "json": ``target`` is the spec's JSON document (returned, with the keys
    added); "markdown": printed after the spec's table; "table": printed on the
    rich console ``target``.
    """

    def render(target: Any, analysis: Analysis | None, fmt: str = "json") -> Any:
        if analysis is None:
            return target
        train = analyze_training(analysis, setup)
        if fmt == "json":
            add_json(target, train)
        elif fmt == "markdown":
            print(markdown_table(train) + "\n")
            print(memory_table(train) + "\n")
            print(summary_line(analysis, train) + "\n")
        else:
            from archspec.report import RICH_MAX_ROWS

            if len(train.rows) > RICH_MAX_ROWS:
                target.print(plain_table(train), markup=False, highlight=False, soft_wrap=True)
            else:
                target.print(rich_table(analysis, train))
            target.print(summary_line(analysis, train), soft_wrap=True, markup=False)
            target.print()
        return target

    return render
