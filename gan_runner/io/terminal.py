"""A rich console that keeps table rows on one line when the output is a file or a pipe."""

from __future__ import annotations

from rich.console import Console, RenderableType


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
