"""A whole report: load the runs under a folder, tabulate them, write the files
(``report.md``, ``report.csv``, the charts, and ``report.html`` holding all of it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gan_runner.core.errors import UserError
from gan_runner.presentation.report.charts import SHEET, draw_charts
from gan_runner.presentation.report.html import write_html
from gan_runner.presentation.report.runs import Run, load_runs
from gan_runner.presentation.report.table import (
    PER_CLASS,
    Table,
    build_table,
    label,
    per_class_table,
)
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
        text = markdown(table, title, [p.name for p in pictures])
        per_class = {PER_CLASS[key]: found for key in PER_CLASS
                     if (found := per_class_table(runs, key)) is not None}
        for heading, (class_table, _) in per_class.items():
            text += "\n" + markdown(class_table, heading, [])
        (out / "report.md").write_text(text, encoding="utf-8")
        write_csv(table, out / "report.csv")
        charts = [p for p in pictures if p.name != SHEET]  # the page shows each grid itself
        write_html(out / "report.html", title, runs, labels, table, charts, per_class)
    except OSError as error:
        raise UserError(f"cannot write the report to {out}: {error.strerror or error}",
                        "pass out=DIR with a folder you can write to") from error
    return Report(title, runs, table,
                  [out / "report.md", out / "report.csv", *pictures, out / "report.html"])
