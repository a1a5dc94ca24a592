"""Learning-rate schedules: a function of the image count, so resume continues them exactly."""

from __future__ import annotations

import pytest
import torch

from gan_runner.config.schema import OptimizerConfig
from gan_runner.core.errors import UserError
from gan_runner.train.optim import build_optimizer, lr_factor, scale_lr


@pytest.mark.parametrize(("schedule", "kimg", "factor"), [
    ("constant", 0.0, 1.0), ("constant", 90.0, 1.0),
    ("linear", 0.0, 1.0), ("linear", 25.0, 0.75), ("linear", 100.0, 0.0),
    ("linear", 120.0, 0.0),  # a run extended past its old budget does not go negative
])
def test_the_share_of_the_initial_lr_follows_the_schedule(schedule, kimg, factor):
    assert lr_factor(schedule, kimg, 100.0) == pytest.approx(factor)


def test_scaling_starts_from_the_lr_the_optimizer_was_built_with_lazy_correction_included():
    cfg = OptimizerConfig(d_lr=1e-3)
    opt = build_optimizer(cfg, "d", [torch.nn.Parameter(torch.zeros(2))], lazy_every=16)
    built = opt.param_groups[0]["lr"]
    assert built == pytest.approx(1e-3 * 16 / 17)  # StyleGAN2's lazy-regularization correction
    scale_lr(opt, 0.5)
    scale_lr(opt, 0.5)  # not compounded
    assert opt.param_groups[0]["lr"] == pytest.approx(built / 2)


def test_an_optimizer_saved_before_schedules_existed_keeps_its_lr_as_the_initial_one():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=2e-4)
    assert "initial_lr" not in opt.param_groups[0]
    scale_lr(opt, 1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-4)


def test_an_unknown_schedule_is_a_user_error():
    with pytest.raises(UserError, match="lr_schedule"):
        OptimizerConfig(lr_schedule="cosine")
