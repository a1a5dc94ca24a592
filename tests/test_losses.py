"""The adversarial losses: values on fixed logits, gradient directions, label smoothing."""

from __future__ import annotations

import math

import pytest
import torch

import gan_runner.objectives.losses  # noqa: F401  (registers the losses)
from gan_runner.core.errors import UserError
from gan_runner.objectives.base import LOSSES, AdversarialLoss, LossConfig

ALL = ("ns", "minimax", "lsgan", "wgan", "wgan_gp", "hinge", "rsgan", "ragan")
SMOOTHABLE = ("ns", "minimax")
RELATIVISTIC = ("rsgan", "ragan")


def build(name: str, **options: float) -> AdversarialLoss:
    return LOSSES.get(name)(LossConfig(name=name, **options))


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def both_sides(loss: AdversarialLoss, real: torch.Tensor, fake: torch.Tensor) -> tuple[float, ...]:
    g_real = real if loss.g_needs_real else None
    return float(loss.d(real, fake)), float(loss.g(fake, g_real))


L3 = math.log(3.0)  # sigmoid(L3) = 3/4, sigmoid(-L3) = 1/4, sigmoid(2 * L3) = 9/10
# D's probabilities below: real logits [0, L3] -> [1/2, 3/4]; fake logits [0, -L3] -> [1/2, 1/4]
PROB_REAL, PROB_FAKE = t(0.0, L3), t(0.0, -L3)
# (name, real logits, fake logits, D loss, G loss), the expected values worked out by hand
HAND_VALUES = [
    # -mean log D(x) - mean log(1 - D(G(z))) ; G: -mean log D(G(z))
    ("ns", PROB_REAL, PROB_FAKE,
     -(math.log(1 / 2) + math.log(3 / 4)), -(math.log(1 / 2) + math.log(1 / 4)) / 2),
    # same D ; G: mean log(1 - D(G(z)))
    ("minimax", PROB_REAL, PROB_FAKE,
     -(math.log(1 / 2) + math.log(3 / 4)), (math.log(1 / 2) + math.log(3 / 4)) / 2),
    # 1/2 mean (r - 1)^2 + 1/2 mean f^2 = 1/2 (1 + 1)/2 + 1/2 (1 + 9)/2 ; G: 1/2 (0 + 16)/2
    ("lsgan", t(0.0, 2.0), t(1.0, -3.0), 3.0, 4.0),
    # mean f - mean r = -1 - 1 ; G: -mean f
    ("wgan", t(0.0, 2.0), t(1.0, -3.0), -2.0, 1.0),
    ("wgan_gp", t(0.0, 2.0), t(1.0, -3.0), -2.0, 1.0),
    # mean relu(1 - r) + mean relu(1 + f) = (1 + 0)/2 + (2 + 0)/2 ; G: -mean f
    ("hinge", t(0.0, 2.0), t(1.0, -3.0), 1.5, 1.0),
    # r - f = [0, L3] -> sigmoid [1/2, 3/4] ; f - r -> [1/2, 1/4]
    ("rsgan", t(0.0, L3), t(0.0, 0.0),
     -(math.log(1 / 2) + math.log(3 / 4)) / 2, -(math.log(1 / 2) + math.log(1 / 4)) / 2),
    # mean r = L3, mean f = 0: sigmoid(r - mean f) = [1/2, 9/10], sigmoid(f - mean r) = [1/10, 1/2]
    ("ragan", t(0.0, 2 * L3), t(-L3, L3),
     -(math.log(1 / 2) + math.log(9 / 10)), -(math.log(1 / 10) + math.log(1 / 2))),
]


@pytest.mark.parametrize(("name", "real", "fake", "d_loss", "g_loss"), HAND_VALUES,
                         ids=[case[0] for case in HAND_VALUES])
def test_loss_values_match_hand_computation(name, real, fake, d_loss, g_loss):
    assert both_sides(build(name), real, fake) == pytest.approx((d_loss, g_loss), abs=1e-12)


def test_one_sided_label_smoothing_makes_the_real_target_0_9():
    real_probs, fake_probs = (1 / 2, 3 / 4), (1 / 2, 1 / 4)
    real_term = -sum(0.9 * math.log(p) + 0.1 * math.log(1 - p) for p in real_probs) / 2
    fake_term = -sum(math.log(1 - p) for p in fake_probs) / 2
    for name in SMOOTHABLE:
        smoothed = build(name, real_label=0.9)
        assert float(smoothed.d(PROB_REAL, PROB_FAKE)) == pytest.approx(real_term + fake_term)
        # the G side has no real target, so smoothing leaves it alone
        plain_g = float(build(name).g(PROB_FAKE, None))
        assert float(smoothed.g(PROB_FAKE, None)) == pytest.approx(plain_g)


@pytest.mark.parametrize("name", sorted(set(ALL) - set(SMOOTHABLE)))
def test_label_smoothing_is_rejected_where_there_is_no_real_target(name):
    with pytest.raises(UserError, match=r"loss\.real_label"):
        build(name, real_label=0.9)


def logit_gradients(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """d(D loss)/d(real), d(D loss)/d(fake), d(G loss)/d(fake) at logits inside every margin."""
    loss = build(name)
    real = t(0.2, 0.6).requires_grad_(True)
    fake = t(0.1, 0.5).requires_grad_(True)
    d_real, d_fake = torch.autograd.grad(loss.d(real, fake), (real, fake))
    (g_fake,) = torch.autograd.grad(loss.g(fake, real.detach() if loss.g_needs_real else None),
                                    fake)
    return d_real, d_fake, g_fake


@pytest.mark.parametrize("name", ALL)
def test_d_learns_to_score_real_up_and_fake_down_and_g_pushes_fake_up(name):
    d_real, d_fake, g_fake = logit_gradients(name)
    assert (d_real < 0).all()  # D loss falls when real logits rise
    assert (d_fake > 0).all()  # ... and when fake logits fall
    assert (g_fake < 0).all()  # G loss falls when fake logits rise


def test_minimax_g_saturates_where_ns_does_not():
    # a confident D (fake logit -10): the minimax gradient vanishes, the ns one stays ~ -1/N
    fake = t(-10.0).requires_grad_(True)
    (minimax_grad,) = torch.autograd.grad(build("minimax").g(fake, None), fake)
    (ns_grad,) = torch.autograd.grad(build("ns").g(fake, None), fake)
    assert float(minimax_grad) == pytest.approx(-1 / (1 + math.exp(10)))
    assert float(ns_grad) == pytest.approx(-1 / (1 + math.exp(-10)))


@pytest.mark.parametrize("name", ALL)
def test_losses_and_gradients_stay_finite_for_extreme_logits(name):
    loss = build(name)
    real = t(300.0, -300.0).requires_grad_(True)
    fake = t(-300.0, 300.0).requires_grad_(True)
    total = loss.d(real, fake) + loss.g(fake, real if loss.g_needs_real else None)
    grads = torch.autograd.grad(total, (real, fake))
    assert torch.isfinite(total)
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", RELATIVISTIC)
def test_relativistic_g_loss_depends_on_the_real_logits(name):
    loss = build(name)
    fake = t(0.0, 1.0)
    assert loss.g_needs_real
    assert float(loss.g(fake, t(0.0, 0.0))) != pytest.approx(float(loss.g(fake, t(2.0, 2.0))))


@pytest.mark.parametrize("name", sorted(set(ALL) - set(RELATIVISTIC)))
def test_other_losses_spare_the_g_step_a_real_forward_pass(name):
    assert not build(name).g_needs_real


def test_only_wgan_clips_the_critic_after_its_step_and_uses_the_configured_bound():
    critic = torch.nn.Linear(3, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.2, -0.01, -0.3]]))
    build("wgan", clip=0.05).after_d_step(critic)
    assert torch.equal(critic.weight, torch.tensor([[0.05, -0.01, -0.05]]))
    assert critic.bias.abs().item() <= torch.tensor(0.05).item()
    assert [n for n in ALL if build(n).after_d_step is not None] == ["wgan"]


def test_every_loss_is_registered_under_its_config_name():
    assert set(ALL) <= set(LOSSES.names())
