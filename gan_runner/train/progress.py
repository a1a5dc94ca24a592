"""The live progress display: kimg done, ETA and the latest losses."""

from __future__ import annotations

from collections.abc import Callable

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainingProgress:
    """A rich progress bar in kimg; disabled, it prints nothing (the log rows remain)."""

    def __init__(self, total_kimg: float, enabled: bool, description: str = "train") -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed:.1f}/{task.total:.0f} {task.fields[unit]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"), disable=not enabled)
        self._task = self._progress.add_task(description, total=total_kimg, status="",
                                             unit="kimg")

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, kimg: float, status: str = "") -> None:
        self._progress.update(self._task, completed=kimg, status=status)

    def subtask(self, description: str, total: int) -> tuple[Callable[[int], None],
                                                              Callable[[], None]]:
        """A second bar (e.g. an evaluation) under the training bar: (advance, remove)."""
        task = self._progress.add_task(description, total=total, status="", unit="samples")
        return (lambda n: self._progress.advance(task, n),
                lambda: self._progress.remove_task(task))
