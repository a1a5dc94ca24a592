"""The interfaces the training step uses to call losses and regularizers.

A loss is a pair of pure functions of discriminator logits. Relativistic losses compare real
with fake logits on both sides, so both functions always receive both tensors; a loss that does
not need real logits in the G step says so (``g_needs_real = False``) and the step skips that
forward pass and passes ``None``.

A regularizer is a pure function of the discriminator (or generator) and a batch; the training
step decides when to call it (every ``every`` steps, scaled by ``every`` - lazy regularization
as in StyleGAN2) and with which weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor, nn

from gan_runner.config.schema import RegularizerConfig
from gan_runner.registry import Registry


@dataclass(frozen=True)
class AdversarialLoss:
    """One GAN objective: ``d(real_logits, fake_logits)`` and ``g(fake_logits, real_logits)``."""

    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor, Tensor | None], Tensor]
    g_needs_real: bool = False
    d_weight_clip: float | None = None  # WGAN's critic constraint, applied after each D step


class Critic(Protocol):
    """D as the regularizers see it: images (already on D's device) -> logits of shape (N,)."""

    def __call__(self, images: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class DBatch:
    """What a D-side regularizer may look at: the critic and this step's real and fake images."""

    critic: Critic
    real: Tensor
    fake: Tensor


@dataclass(frozen=True)
class GBatch:
    """What a G-side regularizer may look at: the generator and a batch size to sample."""

    generator: nn.Module
    batch_size: int


LOSSES: Registry[Callable[..., AdversarialLoss]] = Registry("loss", group="loss")
REGULARIZERS: Registry[Callable[..., Regularizer]] = Registry("regularizer", group="regularizer")


class Regularizer(Protocol):
    """A penalty term: ``side`` is the network it trains ("D" or "G")."""

    name: str
    side: str
    weight: float
    every: int

    def penalty(self, batch: DBatch | GBatch) -> Tensor: ...


class ConfiguredPenalty:
    """``weight`` and ``every`` read from the regularizer's config (its validated schema)."""

    cfg: RegularizerConfig

    @property
    def weight(self) -> float:
        return self.cfg.weight

    @property
    def every(self) -> int:
        return self.cfg.every
