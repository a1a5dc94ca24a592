"""Line charts: series in their own colours, gaps, log axes, a legend that fits; panels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image

from gan_runner.presentation.plots import (
    captioned,
    colour,
    line_chart,
    line_figure,
    panels,
    rendered,
    save_panels,
)


def drawn(figure: Figure) -> Axes:
    """The chart's axes, laid out as they will be rendered."""
    figure.draw_without_rendering()
    return figure.axes[0]


def pixel_rows(axes: Axes, ys: list[float]) -> np.ndarray:
    """Where the values ``ys`` land on the picture's y axis, in pixels."""
    return axes.transData.transform([(0.0, y) for y in ys])[:, 1]


def visible_labels(axes: Axes) -> list[str]:
    """The y tick labels inside the shown range, major and minor, bottom to top."""
    low, high = axes.get_ylim()
    ticks = [*axes.yaxis.get_major_ticks(), *axes.yaxis.get_minor_ticks()]
    return [tick.label1.get_text() for tick in sorted(ticks, key=lambda t: t.get_loc())
            if low <= tick.get_loc() <= high and tick.label1.get_text()]


def near(image: Image.Image, rgb: tuple[float, float, float], tolerance: int = 40) -> np.ndarray:
    """A mask of the pixels close to ``rgb`` (lines are antialiased)."""
    target = np.array(rgb) * 255
    return np.abs(np.asarray(image, dtype=float) - target).sum(axis=-1) < tolerance


def test_the_chart_has_the_requested_size():
    for size in ((500, 300), (402, 201)):  # 402 / 100 * 100 is a hair under 402 in floats
        chart = line_chart({"a": [(0, 1), (1, 2)]}, "title", "kimg", "loss", size=size)
        assert chart.size == size and chart.mode == "RGB"


def test_each_series_is_drawn_in_its_own_colour_at_its_height():
    figure = line_figure({"low": [(0, 1), (10, 1)], "high": [(0, 3), (10, 3)]}, "t", "x", "y")
    low, high = drawn(figure).get_lines()
    assert to_rgb(low.get_color()) == colour(0) and to_rgb(high.get_color()) == colour(1)
    assert list(high.get_ydata()) == [3, 3]
    picture = rendered(figure)
    for index, value in enumerate((1, 3)):
        row = picture.height - pixel_rows(figure.axes[0], [value])[0]
        rows = np.nonzero(near(picture, colour(index)))[0]
        assert np.median(rows) == pytest.approx(row, abs=2)


def test_a_log_axis_spaces_decades_evenly():
    series = {str(v): [(0, v), (10, v)] for v in (1.0, 10.0, 100.0)}
    log = drawn(line_figure(series, "t", "x", "y", log_y=True))
    linear = drawn(line_figure(series, "t", "x", "y"))
    assert log.get_yscale() == "log" and linear.get_yscale() == "linear"
    one, ten, hundred = pixel_rows(log, [1.0, 10.0, 100.0])
    assert ten - one == pytest.approx(hundred - ten, rel=1e-9)
    one, ten, hundred = pixel_rows(linear, [1.0, 10.0, 100.0])
    assert hundred - ten == pytest.approx(10 * (ten - one), rel=1e-9)


@pytest.mark.parametrize("low,high,expected", [
    (20, 50, ["20", "30", "40", "50"]),  # within a decade: the values in between
    (3, 2000, ["10", "100", "1000"]),  # several decades: powers of ten
])
def test_a_log_axis_is_labelled_with_plain_numbers(low, high, expected):
    axes = drawn(line_figure({"a": [(0, low), (1, high)]}, "t", "x", "y", log_y=True))
    assert visible_labels(axes) == expected


def test_missing_values_leave_a_gap_in_the_line():
    points = [(x, None if x == 5 else (math.nan if x == 6 else 1.0)) for x in range(11)]
    figure = line_figure({"a": points, "b": [(0, 0), (10, 2)]}, "t", "x", "y")
    axes = drawn(figure)
    assert np.isnan(axes.get_lines()[0].get_ydata()).tolist() == [x in (5, 6) for x in range(11)]
    picture = near(rendered(figure), colour(0))
    height = picture.shape[0]
    row = round(height - pixel_rows(axes, [1.0])[0])
    columns = {x: round(axes.transData.transform((x, 1.0))[0]) for x in (2.5, 5.5)}
    band = picture[row - 3:row + 4]
    assert band[:, columns[2.5]].any() and not band[:, columns[5.5]].any()


def test_non_positive_values_are_gaps_on_a_log_axis():
    figure = line_figure({"a": [(0, 1.0), (1, 0.0), (2, -1.0), (3, 10.0)]}, "t", "x", "y",
                         log_y=True)
    axes = drawn(figure)
    assert np.isnan(axes.get_lines()[0].get_ydata()).tolist() == [False, True, True, False]
    low, high = axes.get_ylim()
    assert 0 < low < 1 and 10 < high < 100  # the axis spans the drawable values only
    assert rendered(figure).size == (640, 400)


def test_short_runs_get_dots_so_that_a_lone_point_shows():
    long = [(x, 1.0) for x in range(20)]
    lone = [(0, 2.0), (1, None), (2, 2.0), (3, None), *[(x, 2.0) for x in range(4, 24)]]
    axes = drawn(line_figure({"long": long, "lone": lone}, "t", "x", "y"))
    long_line, lone_line = axes.get_lines()
    assert long_line.get_marker() == "None"
    assert lone_line.get_marker() == "o" and lone_line.get_markevery() == [0, 2]


@pytest.mark.parametrize("series", [{}, {"a": []}, {"a": [(1, None)]}])
def test_empty_series_and_no_series_still_make_a_chart(series):
    for log_y in (False, True):
        figure = line_figure(series, "nothing", "x", "y", log_y=log_y)
        assert [text.get_text() for text in drawn(figure).texts] == ["no data"]
        assert rendered(figure).size == (640, 400)


def test_the_legend_names_every_series_in_its_colour_even_without_points():
    figure = line_figure({"a": [(0, 1.0)], "empty": [], "b": [(0, 2.0)]}, "t", "x", "y")
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["a", "empty", "b"]
    assert [to_rgb(h.get_color()) for h in legend.legend_handles] == [colour(i) for i in range(3)]


def test_a_long_legend_wraps_into_columns_that_fit_the_chart():
    names = [f"run {i}: loss=hinge, regularizer=r1" for i in range(12)]
    figure = line_figure({name: [(0, i), (1, i)] for i, name in enumerate(names)}, "t", "x", "y",
                         size=(640, 560))
    drawn(figure)
    (legend,) = figure.legends
    box = legend.get_window_extent()
    columns = {round(text.get_window_extent().x0) for text in legend.get_texts()}
    assert 1 < len(columns) < 12
    assert box.x0 >= 0 and box.x1 <= 640
    assert box.y1 <= figure.axes[0].get_window_extent().y0  # below the plot, not over it


def test_many_series_get_distinct_colours():
    assert len({colour(i) for i in range(40)}) == 40


def test_a_caption_goes_under_the_picture_which_keeps_its_pixels():
    picture = Image.new("RGB", (40, 30), (255, 0, 0))
    out = captioned(picture, "run 0")
    assert out.height > picture.height
    left = (out.width - picture.width) // 2
    inner = np.asarray(out)[1:29, left + 1:left + 39]
    assert (inner == (255, 0, 0)).all()


def test_panels_lay_charts_out_in_columns(tmp_path):
    charts = [line_chart({"a": [(0, i), (1, i + 1)]}, f"c{i}", "x", "y", size=(300, 200))
              for i in range(3)]
    path = save_panels(charts, tmp_path / "sub" / "panel.png", columns=2)
    assert Image.open(path).size == (600, 400)
    assert panels(charts, columns=5).size == (900, 200)
    with pytest.raises(ValueError):
        panels([])
