"""PIL line charts: round ticks, series in their own colours, gaps, log axes, panels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from gan_runner.io.plots import (
    colour,
    line_chart,
    linear_ticks,
    log_ticks,
    panels,
    save_panels,
    tick_label,
)


def rows_and_columns(image: Image.Image, rgb: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """Where ``rgb`` is drawn, excluding the legend (the lowest rows with that colour)."""
    pixels = np.asarray(image)
    rows, cols = np.nonzero((pixels == rgb).all(axis=-1))
    assert len(rows), f"{rgb} is not drawn"
    legend_row = rows.max()
    keep = rows < legend_row - 8
    return rows[keep], cols[keep]


def line_row(image: Image.Image, rgb: tuple[int, int, int]) -> float:
    """The mean row of a horizontal line drawn in ``rgb``."""
    rows, _ = rows_and_columns(image, rgb)
    return float(np.median(rows))


@pytest.mark.parametrize("low,high,expected", [
    (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
    (0.3, 97, [20, 40, 60, 80]),
    (-3, 7.5, [-2.5, 0, 2.5, 5, 7.5]),
    (2, 40.192, [10, 20, 30, 40]),
])
def test_linear_ticks_are_round_values_inside_the_range(low, high, expected):
    assert linear_ticks(low, high) == pytest.approx(expected)


@pytest.mark.parametrize("low,high,expected", [
    (3, 2000, [10, 100, 1000]),
    (15, 600, [20, 50, 100, 200, 500]),  # one power of ten inside: 1-2-5 steps
    (3.9, 8.2, [4, 5, 6, 7, 8]),  # not even two of those: linear steps
])
def test_log_ticks_prefer_powers_of_ten(low, high, expected):
    assert log_ticks(low, high) == pytest.approx(expected)


def test_log_ticks_thin_out_many_decades():
    assert log_ticks(1e-9, 1e9) == pytest.approx([1e-9, 1e-5, 1e-1, 1e3, 1e7])


def test_tick_labels_carry_no_float_noise():
    assert tick_label(0.1 + 0.2) == "0.3" and tick_label(100.0) == "100"
    assert tick_label(1e-5) == "1e-5" and tick_label(2e6) == "2e6"


def test_the_chart_has_the_requested_size():
    chart = line_chart({"a": [(0, 1), (1, 2)]}, "title", "kimg", "loss", size=(500, 300))
    assert chart.size == (500, 300) and chart.mode == "RGB"


def test_each_series_is_drawn_in_its_own_colour_at_its_height():
    chart = line_chart({"low": [(0, 1), (10, 1)], "high": [(0, 3), (10, 3)]}, "t", "x", "y")
    assert line_row(chart, colour(1)) < line_row(chart, colour(0))  # rows grow downwards


def test_a_log_axis_spaces_decades_evenly():
    series = {str(v): [(0, v), (10, v)] for v in (1.0, 10.0, 100.0)}
    linear, log = (line_chart(series, "t", "x", "y", log_y=flag) for flag in (False, True))
    for chart, evenly in ((log, True), (linear, False)):
        one, ten, hundred = (line_row(chart, colour(i)) for i in range(3))
        assert (abs((one - ten) - (ten - hundred)) <= 2) is evenly


def test_missing_values_leave_a_gap_in_the_line():
    points = [(x, None if x == 5 else (math.nan if x == 6 else 1.0)) for x in range(11)]
    chart = line_chart({"a": points, "b": [(0, 0), (10, 2)]}, "t", "x", "y")
    _, cols = rows_and_columns(chart, colour(0))
    columns = np.unique(cols)
    assert np.diff(columns).max() > 20  # a hole where x = 5..6 would be


def test_non_positive_values_are_gaps_on_a_log_axis():
    chart = line_chart({"a": [(0, 1.0), (1, 0.0), (2, -1.0), (3, 10.0)]}, "t", "x", "y",
                       log_y=True)
    assert chart.size == (640, 400)


def test_empty_series_and_no_series_still_make_a_chart():
    for series in ({}, {"a": []}, {"a": [(1, None)]}):
        assert line_chart(series, "nothing", "x", "y").size == (640, 400)


def test_many_series_get_distinct_colours():
    assert len({colour(i) for i in range(40)}) == 40


def test_panels_lay_charts_out_in_columns(tmp_path):
    charts = [line_chart({"a": [(0, i), (1, i + 1)]}, f"c{i}", "x", "y", size=(300, 200))
              for i in range(3)]
    path = save_panels(charts, tmp_path / "sub" / "panel.png", columns=2)
    assert Image.open(path).size == (600, 400)
    assert panels(charts, columns=5).size == (900, 200)
    with pytest.raises(ValueError):
        panels([])
