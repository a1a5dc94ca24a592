"""Path-length regularization (Karras et al. 2020, "Analyzing and improving the image quality of
StyleGAN", sec. 3.2): a fixed-size step in W should change the image by a fixed amount in every
direction, which makes G smoother and easier to invert.

For images g(w) and a random image-space direction y ~ N(0, I) / sqrt(H W), the path length of a
sample is ||J_w^T y|| (the squared norm summed over w's features and averaged over the num_ws
style inputs, as in the reference). The penalty pulls it towards ``a``, the running mean of
path lengths, so G keeps whatever scale it has but makes it uniform.

Only generators with a mapping network (``G.mapping(z) -> ws``, ``G.synthesis(ws)``, such as
``model=stylegan2``) have a W to measure; the path is taken without style mixing or truncation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gan_runner.core.checks import require
from gan_runner.core.errors import UserError
from gan_runner.models.base import sample_classes, sample_latents
from gan_runner.objectives.base import REGULARIZERS, ConfiguredPenalty, GBatch, RegularizerConfig


@dataclass
class PathLengthConfig(RegularizerConfig):
    """Paper defaults: weight 2, lazily every 4 G steps, on half the batch."""

    weight: float = 2.0
    every: int = 4
    decay: float = 0.01  # how far the running mean ``a`` moves towards each batch's mean
    batch_shrink: int = 2  # the penalty samples batch_size // batch_shrink images (at least 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 < self.decay <= 1, "regularizer.path_length.decay", self.decay,
                "a rate in (0, 1]")
        require(self.batch_shrink >= 1, "regularizer.path_length.batch_shrink",
                self.batch_shrink, "a divisor of at least 1")


def path_lengths(images: Tensor, ws: Tensor, directions: Tensor) -> Tensor:
    """Per sample sqrt(mean over styles of ||(J_w^T y)_style||^2), kept differentiable so the
    penalty trains G; ``directions`` are y, already scaled by 1 / sqrt(H W)."""
    (grad,) = torch.autograd.grad((images * directions).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


class PathLengthPenalty(ConfiguredPenalty, nn.Module):
    """The G-side regularizer; an ``nn.Module`` so the running mean (buffer ``mean``) is
    checkpointed with the training state."""

    side = "G"
    inputs: tuple[str, ...] = ()  # it samples its own latents

    def __init__(self, name: str, cfg: PathLengthConfig) -> None:
        super().__init__()
        self.name, self.cfg = name, cfg
        self.register_buffer("mean", torch.zeros(()))

    def penalty(self, batch: GBatch) -> Tensor:
        """mean (path length - a)^2, unweighted; updates ``a`` with this batch's mean."""
        G = batch.generator
        if not (hasattr(G, "mapping") and hasattr(G, "synthesis")):
            raise UserError(f"regularizer {self.name} needs a generator with a mapping network",
                            "use model=stylegan2, or remove path_length from regularizer=[...]")
        n = max(1, batch.batch_size // self.cfg.batch_shrink)
        device = next(G.parameters()).device
        z = sample_latents(G, n, device=device)
        c = sample_classes(G, n, device=device)  # a conditional G's paths run within a class
        ws = G.mapping(z) if c is None else G.mapping(z, c)
        images = G.synthesis(ws)
        height, width = images.shape[-2:]
        directions = torch.randn_like(images) / math.sqrt(height * width)
        lengths = path_lengths(images, ws, directions)
        batch_mean = lengths.detach().mean().to(self.mean.dtype)
        batch.mean_over_ranks([batch_mean])  # every rank's samples: ``a`` stays the same on all
        target = self.mean.lerp(batch_mean, self.cfg.decay)
        self.mean.copy_(target)
        return (lengths - target).square().mean()


@REGULARIZERS.register("path_length", schema=PathLengthConfig)
def build_path_length(name: str, cfg: PathLengthConfig) -> PathLengthPenalty:
    return PathLengthPenalty(name, cfg)
