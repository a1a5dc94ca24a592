"""The step as data: phases, lazy regularization, EMA and failure warnings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_runner.augment.base import DAugment
from gan_runner.core.errors import UserError
from gan_runner.objectives.base import LOSSES, REGULARIZERS, LossConfig, RegularizerConfig
from gan_runner.train.ema import ema_beta, update_ema
from gan_runner.train.phases import AugmentedCritic, Phase, StepParts, Task, build_phases
from gan_runner.train.scheduler import StepScheduler
from gan_runner.train.watch import FailureWatch


def parts(regs: dict[str, RegularizerConfig], loss: str = "ns") -> StepParts:
    G, D = nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    G.z_dim = 2
    return StepParts(G, AugmentedCritic(D, DAugment()), LOSSES.get(loss)(LossConfig(name=loss)),
                     [REGULARIZERS.get(n)(n, c) for n, c in regs.items()], batch_size=4)


def test_eager_penalties_join_the_main_phase_and_lazy_ones_get_their_own():
    phases = build_phases(parts({"gp": RegularizerConfig(10, 1),
                                 "r1": RegularizerConfig(5, 16)}))
    by_name = {p.name: p for p in phases}
    assert set(by_name) == {"D_main", "D_reg", "G_main"}
    assert by_name["D_main"].terms == {"d_loss": 1.0, "gp": 10.0}
    assert by_name["D_reg"].every == 16 and by_name["D_reg"].terms == {"r1": 5.0 * 16}


def test_relativistic_losses_read_real_logits_in_the_generator_phase():
    g_main = next(p for p in build_phases(parts({}, "ragan")) if p.name == "G_main")
    assert "real_logits" in [t.name for t in g_main.tasks]
    g_main = next(p for p in build_phases(parts({}, "ns")) if p.name == "G_main")
    assert "real_logits" not in [t.name for t in g_main.tasks]


def test_lazy_penalties_of_one_side_must_share_an_interval():
    with pytest.raises(UserError, match="different intervals"):
        build_phases(parts({"r1": RegularizerConfig(5, 16), "r2": RegularizerConfig(5, 8)}))


def test_a_task_reading_an_output_not_yet_computed_is_rejected():
    with pytest.raises(ValueError, match="needs"):
        Phase("bad", "D", 1, (Task("b", ("a",), lambda a: a), Task("a", (), lambda: 1)),
              {"b": 1.0})


def test_the_scheduler_sums_the_weighted_terms():
    phase = Phase("p", "D", 1, (Task("a", ("real",), lambda r: r.sum()),
                                Task("b", ("a",), lambda a: a * 2)), {"a": 1.0, "b": 0.5})
    loss, env = StepScheduler().run(phase, {"real": torch.tensor([1.0, 2.0])})
    assert loss.item() == 3.0 + 0.5 * 6.0 and env["b"].item() == 6.0


def test_ema_half_life_is_in_images_and_ramps_up():
    assert ema_beta(batch_size=10, nimg=10**9, ema_kimg=0.01, rampup=None) == pytest.approx(0.5)
    # early on the half-life is capped at rampup x images seen
    assert ema_beta(32, nimg=1000, ema_kimg=10, rampup=0.05) == pytest.approx(0.5 ** (32 / 50))


def test_ema_update_moves_parameters_and_copies_buffers():
    live, ema = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        live.weight.fill_(2.0)
        ema.weight.fill_(0.0)
        live.running_mean.fill_(7.0)
    update_ema(ema, live, beta=0.75)
    assert torch.allclose(ema.weight, torch.full((3,), 0.5))
    assert torch.equal(ema.running_mean, live.running_mean)


def test_failure_watch_warns_once_when_d_wins_outright():
    watch = FailureWatch()
    collapsed = {"loss/D": 1e-5, "D/accuracy": 1.0}
    assert len(watch.check(collapsed)) == 1
    assert watch.check(collapsed) == []  # still true: no repeat
    assert watch.check({"loss/D": 1.2, "D/accuracy": 0.6}) == []
    assert len(watch.check(collapsed)) == 1  # a new episode


def test_failure_watch_flags_exploding_and_vanishing_gradients():
    messages = FailureWatch().check({"grad_norm/G": 1e5, "grad_norm/D": 1e-9})
    assert any("G gradient norm" in m and "exploding" in m for m in messages)
    assert any("D gradient norm" in m and "vanished" in m for m in messages)
