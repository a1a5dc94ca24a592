"""Line charts drawn with PIL alone, so reports and curves need no plotting library.

``line_chart`` draws named series of (x, y) points; ``save_panels`` puts several charts (or any
pictures) into one PNG. Points whose y is None, NaN or infinite (or not positive on a log axis)
leave a gap in their line instead of failing the chart.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

Point = tuple[float, float | None]
Series = dict[str, Sequence[Point]]
RGB = tuple[int, int, int]

# well-separated hues first; further series get golden-ratio hues
PALETTE: tuple[RGB, ...] = (
    (25, 110, 190), (235, 105, 10), (30, 150, 60), (200, 35, 45), (125, 80, 175),
    (150, 95, 40), (220, 90, 170), (95, 95, 95), (165, 170, 25), (20, 175, 195),
)
BACKGROUND: RGB = (255, 255, 255)
INK: RGB = (30, 30, 30)
GRID: RGB = (228, 228, 228)
PAD = 8
SWATCH = 18


def colour(index: int) -> RGB:
    """The colour of the ``index``-th series: the same index gets the same colour in every
    chart, so one run keeps its colour across a report's panels."""
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (index * 0.618034) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.8)
    return round(r * 255), round(g * 255), round(b * 255)


@cache
def font(size: int = 13) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def text_size(text: str, size: int = 13) -> tuple[int, int]:
    left, top, right, bottom = font(size).getbbox(text or " ")
    return int(right - left), int(bottom - min(top, 0))


# ------------------------------------------------------------------ ticks
def nice_step(span: float, count: int) -> float:
    """A step of 1, 2, 2.5 or 5 times a power of ten giving about ``count`` intervals."""
    raw = span / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))


def linear_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values inside [low, high], about ``count`` intervals apart."""
    step = nice_step(high - low, count)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten inside [low, high] (every few decades when there are many); when fewer
    than two fit, 1-2-5 steps, and failing those, round linear values."""
    decades = range(math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9) + 1)
    ticks = [10.0 ** k for k in decades[::max(1, math.ceil(len(decades) / 6))]]
    if len(ticks) < 2:
        wide = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        ticks = [m * 10.0 ** k for k in wide for m in (1, 2, 5)
                 if low * (1 - 1e-9) <= m * 10.0 ** k <= high * (1 + 1e-9)]
    return ticks if len(ticks) >= 2 else linear_ticks(low, high)


def tick_label(value: float) -> str:
    return f"{value:.6g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


@dataclass(frozen=True)
class Axis:
    """Maps data values to fractions of the axis length (0 = ``low``)."""

    low: float
    high: float
    log: bool = False

    def scaled(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def fraction(self, value: float) -> float:
        low, high = self.scaled(self.low), self.scaled(self.high)
        return (self.scaled(value) - low) / (high - low)

    @property
    def ticks(self) -> list[float]:
        return (log_ticks if self.log else linear_ticks)(self.low, self.high)


def usable(y: float | None, log: bool) -> bool:
    return y is not None and math.isfinite(y) and (y > 0 or not log)


def make_axis(values: list[float], log: bool, margin: float = 0.0) -> Axis:
    """An axis spanning ``values`` plus ``margin`` (a share of the span) at each end; a
    single value gets room around it."""
    if not values:
        return Axis(1.0, 10.0, log) if log else Axis(0.0, 1.0)
    low, high = min(values), max(values)
    if log:
        low, high = math.log10(low), math.log10(high)
    span = high - low
    if span <= 1e-12 * max(abs(low), abs(high), 1.0):
        span, margin = abs(low) or 1.0, 0.5
    low, high = low - margin * span, high + margin * span
    return Axis(10.0 ** low, 10.0 ** high, True) if log else Axis(low, high)


def segments(points: Sequence[Point], log: bool) -> list[list[tuple[float, float]]]:
    """The runs of usable points between gaps, in x order."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in sorted(points, key=lambda p: p[0]):
        if usable(y, log) and math.isfinite(x):
            runs[-1].append((x, float(y)))  # type: ignore[arg-type]
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


# ------------------------------------------------------------------ drawing
def legend_rows(names: list[str], width: int) -> list[list[tuple[int, str]]]:
    """Legend entries (series index, name) wrapped into rows that fit ``width``."""
    rows: list[list[tuple[int, str]]] = [[]]
    used = 0
    for index, name in enumerate(names):
        need = SWATCH + 4 + text_size(name)[0] + 2 * PAD
        if rows[-1] and used + need > width:
            rows.append([])
            used = 0
        rows[-1].append((index, name))
        used += need
    return [row for row in rows if row]


def draw_vertical_text(image: Image.Image, text: str, centre: tuple[int, int]) -> None:
    w, h = text_size(text)
    label = Image.new("RGB", (w + 2, h + 2), BACKGROUND)
    ImageDraw.Draw(label).text((1, 1), text, fill=INK, font=font())
    label = label.rotate(90, expand=True)
    image.paste(label, (centre[0] - label.width // 2, centre[1] - label.height // 2))


@dataclass(frozen=True)
class Frame:
    """The plot area in pixels and the axes it shows."""

    left: float
    top: float
    right: float
    bottom: float
    x: Axis
    y: Axis

    def at(self, x: float, y: float) -> tuple[float, float]:
        return (self.left + self.x.fraction(x) * (self.right - self.left),
                self.bottom - self.y.fraction(y) * (self.bottom - self.top))


def layout(size: tuple[int, int], title: str, legend_lines: int, x: Axis, y: Axis) -> Frame:
    """Room for the title above, tick labels and the y label left, tick labels, the x label
    and the legend below."""
    line_h = text_size("Hg")[1]
    y_label_w = max(text_size(tick_label(t))[0] for t in y.ticks)
    return Frame(left=PAD + line_h + PAD + y_label_w + 6,
                 top=PAD + text_size(title, 15)[1] + PAD,
                 right=size[0] - PAD - text_size(tick_label(x.ticks[-1]))[0] // 2,
                 bottom=size[1] - PAD - legend_lines * (line_h + 6) - 2 * (line_h + 4) - 6,
                 x=x, y=y)


def draw_axes(image: Image.Image, frame: Frame, title: str, xlabel: str, ylabel: str) -> None:
    draw = ImageDraw.Draw(image)
    line_h = text_size("Hg")[1]
    draw.text(((image.width - text_size(title, 15)[0]) // 2, PAD), title, fill=INK,
              font=font(15))
    for tick in frame.y.ticks:
        row = frame.at(frame.x.low, tick)[1]
        draw.line([(frame.left, row), (frame.right, row)], fill=GRID)
        w, h = text_size(tick_label(tick))
        draw.text((frame.left - 6 - w, row - h / 2 - 1), tick_label(tick), fill=INK, font=font())
    for tick in frame.x.ticks:
        col = frame.at(tick, frame.y.low)[0]
        draw.line([(col, frame.top), (col, frame.bottom)], fill=GRID)
        draw.text((col - text_size(tick_label(tick))[0] / 2, frame.bottom + 4), tick_label(tick),
                  fill=INK, font=font())
    draw.rectangle([frame.left, frame.top, frame.right, frame.bottom], outline=INK)
    draw.text(((frame.left + frame.right - text_size(xlabel)[0]) // 2, frame.bottom + line_h + 8),
              xlabel, fill=INK, font=font())
    draw_vertical_text(image, ylabel, (PAD + line_h // 2, round(frame.top + frame.bottom) // 2))


def draw_lines(draw: ImageDraw.ImageDraw, frame: Frame,
               parts: list[list[list[tuple[float, float]]]]) -> None:
    """Series ``i`` in ``colour(i)``; dots mark the points when there are few of them."""
    for index, runs in enumerate(parts):
        for run in runs:
            pixels = [frame.at(x, y) for x, y in run]
            if len(pixels) > 1:
                draw.line(pixels, fill=colour(index), width=2, joint="curve")
            if len(run) <= 12:
                for px, py in pixels:
                    draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=colour(index))


def draw_legend(draw: ImageDraw.ImageDraw, rows: list[list[tuple[int, str]]], top: float) -> None:
    line_h = text_size("Hg")[1]
    for row in rows:
        x = PAD
        for index, name in row:
            middle = top + line_h / 2
            draw.line([(x, middle), (x + SWATCH, middle)], fill=colour(index), width=4)
            draw.text((x + SWATCH + 4, top - 1), name, fill=INK, font=font())
            x += SWATCH + 4 + text_size(name)[0] + 2 * PAD
        top += line_h + 6


def line_chart(series: Series, title: str, xlabel: str, ylabel: str, log_y: bool = False,
               size: tuple[int, int] = (640, 400)) -> Image.Image:
    """One chart: every series a line in ``colour(i)`` (i its position in ``series``), with a
    legend under the x axis. Series with no usable point keep their legend entry and colour."""
    parts = [segments(points, log_y) for points in series.values()]
    xs = [x for runs in parts for run in runs for x, _ in run]
    ys = [y for runs in parts for run in runs for _, y in run]
    legend = legend_rows(list(series), size[0] - 2 * PAD)
    frame = layout(size, title, len(legend), make_axis(xs, False, margin=0.02),
                   make_axis(ys, log_y, margin=0.05))
    image = Image.new("RGB", size, BACKGROUND)
    draw_axes(image, frame, title, xlabel, ylabel)
    draw = ImageDraw.Draw(image)
    if not xs:
        draw.text(((frame.left + frame.right - text_size("no data")[0]) / 2,
                   (frame.top + frame.bottom) / 2), "no data", fill=INK, font=font())
    draw_lines(draw, frame, parts)
    draw_legend(draw, legend, frame.bottom + 2 * (text_size("Hg")[1] + 4) + 6)
    return image


def captioned(picture: Image.Image, caption: str, max_side: int | None = None) -> Image.Image:
    """``picture`` (shrunk to fit ``max_side``) with ``caption`` centred under it."""
    picture = picture.convert("RGB")
    if max_side is not None and max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    w, h = text_size(caption)
    out = Image.new("RGB", (max(picture.width, w + 2 * PAD), picture.height + h + 2 * PAD),
                    BACKGROUND)
    left = (out.width - picture.width) // 2
    out.paste(picture, (left, 0))
    draw = ImageDraw.Draw(out)
    draw.rectangle([left, 0, left + picture.width - 1, picture.height - 1], outline=GRID)
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
