"""A rich console that keeps table rows on one line when the output is a file or a pipe."""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.table import Table


def console_for(*renderables: RenderableType) -> Console:
    """On a terminal, the terminal's width; elsewhere (logs, CI, ``| tee``) rich would wrap at
    80 columns and break every row of a wide table into several, so the widest renderable
    sets the width."""
    console = Console()
    if console.is_terminal:
        return console
    wide = console.options.update_width(10_000)
    natural = max(console.measure(r, options=wide).maximum for r in renderables)
    return Console(width=max(console.width, natural))


def markdown_table(table: Table) -> str:
    """The same rich table as Markdown (title as a bold line), for reports kept as files."""
    columns = table.columns
    right = [column.justify == "right" for column in columns]
    lines = [f"**{table.title}**", ""] if table.title else []
    lines.append("| " + " | ".join(str(c.header) for c in columns) + " |")
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    cells = [[str(cell) for cell in column.cells] for column in columns]
    for row in zip(*cells, strict=True):
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
