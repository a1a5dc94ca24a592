"""D regularizers against closed forms, lazy regularization, and the training tricks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_runner.augment.base import DAugment
from gan_runner.core.errors import UserError
from gan_runner.objectives.base import REGULARIZERS, DBatch, LossConfig, RegularizerConfig
from gan_runner.objectives.losses import non_saturating
from gan_runner.objectives.regularizers import BCRConfig, flip_translate, lazy_optimizer_params
from gan_runner.objectives.tricks import clip_weights, instance_noise, instance_noise_std
from gan_runner.train.phases import AugmentedCritic, StepParts, build_phases

W = torch.tensor([1.0, 2.0, 2.0, 0.0], dtype=torch.float64)  # ||W|| = 3


class LinearCritic(nn.Module):
    """D(x) = w . x + b on flattened inputs: grad_x D = w everywhere. Records what it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(W.clone())
        self.b = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return x.flatten(1) @ self.w + self.b


def half_square(x: torch.Tensor) -> torch.Tensor:
    """D(x) = 1/2 ||x||^2 per sample: grad_x D = x, so the gradient depends on where D looks."""
    return 0.5 * x.flatten(1).square().sum(dim=1)


def build(name: str, cfg: RegularizerConfig | None = None):
    return REGULARIZERS.get(name)(name, cfg or REGULARIZERS.entry(name).schema())


def images(n: int, value: float) -> torch.Tensor:
    return torch.full((n, 1, 2, 2), value, dtype=torch.float64)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("gp", (3.0 - 1.0) ** 2), ("dragan", (3.0 - 1.0) ** 2), ("r1", 9.0 / 2), ("r2", 9.0 / 2)],
)
def test_gradient_penalties_of_a_linear_critic(name, expected):
    torch.manual_seed(0)
    batch = DBatch(LinearCritic(), images(4, 1.0), images(4, -1.0))
    assert float(build(name).penalty(batch).detach()) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "grad_w"),
    [("gp", 2 * (3.0 - 1.0) / 3.0 * W), ("r1", W)],  # d/dw (||w|| - 1)^2 and d/dw 1/2 ||w||^2
)
def test_penalties_train_d_through_its_input_gradient(name, grad_w):
    critic = LinearCritic()
    build(name).penalty(DBatch(critic, images(4, 1.0), images(4, -1.0))).backward()
    assert torch.allclose(critic.w.grad, grad_w)


def test_r1_looks_at_real_samples_and_r2_at_fake_ones():
    real = torch.tensor([[3.0, 4.0], [0.0, 0.0]])  # 1/2 ||x||^2 averaged: (25 + 0) / 4
    fake = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # (1 + 4) / 4
    batch = DBatch(half_square, real, fake)
    assert float(build("r1").penalty(batch).detach()) == pytest.approx(6.25)
    assert float(build("r2").penalty(batch).detach()) == pytest.approx(1.25)


def test_gp_is_centered_at_one_at_the_interpolates():
    # real == fake pins every interpolate to the point itself: mean((5 - 1)^2, (1 - 1)^2)
    points = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    penalty = build("gp").penalty(DBatch(half_square, points, points))
    assert float(penalty.detach()) == pytest.approx(8.0)


def test_gp_interpolates_with_one_uniform_eps_per_sample():
    torch.manual_seed(0)
    critic = LinearCritic()
    build("gp").penalty(DBatch(critic, images(8, 1.0), images(8, 0.0)))
    (x_hat,) = critic.inputs
    eps = x_hat.flatten(1)
    assert torch.equal(eps, eps[:, :1].expand_as(eps))  # the same eps over a whole sample
    assert ((eps >= 0) & (eps <= 1)).all()
    assert len(set(eps[:, 0].tolist())) == 8  # a fresh eps per sample


def dragan_points(real: torch.Tensor) -> torch.Tensor:
    critic = LinearCritic()
    critic.w = nn.Parameter(torch.ones(real[0].numel(), dtype=real.dtype))
    build("dragan").penalty(DBatch(critic, real))
    (points,) = critic.inputs
    return points


def test_dragan_samples_the_segment_from_x_to_its_perturbation_as_the_reference_code():
    """x + alpha (x_p - x), x_p = x + 0.5 std(x) U[0, 1]: the per-pixel noise is drawn first,
    then one alpha per sample; std is numpy's (no Bessel correction) over the whole batch."""
    real = torch.tensor([[0.0, 2.0], [2.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    torch.manual_seed(0)
    points = dragan_points(real)
    torch.manual_seed(0)
    noise, alpha = torch.rand_like(real), torch.rand(3, dtype=torch.float64)
    std = math.sqrt(2 / 3)  # population std of 0, 2, 2, 0, 1, 1
    assert torch.allclose(points, real + alpha[:, None] * 0.5 * std * noise, atol=1e-12)


def test_dragan_points_lie_anywhere_between_x_and_its_perturbation():
    """Per sample the mean offset is alpha * 0.25 std: alpha spreads over [0, 1], where the
    perturbed points alone would all sit at 0.25 std."""
    torch.manual_seed(0)
    real = torch.randn(256, 1, 16, 16, dtype=torch.float64)
    offset = (dragan_points(real) - real).flatten(1)
    assert float(offset.min()) >= 0 and float(offset.max()) <= 0.5 * float(real.std()) * 1.01
    alpha = offset.mean(dim=1) / (0.25 * float(real.std(correction=0)))
    assert float(alpha.min()) < 0.05 and float(alpha.max()) > 0.95
    assert float(alpha.mean()) == pytest.approx(0.5, abs=0.06)


def column_ramp(x: torch.Tensor) -> torch.Tensor:
    """A D that cares where things are: each column weighted by its index."""
    return (x * torch.arange(x.shape[-1], dtype=x.dtype)).flatten(1).sum(dim=1)


def plain(fn) -> AugmentedCritic:
    """``fn`` as the training step's critic with no augmentation and no instance noise."""
    return AugmentedCritic(fn, DAugment())


def test_bcr_is_zero_for_a_critic_invariant_to_the_flip():
    torch.manual_seed(0)
    real, fake = torch.randn(8, 3, 4, 4).double(), torch.randn(8, 3, 4, 4).double()
    mirror_symmetric = lambda x: x.flatten(1).sum(dim=1)  # noqa: E731
    flips_only = BCRConfig(translate=0.0)
    penalty = build("bcr", flips_only).penalty(DBatch(plain(mirror_symmetric), real, fake))
    assert float(penalty.detach()) == pytest.approx(0.0, abs=1e-12)


def test_bcr_is_positive_for_a_critic_that_sees_position_and_off_with_zero_lambdas():
    torch.manual_seed(0)
    batch = DBatch(plain(column_ramp), torch.randn(8, 3, 8, 8), torch.randn(8, 3, 8, 8))
    assert float(build("bcr").penalty(batch).detach()) > 0
    off = BCRConfig(lambda_real=0.0, lambda_fake=0.0)
    assert float(build("bcr", off).penalty(batch).detach()) == 0.0


class NoisyAugment(DAugment):
    """A D-side augmentation with its own randomness: a fresh offset per image per call."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images + torch.randn(len(images), 1, 1, 1, dtype=images.dtype)


class RecordingSum(nn.Module):
    """A flip-invariant D (the sum of the pixels) that records what it judges."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return x.flatten(1).sum(dim=1)


def test_bcr_augments_once_and_compares_d_on_that_view_and_its_transform():
    """Zhao et al. compare D on one augmented image and its T: the augmentation's own draws
    must not enter the term, so with a flip-invariant D and flips only it is exactly 0."""
    torch.manual_seed(0)
    D = RecordingSum()
    critic = AugmentedCritic(D, NoisyAugment())
    real = torch.randn(8, 2, 6, 6, dtype=torch.float64)
    cfg = BCRConfig(translate=0.0, lambda_fake=0.0)
    penalty = build("bcr", cfg).penalty(DBatch(critic, real, torch.zeros_like(real)))
    assert float(penalty.detach()) == pytest.approx(0.0, abs=1e-10)
    view, transformed = D.inputs
    assert not torch.allclose(view, real)  # D saw the augmented view ...
    for v, t in zip(view, transformed, strict=True):  # ... and a flip of that very view
        assert torch.equal(t, v) or torch.equal(t, v.flip(-1))


def test_bcr_rejects_point_data():
    points = torch.zeros(4, 2)
    with pytest.raises(UserError, match="bcr"):
        build("bcr").penalty(DBatch(plain(column_ramp), points, points))


def shifted(image: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    """Reference transform: replicate-pad by 2 pixels, crop at the offset, maybe mirror."""
    h, w = image.shape[-2:]
    padded = F.pad(image[None], (2, 2, 2, 2), mode="replicate")[0]
    out = padded[:, 2 + dy: 2 + dy + h, 2 + dx: 2 + dx + w]
    return out.flip(-1) if flip else out


def test_bcr_transform_is_a_per_image_flip_and_shift_within_the_limit():
    torch.manual_seed(0)
    batch = torch.randn(16, 2, 8, 8)
    out = flip_translate(batch, 0.25)  # up to 2 pixels at 8 px
    seen = set()
    for image, result in zip(batch, out, strict=True):
        matches = [(dy, dx, flip) for dy in range(-2, 3) for dx in range(-2, 3)
                   for flip in (False, True) if torch.equal(shifted(image, dy, dx, flip), result)]
        assert matches, "every output is one flip/shift of its own input"
        seen.update(matches)
    assert {flip for _, _, flip in seen} == {False, True}
    assert any(dy or dx for dy, dx, _ in seen)


def test_lazy_penalties_run_every_k_steps_with_gain_k_and_eager_ones_join_the_main_step():
    # r1 with gamma 10 every 16 steps (StyleGAN2) and gp with lambda 10 every step
    regs = [build("r1", RegularizerConfig(weight=10.0, every=16)),
            build("gp", RegularizerConfig(weight=10.0, every=1))]
    parts = StepParts(nn.Identity(), AugmentedCritic(nn.Identity(), DAugment()),
                      non_saturating(LossConfig()), regs)
    phases = {phase.name: phase for phase in build_phases(parts)}
    assert (phases["D_main"].every, phases["D_main"].terms) == (1, {"d_loss": 1.0, "gp": 10.0})
    assert (phases["D_reg"].every, phases["D_reg"].terms) == (16, {"r1": 160.0})


@pytest.mark.parametrize(
    ("every", "lr", "betas", "expected"),
    [
        (1, 0.01, (0.81, 0.25), (0.005, (0.9, 0.5))),  # c = 1/2: square roots
        (3, 0.004, (0.0625, 0.25), (0.003, (0.125, 2 ** -1.5))),  # c = 3/4
    ],
)
def test_lazy_optimizer_correction(every, lr, betas, expected):
    new_lr, new_betas = lazy_optimizer_params(lr, betas, every)
    assert (new_lr, *new_betas) == pytest.approx((expected[0], *expected[1]))


@pytest.mark.parametrize("name", ["gp", "dragan", "r1", "r2", "bcr"])
def test_regularizers_are_d_side_and_carry_their_config(name):
    reg = build(name, REGULARIZERS.entry(name).schema(weight=2.5, every=4))
    assert (reg.name, reg.side, reg.weight, reg.every) == (name, "D", 2.5, 4)


@pytest.mark.parametrize(
    ("schema", "options"),
    [
        (RegularizerConfig, {"weight": -1.0}),
        (RegularizerConfig, {"every": 0}),
        (BCRConfig, {"lambda_real": -1.0}),
        (BCRConfig, {"translate": 0.5}),
    ],
)
def test_regularizer_configs_reject_invalid_values(schema, options):
    with pytest.raises(UserError, match=next(iter(options))):
        schema(**options)


def test_weight_clipping_bounds_every_parameter():
    layer = nn.Linear(3, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-1.0, 0.005, 2.0]]))
        layer.bias.fill_(-0.5)
    clip_weights(layer, 0.01)
    assert layer.weight[0].tolist() == pytest.approx([-0.01, 0.005, 0.01])
    assert layer.bias.tolist() == pytest.approx([-0.01])


def test_instance_noise_has_the_requested_std_and_none_at_zero():
    torch.manual_seed(0)
    x = torch.zeros(20_000)
    noisy = instance_noise(x, 0.5)
    assert float(noisy.std()) == pytest.approx(0.5, abs=0.02)
    assert float(noisy.mean()) == pytest.approx(0.0, abs=0.02)
    assert torch.equal(instance_noise(x, 0.0), x)


@pytest.mark.parametrize(("kimg", "std"), [(0, 0.1), (25, 0.075), (100, 0.0), (250, 0.0)])
def test_instance_noise_decays_linearly_to_zero(kimg, std):
    cfg = LossConfig(instance_noise_std=0.1, instance_noise_kimg=100.0)
    assert instance_noise_std(cfg, kimg) == pytest.approx(std)
