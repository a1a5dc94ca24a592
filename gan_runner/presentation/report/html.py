"""``report.html``: the whole report in one file that opens anywhere, offline.

Pictures are inlined as ``data:`` URIs and the few lines of script (sorting the table by any
column, click again to reverse) are in the page, so the file can be mailed, attached to an
issue or opened from a cluster's scratch space without the files beside it. The sort is kept
in the address (``#sort=3:desc``), so a link opens the table sorted.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from gan_runner.metrics.ranking import METRIC_KEYS
from gan_runner.presentation.report.runs import Run
from gan_runner.presentation.report.table import Table, cell_text
from gan_runner.presentation.report.write import numeric

# what a run's provenance lines hold that the page shows, in this order (the rest follows)
FIRST = ("command", "started", "gan_runner", "git_head", "torch", "python", "host", "device")
LABELS = {"command": "process command line"}  # beside the job's own command above it

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1320px;
       color: #1e1e1e; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; } h3 { font-size: 15px; }
table { border-collapse: collapse; }
table.runs th { cursor: pointer; user-select: none; background: #f2f2f2; position: sticky;
                top: 0; }
table.runs th[data-order=asc]::after { content: " \\25B2"; }
table.runs th[data-order=desc]::after { content: " \\25BC"; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.unfinished td { background: #fff6d5; }
figure { margin: 12px 0; } figcaption { color: #555; font-size: 13px; }
.grids { display: flex; flex-wrap: wrap; gap: 16px; }
.grids img { width: 240px; image-rendering: pixelated; border: 1px solid #ddd; }
.charts img { max-width: 100%; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; white-space: pre-wrap; }
table.kv td:first-child { color: #555; white-space: nowrap; }
"""

SCRIPT = """
(function () {
  const table = document.querySelector("table.runs");
  const heads = Array.from(table.tHead.rows[0].cells);
  function key(cell) {
    const raw = cell.dataset.value;
    if (raw === "") return null;
    const number = Number(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  function sort(column, order) {
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      const x = key(a.cells[column]), y = key(b.cells[column]);
      if (x === null || y === null) return (x === null) - (y === null);  // empty last
      const c = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0)
                                      : (typeof x === "number" ? -1 : 1);
      return order === "asc" ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    heads.forEach(function (th, i) {
      if (i === column) th.dataset.order = order; else delete th.dataset.order;
    });
  }
  heads.forEach(function (th, i) {
    th.title = "sort by " + th.textContent;
    th.addEventListener("click", function () {
      const order = th.dataset.order === "asc" ? "desc" : "asc";
      sort(i, order);
      history.replaceState(null, "", "#sort=" + i + ":" + order);
    });
  });
  const wanted = /^#sort=(\\d+):(asc|desc)$/.exec(location.hash);
  if (wanted && +wanted[1] < heads.length) sort(+wanted[1], wanted[2]);
  // each picture's decoded width (0: it did not load), for a reader or a check of the page
  window.addEventListener("load", function () {
    document.querySelectorAll("img").forEach(function (img) {
      img.dataset.width = img.naturalWidth;
    });
  });
})();
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table_html(table: Table, runs: Sequence[Run]) -> str:
    """Raw values in ``data-value`` (what the sort compares), text as the other formats."""
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = []
    for run, row in zip(runs, table.rows, strict=True):
        cells = []
        for column, value in zip(table.columns, row, strict=True):
            kind = ' class="num"' if numeric(table, column) else ""
            raw = "" if value is None else value
            cells.append(f'<td{kind} data-value="{esc(raw)}">{esc(cell_text(column, value))}'
                         "</td>")
        style = "" if run.status == "done" else ' class="unfinished"'
        body.append(f'<tr{style} data-run="{esc(run.name)}">{"".join(cells)}</tr>')
    return (f'<table class="runs"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def figure(png: bytes, alt: str, caption: str) -> str:
    return (f'<figure><img src="{data_uri(png)}" alt="{esc(alt)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def metric_provenance(run: Run) -> dict[str, Any]:
    """How the last evaluation was made: every field of its row that is not a metric value."""
    if not run.evaluations:
        return {}
    last = run.evaluations[-1]
    numbers = set(METRIC_KEYS)
    return {f"metrics: {k}": v for k, v in last.items() if k not in numbers and k != "kind"}


def run_details(run: Run) -> str:
    """A run's command, status, each start's provenance and how its metrics were made."""
    items: list[tuple[str, Any]] = [("status", run.status), ("folder", run.path)]
    summary = run.summary or {}
    if summary.get("resumed_from"):
        items.append(("resumed from", summary["resumed_from"]))
    for number, start in enumerate(run.provenance, 1):
        label = "" if len(run.provenance) == 1 else f"start {number}: "
        ordered = [k for k in FIRST if k in start] + [k for k in start if k not in FIRST]
        items += [(f"{label}{LABELS.get(k, k)}", start[k]) for k in ordered
                  if start[k] is not None]
    items += list(metric_provenance(run).items())
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(_text(v))}</td></tr>" for k, v in items)
    return (f'<section class="run" id="run-{esc(run.name)}"><h3>{esc(run.name)}</h3>'
            f"<pre class=\"command\">{esc(run.command)}</pre>"
            f'<table class="kv">{rows}</table></section>')


def _text(value: Any) -> str:
    return str(value) if isinstance(value, str | Path) else json.dumps(value, default=str)


def write_html(path: Path, title: str, runs: Sequence[Run], labels: Sequence[str],
               table: Table, charts: Sequence[Path],
               per_class: Mapping[str, tuple[Table, list[Run]]] | None = None) -> None:
    """The page: the table, the charts (the PNGs just written), each run's last sample grid,
    then each run's command and provenance."""
    chart_html = "".join(figure(p.read_bytes(), p.stem, p.stem) for p in charts)
    grids = []
    for run, label in zip(runs, labels, strict=True):
        grid = run.last_grid()
        if grid is not None:
            grids.append(figure(png_bytes(grid), f"samples of {run.name}",
                                f"{label} ({cell_text('kimg', run.kimg)} kimg)"))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<p>Written by gan-report. Click a column's name to sort by it (again: reversed).</p>",
        "<h2>Runs</h2>", table_html(table, runs),
        *(part for heading, tables in (per_class or {}).items()
          for part in (f"<h2>{esc(heading)}</h2>", table_html(*tables))),
        *(["<h2>Charts</h2>", f'<div class="charts">{chart_html}</div>'] if charts else []),
        *(["<h2>Last samples</h2>", f'<div class="grids">{"".join(grids)}</div>']
          if grids else []),
        "<h2>Commands and provenance</h2>", *(run_details(run) for run in runs),
        f"<script>{SCRIPT}</script></body></html>",
    ]
    path.write_text("\n".join(parts), encoding="utf-8")
