"""The table as people read it (a terminal, Markdown) and as programs read it (CSV)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table as RichTable

from gan_runner.presentation.report.table import Table, cell_text


def numeric(table: Table, column: str) -> bool:
    return table.columns.index(column) >= 2 + len(table.options)


def text_rows(table: Table) -> list[list[str]]:
    return [[cell_text(c, v) for c, v in zip(table.columns, row, strict=True)]
            for row in table.rows]


def rich_table(table: Table, title: str) -> RichTable:
    """Runs that did not finish normally stand out in yellow."""
    out = RichTable(title=title)
    for column in table.columns:
        out.add_column(column, justify="right" if numeric(table, column) else "left")
    status = table.columns.index("status")
    for row in text_rows(table):
        out.add_row(*row, style=None if row[status] == "done" else "yellow")
    return out


def markdown(table: Table, title: str, pictures: Sequence[str]) -> str:
    """The table, then the pictures (file names relative to the report)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    rules = ["---:" if numeric(table, c) else "---" for c in table.columns]
    lines = [f"# {title}", "", line(table.columns), line(rules),
             *(line(row) for row in text_rows(table)), ""]
    lines += [f"![{Path(name).stem}]({name})\n" for name in pictures]
    return "\n".join(lines)


def write_csv(table: Table, path: Path) -> None:
    """Raw values: full precision, wall time in seconds, empty where there is none."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(table.columns)
        writer.writerows([["" if v is None else v for v in row] for row in table.rows])
