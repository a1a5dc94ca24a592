"""The ADA p controller (r_t heuristic), the r_v diagnostic, and the augment config options."""

from __future__ import annotations

import re

import pytest
import torch

from gan_runner.augment.ada import OPS, AdaConfig, AdaptiveAugment, FixedAugment, ada_augment
from gan_runner.augment.base import AUGMENTS
from gan_runner.augment.controller import AdaController, ada_step, r_v
from gan_runner.config.compose import compose_config, validated
from gan_runner.core.errors import UserError

BATCH = 64
STEP = BATCH * 4 / (500 * 1000)  # the paper's: batch * interval / (ada_kimg * 1000)


def logits(*signs: float) -> torch.Tensor:
    """A batch of real logits with the given signs and arbitrary magnitudes."""
    return torch.tensor(signs) * torch.linspace(0.1, 7.0, len(signs))


def observe(controller: AdaController, batch: torch.Tensor, times: int) -> None:
    for _ in range(times):
        controller.observe(batch)


def test_defaults_are_the_papers():
    controller = AdaController(BATCH)
    assert (controller.target, controller.interval, controller.p_max) == (0.6, 4, 0.8)
    assert controller.step_size == STEP == ada_step(BATCH, 4, 500)
    assert controller.p_value == 0.0


def test_p_rises_by_exactly_one_step_an_interval_after_an_interval_of_overconfident_reals():
    controller = AdaController(BATCH, p_init=0.3)
    observe(controller, logits(1, 1, 1, 1, 1), 3)  # p only moves at the end of an interval
    assert controller.p_value == 0.3 and "augment/rt" not in controller.stats()
    controller.observe(logits(1, 1, 1, 1, 1))  # r_t is measured, on its way to the host
    assert controller.p_value == 0.3 and controller.stats()["augment/rt"] == 1.0
    observe(controller, logits(1, 1, 1, 1, 1), 4)  # and moves p at the end of the next interval
    assert controller.p_value == 0.3 + STEP
    assert float(controller.p) == 0.3 + STEP  # the buffer a checkpoint saves


def test_r_t_is_the_mean_sign_over_the_interval_not_the_mean_logit():
    """Mostly barely-positive logits with one very negative: the mean logit is below 0, the
    mean sign 0.75 is above the target, so p goes up."""
    controller = AdaController(BATCH, p_init=0.3)
    observe(controller, torch.tensor([0.1] * 7 + [-50.0]), 8)  # r_t moves p an interval later
    assert controller.stats() == {"augment/p": 0.3 + STEP, "augment/rt": 0.75}


@pytest.mark.parametrize(("signs", "move"), [
    ((1, 1, 1, 1, 1), 1),  # r_t = 1
    ((1, 1, 1, 1, 1, 1, 1, 1, 1, -1), 1),  # r_t = 0.8
    ((1, 1, 1, 1, -1), 0),  # r_t = 0.6, the target: p stays
    ((1, 1, 1, -1, -1), -1),  # r_t = 0.2
])
def test_p_moves_towards_the_target_by_the_sign_of_r_t_minus_target(signs, move):
    controller = AdaController(BATCH, p_init=0.5)
    observe(controller, logits(*signs), 8)  # r_t moves p an interval later
    assert controller.p_value == 0.5 + move * STEP


def test_the_logits_of_a_dropped_update_do_not_count_towards_r_t():
    """The loop passes NaN logits for a D step whose update was not finite."""
    controller = AdaController(BATCH, p_init=0.3)
    observe(controller, logits(1, 1, 1, -1), 3)
    controller.observe(torch.full((4,), float("nan")))
    assert controller.stats()["augment/rt"] == 0.5  # (3 * 2) / (3 * 4)


def test_p_is_clamped_to_zero_and_p_max():
    controller = AdaController(BATCH, p_init=0.0)
    observe(controller, logits(-1, -1, 1), 4)
    assert controller.p_value == 0.0
    controller = AdaController(BATCH, p_max=0.5, p_init=0.5 - STEP / 2)
    observe(controller, logits(1, 1, 1), 8)
    assert controller.p_value == 0.5


def test_ada_kimg_is_the_number_of_real_images_for_p_to_cross_from_0_to_1():
    controller = AdaController(batch_size=100, interval=2, ada_kimg=2.0, p_max=1.0)
    observe(controller, logits(1, 1), 2)  # the first interval's r_t moves p at the second's end
    observe(controller, logits(1, 1), 2000 // 100 - 2)
    assert controller.p_value == pytest.approx(0.9)
    observe(controller, logits(1, 1), 2)
    assert controller.p_value == pytest.approx(1.0)


def test_a_resumed_controller_continues_exactly_where_the_saved_one_was():
    uninterrupted, saved = AdaController(BATCH, p_init=0.2), AdaController(BATCH, p_init=0.2)
    for controller in (uninterrupted, saved):
        observe(controller, logits(1, 1, -1), 4)
        observe(controller, logits(1, 1, 1), 2)  # half an interval accumulated
    state = saved.state_dict()
    assert set(state) == {"p", "rt", "sign_sum", "sign_count", "steps"}
    resumed = AdaController(BATCH)
    resumed.load_state_dict(state)
    assert resumed.stats() == saved.stats()
    for controller in (uninterrupted, resumed):
        observe(controller, logits(-1, -1, -1), 2)  # r_t of this interval: (6 - 6) / 12 = 0
    assert resumed.stats() == uninterrupted.stats()
    assert resumed.stats()["augment/rt"] == 0.0


def test_r_v_compares_held_out_reals_with_training_reals_and_fakes():
    train, generated = torch.full((8,), 2.0), torch.full((8,), -2.0)
    assert r_v(train, torch.full((8,), 1.0), generated) == pytest.approx(0.25)
    assert r_v(train, train, generated) == 0.0  # no overfitting
    assert r_v(train, generated, generated) == 1.0  # held-out reals look fake


def test_adaptive_augment_uses_the_controllers_p_and_reports_it():
    augment = ada_augment(AdaConfig(interval=1, ada_kimg=0.1), batch_size=10)
    images = torch.rand(16, 3, 8, 8) * 2 - 1
    assert augment(images) is images  # p starts at 0
    assert augment.stats() == {"augment/p": 0.0}
    augment.observe(logits(1, 1, 1))
    assert augment.stats() == {"augment/p": 0.0, "augment/rt": 1.0}
    augment.observe(logits(1, 1, 1))  # the r_t of the interval before moves p
    assert augment.stats() == {"augment/p": 0.1, "augment/rt": 1.0}
    torch.manual_seed(0)
    assert not torch.equal(augment(images), images)


def test_a_resumed_adaptive_augment_augments_like_the_saved_one():
    cfg = AdaConfig(interval=2, ada_kimg=0.5)
    saved, resumed = ada_augment(cfg, batch_size=50), ada_augment(cfg, batch_size=50)
    observe(saved.controller, logits(1, 1), 7)  # two adjustments and half an interval
    resumed.load_state_dict(saved.state_dict())
    images = torch.rand(16, 3, 8, 8) * 2 - 1
    torch.manual_seed(0)
    expected = saved(images)
    torch.manual_seed(0)
    assert resumed.controller.p_value == saved.controller.p_value == pytest.approx(0.4)
    assert torch.equal(resumed(images), expected)


def test_the_augment_options_compose_and_build():
    ada = validated(compose_config(["augment=ada", "trainer.batch_size=32"]))
    assert ada.augment == AdaConfig()
    built = AUGMENTS.get("ada")(ada.augment, ada.trainer.batch_size)
    assert isinstance(built, AdaptiveAugment) and built.controller.step_size == ada_step(32, 4, 500)
    fixed = validated(compose_config(["augment=fixed", "augment.p=0.3", "augment.preset=bgcfnc"]))
    built = AUGMENTS.get("fixed")(fixed.augment, 64)
    assert isinstance(built, FixedAugment) and built.stats() == {"augment/p": 0.3}
    assert set(built.pipe.ops) == set(OPS)


@pytest.mark.parametrize(("override", "fragment"), [
    ("augment.preset=bgcx", "augment.preset='bgcx' is not valid"),
    ("augment.p_max=1.5", "augment.p_max=1.5 is not valid"),
    ("augment.target=1.0", "augment.target=1.0 is not valid"),
    ("augment.interval=0", "augment.interval=0 is not valid"),
    ("augment.p_init=0.9", "augment.p_init=0.9 is not valid"),
])
def test_bad_ada_values_are_refused_with_the_key_named(override, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        validated(compose_config(["augment=ada", override]))


def test_a_fixed_p_outside_zero_to_one_is_refused():
    with pytest.raises(UserError, match=r"augment\.p=1\.5 is not valid"):
        validated(compose_config(["augment=fixed", "augment.p=1.5"]))
