"""The adversarial losses, each a pair of pure functions of D's logits (shape (N,)).

Every term is written with ``softplus`` so it stays finite for any logit: with ``sigma`` the
sigmoid, ``-log sigma(l) = softplus(-l)`` and ``-log(1 - sigma(l)) = softplus(l)``.

One-sided label smoothing (``loss.real_label``, Salimans et al. 2016) is the target of real
samples in a binary cross-entropy, so only ``ns`` and ``minimax`` honour it. The other losses
have no such target; they reject a value other than 1.0 rather than ignore it silently.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch.nn.functional as F
from torch import Tensor

from gan_runner.core.checks import require
from gan_runner.objectives.base import LOSSES, AdversarialLoss, LossConfig
from gan_runner.objectives.tricks import clip_weights


def _no_label_smoothing(cfg: LossConfig) -> None:
    require(cfg.real_label == 1.0, "loss.real_label", cfg.real_label,
            f"1.0: loss={cfg.name} has no real-sample target to smooth (use ns or minimax)")


def _bce_d(real_label: float) -> Callable[[Tensor, Tensor], Tensor]:
    """D as a classifier: real -> ``real_label`` (1 unless smoothed), fake -> 0."""

    def d(real: Tensor, fake: Tensor) -> Tensor:
        real_term = real_label * F.softplus(-real) + (1.0 - real_label) * F.softplus(real)
        return real_term.mean() + F.softplus(fake).mean()

    return d


def _wasserstein_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def _neg_fake_g(fake: Tensor, real: Tensor | None) -> Tensor:
    """G raises D's score of its samples: the G side of WGAN and hinge."""
    return -fake.mean()


@LOSSES.register("ns")
def non_saturating(cfg: LossConfig) -> AdversarialLoss:
    """Goodfellow et al. 2014, sec. 3: G maximizes log D(G(z)) to get strong early gradients."""
    return AdversarialLoss(d=_bce_d(cfg.real_label), g=lambda fake, real: F.softplus(-fake).mean())


@LOSSES.register("minimax")
def minimax(cfg: LossConfig) -> AdversarialLoss:
    """Goodfellow et al. 2014, eq. 1 as written: G minimizes log(1 - D(G(z))), which saturates."""
    return AdversarialLoss(d=_bce_d(cfg.real_label), g=lambda fake, real: -F.softplus(fake).mean())


def _lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real - 1.0).square().mean() + fake.square().mean())


@LOSSES.register("lsgan")
def least_squares(cfg: LossConfig) -> AdversarialLoss:
    """Mao et al. 2017 with a-b-c = 0-1-1: fake target 0, real target 1, G aims at 1."""
    _no_label_smoothing(cfg)
    return AdversarialLoss(d=_lsgan_d, g=lambda fake, real: 0.5 * (fake - 1.0).square().mean())


@LOSSES.register("wgan")
def wasserstein(cfg: LossConfig) -> AdversarialLoss:
    """Arjovsky et al. 2017: the critic is kept Lipschitz by clipping its weights."""
    _no_label_smoothing(cfg)
    return AdversarialLoss(d=_wasserstein_d, g=_neg_fake_g,
                           after_d_step=partial(clip_weights, c=cfg.clip))


@LOSSES.register("wgan_gp")
def wasserstein_gp(cfg: LossConfig) -> AdversarialLoss:
    """Gulrajani et al. 2017: the WGAN critic without clipping.

    The Lipschitz constraint is the ``gp`` regularizer, which ``conf/loss/wgan_gp.yaml`` adds
    to the config, so it stays visible and tunable as ``regularizer.gp.weight``.
    """
    _no_label_smoothing(cfg)
    return AdversarialLoss(d=_wasserstein_d, g=_neg_fake_g)


def _hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


@LOSSES.register("hinge")
def hinge(cfg: LossConfig) -> AdversarialLoss:
    """Lim & Ye 2017, Miyato et al. 2018: D gets no gradient from samples beyond the margin."""
    _no_label_smoothing(cfg)
    return AdversarialLoss(d=_hinge_d, g=_neg_fake_g)


def _relativistic(first: Tensor, second: Tensor) -> Tensor:
    """-log sigma(first_i - second_i): ``first`` should look more real than ``second``."""
    return F.softplus(second - first).mean()


@LOSSES.register("rsgan")
def relativistic_standard(cfg: LossConfig) -> AdversarialLoss:
    """Jolicoeur-Martineau 2018: D judges whether a real sample is more real than a fake one.

    Real and fake samples are paired by batch index, so both batches have the same size. The
    same function serves both sides: D wants real above fake, G wants fake above real.
    """
    _no_label_smoothing(cfg)
    return AdversarialLoss(d=_relativistic, g=_relativistic, g_needs_real=True)


def _ragan(first: Tensor, second: Tensor) -> Tensor:
    """``first`` above the mean of ``second``, and ``second`` below the mean of ``first``."""
    return _relativistic(first, second.mean()) + F.softplus(second - first.mean()).mean()


@LOSSES.register("ragan")
def relativistic_average(cfg: LossConfig) -> AdversarialLoss:
    """Jolicoeur-Martineau 2018: each sample is compared with the mean logit of the other side.

    G's loss mirrors D's with the roles of real and fake swapped, so real logits reach G too.
    """
    _no_label_smoothing(cfg)
    return AdversarialLoss(d=_ragan, g=_ragan, g_needs_real=True)
