"""Fitting tables to the terminal without ever cutting a figure.

rich shrinks a table that is wider than the console by cutting its cells
and adding an ellipsis (``1,135,256,0…``). For a tool whose point is exact
counts that is a wrong answer, not a cosmetic flaw, so no table here is left
for rich to shrink: a command offers layouts from the richest to the most
compact, the first whose natural width fits is printed, and when none fits
the records are stacked, ``name`` then ``label figure`` items wrapped
between items, never inside one.

rich is imported inside the functions: ``archspec check`` stays light.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

PIPE_WIDTH = 160
"""Width when stdout is not a terminal and COLUMNS is unset (docs, pipes, logs).

Wide enough for every shipped spec's full table; a narrower reader sets COLUMNS.
"""


def console() -> Any:
    """The rich Console a command prints its tables on.

    At a terminal, the terminal's width; elsewhere COLUMNS when it is set (so
    tests and scripts can ask for 80 columns), else :data:`PIPE_WIDTH`.
    """
    from rich.console import Console

    class _Console(Console):
        # rich turns a BrokenPipeError into SystemExit(1), which would read as "a
        # published figure failed"; it stays a BrokenPipeError, which the entry point
        # ends with exit status 0 (``archspec check specs | head -1``).
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    columns = os.environ.get("COLUMNS", "")
    width = None if sys.stdout.isatty() or columns.isdigit() else PIPE_WIDTH
    # emoji=False: a ":name:" in a spec's text is text (and rich's table of emoji names
    # is not loaded for nothing).
    return _Console(width=width, highlight=False, emoji=False)


def natural_width(out: Any, renderable: Any) -> int:
    """The columns ``renderable`` takes when nothing is shrunk (cell text as given)."""
    from rich.measure import Measurement

    widths = _text_column_widths(renderable)
    if widths is not None:
        return sum(widths) + renderable._extra_width
    return Measurement.get(out, out.options.update_width(1_000_000), renderable).maximum


def first_fitting(out: Any, tables: Iterable[Any]) -> Any | None:
    """The first of ``tables`` (richest first) that fits the console whole, else None.

    The table returned has its columns' widths fixed at their natural widths,
    which are the widths rich would give a table that fits, so rich prints it
    the same without measuring every cell again.
    """
    for table in tables:
        if natural_width(out, table) <= out.width:
            widths = _text_column_widths(table)
            for column, width in zip(table.columns, widths or (), strict=False):
                column.width = width - table._get_padding_width(column._index)
            return table
    return None


def _text_column_widths(table: Any) -> list[int] | None:
    """Each column's natural width with its padding, for a rich Table whose cells are all
    ``Text`` on unwrapped columns; None for any other renderable (rich then measures it).

    rich measures a cell by rendering it through its padding (about 30 ms for one
    spec's table, measured two or three times); the width of plain text is the
    cell width of its longest line, which is what rich's measurement returns.
    """
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    if type(table) is not Table or table.width is not None or table.expand:
        return None
    widths = []
    for column in table.columns:
        cells = [*([column.header] if table.show_header else []), *column._cells]
        cells += [column.footer] if table.show_footer else []
        if column.width is not None or not column.no_wrap:
            return None
        texts = [cell for cell in cells if type(cell) is Text]
        if len(texts) < len(cells):
            return None
        text = max((cell_len(line) for t in texts for line in t.plain.splitlines()), default=0)
        widths.append(text + table._get_padding_width(column._index))
    return widths


def stacked(
    title: str, records: Sequence[tuple[str, Sequence[str]]], width: int, indent: int = 4
) -> str:
    """Each record as its heading, then its items wrapped to ``width`` between items.

    The layout of last resort: an item (``MACs 1,135,256,096``) is never split,
    so a figure stays whole and searchable at any width; an item longer than
    the whole line gets a line of its own.
    """
    lines = [title] if title else []
    pad = " " * indent
    for heading, items in records:
        lines.append(heading)
        line = ""
        for item in items:
            if line and indent + len(line) + 2 + len(item) > width:
                lines.append(pad + line)
                line = ""
            line = f"{line}  {item}" if line else item
        if line:
            lines.append(pad + line)
    return "\n".join(lines)
