"""The report table: one row per run, the options that tell the runs apart, then their numbers.

Cells hold raw values (the CSV keeps them); ``cell_text`` formats them for people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gan_runner.metrics.base import rankable_keys, result
from gan_runner.metrics.ranking import better
from gan_runner.presentation.report.runs import Run

Cell = str | float | None
WALL = "wall"


def metric_label(metric: str) -> str:
    return result(metric).title


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    options: list[str]  # the swept options, in column order
    metrics: list[str]  # the metric keys that have columns


def swept_options(runs: Sequence[Run]) -> list[str]:
    """The options whose values differ between runs; a lone run shows what it overrode."""
    if len(runs) == 1:
        return list(runs[0].overrides)
    keys = dict.fromkeys(key for run in runs for key in run.options)
    return [key for key in keys if len({run.options.get(key) for run in runs}) > 1]


def present_metrics(runs: Sequence[Run]) -> list[str]:
    """The rankable keys some evaluation holds; spreads (kid_std, is_std) would double the
    width for little use."""
    return [m for m in rankable_keys() if any(m in row for run in runs for row in run.evaluations)]


def best_and_final(run: Run, metric: str) -> tuple[float | None, float | None]:
    """The best value any evaluation reached, and the last evaluation's (the large
    ``metrics.final_num_fakes`` one when the run made it)."""
    values = [row[metric] for row in run.evaluations if isinstance(row.get(metric), int | float)]
    best: float | None = None
    for value in values:
        if better(metric, value, best):
            best = value
    return best, (values[-1] if values else None)


def label(run: Run, options: Sequence[str]) -> str:
    """How charts name a run: its folder and its values of the swept options."""
    values = ", ".join(f"{key}={run.options.get(key, '-')}" for key in options)
    return f"{run.name}: {values}" if values else run.name


def run_row(run: Run, options: Sequence[str], metrics: Sequence[str]) -> list[Cell]:
    summary = run.summary or {}
    numbers = [value for metric in metrics for value in best_and_final(run, metric)]
    return [run.name, run.status, *(run.options.get(key) for key in options), *numbers,
            run.kimg, summary.get("wall_seconds"), summary.get("sec_per_kimg")]


def build_table(runs: Sequence[Run]) -> Table:
    options, metrics = swept_options(runs), present_metrics(runs)
    metric_columns = [f"{metric_label(m)} {which}" for m in metrics for which in ("best", "final")]
    columns = ["run", "status", *options, *metric_columns, "kimg", WALL, "sec/kimg"]
    return Table(columns, [run_row(run, options, metrics) for run in runs], options, metrics)


# the per-class lists a conditional evaluation notes, with the title of each one's table
PER_CLASS = {"fid_per_class": "Per-class FID (last evaluation)",
             "accuracy_per_class": "Per-class accuracy of the fakes (last evaluation)"}


def per_class_table(runs: Sequence[Run], key: str = "fid_per_class"
                    ) -> tuple[Table, list[Run]] | None:
    """Each conditional run's ``key`` list (one of ``PER_CLASS``: from its last evaluation
    that has it), with the runs it has rows for; None when no run has one."""
    chosen = [(run, rows[-1]) for run in runs
              if (rows := [r for r in run.evaluations if r.get(key)])]
    if not chosen:
        return None
    classes = max(len(row[key]) for _, row in chosen)
    columns = ["run", "status", *(f"class {k}" for k in range(classes))]
    rows: list[list[Cell]] = [
        [run.name, run.status, *row[key], *([None] * (classes - len(row[key])))]
        for run, row in chosen]
    return Table(columns, rows, [], []), [run for run, _ in chosen]


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def cell_text(column: str, value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if column == WALL:
        return duration(value)
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
