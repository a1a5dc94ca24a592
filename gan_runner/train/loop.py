"""The Trainer: one run, assembled from its parts and driven through its periodic events.

The parts: the step runner (``step.StepRunner``: phases -> optimizer steps, the non-finite
guard), the events (``events``: log, evaluate, snapshot, each with its interval), the recorder
(``recorder``: log rows, pictures, checkpoints, the summary), the resume check (``resume``)
and the evaluation hook with its best checkpoint (``evaluation``). The Trainer builds them
from the config and runs the loop; what one of them does is its own business.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gan_runner.config.schema import TrainConfig
from gan_runner.core.devices import select_device
from gan_runner.core.rng import seed_everything
from gan_runner.data.datasets import RealData
from gan_runner.data.feed import build_feed
from gan_runner.data.stream import BatchStream
from gan_runner.models.base import num_classes, sample_latents
from gan_runner.storage.runlog import RunLog
from gan_runner.train import build, distributed
from gan_runner.train.evaluation import EvaluationHook
from gan_runner.train.events import PeriodicEvent, due_events
from gan_runner.train.nonfinite import NonFiniteCounter
from gan_runner.train.optim import build_optimizer
from gan_runner.train.overfit import overfit_probe
from gan_runner.train.phases import AugmentedCritic, Phase, StepParts, build_phases, lazy_intervals
from gan_runner.train.progress import Pace, TrainingProgress
from gan_runner.train.recorder import Recorder
from gan_runner.train.recovery import settle_nonfinite
from gan_runner.train.resume import find_checkpoint, resume
from gan_runner.train.scheduler import StepScheduler, TaskTiming
from gan_runner.train.signals import StopRequest
from gan_runner.train.speed import Compiled, autocast, gradient_scaler, memory_format, set_tf32
from gan_runner.train.state import TrainState
from gan_runner.train.step import StepRunner
from gan_runner.train.streams import build_lanes

if TYPE_CHECKING:
    from gan_runner.metrics.evaluate import Evaluator

log = logging.getLogger(__name__)

POINTS_IN_PICTURE = 2500  # samples in a scatter plot of 2-D data


class Trainer:
    """Owns one run: its state, its parts and its outputs."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, config_dict: dict[str, Any],
                 choices: dict[str, str] | None = None) -> None:
        self.cfg, self.run_dir, self.config_dict = cfg, run_dir, config_dict
        trainer = cfg.trainer
        self.device = select_device(trainer.device)
        self.world = distributed.current()  # the ranks that torchrun started (or just this one)
        main = self.world.is_main  # the only rank that measures, evaluates and writes
        log.info("loading %s", cfg.dataset.name)
        self.data: RealData = build.build_data(cfg)  # draws from its own seeded generators
        self.overfit = overfit_probe(cfg, self.data, self.device) if main else None
        self.evaluator: Evaluator | None = None
        if cfg.metrics.names:  # before seeding: extractors draw random init weights
            from gan_runner.metrics.evaluate import Evaluator
            from gan_runner.metrics.stats import Shard

            # every rank generates and extracts its share of each evaluation
            self.evaluator = Evaluator.for_dataset(cfg.metrics, cfg.dataset, self.device,
                                                   loaded=self.data,
                                                   shard=Shard.of_process_group())
        seed_everything(trainer.seed)
        set_tf32(trainer.tf32)
        self.memory_format = memory_format(trainer.channels_last, self.data.spec.is_image)
        pair = build.build_models(cfg, self.data.spec)
        G = pair.G.to(self.device, memory_format=self.memory_format)
        D = pair.D.to(self.device, memory_format=self.memory_format)
        self.loss = build.build_loss(cfg)
        self.regularizers = build.build_regularizers(cfg)
        augment = build.build_augment(cfg, self.data.spec).to(self.device)
        for reg in self.regularizers:
            if isinstance(reg, nn.Module):
                reg.to(self.device)
        lazy = lazy_intervals(self.regularizers)
        fused = trainer.precision == "fp16" and self.device.type == "cuda"  # no scaler sync
        self.state = TrainState(
            G=G, D=D, G_ema=copy.deepcopy(G).eval().requires_grad_(False),
            opt_G=build_optimizer(cfg.optimizer, "g", G.parameters(), lazy["G"], fused),
            opt_D=build_optimizer(cfg.optimizer, "d", D.parameters(), lazy["D"], fused),
            augment=augment,
            stateful={r.name: r for r in self.regularizers if isinstance(r, nn.Module)},
            stream=BatchStream(self.data, trainer.batch_size, trainer.seed),
            latents=torch.Generator().manual_seed(trainer.seed + 1),
            scalers={net: gradient_scaler(trainer.precision, self.device) for net in "GD"},
        )
        distributed.own_random_state(self.world, trainer.seed)

        def fast(module: nn.Module) -> nn.Module | None:
            return Compiled(module, trainer.compile_mode) if trainer.compile else None

        self.critic = AugmentedCritic(D, augment, fast_D=fast(D))
        phases = build_phases(StepParts(
            G, self.critic, self.loss, self.regularizers, self.world.local_batch(
                trainer.batch_size), fast_G=fast(G), mean_over_ranks=self.world.mean_,
            conditional=build.build_conditional(cfg, G)))
        self.scheduler = StepScheduler(build_lanes(trainer.streams, self.device), trainer.timing)
        self.nonfinite = NonFiniteCounter(self.device)
        self.feed = build_feed(self.data, self.state.stream, self.world.local_slice, self.device,
                               self.memory_format, trainer.data_workers)
        self.steps = StepRunner(cfg, self.state, phases, self.critic, self.scheduler,
                                self.feed, self.world, self.device,
                                autocast(trainer.precision, self.device), self.nonfinite,
                                class_counts=self.data.spec.class_counts)
        grid_c = self._grid_classes()
        grid_z = sample_latents(G, self._picture_count() if grid_c is None else len(grid_c),
                                torch.Generator().manual_seed(trainer.seed))
        self.recorder = Recorder(self.state, run_dir, config_dict, choices or {}, self.data.spec,
                                 self.world, trainer.checkpoints_keep, grid_z, grid_c,
                                 reference=getattr(self.data, "centers", None),
                                 sources=[self.steps.take_means, self._row_extras])
        self.evaluate = EvaluationHook(cfg.metrics, self.evaluator, self.recorder)
        self.timings: list[TaskTiming] = []  # of the last log interval, for the timeline view
        log.info("G: %s parameters, D: %s parameters (%s)", _count(G), _count(D), cfg.model.name)
        if trainer.compile:
            log.info("compiling G and D (mode %s): the first steps take longer",
                     trainer.compile_mode)

    def _picture_count(self) -> int:
        return self.cfg.trainer.grid_size if self.data.spec.is_image else POINTS_IN_PICTURE

    def _grid_classes(self) -> Tensor | None:
        """A conditional G's sample picture: one row per class, in class order (the points of
        a toy set: every class in turn), about ``trainer.grid_size`` images in all."""
        classes = num_classes(self.state.G)
        if not classes:
            return None
        per_class = max(1, self._picture_count() // classes)
        return torch.arange(classes).repeat_interleave(per_class)

    # ------------------------------------------------------------------ the parts' entry points
    @property
    def phases(self) -> Sequence[Phase]:
        return self.steps.phases

    @phases.setter
    def phases(self, phases: Sequence[Phase]) -> None:  # a test's own step
        self.steps.phases = phases

    def resume(self) -> Path | None:
        """Load the checkpoint ``trainer.resume`` names; ``auto`` takes this run's newest."""
        found = find_checkpoint(self.cfg.trainer.resume, self.recorder.checkpoints, self.device)
        if found is None:
            return None
        return resume(self.state, found, self.config_dict, self.data.spec, self.world,
                      self.cfg.trainer.seed)

    def iteration(self) -> None:
        self.steps.iteration()

    def settle_nonfinite(self) -> None:
        settle_nonfinite(self.state, self.nonfinite, self.cfg.trainer, self.recorder.checkpoints,
                         self.device)

    def snapshot(self) -> Path:
        return self.recorder.snapshot()

    def _row_extras(self) -> dict[str, Any]:
        """The log row's parts beyond the step statistics: rates, timings, data, tricks."""
        state = self.state
        row: dict[str, Any] = {"lr/G": state.opt_G.param_groups[0]["lr"],
                               "lr/D": state.opt_D.param_groups[0]["lr"]}
        self.timings = self.scheduler.timings() or self.timings
        for timing in self.timings:
            row[f"time/{timing.phase}/{timing.task}"] = round(timing.duration_ms, 4)
        data_wait = self.feed.take_wait()
        if data_wait is not None:  # host ms per real batch: near 0 unless the data is late
            row["time/data_wait"] = round(data_wait, 4)
        if self.critic.noise_std > 0:
            row["instance_noise_std"] = self.critic.noise_std
        row.update(state.augment.stats())
        if self.overfit is not None:
            row.update(self.overfit(state.G, state.D))
        return row

    def _events(self, progress: TrainingProgress) -> list[PeriodicEvent]:
        cfg, metrics = self.cfg.trainer, self.cfg.metrics

        def log_row() -> None:
            progress.update(self.state.kimg, _status(self.recorder.log_row()))

        events = [PeriodicEvent("log", int(cfg.log_every_kimg * 1000), log_row)]
        if metrics.names:  # every_kimg = 0: only the final weights are evaluated
            events.append(PeriodicEvent("eval", int(metrics.every_kimg * 1000), self.evaluate))
        events.append(PeriodicEvent("snapshot", int(cfg.snapshot_every_kimg * 1000),
                                    self.recorder.snapshot))
        for event in events:
            event.start(self.state.nimg)
        return events

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        state, main, recorder = self.state, self.world.is_main, self.recorder
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.resume()
        if main:
            recorder.runlog = RunLog(self.run_dir, resume_kimg=state.kimg if resumed else None,
                                     loggers=self.cfg.logger, config=self.config_dict,
                                     provenance={"device": str(self.device),
                                                 "choices": recorder.choices})
        try:
            return self._train(resumed)
        except BaseException:
            if recorder.runlog is not None:  # the loggers end their runs, the files are flushed
                recorder.runlog.close()
            raise

    def _train(self, resumed: Path | None) -> dict[str, Any]:
        cfg, state, main, recorder = self.cfg.trainer, self.state, self.world.is_main, self.recorder
        if resumed is None:
            recorder.reals(self.data, self._picture_count())
        total, start_nimg = int(cfg.kimg * 1000), state.nimg
        start_time = time.perf_counter()
        recorder.start()
        alternative = getattr(self.cfg.model, "cpu_alternative", None)
        if alternative == self.recorder.choices.get("model"):  # already the small one
            alternative = None
        pace = Pace(cfg.kimg, self.device.type == "cpu", alternative,
                    sync=torch.cuda.synchronize if self.device.type == "cuda" else lambda: None)
        log.info("training %s on %s (%s) for %g kimg -> %s", self.cfg.model.name,
                 self.data.description, self.device, cfg.kimg, self.run_dir)
        with TrainingProgress(cfg.kimg, cfg.progress and main) as progress, \
                StopRequest() as stop:
            self.evaluate.progress = progress
            events = self._events(progress)
            while state.nimg < total:
                self.steps.iteration()
                progress.step(state.kimg)
                forecast = pace.tick(state.kimg) if main else None
                if forecast:
                    log.info(forecast)
                stopped = self.world.agreed_signal(stop.signal)
                finished = state.nimg >= total
                due = due_events(events, state.nimg, finished)
                if stopped is not None or due:
                    self.settle_nonfinite()  # the only wait for the device between these points
                if stopped is not None:  # every rank stops after the same iteration
                    stop.signal = stopped
                    path = recorder.snapshot()
                    log.warning("%s at %.1f kimg: saved %s; run the same command to resume",
                                stop.signal.name, state.kimg, path)
                    break
                for event in due:
                    event.fire(state.nimg)
            final_fakes = self.cfg.metrics.final_num_fakes
            if (self.cfg.metrics.names and final_fakes
                    and self.world.agreed_signal(stop.signal) is None):
                self.evaluate(final_fakes, kind="final")
            self.evaluate.progress = None
        return recorder.summary(time.perf_counter() - start_time, start_nimg, resumed,
                                self.cfg.metrics.best,
                                stop.signal.name if stop.signal is not None else None,
                                stop.exit_status)


def _count(module: nn.Module) -> str:
    return f"{sum(p.numel() for p in module.parameters()):,}"


def _status(row: dict[str, Any]) -> str:
    return "  ".join(f"{k.split('/')[-1]}={row[k]:.3f}" for k in ("loss/D", "loss/G") if k in row)
