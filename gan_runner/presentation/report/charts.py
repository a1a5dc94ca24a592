"""The report's pictures: metrics, losses and augmentation strength against kimg, one line per
run, and the last sample grid of every run side by side.

Every chart lists the runs in the same order, so a run has the same colour in all of them. The
charts are built as matplotlib figures and rendered only when written, so what they show can be
checked on the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image

from gan_runner.metrics.base import result
from gan_runner.presentation.plots import (
    Series,
    captioned,
    line_figure,
    panels,
    rendered,
    save_panels,
)
from gan_runner.presentation.report.runs import EVALUATIONS, Run
from gan_runner.presentation.report.table import metric_label

CHART_COLUMNS = 2
GRID_COLUMNS = 4
SHEET = "samples.png"  # every run's last grid side by side
GRID_SIDE = 320  # a toy scatter plot is 512 px; image grids of small models are smaller
# title and y label of the training curves that deserve more than their key
NAMES = {"augment/p": ("ADA augmentation probability p", "p"),
         "augment/rt": ("ADA overfitting heuristic r_t", "r_t")}


def chart_size(runs: int) -> tuple[int, int]:
    """Taller with more runs, so that their legend rows leave the plot its room."""
    return 640, 320 + 20 * runs


def curves(runs: Sequence[Run], labels: Sequence[str], kinds: tuple[str, ...],
           key: str) -> Series:
    return {label: [(row["kimg"], row.get(key)) for row in run.kind(*kinds) if "kimg" in row]
            for run, label in zip(runs, labels, strict=True)}


def train_keys(runs: Sequence[Run], wanted: Sequence[str] = (), prefix: str = "") -> list[str]:
    """Keys of the training rows that are ``wanted`` or start with ``prefix``, as logged."""
    keys = dict.fromkeys(key for run in runs for row in run.kind("train") for key in row)
    return [k for k in keys if k in wanted or (prefix and k.startswith(prefix))]


def metric_charts(runs: Sequence[Run], labels: Sequence[str],
                  metrics: Sequence[str]) -> list[Figure]:
    return [line_figure(curves(runs, labels, EVALUATIONS, m), metric_label(m), "kimg",
                        metric_label(m), log_y=result(m).log_scale, size=chart_size(len(runs)))
            for m in metrics]


def train_charts(runs: Sequence[Run], labels: Sequence[str],
                 keys: Sequence[str]) -> list[Figure]:
    names = [NAMES.get(key, (key, key.split("/")[0])) for key in keys]
    return [line_figure(curves(runs, labels, ("train",), key), title, "kimg", ylabel,
                        size=chart_size(len(runs)))
            for key, (title, ylabel) in zip(keys, names, strict=True)]


def sample_sheet(runs: Sequence[Run], labels: Sequence[str]) -> Image.Image | None:
    grids = [(run.last_grid(), label) for run, label in zip(runs, labels, strict=True)]
    pictures = [captioned(grid, label, GRID_SIDE) for grid, label in grids if grid is not None]
    return panels(pictures, GRID_COLUMNS) if pictures else None


def draw_charts(runs: Sequence[Run], labels: Sequence[str], metrics: Sequence[str],
                out: Path) -> list[Path]:
    """Write the PNGs that have something to show; returns their paths."""
    charts = {
        "metrics.png": metric_charts(runs, labels, metrics),
        "losses.png": train_charts(runs, labels, train_keys(runs, prefix="loss/")),
        "augment.png": train_charts(runs, labels, train_keys(runs, wanted=tuple(NAMES))),
    }
    written = [save_panels([rendered(f) for f in figures], out / name, CHART_COLUMNS)
               for name, figures in charts.items() if figures]
    sheet = sample_sheet(runs, labels)
    if sheet is not None:
        sheet.save(out / SHEET)
        written.append(out / SHEET)
    return written
