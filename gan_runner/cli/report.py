"""``gan-report PATH [out=DIR]``: compare the runs under PATH (a run, a sweep, any folder of
runs) in a table on the terminal, ``report.md``, ``report.csv``, PNG charts and ``report.html``
(one self-contained page: the sortable table, the charts, the last grids, each run's command
and provenance)."""

from __future__ import annotations

import sys
from pathlib import Path

from gan_runner.cli.args import Arg, parse_args
from gan_runner.cli.errors import run_reporting_errors
from gan_runner.core.errors import UserError
from gan_runner.presentation.report.make import make_report
from gan_runner.presentation.report.write import rich_table
from gan_runner.presentation.terminal import console_for

USAGE = "usage: gan-report PATH [out=DIR]   (PATH: a run directory or a folder of runs)"
SPEC = {"out": Arg(Path, None, "where to write the report (default: PATH/report)")}


def report(argv: list[str]) -> None:
    paths = [item for item in argv if "=" not in item and not item.startswith("-")]
    args = parse_args([item for item in argv if item not in paths], SPEC, USAGE)
    if len(paths) != 1:
        raise UserError("gan-report needs exactly one PATH", USAGE)
    result = make_report(Path(paths[0]).expanduser(), args["out"])
    table = rich_table(result.table, result.title)
    console = console_for(table)
    console.print(table)
    console.print(f"wrote {', '.join(p.name for p in result.files)} to {result.files[0].parent}")


def main() -> None:
    run_reporting_errors(lambda: report(sys.argv[1:]))


if __name__ == "__main__":
    main()
