"""Mode-collapse metrics on the 2-D Gaussian mixtures, as in VEEGAN and PacGAN.

Srivastava et al. 2017 (VEEGAN, synthetic experiments) count a generated sample as *high
quality* when it lies within three standard deviations of its nearest mode, and a mode as
*captured* when it is the nearest mode of at least one high-quality sample; they draw 2,500
samples per model. Lin et al. 2018 (PacGAN) use the same definitions in their 2-D experiments
and code, so ``min_count`` defaults to one sample; pass a larger count when evaluating many
more than 2,500 samples, where a single stray point should not count as a mode.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan_runner.metrics.base import MetricContext, Outputs, Result, register_metric

HQ_RADIUS_STDS = 3.0  # "within three standard deviations" (VEEGAN, PacGAN)


def toy_mode_metrics(
    samples: Tensor, centers: Tensor, std: float, min_count: int | None = None
) -> dict[str, float]:
    """``modes`` captured, ``hq`` fraction of high-quality samples, and ``kl``.

    ``kl`` is KL(p || uniform) = sum_i p_i log(M p_i), where p is the histogram of the
    high-quality samples over the M modes: 0 when they spread evenly, log M when they all sit
    on one mode. Empty modes contribute p log p -> 0 (no epsilon is needed in this direction;
    the missing mass shows up as excess on the others). With no high-quality sample at all the
    histogram is undefined and ``kl`` reports the worst case, log M.
    """
    samples = samples.to(torch.float64)
    centers = centers.to(samples)
    distance, nearest = torch.cdist(samples, centers).min(dim=1)
    high_quality = distance <= HQ_RADIUS_STDS * std
    counts = torch.bincount(nearest[high_quality], minlength=len(centers)).to(torch.float64)
    total = counts.sum()
    if total > 0:
        p = counts[counts > 0] / total
        kl = float((p * (p * len(centers)).log()).sum())
    else:
        kl = math.log(len(centers))
    threshold = 1 if min_count is None else min_count
    return {
        "modes": float((counts >= threshold).sum()),
        "hq": float(total / len(samples)),
        "kl": kl,
    }


@register_metric("toy", Result("modes", lower_is_better=False),
                 Result("hq", lower_is_better=False, label="HQ"),
                 Result("kl", lower_is_better=True, label="KL"),
                 needs=("features", "centres"), order=5)
def toy_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    """On the fake points themselves (the toy extractor's features are the points)."""
    data = context.data
    return toy_mode_metrics(torch.from_numpy(fake["features"]), data.centers, data.std)
