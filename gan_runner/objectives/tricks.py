"""Stabilization tricks that act around the loss rather than inside it."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_runner.objectives.base import LossConfig


@torch.no_grad()
def clip_weights(module: nn.Module, c: float) -> None:
    """WGAN's crude Lipschitz bound (Arjovsky et al. 2017): every parameter into [-c, c].

    Call after each D optimizer step, so the critic that G sees is always a clipped one.
    """
    for param in module.parameters():
        param.clamp_(-c, c)


def instance_noise(x: Tensor, std: float) -> Tensor:
    """Gaussian noise on D's inputs (Sønderby et al. 2016; Arjovsky & Bottou 2017).

    Blurring real and fake alike makes their distributions overlap, so D cannot separate them
    perfectly and its gradients stay informative. Apply to both real and fake inputs.
    """
    if std == 0.0:
        return x
    return x + std * torch.randn_like(x)


def instance_noise_std(cfg: LossConfig, kimg: float) -> float:
    """The noise anneals linearly to 0 over ``cfg.instance_noise_kimg``, so training ends
    on the unblurred data it is meant to model."""
    remaining = max(0.0, 1.0 - kimg / cfg.instance_noise_kimg)
    return cfg.instance_noise_std * remaining
