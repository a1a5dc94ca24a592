"""The live progress display, and the early forecast of how long a run will take.

The bar moves with every iteration (a host counter: nothing waits for the device), so its
rates and ETA show within the first steps; the losses join it at each log row. ``Pace``
measures the first steps once and says what the whole run will cost, and what to use instead
when that is hours on a CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

CPU_PATIENCE_S = 3600.0  # a CPU run forecast to take longer than this names the alternative


class TrainingProgress:
    """A rich progress bar in kimg; disabled, it prints nothing (the log rows remain)."""

    def __init__(self, total_kimg: float, enabled: bool, description: str = "train") -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed:.2f}/{task.total:g} {task.fields[unit]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[status]}"),
            disable=not enabled)
        self._task = self._add(description, total_kimg, "kimg")
        self._started: tuple[float, float] | None = None  # (time, kimg) after the first step
        self._steps = 0

    def _add(self, description: str, total: float, unit: str) -> TaskID:
        return self._progress.add_task(description, total=total, status="", unit=unit, rate="")

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def step(self, kimg: float) -> None:
        """After every iteration: the bar, steps/s and s/kimg since the first iteration (which
        pays for warm-up and compilation, and would skew both)."""
        now = time.perf_counter()
        self._steps += 1
        rate = ""
        if self._started is None:
            self._started = (now, kimg)
        else:
            then, then_kimg = self._started
            seconds = max(now - then, 1e-9)
            rate = (f"{(self._steps - 1) / seconds:.1f} it/s "
                    f"{seconds / max(kimg - then_kimg, 1e-9):.1f} s/kimg")
        self._progress.update(self._task, completed=kimg, rate=rate)

    def update(self, kimg: float, status: str = "") -> None:
        self._progress.update(self._task, completed=kimg, status=status)

    def subtask(self, description: str, total: int) -> tuple[Callable[[int], None],
                                                              Callable[[], None]]:
        """A second bar (e.g. an evaluation) under the training bar: (advance, remove)."""
        task = self._add(description, total, "samples")
        return (lambda n: self._progress.advance(task, n),
                lambda: self._progress.remove_task(task))


class Pace:
    """Times the iterations after the first (warm-up) until ``min_seconds`` and ``min_steps``
    have passed, then forecasts the run once: ``tick`` returns that line, else None."""

    def __init__(self, total_kimg: float, on_cpu: bool, alternative: str | None,
                 sync: Callable[[], None] = lambda: None, min_steps: int = 3,
                 min_seconds: float = 2.0) -> None:
        self.total_kimg, self.on_cpu, self.alternative = total_kimg, on_cpu, alternative
        self.sync, self.min_steps, self.min_seconds = sync, min_steps, min_seconds
        self._start: tuple[float, float] | None = None
        self._steps = 0
        self.done = False

    def tick(self, kimg: float) -> str | None:
        if self.done:
            return None
        self._steps += 1
        if self._steps == 1:  # after the warm-up iteration
            self.sync()
            self._start = (time.perf_counter(), kimg)
            return None
        then, then_kimg = self._start  # type: ignore[misc]
        if self._steps - 1 < self.min_steps or time.perf_counter() - then < self.min_seconds:
            return None
        self.sync()  # once per run: the device's queue must not hide its real pace
        self.done = True
        sec_per_kimg = (time.perf_counter() - then) / max(kimg - then_kimg, 1e-9)
        remaining = sec_per_kimg * max(self.total_kimg - kimg, 0.0)
        line = (f"measured {sec_per_kimg:.3g} s/kimg over the first {self._steps - 1} steps: "
                f"{self.total_kimg:g} kimg take about {duration(remaining)} more")
        if self.on_cpu and remaining > CPU_PATIENCE_S:
            fewer = max(self.total_kimg * CPU_PATIENCE_S / max(remaining, 1e-9), 0.001)
            instead = f"model={self.alternative} (sized for a CPU) or " if self.alternative else ""
            line += (f"; on this CPU, try {instead}trainer.kimg={fewer:.3g} for a run of about "
                     "an hour")
        return line


def duration(seconds: float) -> str:
    """``1 h 05 min``, ``12 min``, ``40 s``: the unit a person plans with."""
    if seconds >= 3600:
        hours, rest = divmod(round(seconds / 60), 60)
        return f"{hours} h {rest:02d} min"
    if seconds >= 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds:.0f} s"
