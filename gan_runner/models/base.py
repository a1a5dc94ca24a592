"""What every model provides to the training loop, and the registry that builds models.

A model factory receives its validated config and the shape of the data and returns a
``GanPair``. The generator maps latents ``z`` of shape (N, z_dim) to samples shaped like the
data (images in [-1, 1]); the discriminator maps samples to one logit per sample, shape (N,).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gan_runner.core.devices import to_device
from gan_runner.core.errors import UserError
from gan_runner.core.registry import Registry
from gan_runner.core.spec import DataSpec


@dataclass
class GanPair:
    """A generator (with a ``z_dim`` attribute) and a discriminator, built for one data shape."""

    G: nn.Module
    D: nn.Module


MODELS: Registry[Callable[[Any, DataSpec], GanPair]] = Registry("model", group="model")


def sample_latents(G: nn.Module, n: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> Tensor:
    """Standard-normal latents for ``G``; drawn on the CPU so a seed gives the same z anywhere,
    and copied to ``device`` without making the host wait (``to_device``)."""
    return to_device(torch.randn(n, G.z_dim, generator=generator), torch.device(device))


def supports_truncation(G: nn.Module) -> bool:
    """Models with a mapping network take ``psi`` (the truncation trick); others do not."""
    return "psi" in inspect.signature(G.forward).parameters


def generate(G: nn.Module, z: Tensor, psi: float = 1.0) -> Tensor:
    """G(z), truncated towards the average latent by ``psi`` where the model supports it."""
    if supports_truncation(G):
        return G(z, psi=psi)
    if psi != 1.0:
        raise UserError("this model has no truncation trick (psi)",
                        "drop psi or use model=stylegan2")
    return G(z)
