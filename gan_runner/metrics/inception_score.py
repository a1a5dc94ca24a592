"""Inception Score (Salimans et al. 2016): exp E_x KL(p(y|x) || p(y)) from classifier logits."""

from __future__ import annotations

import math

import numpy as np
import torch

from gan_runner.core.errors import UserError
from gan_runner.metrics.base import MetricContext, Outputs, Result, register_metric


def inception_score(logits: np.ndarray | torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Mean and (population) standard deviation of the score over ``splits`` parts.

    Parts are contiguous, rows ``i*n//splits`` to ``(i+1)*n//splits``, unshuffled, as
    torch-fidelity with ``samples_shuffle=False``, so the same logits give the same numbers.
    Everything stays in log space in float64: log p(y) is a logsumexp of log p(y|x), so a class
    whose probability underflows to 0 everywhere adds 0 instead of 0 * log 0 = nan.
    """
    x = torch.as_tensor(logits).detach().to(torch.float64)
    if x.ndim != 2 or not 1 <= splits <= x.shape[0]:
        raise UserError(
            f"Inception Score needs (samples, classes) logits and 1 <= splits <= samples, "
            f"got shape {tuple(x.shape)} and splits={splits}",
            "evaluate on more samples or use fewer splits",
        )
    log_p = x.log_softmax(dim=1)
    n = log_p.shape[0]
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_marginal = part.logsumexp(dim=0) - math.log(part.shape[0])
        kl = (part.exp() * (part - log_marginal)).sum(dim=1).mean()
        scores.append(math.exp(kl.item()))
    return float(np.mean(scores)), float(np.std(scores))


@register_metric("is", Result("is", lower_is_better=False, label="IS"),
                 Result("is_std", lower_is_better=None), needs=("logits",), order=2)
def is_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    mean, std = inception_score(fake["logits"], context.cfg.is_splits)
    return {"is": mean, "is_std": std}
