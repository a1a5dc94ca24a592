"""Where a training step's time goes: one row per task, with a bar drawn at its offset.

Tasks on different lanes (CUDA streams) whose bars overlap ran concurrently; on one lane the
bars follow each other. ``backward`` and ``step`` rows are the loop's own work on lane 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from gan_runner.train.scheduler import TaskTiming

BAR_WIDTH = 24


def timeline_table(timings: Sequence[TaskTiming], title: str = "step timeline") -> Table:
    table = Table(title=title)
    for column, justify in (("phase", "left"), ("task", "left"), ("lane", "right"),
                            ("start ms", "right"), ("ms", "right"), ("calls", "right"),
                            ("", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    by_phase: dict[str, list[TaskTiming]] = {}
    for timing in timings:
        by_phase.setdefault(timing.phase, []).append(timing)
    for phase, rows in by_phase.items():
        span = max(t.start_ms + t.duration_ms for t in rows) or 1.0
        for t in sorted(rows, key=lambda t: t.start_ms):
            table.add_row(phase, t.task, str(t.lane), f"{t.start_ms:.3f}",
                          f"{t.duration_ms:.3f}", str(t.calls),
                          _bar(t.start_ms / span, t.duration_ms / span))
    return table


def _bar(start: float, length: float) -> str:
    begin = min(int(start * BAR_WIDTH), BAR_WIDTH - 1)
    cells = max(1, round(length * BAR_WIDTH))
    return " " * begin + "█" * min(cells, BAR_WIDTH - begin)
