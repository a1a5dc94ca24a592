"""Mode coverage, sample quality and KL on the 2-D mixtures (VEEGAN's definitions)."""

from __future__ import annotations

import math

import pytest
import torch

from gan_runner.metrics.toy_modes import toy_mode_metrics

RING8 = torch.tensor([[math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)] for k in range(8)])
AXIS = (-2.0, -1.0, 0.0, 1.0, 2.0)
GRID25 = torch.tensor([[x, y] for x in AXIS for y in AXIS])
STD = 0.05


@pytest.mark.parametrize("centers", [RING8, GRID25], ids=["ring8", "grid25"])
def test_samples_on_every_center_cover_all_modes_evenly(centers):
    samples = centers.repeat(3, 1)
    metrics = toy_mode_metrics(samples, centers, STD)
    assert metrics == pytest.approx({"modes": len(centers), "hq": 1.0, "kl": 0.0}, abs=1e-9)


@pytest.mark.parametrize("centers", [RING8, GRID25], ids=["ring8", "grid25"])
def test_collapse_onto_one_mode(centers):
    samples = centers[:1].repeat(10, 1)
    metrics = toy_mode_metrics(samples, centers, STD)
    assert metrics == pytest.approx({"modes": 1, "hq": 1.0, "kl": math.log(len(centers))})


def test_far_away_samples_are_not_high_quality():
    samples = torch.full((10, 2), 50.0)
    metrics = toy_mode_metrics(samples, RING8, STD)
    assert (metrics["modes"], metrics["hq"]) == (0, 0.0)
    assert metrics["kl"] == pytest.approx(math.log(8))  # no histogram: reported as the worst case


def test_high_quality_means_within_three_std_of_the_nearest_mode():
    # offsets of 2.9 and 3.1 std from modes 0 and 1: only the first is high quality
    samples = torch.stack([RING8[0] + torch.tensor([2.9 * STD, 0.0]),
                           RING8[1] + torch.tensor([0.0, 3.1 * STD])])
    metrics = toy_mode_metrics(samples, RING8, STD)
    assert (metrics["modes"], metrics["hq"]) == (1, 0.5)


def test_kl_of_an_uneven_histogram_and_a_minimum_count_per_mode():
    # 3 samples on mode 0, 1 on mode 1, 4 modes: p = (3/4, 1/4, 0, 0)
    centers = GRID25[:4]
    samples = torch.cat([centers[:1].repeat(3, 1), centers[1:2]])
    expected_kl = 0.75 * math.log(0.75 * 4) + 0.25 * math.log(0.25 * 4)
    assert toy_mode_metrics(samples, centers, STD)["kl"] == pytest.approx(expected_kl)
    assert toy_mode_metrics(samples, centers, STD)["modes"] == 2
    assert toy_mode_metrics(samples, centers, STD, min_count=2)["modes"] == 1
