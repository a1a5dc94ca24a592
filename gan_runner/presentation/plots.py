"""Line charts drawn by matplotlib's Agg backend, and pictures laid out side by side with PIL.

``line_figure`` builds one chart as a matplotlib ``Figure``, so what it shows (the scale of an
axis, the lines and their colours) can be checked on the figure itself rather than on pixels;
``line_chart`` renders it to a PIL image of exactly the requested size, because the report and
the scripts combine charts with sample grids: ``save_panels`` puts several charts (or any
pictures) into one PNG. Points whose y is None, NaN or infinite (or not positive on a log axis)
leave a gap in their line instead of failing the chart.

The figures never touch pyplot: no global list of open figures to leak a report's charts into,
and no display backend to pick, so charts draw the same on a headless machine.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from functools import cache
from itertools import groupby
from pathlib import Path

import numpy as np
from matplotlib import colormaps, rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import LogFormatter
from PIL import Image, ImageDraw, ImageFont

Point = tuple[float, float | None]
Series = dict[str, Sequence[Point]]
RGB = tuple[float, float, float]

# matplotlib's own cycle first; further series get golden-ratio hues
PALETTE: tuple[RGB, ...] = tuple(colormaps["tab10"].colors)
DPI = 100
FONT_SIZE = 9
DOTTED_RUN = 12  # runs of at most this many points get a dot on each (a lone point shows)
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
FRAME = (228, 228, 228)
PAD = 8


def colour(index: int) -> RGB:
    """The colour of the ``index``-th series: the same index gets the same colour in every
    chart, so one run keeps its colour across a report's panels."""
    if index < len(PALETTE):
        return PALETTE[index]
    return colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.75, 0.8)


def usable(y: float | None, log: bool) -> bool:
    return y is not None and math.isfinite(y) and (y > 0 or not log)


def line_data(points: Sequence[Point], log: bool) -> tuple[np.ndarray, np.ndarray]:
    """The points in x order, with NaN for each y that cannot be drawn: matplotlib breaks a
    line at a NaN, which is the gap the chart should show."""
    ordered = sorted((p for p in points if math.isfinite(p[0])), key=lambda p: p[0])
    return (np.array([x for x, _ in ordered], dtype=float),
            np.array([y if usable(y, log) else math.nan for _, y in ordered], dtype=float))


def dotted(y: np.ndarray) -> list[int]:
    """Indices of the points in short runs between gaps: a dot on each keeps sparse
    evaluations readable and a point between two gaps visible at all."""
    drawn = np.isfinite(y)
    runs = [list(run) for ok, run in groupby(range(len(y)), key=lambda i: drawn[i]) if ok]
    return [i for run in runs if len(run) <= DOTTED_RUN for i in run]


def legend_columns(figure: Figure, names: Sequence[str]) -> int:
    """As many columns as the widest entry allows across the figure: matplotlib does not wrap
    a legend, and one entry per row would take a sweep's chart its plot area."""
    renderer = figure.canvas.get_renderer()
    font = FontProperties(size=FONT_SIZE)
    widest = max(renderer.get_text_width_height_descent(name, font, ismath=False)[0]
                 for name in names)
    em = FONT_SIZE * DPI / 72
    spacing = sum(rcParams[f"legend.{key}"] for key in
                  ("handlelength", "handletextpad", "columnspacing")) * em
    return max(1, min(len(names), int(figure.bbox.width // (widest + spacing))))


def line_figure(series: Series, title: str, xlabel: str, ylabel: str, log_y: bool = False,
                size: tuple[int, int] = (640, 400)) -> Figure:
    """One chart of ``size`` pixels: every series a line in ``colour(i)`` (i its position in
    ``series``), with a legend under the x axis. Series with no usable point keep their legend
    entry and colour."""
    # a hair over the size: older matplotlib truncates n / DPI * DPI = n - 1e-13 to n - 1 px
    figure = Figure(figsize=((size[0] + 1e-6) / DPI, (size[1] + 1e-6) / DPI), dpi=DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    drawn = False
    for index, points in enumerate(series.values()):
        x, y = line_data(points, log_y)
        marks = dotted(y)
        axes.plot(x, y, color=colour(index), linewidth=1.6, marker="o" if marks else "None",
                  markersize=3.5, markevery=marks)
        drawn = drawn or bool(np.isfinite(y).any())
    if log_y:
        axes.set_yscale("log")
        # plain numbers (20, 50, 100), and labelled minor ticks when few decades are shown
        axes.yaxis.set_major_formatter(LogFormatter())
        axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    if not drawn:
        axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center",
                  fontsize=FONT_SIZE)
    axes.set_title(title, fontsize=FONT_SIZE + 2)
    axes.set_xlabel(xlabel, fontsize=FONT_SIZE)
    axes.set_ylabel(ylabel, fontsize=FONT_SIZE)
    axes.tick_params(which="both", labelsize=FONT_SIZE)
    axes.grid(color="0.9", linewidth=0.8)
    axes.set_axisbelow(True)
    if series:
        figure.legend(axes.get_lines(), list(series), loc="outside lower center",
                      ncols=legend_columns(figure, list(series)), frameon=False,
                      fontsize=FONT_SIZE)
    return figure


def rendered(figure: Figure) -> Image.Image:
    """The figure's pixels, as an RGB image of the figure's size."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")


def line_chart(series: Series, title: str, xlabel: str, ylabel: str, log_y: bool = False,
               size: tuple[int, int] = (640, 400)) -> Image.Image:
    """``line_figure`` as a picture of ``size`` pixels."""
    return rendered(line_figure(series, title, xlabel, ylabel, log_y, size))


@cache
def font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def captioned(picture: Image.Image, caption: str, max_side: int | None = None) -> Image.Image:
    """``picture`` (shrunk to fit ``max_side``) with ``caption`` centred under it. Sample
    grids are pasted pixel for pixel, not redrawn by matplotlib, so they stay exact."""
    picture = picture.convert("RGB")
    if max_side is not None and max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    left, top, right, bottom = font().getbbox(caption or " ")
    w, h = int(right - left), int(bottom - min(top, 0))
    out = Image.new("RGB", (max(picture.width, w + 2 * PAD), picture.height + h + 2 * PAD),
                    BACKGROUND)
    left = (out.width - picture.width) // 2
    out.paste(picture, (left, 0))
    draw = ImageDraw.Draw(out)
    draw.rectangle([left, 0, left + picture.width - 1, picture.height - 1], outline=FRAME)
    draw.text(((out.width - w) // 2, picture.height + PAD - 2), caption, fill=INK, font=font())
    return out


def panels(pictures: Sequence[Image.Image], columns: int = 2) -> Image.Image:
    """Pictures in a grid of ``columns``, each centred in a cell as large as the largest."""
    if not pictures:
        raise ValueError("no pictures to lay out")
    columns = max(1, min(columns, len(pictures)))
    cell_w = max(p.width for p in pictures)
    cell_h = max(p.height for p in pictures)
    rows = math.ceil(len(pictures) / columns)
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), BACKGROUND)
    for i, picture in enumerate(pictures):
        col, row = i % columns, i // columns
        sheet.paste(picture.convert("RGB"), (col * cell_w + (cell_w - picture.width) // 2,
                                             row * cell_h + (cell_h - picture.height) // 2))
    return sheet


def save_panels(charts: Sequence[Image.Image], path: Path, columns: int = 2) -> Path:
    """Write ``charts`` as one PNG laid out by ``panels``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    panels(charts, columns).save(path)
    return path
