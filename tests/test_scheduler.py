"""The step scheduler: lanes (CUDA streams) for independent tasks, one code path on every
device, per-task timings, and the same numbers as the sequential schedule."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
from test_step import parts

from gan_runner.augment.base import DAugment
from gan_runner.config.compose import compose_config, validated
from gan_runner.core.errors import UserError
from gan_runner.objectives.base import RegularizerConfig
from gan_runner.train.phases import AugmentedCritic, Phase, StepParts, Task, build_phases
from gan_runner.train.scheduler import StepScheduler
from gan_runner.train.streams import HostLanes, Placement, plan_lanes, resolve_lane_count

from conftest import TINY_FMNIST, TINY_TOY, needs_fmnist


def d_main(loss: str = "ns", regs: dict[str, RegularizerConfig] | None = None) -> Phase:
    return next(p for p in build_phases(parts(regs or {}, loss)) if p.name == "D_main")


def test_two_lanes_split_the_discriminator_step_into_fakes_and_reals():
    plan = {p.task: p for p in plan_lanes(d_main(), lanes=2)}
    assert plan["fake"] == Placement("fake", 0, ())
    assert plan["real_logits"] == Placement("real_logits", 1, ())
    assert plan["fake_logits"] == Placement("fake_logits", 0, ())
    # the loss joins the lanes: it runs after the other lane's event
    assert plan["d_loss"].waits == ("fake_logits",)


def test_one_lane_is_the_sequential_schedule_without_waits():
    plan = plan_lanes(d_main(regs={"gp": RegularizerConfig(10, 1)}), lanes=1)
    assert [p.task for p in plan] == ["fake", "real_logits", "fake_logits", "d_loss", "gp"]
    assert all(p.lane == 0 and not p.waits for p in plan)


def test_more_independent_tasks_than_lanes_share_the_least_busy_lane():
    tasks = tuple(Task(f"t{i}", ("real",), lambda r: r) for i in range(5))
    plan = plan_lanes(Phase("p", "D", 1, tasks, {"t0": 1.0}), lanes=3)
    assert [p.lane for p in plan] == [0, 1, 2, 0, 1]


def test_lane_count_setting():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_lane_count("auto", cpu) == 1 and resolve_lane_count("auto", cuda) == 2
    assert resolve_lane_count("off", cuda) == 1 and resolve_lane_count("3", cpu) == 3


@pytest.mark.parametrize("value", ["0", "many", "-2"])
def test_bad_stream_settings_are_refused(value):
    with pytest.raises(UserError, match=r"trainer\.streams"):
        validated(compose_config([*TINY_TOY, f"trainer.streams={value}"]))


class RecordingLanes(HostLanes):
    """Host lanes that write down every stream operation, to check the event protocol."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.current: int | None = None
        self.calls: list[tuple[Any, ...]] = []

    def wait(self, lane: int, event: Any) -> None:
        self.calls.append(("wait", lane, event))

    def record(self, lane: int) -> Any:
        self.calls.append(("record", lane))
        return f"event{len(self.calls)}"

    def share(self, tensor: torch.Tensor, lane: int) -> None:
        self.calls.append(("share", lane, tuple(tensor.shape)))

    def join(self) -> None:
        self.calls.append(("join",))


def test_cross_lane_inputs_are_waited_for_and_kept_alive_for_the_reader():
    phase = d_main()
    lanes = RecordingLanes(2)
    env = {"z": torch.randn(4, 2), "real": torch.randn(4, 2)}
    StepScheduler(lanes).run(phase, env)
    calls = lanes.calls
    records = [i for i, call in enumerate(calls) if call == ("record", 0)]
    fake_logits_event = f"event{records[1] + 1}"  # lane 0 records fake, then fake_logits
    assert ("wait", 1, fake_logits_event) in calls  # d_loss (lane 1) waits for lane 0
    assert ("share", 1, (4, 2)) in calls  # `real` (made on lane 0) is read on lane 1
    assert ("share", 1, (4,)) in calls  # fake logits read by d_loss on lane 1
    assert calls[-2:] == [("join",), ("share", 0, ())]  # the loss term comes back to lane 0


@pytest.mark.parametrize("loss,regs", [("ns", {}), ("ragan", {"r1": RegularizerConfig(1, 1)}),
                                       ("wgan_gp", {"gp": RegularizerConfig(10, 1)})])
def test_lanes_give_the_sequential_losses_and_gradients_bitwise(loss, regs):
    def grads(lanes: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(0)
        step = parts(regs, loss)
        scheduler = StepScheduler(HostLanes(lanes))
        total = torch.zeros(())
        for phase in build_phases(step):
            torch.manual_seed(1)
            value, _ = scheduler.run(phase, {"z": torch.randn(4, 2), "real": torch.randn(4, 2)})
            total = total + value
        total.backward()
        return total, [p.grad for p in step.critic.D.parameters()]

    (loss1, grads1), (loss3, grads3) = grads(1), grads(3)
    assert torch.equal(loss1, loss3)
    assert all(torch.equal(a, b) for a, b in zip(grads1, grads3, strict=True))


def test_timings_cover_every_task_and_the_loops_own_work():
    phase = d_main()
    scheduler = StepScheduler(HostLanes(2), timing=True)
    for _ in range(3):
        loss, _ = scheduler.run(phase, {"z": torch.randn(4, 2), "real": torch.randn(4, 2)})
        with scheduler.measure(phase.name, "backward"):
            loss.backward()
    timings = {t.task: t for t in scheduler.timings()}
    assert set(timings) == {"fake", "real_logits", "fake_logits", "d_loss", "backward"}
    assert all(t.calls == 3 and t.duration_ms >= 0 for t in timings.values())
    assert timings["backward"].start_ms >= timings["d_loss"].start_ms
    assert scheduler.timings() == []  # a report empties the window


def test_training_rows_carry_per_task_times(make_trainer):
    trainer = make_trainer(TINY_TOY)
    trainer.run()
    rows = [row for row in _rows(trainer) if row["kind"] == "train"]
    assert rows[-1]["time/D_main/fake_logits"] > 0 and rows[-1]["time/G_main/backward"] > 0


def test_stream_settings_do_not_change_a_cpu_run(make_trainer, tmp_path):
    weights = []
    for streams in ("off", "2"):
        trainer = make_trainer([*TINY_TOY, "regularizer=r1", f"trainer.streams={streams}"],
                               tmp_path / streams)
        trainer.run()
        weights.append(trainer.state.D.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_streams_match_the_sequential_schedule_to_rounding():
    def run(lanes: int) -> list[torch.Tensor]:
        from gan_runner.train.streams import CudaLanes

        torch.manual_seed(0)
        step = parts({"r1": RegularizerConfig(1, 1)}, "ragan")
        step.G.cuda()
        step.critic.D.cuda()
        scheduler = StepScheduler(CudaLanes(lanes, torch.device("cuda")))
        torch.manual_seed(1)
        env = {"z": torch.randn(64, 2, device="cuda"), "real": torch.randn(64, 2, device="cuda")}
        loss, _ = scheduler.run(d_main_of(step), env)
        loss.backward()
        torch.cuda.synchronize()
        return [p.grad.cpu() for p in step.critic.D.parameters()]

    for a, b in zip(run(1), run(2), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def d_main_of(step: StepParts) -> Phase:
    return next(p for p in build_phases(step) if p.name == "D_main")


# ------------------------------------------------------------------ non-finite guard
def poison_d_loss(trainer, calls: int) -> list[int]:
    """The next ``calls`` D losses are NaN; returns a live count of poisoned calls."""
    seen = [0]
    real_d = trainer.loss.d

    def d(real_logits, fake_logits):
        seen[0] += 1
        value = real_d(real_logits, fake_logits)
        return value * float("nan") if seen[0] <= calls else value

    trainer.loss = dataclasses.replace(trainer.loss, d=d)
    trainer.phases = build_phases(StepParts(trainer.state.G, trainer.critic, trainer.loss,
                                            trainer.regularizers, trainer.cfg.trainer.batch_size))
    return seen


def test_a_non_finite_loss_adds_nothing_to_the_weights_and_is_counted_at_the_log_row(
        make_trainer):
    trainer = make_trainer(TINY_TOY)
    before = {k: v.clone() for k, v in trainer.state.D.state_dict().items()}
    poison_d_loss(trainer, calls=2)
    trainer.iteration()
    trainer.settle_nonfinite()  # what the loop does at its next log row
    assert trainer.state.skipped == 1
    # its gradient was zeroed, and a zero gradient moves a fresh Adam nowhere
    assert all(torch.equal(before[k], v) for k, v in trainer.state.D.state_dict().items())
    trainer.iteration()
    trainer.iteration()  # finite again: D moves, the streak resets
    trainer.settle_nonfinite()
    streaks = {net: counts.streak for net, counts in trainer.nonfinite.read().items()}
    assert trainer.state.skipped == 2 and streaks == {"G": 0, "D": 0}
    assert not torch.equal(before["net.0.weight"], trainer.state.D.state_dict()["net.0.weight"])


def test_a_non_finite_streak_restores_the_last_checkpoint_and_says_so(make_trainer, caplog):
    trainer = make_trainer([*TINY_TOY, "trainer.nonfinite_patience=3"])
    trainer.run()  # leaves checkpoints behind
    saved = {k: v.clone() for k, v in trainer.state.D.state_dict().items()}
    trainer.iteration()  # move away from the checkpoint
    nimg = trainer.state.nimg
    poison_d_loss(trainer, calls=3)
    for _ in range(3):
        trainer.iteration()
    trainer.settle_nonfinite()  # the decision waits for the next log row
    assert trainer.state.restores == 1
    assert all(torch.equal(saved[k], v) for k, v in trainer.state.D.state_dict().items())
    assert trainer.state.nimg == nimg + 3 * 32  # the run goes on with new batches
    assert "restored networks and optimizers" in caplog.text


def test_divergence_before_any_checkpoint_stops_with_one_clear_error(make_trainer):
    trainer = make_trainer([*TINY_TOY, "trainer.nonfinite_patience=2"])
    poison_d_loss(trainer, calls=10)
    trainer.iteration()
    trainer.iteration()
    with pytest.raises(UserError, match=r"training diverged .* before the first checkpoint"):
        trainer.settle_nonfinite()  # the decision waits for the next log row


# ------------------------------------------------------------------ speed options
@needs_fmnist
def test_channels_last_trains_to_the_same_weights(make_trainer, tmp_path):
    weights = []
    for flag in ("false", "true"):
        trainer = make_trainer([*TINY_FMNIST, f"trainer.channels_last={flag}"], tmp_path / flag)
        for _ in range(2):
            trainer.iteration()
        weights.append(trainer.state.G.state_dict())
    for key in weights[0]:
        assert torch.allclose(weights[0][key], weights[1][key], atol=1e-5), key


def test_a_failing_compile_falls_back_to_eager_with_one_warning(make_trainer, monkeypatch,
                                                                caplog):
    def broken_compile(module):
        def call(*args):
            raise RuntimeError("no C++ compiler found")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    trainer = make_trainer([*TINY_TOY, "trainer.compile=true"])
    trainer.iteration()
    trainer.iteration()
    assert caplog.text.count("torch.compile failed") == 2  # once for G, once for D
    assert trainer.state.skipped == 0


def test_fp16_keeps_a_loss_scale_per_network_in_the_checkpoint(make_trainer):
    trainer = make_trainer([*TINY_TOY, "trainer.precision=fp16"])
    trainer.iteration()
    state = trainer.state.state_dict()
    assert set(state["scalers"]) == {"G", "D"} and state["scalers"]["D"]["scale"] > 0


def test_eval_history_travels_in_the_checkpoint(make_trainer):
    trainer = make_trainer([*TINY_TOY, "metrics=toy", "metrics.every_kimg=0.064",
                            "metrics.num_fakes=256"])
    trainer.run()
    history = trainer.state.state_dict()["history"]
    assert [h["kimg"] for h in history] == [0.064, 0.128] and "modes" in history[0]


def _rows(trainer) -> list[dict[str, Any]]:
    from gan_runner.storage.runlog import read_rows

    return read_rows(trainer.run_dir / "metrics.jsonl")


class CountingLinear(torch.nn.Linear):
    def __init__(self) -> None:
        super().__init__(2, 1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return super().forward(x)


def test_main_losses_use_the_fast_d_and_penalties_the_plain_one():
    plain, fast = CountingLinear(), CountingLinear()
    critic = AugmentedCritic(plain, DAugment(), fast_D=fast)
    critic.main(torch.zeros(1, 2))
    critic(torch.zeros(1, 2))
    assert (fast.calls, plain.calls) == (1, 1)
