"""A whole report: load the runs under a folder, tabulate them, write the files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gan_runner.core.errors import UserError
from gan_runner.presentation.report.charts import draw_charts
from gan_runner.presentation.report.runs import Run, load_runs
from gan_runner.presentation.report.table import Table, build_table, label
from gan_runner.presentation.report.write import markdown, write_csv


@dataclass(frozen=True)
class Report:
    title: str
    runs: list[Run]
    table: Table
    files: list[Path]


def make_report(root: Path, out: Path | None = None) -> Report:
    """Report on the runs under ``root`` into ``out`` (default ``root/report``)."""
    runs = load_runs(root)
    out = root / "report" if out is None else out
    table = build_table(runs)
    title = f"{len(runs)} run{'s' * (len(runs) != 1)} in {root}"
    labels = [label(run, table.options if len(runs) > 1 else ()) for run in runs]
    try:
        out.mkdir(parents=True, exist_ok=True)
        pictures = draw_charts(runs, labels, table.metrics, out)
        (out / "report.md").write_text(
            markdown(table, title, [p.name for p in pictures]), encoding="utf-8")
        write_csv(table, out / "report.csv")
    except OSError as error:
        raise UserError(f"cannot write the report to {out}: {error.strerror or error}",
                        "pass out=DIR with a folder you can write to") from error
    return Report(title, runs, table, [out / "report.md", out / "report.csv", *pictures])
