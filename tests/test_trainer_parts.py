"""The Trainer's parts: phases that carry what the loop needs, periodic events, the pace
forecast and the progress bar that moves with every step."""

from __future__ import annotations

import json

import pytest
import torch
from test_step import parts

from gan_runner.objectives.base import RegularizerConfig
from gan_runner.train.events import PeriodicEvent, due_events
from gan_runner.train.phases import build_phases
from gan_runner.train.progress import Pace, TrainingProgress, duration

from conftest import TINY_TOY


def by_name(phases):
    return {p.name: p for p in phases}


def test_lazy_r1_runs_no_generator_forward_but_a_lazy_penalty_on_fakes_does():
    # StyleGAN2-ADA's Dreg phase reads real images only: R1 declares ("real",)
    r1 = by_name(build_phases(parts({"r1": RegularizerConfig(5, 16)})))["D_reg"]
    assert [t.name for t in r1.tasks] == ["r1"] and r1.reads == {"real"}
    r2 = by_name(build_phases(parts({"r2": RegularizerConfig(5, 16)})))["D_reg"]
    assert [t.name for t in r2.tasks] == ["fake", "r2"] and r2.reads == {"z"}
    gp = by_name(build_phases(parts({"gp": RegularizerConfig(5, 16)})))["D_reg"]
    assert [t.name for t in gp.tasks] == ["fake", "gp"] and gp.reads == {"real", "z"}


def test_phases_say_which_logits_feed_ada_and_what_is_logged_not_their_names():
    phases = by_name(build_phases(parts({"gp": RegularizerConfig(10, 1),
                                         "r1": RegularizerConfig(5, 16)})))
    assert [n for n, p in phases.items() if p.observed] == ["D_main"]
    assert phases["D_main"].label == "D" and phases["G_main"].label == "G"
    assert phases["D_main"].reported == ("gp",) and phases["D_reg"].reported == ("r1",)
    assert "real" not in phases["G_main"].reads  # ns: no real forward in the G step
    ragan = by_name(build_phases(parts({}, loss="ragan")))
    assert "real" in ragan["G_main"].reads


def test_wgan_clipping_is_a_post_step_hook_of_every_d_phase_and_no_other():
    phases = build_phases(parts({"gp": RegularizerConfig(5, 16)}, loss="wgan"))
    hooked = [p.name for p in phases if p.after_step]
    assert hooked == ["D_main", "D_reg"]
    assert not any(p.after_step for p in build_phases(parts({}, loss="ns")))


def fired(every: int, steps: list[int], total: int) -> list[int]:
    seen: list[int] = []
    event = PeriodicEvent("e", every, lambda: None)
    event.start(steps[0] - 1 if steps[0] else 0)
    for nimg in steps:
        event.action = lambda n=nimg: seen.append(n)
        if event.due(nimg, nimg >= total):
            event.fire(nimg)
    return seen


def test_an_event_fires_on_its_interval_and_once_at_the_end():
    assert fired(100, list(range(32, 353, 32)), 352) == [128, 224, 320, 352]


def test_an_event_without_interval_fires_only_at_the_end():
    assert fired(0, list(range(32, 353, 32)), 352) == [352]


def test_a_resumed_schedule_keeps_the_intervals_of_an_uninterrupted_run():
    event = PeriodicEvent("e", 100, lambda: None)
    event.start(160)  # resumed at 160 images
    assert not event.due(192, False) and event.due(224, False)


def test_due_events_keep_their_listed_order():
    events = [PeriodicEvent(n, 64, lambda: None) for n in ("log", "eval", "snapshot")]
    for e in events:
        e.start(0)
    assert [e.name for e in due_events(events, 64, False)] == ["log", "eval", "snapshot"]


def ticks(monkeypatch, pace: Pace, steps: list[tuple[float, float]]) -> list[str | None]:
    """``pace.tick(kimg)`` at each (seconds, kimg), the clock reading ``seconds``."""
    now = [0.0]
    monkeypatch.setattr("gan_runner.train.progress.time.perf_counter", lambda: now[0])
    lines = []
    for seconds, kimg in steps:
        now[0] = seconds
        lines.append(pace.tick(kimg))
    return lines


def test_the_pace_forecast_names_the_cpu_sized_model_when_the_run_takes_hours(monkeypatch):
    pace = Pace(total_kimg=100, on_cpu=True, alternative="stylegan2_tiny", min_steps=3)
    lines = ticks(monkeypatch, pace, [(5.0, 0.032), (15.0, 0.064), (25.0, 0.096),
                                      (35.0, 0.128)])
    assert lines[:3] == [None, None, None]
    # 30 s for 0.096 kimg: 312.5 s/kimg, so the remaining 99.872 kimg take ~8 h 40 min
    assert lines[3].startswith("measured 312 s/kimg over the first 3 steps: 100 kimg take "
                               "about 8 h 40 min more")
    assert "model=stylegan2_tiny (sized for a CPU)" in lines[3]
    assert ticks(monkeypatch, pace, [(45.0, 0.16)]) == [None]  # once per run


def test_a_short_run_gets_its_forecast_without_advice_once_enough_time_passed(monkeypatch):
    pace = Pace(total_kimg=1, on_cpu=True, alternative="stylegan2_tiny", min_steps=3,
                min_seconds=2.0)
    lines = ticks(monkeypatch, pace, [(0.5, 0.1), (1.0, 0.2), (1.5, 0.3), (2.0, 0.4),
                                      (2.5, 0.5)])
    assert lines[:4] == [None] * 4  # 3 steps, but only 1.5 s since the warm-up step
    assert lines[4] == "measured 5 s/kimg over the first 4 steps: 1 kimg take about 2 s more"


@pytest.mark.parametrize(("seconds", "text"), [(40, "40 s"), (720, "12 min"),
                                               (3900, "1 h 05 min")])
def test_durations_read_in_the_unit_a_person_plans_with(seconds, text):
    assert duration(seconds) == text


def test_the_bar_shows_rates_and_an_eta_after_the_first_steps():
    progress = TrainingProgress(total_kimg=1.0, enabled=False)
    task = progress._progress.tasks[0]
    for kimg in (0.01, 0.02, 0.03):
        progress.step(kimg)
    assert task.completed == 0.03
    assert "it/s" in task.fields["rate"] and "s/kimg" in task.fields["rate"]
    assert task.time_remaining is not None


def test_a_run_ends_with_an_evaluation_of_its_final_weights(make_trainer):
    # steps of 32 images to 0.192 kimg, evaluations every 0.1 kimg: at 0.128 and at the end
    trainer = make_trainer([*TINY_TOY, "trainer.kimg=0.192", "metrics.names=[toy]",
                            "metrics.every_kimg=0.1", "metrics.num_fakes=256",
                            "metrics.num_reals=256"])
    trainer.run()
    rows = [json.loads(line) for line in (trainer.run_dir / "metrics.jsonl").open()]
    assert [r["kimg"] for r in rows if r["kind"] == "eval"] == [0.128, 0.192]


def test_the_start_lines_give_the_parameter_counts(make_trainer, caplog):
    with caplog.at_level("INFO", logger="gan_runner.train.loop"):
        trainer = make_trainer(TINY_TOY)
    counts = [sum(p.numel() for p in net.parameters()) for net in (trainer.state.G,
                                                                    trainer.state.D)]
    assert f"G: {counts[0]:,} parameters, D: {counts[1]:,} parameters" in caplog.text
    assert torch.is_tensor(trainer.recorder.grid_z)


def conditioning_section(**changes) -> dict:
    from dataclasses import asdict

    from gan_runner.models.conditioning import ConditioningConfig

    return {**asdict(ConditioningConfig(name="acgan", d="acgan")), **changes}


def test_a_checkpoint_from_before_an_option_existed_resumes_as_that_options_default(tmp_path):
    """Files written before ``conditioning.acgan_fakes`` behaved as its default (true), so a
    run resumed after the upgrade is the same run; a changed value is still refused."""
    from gan_runner.core.errors import UserError
    from gan_runner.train.resume import check_compatible

    ours = {"conditioning": conditioning_section()}
    older = conditioning_section()
    del older["acgan_fakes"]
    check_compatible(tmp_path / "ckpt.pt", {"conditioning": older}, ours)
    with pytest.raises(UserError, match=r"conditioning\.acgan_fakes: False in the checkpoint"):
        check_compatible(tmp_path / "ckpt.pt",
                         {"conditioning": conditioning_section(acgan_fakes=False)}, ours)
