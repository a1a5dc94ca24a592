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

from gan_runner.core.checks import require
from gan_runner.core.registry import Registry


@dataclass
class LossConfig:
    """The adversarial loss and the tricks that act on it."""

    name: str = "ns"
    real_label: float = 1.0  # one-sided label smoothing: 0.9 as in Salimans et al. 2016
    clip: float = 0.01  # WGAN critic weight clipping to [-clip, clip]
    instance_noise_std: float = 0.0  # std of Gaussian noise added to every D input at kimg 0
    instance_noise_kimg: float = 100.0  # the noise decays linearly to 0 over this many kimg

    def __post_init__(self) -> None:
        require(0.5 < self.real_label <= 1.0, "loss.real_label", self.real_label,
                "a target in (0.5, 1], e.g. 0.9 for one-sided label smoothing")
        require(self.clip > 0, "loss.clip", self.clip, "a positive clipping bound")
        require(self.instance_noise_std >= 0, "loss.instance_noise_std",
                self.instance_noise_std, "a non-negative std")
        require(self.instance_noise_kimg > 0, "loss.instance_noise_kimg",
                self.instance_noise_kimg, "a positive duration in kimg")


@dataclass
class RegularizerConfig:
    """One penalty term; ``every`` > 1 applies it lazily (StyleGAN2), scaled by ``every``."""

    weight: float = 10.0
    every: int = 1

    def __post_init__(self) -> None:
        require(self.weight >= 0, "regularizer.weight", self.weight, "a non-negative weight")
        require(self.every >= 1, "regularizer.every", self.every, "an interval of at least 1")


@dataclass(frozen=True)
class AdversarialLoss:
    """One GAN objective: ``d(real_logits, fake_logits)`` and ``g(fake_logits, real_logits)``."""

    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor, Tensor | None], Tensor]
    g_needs_real: bool = False
    # what the loss does to D after each D optimizer step (WGAN's weight clipping)
    after_d_step: Callable[[nn.Module], None] | None = None


class Critic(Protocol):
    """D as the regularizers see it: images (already on D's device) and, for a conditional D,
    their class labels -> logits of shape (N,).

    Calling it augments and then judges (``judge(augment(images), c)``); a penalty that
    compares D on two versions of one view (bCR) augments once and judges both, so the
    augmentation's own randomness is not part of what it penalises."""

    def __call__(self, images: Tensor, c: Tensor | None = None) -> Tensor: ...

    def augment(self, images: Tensor) -> Tensor: ...

    def judge(self, images: Tensor, c: Tensor | None = None) -> Tensor: ...


@dataclass(frozen=True)
class DBatch:
    """What a D-side regularizer may look at: the critic and this step's real and fake images,
    with their labels when D is conditional (None otherwise: pass them to the critic as they
    are). ``fake`` is None when the penalty did not declare it among its ``inputs``."""

    critic: Critic
    real: Tensor | None = None
    fake: Tensor | None = None
    real_c: Tensor | None = None
    fake_c: Tensor | None = None


@dataclass(frozen=True)
class GBatch:
    """What a G-side regularizer may look at: the generator and a batch size to sample.

    ``mean_over_ranks`` replaces each tensor by its mean over the processes of a multi-process
    run (a statistic that must stay the same on every rank); the loop passes its own, so this
    layer needs nothing of the training package."""

    generator: nn.Module
    batch_size: int
    mean_over_ranks: Callable[[list[Tensor]], None] = lambda tensors: None


LOSSES: Registry[Callable[..., AdversarialLoss]] = Registry("loss", group="loss")
REGULARIZERS: Registry[Callable[..., Regularizer]] = Registry("regularizer", group="regularizer")


class Regularizer(Protocol):
    """A penalty term: ``side`` is the network it trains ("D" or "G")."""

    name: str
    side: str
    weight: float
    every: int
    inputs: tuple[str, ...]  # of a D penalty: which of "real", "fake" its batch must carry

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
