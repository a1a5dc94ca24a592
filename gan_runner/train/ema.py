"""The exponential moving average of G's weights (Karras et al. 2018; 2020).

The half-life is given in images, so it means the same at any batch size; the ramp-up keeps
it below ``rampup`` x images seen early on, so the EMA does not average in the random init.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch_size: int, nimg: int, ema_kimg: float, rampup: float | None) -> float:
    half_life = ema_kimg * 1000
    if rampup is not None:
        half_life = min(half_life, nimg * rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, live: nn.Module, beta: float) -> None:
    """Parameters move towards the live G; buffers (e.g. batch-norm statistics) are copied."""
    for p_ema, p in zip(ema.parameters(), live.parameters(), strict=True):
        p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), live.buffers(), strict=True):
        b_ema.copy_(b)
