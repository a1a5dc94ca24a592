"""Penalty terms on D, registered by config name, and the StyleGAN2 lazy-regularization rules.

Each penalty is the *unweighted* term: the training step multiplies it by ``weight``. The
gradient penalties differentiate the summed logits with respect to the inputs, which gives each
sample its own gradient as long as D treats samples independently (no batch norm in D:
``model.d_batchnorm`` stays off with these).

Lazy regularization (Karras et al. 2020, "Analyzing and improving the image quality of
StyleGAN", sec. 3.1 and the reference's ``mb_ratio``): a regularizer with ``every`` = k runs
once per k steps in a phase of its own, and its loss term is penalty * weight * k (the lazy
gain) so that its average pull per step stays ``weight * penalty``; ``lazy_optimizer_params``
is the matching optimizer correction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gan_runner.core import image_ops
from gan_runner.core.checks import require
from gan_runner.core.errors import UserError
from gan_runner.models.base import with_labels
from gan_runner.objectives.base import REGULARIZERS, ConfiguredPenalty, DBatch, RegularizerConfig

PenaltyFn = Callable[[DBatch, Any], Tensor]


@dataclass
class BCRConfig(RegularizerConfig):
    """bCR: ``weight`` scales both terms; the lambdas are the paper's per-side weights."""

    weight: float = 1.0
    lambda_real: float = 10.0
    lambda_fake: float = 10.0
    translate: float = 0.125  # largest shift, as a fraction of the image side (4 px at 32 px)

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("lambda_real", "lambda_fake"):
            value = getattr(self, key)
            require(value >= 0, f"regularizer.bcr.{key}", value, "a non-negative weight")
        require(0 <= self.translate < 0.5, "regularizer.bcr.translate", self.translate,
                "a fraction of the image side in [0, 0.5)")


@dataclass(frozen=True)
class DPenalty(ConfiguredPenalty):
    """A D-side regularizer: its config and the function that computes the bare penalty."""

    name: str
    cfg: RegularizerConfig
    fn: PenaltyFn
    inputs: tuple[str, ...] = ("real", "fake")
    side: str = "D"

    def penalty(self, batch: DBatch) -> Tensor:
        return self.fn(batch, self.cfg)


def _d_penalty(name: str, schema: type[RegularizerConfig] = RegularizerConfig,
               inputs: tuple[str, ...] = ("real", "fake")):
    """Register ``fn(batch, cfg)`` as the D regularizer ``name`` with its config schema and the
    samples it reads (a lazy phase of penalties on real data alone runs no G forward)."""

    def add(fn: PenaltyFn) -> PenaltyFn:
        def build(reg_name: str, cfg: RegularizerConfig) -> DPenalty:
            return DPenalty(reg_name, cfg, fn, inputs)

        REGULARIZERS.register(name, schema=schema)(build)
        return fn

    return add


def _input_gradients(batch: DBatch, x: Tensor, c: Tensor | None) -> Tensor:
    """(N, features) gradient of each logit w.r.t. its own input (of class ``c`` for a
    conditional D), kept differentiable."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(with_labels(batch.critic, x, c).sum(), x, create_graph=True)
    return grad.flatten(1)


def _unit_gradient_norm(batch: DBatch, x: Tensor, c: Tensor | None) -> Tensor:
    """mean (||grad_x D(x)|| - 1)^2: pulls D towards 1-Lipschitz around ``x``."""
    return (_input_gradients(batch, x, c).norm(dim=1) - 1.0).square().mean()


def _half_squared_gradient(batch: DBatch, x: Tensor, c: Tensor | None) -> Tensor:
    """mean 1/2 ||grad_x D(x)||^2, so that ``weight`` is the paper's gamma."""
    return 0.5 * _input_gradients(batch, x, c).square().sum(dim=1).mean()


def _per_sample(values: Tensor, like: Tensor) -> Tensor:
    """Shape (N,) values to broadcast over the other dimensions of ``like``."""
    return values.view(-1, *([1] * (like.dim() - 1)))


@_d_penalty("gp")
def gradient_penalty(batch: DBatch, cfg: RegularizerConfig) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): at points uniformly on real-fake segments (judged as
    the real sample's class by a conditional D, as StudioGAN does)."""
    real = batch.real.detach()
    eps = _per_sample(torch.rand(len(real), device=real.device, dtype=real.dtype), real)
    x_hat = eps * real + (1.0 - eps) * batch.fake.detach()
    return _unit_gradient_norm(batch, x_hat, batch.real_c)


DRAGAN_SCALE = 0.5  # the noise amplitude, in units of the batch's pixel standard deviation


@_d_penalty("dragan", inputs=("real",))
def dragan_penalty(batch: DBatch, cfg: RegularizerConfig) -> Tensor:
    """DRAGAN (Kodali et al. 2017) as its reference code has it: near the data only, at
    x + alpha (x_p - x) with x_p = x + 0.5 std(x) U[0, 1] per pixel and one alpha ~ U[0, 1]
    per sample (as WGAN-GP's interpolates, but towards a perturbation of x instead of a fake);
    std is over the whole batch and, as numpy's, without Bessel's correction."""
    real = batch.real.detach()
    perturbation = DRAGAN_SCALE * real.std(correction=0) * torch.rand_like(real)
    alpha = _per_sample(torch.rand(len(real), device=real.device, dtype=real.dtype), real)
    return _unit_gradient_norm(batch, real + alpha * perturbation, batch.real_c)


@_d_penalty("r1", inputs=("real",))
def r1_penalty(batch: DBatch, cfg: RegularizerConfig) -> Tensor:
    """R1 (Mescheder et al. 2018): D flat on the data, so the game converges locally."""
    return _half_squared_gradient(batch, batch.real, batch.real_c)


@_d_penalty("r2", inputs=("fake",))
def r2_penalty(batch: DBatch, cfg: RegularizerConfig) -> Tensor:
    """R2 (Mescheder et al. 2018): D flat on the generated samples."""
    return _half_squared_gradient(batch, batch.fake, batch.fake_c)


def flip_translate(images: Tensor, translate: float) -> Tensor:
    """bCR's T: per image, a horizontal flip with probability 1/2 and an integer shift of up to
    ``translate`` * side pixels in each direction; the border pixels fill the vacated edge."""
    n, _, height, width = images.shape
    device = images.device

    def shift(size: int) -> Tensor:
        limit = round(translate * size)
        return torch.randint(-limit, limit + 1, (n,), device=device)

    dy, dx = shift(height), shift(width)
    flip = torch.rand(n, device=device) < 0.5
    return image_ops.translate(images, dy, dx, fill="replicate", flip=flip)


@_d_penalty("bcr", BCRConfig)
def balanced_consistency(batch: DBatch, cfg: BCRConfig) -> Tensor:
    """bCR (Zhao et al. 2020, "Improved consistency regularization for GANs"): D's logit of
    real and of fake images should not change under a flip or a small shift.

    With D-side augmentation on, each image is augmented once and D judges that view and T of
    it, as the paper compares D on one augmented image and its T: sending x and T(x) through
    the critic separately would give each its own augmentation draw, and the term would also
    penalise D's response to the augmentation's randomness."""
    if batch.real.dim() != 4:
        raise UserError("regularizer bcr needs image data",
                        "remove bcr from regularizer=[...] for point data")
    critic = batch.critic
    total = batch.real.new_zeros(())
    for lam, images, c in ((cfg.lambda_real, batch.real, batch.real_c),
                           (cfg.lambda_fake, batch.fake, batch.fake_c)):
        if lam > 0:
            view = critic.augment(images.detach())
            shifted = flip_translate(view, cfg.translate)
            total = total + lam * (with_labels(critic.judge, view, c)
                                   - with_labels(critic.judge, shifted, c)).square().mean()
    return total


def lazy_optimizer_params(
    lr: float, betas: tuple[float, float], every: int
) -> tuple[float, tuple[float, float]]:
    """Adam settings for a network regularized in its own step once every ``every`` steps.

    Such a network takes every + 1 optimizer steps per every minibatches, so StyleGAN2 scales
    the learning rate by c = every / (every + 1) and raises the betas to the power c to keep
    the per-minibatch step size and moment decay of the non-lazy schedule. A penalty with
    ``every`` = 1 joins the main step instead and needs no correction.
    """
    c = every / (every + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)
