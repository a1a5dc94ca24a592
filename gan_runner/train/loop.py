"""The training loop: iterate phases, keep the EMA, log, snapshot, evaluate, resume.

One iteration = ``trainer.d_steps`` D steps (each: D main, then lazy D penalties when due)
followed by one G step (G main, then lazy G penalties when due) and an EMA update.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections import defaultdict
from pathlib import Path
from signal import Signals
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gan_runner import __version__
from gan_runner.config.schema import TrainConfig
from gan_runner.core.devices import select_device, to_device
from gan_runner.core.errors import UserError
from gan_runner.core.rng import capture_rng, seed_everything
from gan_runner.data.datasets import RealData
from gan_runner.data.feed import build_feed
from gan_runner.data.stream import BatchStream
from gan_runner.metrics.ranking import METRIC_KEYS, better
from gan_runner.models.base import sample_latents
from gan_runner.objectives.tricks import clip_weights, instance_noise_std
from gan_runner.storage.checkpoint import checkpoint_path, list_checkpoints, prune
from gan_runner.storage.images import samples_picture, save_png
from gan_runner.storage.run_checkpoint import RunCheckpoint, latest_run_checkpoint
from gan_runner.storage.runlog import RunLog
from gan_runner.train import build, distributed
from gan_runner.train.ema import ema_beta, update_ema
from gan_runner.train.nonfinite import NonFiniteCounter
from gan_runner.train.optim import build_optimizer, grad_norm, lr_factor, scale_lr
from gan_runner.train.overfit import overfit_probe
from gan_runner.train.phases import AugmentedCritic, Phase, StepParts, build_phases, lazy_intervals
from gan_runner.train.progress import TrainingProgress
from gan_runner.train.scheduler import StepScheduler, TaskTiming
from gan_runner.train.signals import StopRequest
from gan_runner.train.speed import Compiled, autocast, gradient_scaler, memory_format, set_tf32
from gan_runner.train.state import TrainState
from gan_runner.train.streams import build_lanes
from gan_runner.train.watch import FailureWatch

if TYPE_CHECKING:
    from gan_runner.metrics.evaluate import Evaluator

log = logging.getLogger(__name__)

POINTS_IN_PICTURE = 2500  # samples in a scatter plot of 2-D data
# a checkpoint must match the run it resumes in these config sections (None: every key); the
# dataset may move (root) or change its subset, not its kind or shape
COMPATIBLE = {"model": None, "dataset": ("name", "resolution", "channels")}


class Trainer:
    """Owns one run: its state, its phases and its outputs."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, config_dict: dict[str, Any],
                 choices: dict[str, str] | None = None) -> None:
        self.cfg, self.run_dir, self.config_dict = cfg, run_dir, config_dict
        self.choices = choices or {}
        self.device = select_device(cfg.trainer.device)
        self.world = distributed.current()  # the ranks that torchrun started (or just this one)
        local_batch = self.world.local_batch(cfg.trainer.batch_size)
        self.data: RealData = build.build_data(cfg)  # draws from its own seeded generators
        main = self.world.is_main  # the only rank that measures, evaluates and writes
        # r_v on dataset.heldout
        self.overfit = overfit_probe(cfg, self.data, self.device) if main else None
        self.evaluator: Evaluator | None = None
        if cfg.metrics.names and main:  # before seeding: extractors draw random init weights
            from gan_runner.metrics.evaluate import Evaluator

            self.evaluator = Evaluator.for_dataset(cfg.metrics, cfg.dataset, self.device,
                                                   loaded=self.data)
        seed_everything(cfg.trainer.seed)
        trainer = cfg.trainer
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
        self.phases = build_phases(StepParts(G, self.critic, self.loss, self.regularizers,
                                             local_batch, fast_G=fast(G),
                                             mean_over_ranks=self.world.mean_))
        self.scheduler = StepScheduler(build_lanes(trainer.streams, self.device), trainer.timing)
        self.checkpoints = run_dir / "checkpoints"
        self.samples = run_dir / "samples"
        self.grid_z = torch.randn(self._picture_count(), G.z_dim,
                                  generator=torch.Generator().manual_seed(cfg.trainer.seed))
        self._stats: dict[str, list[Tensor]] = defaultdict(list)
        self.watch = FailureWatch()
        self.autocast = autocast(trainer.precision, self.device)
        self.nonfinite = NonFiniteCounter(self.device)
        self.feed = build_feed(self.data, self.state.stream, self.world.local_slice, self.device,
                               self.memory_format, trainer.data_workers)
        self.timings: list[TaskTiming] = []  # of the last log interval, for the timeline view

    # ------------------------------------------------------------------ setup
    def _picture_count(self) -> int:
        return self.cfg.trainer.grid_size if self.data.spec.is_image else POINTS_IN_PICTURE

    def resume(self) -> Path | None:
        """Load the checkpoint ``trainer.resume`` names; ``auto`` takes this run's newest."""
        choice = self.cfg.trainer.resume
        if choice is None:
            return None
        if choice == "auto":
            found = latest_run_checkpoint(self.checkpoints, self.device)
            if found is None and list_checkpoints(self.checkpoints):
                raise UserError(f"no checkpoint in {self.checkpoints} can be read",
                                "pass trainer.resume=null to start over in this folder, or "
                                "trainer.resume=PATH")
            if found is None:
                return None
            path, checkpoint = found
        else:
            path = Path(choice).expanduser()
            checkpoint = RunCheckpoint.load(path, self.device)
        for section, keys in COMPATIBLE.items():
            theirs, ours = (_pick(c.get(section, {}), keys)
                            for c in (checkpoint.config, self.config_dict))
            if theirs != ours:
                changed = ", ".join(
                    f"{section}.{key}: {theirs.get(key)} in the checkpoint, {ours.get(key)} now"
                    for key in sorted(set(theirs) | set(ours))
                    if theirs.get(key) != ours.get(key))
                raise UserError(f"checkpoint {path} was trained with a different {section} "
                                f"config ({changed})",
                                f"resume with the same {section} options, or start over with "
                                "trainer.resume=null or a new hydra.run.dir")
        try:
            self.state.load_state_dict(checkpoint.state)
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError,
                IndexError) as error:  # a verified file whose state is not this run's
            raise UserError(f"checkpoint {path} does not fit this run: {error}".splitlines()[0],
                            "start a new run or resume with the config it was trained with"
                            ) from error
        distributed.own_random_state(self.world, self.cfg.trainer.seed, self.state.nimg,
                                     checkpoint.rank_rng)
        log.info("resumed from %s at %.1f kimg", path, self.state.kimg)
        return path

    # ------------------------------------------------------------------ one step
    def _run_phase(self, phase: Phase, real: Tensor | None) -> tuple[dict[str, Tensor], Tensor]:
        """One optimizer step of ``phase``; ``real`` only where the phase reads real data.

        Returns the task outputs and ``ok``, a 0-dim bool on the device: whether the loss and
        gradient were finite. Nothing here waits for the device: an update that was not ok
        goes ahead with a zeroed gradient and is counted (``NonFiniteCounter``), and the loop
        settles the count at its next log row, snapshot or evaluation (``settle_nonfinite``);
        its statistics are recorded as NaN, which the log row leaves out. fp16 overflows in
        the gradient are the scaler's business, not a non-finite update.
        """
        state, scheduler = self.state, self.scheduler
        net, other, opt = ((state.D, state.G, state.opt_D) if phase.trains == "D"
                           else (state.G, state.D, state.opt_G))
        scaler = state.scalers[phase.trains]
        net.requires_grad_(True)
        other.requires_grad_(False)
        z = sample_latents(state.G, self.cfg.trainer.batch_size, state.latents)  # global batch
        env = {"z": to_device(self.world.local_slice(z), self.device)}
        if real is not None:
            env["real"] = real
        opt.zero_grad(set_to_none=True)
        with self.autocast:
            loss, env = scheduler.run(phase, env)
        with scheduler.measure(phase.name, "backward"):
            scaler.scale(loss).backward()
        # before unscale_, so that the fp16 scaler finds the same infs on every rank
        loss = self.world.average_gradients(net, loss)
        scaler.unscale_(opt)
        norm = grad_norm(net)
        ok = torch.isfinite(loss)
        if not scaler.is_enabled():
            ok &= torch.isfinite(norm)
        self.nonfinite.screen(phase.trains, net, ok)
        with scheduler.measure(phase.name, "step"):
            scaler.step(opt)
            scaler.update()
        if phase.trains == "D" and self.loss.d_weight_clip is not None:
            clip_weights(state.D, self.loss.d_weight_clip)
        stats = self._stats
        stats[f"loss/{phase.name}"].append(_kept(loss, ok))
        stats[f"grad_norm/{phase.name}"].append(_kept(norm, ok))
        for name in phase.terms:
            if name not in ("d_loss", "g_loss"):
                stats[f"reg/{name}"].append(_kept(env[name], ok))
        return env, ok

    def settle_nonfinite(self) -> None:
        """Bring the device's count of non-finite updates to the host (one sync): they join
        ``skipped`` with a warning, and a streak of ``trainer.nonfinite_patience`` in a row
        since the last settle brings back the last checkpoint's networks. The loop calls it
        where it waits for the device anyway: log rows, snapshots and evaluations."""
        state, streak = self.state, None
        for net, counts in self.nonfinite.read().items():
            if counts.new:
                state.skipped += counts.new
                log.warning("%.1f kimg: %d non-finite %s updates since the last check, their "
                            "gradients zeroed (%d so far)", state.kimg, counts.new, net,
                            state.skipped)
            if counts.longest >= self.cfg.trainer.nonfinite_patience and streak is None:
                streak = (net, counts.longest)
        if streak is not None:
            self._restore_last_good(*streak)

    def _restore_last_good(self, net: str, streak: int) -> None:
        """Networks, optimizers and augmentation state from the newest valid checkpoint; the
        data position and random streams go on, so the run does not replay the same batches
        into the same failure. Nothing (learning rate, precision) is changed behind the user's
        back: after ``max_restores`` fruitless restores the run stops and says what to try."""
        state, trainer = self.state, self.cfg.trainer
        found = latest_run_checkpoint(self.checkpoints, self.device)
        if found is None or state.restores >= trainer.max_restores:
            where = (f"after {state.restores} restores" if found is not None
                     else "before the first checkpoint")
            raise UserError(
                f"training diverged at {state.kimg:.1f} kimg: {streak} non-finite "
                f"{net} updates in a row {where}",
                "lower optimizer.g_lr/d_lr, use trainer.precision=fp32 or add regularizer=r1; "
                "the saved checkpoints are intact")
        path, checkpoint = found
        state.load_training(checkpoint.state)
        state.restores += 1
        self.nonfinite.clear()
        log.warning("%.1f kimg: %d non-finite updates in a row; restored networks and optimizers "
                    "from %s (restore %d of at most %d), continuing with new batches",
                    state.kimg, streak, path, state.restores, trainer.max_restores)

    def _d_step(self) -> None:
        state = self.state
        real = self.feed.next()  # this rank's slice of the global batch, on the device
        for phase in self.phases:
            if phase.trains == "D" and state.d_steps % phase.every == 0:
                env, ok = self._run_phase(phase, real)
                if phase.name == "D_main":
                    # ADA's r_t counts the signs of the whole global batch, as one process would;
                    # the logits of a non-finite update count nowhere (NaN)
                    real_logits = self.world.gather(env["real_logits"].detach().float())
                    fake_logits = env["fake_logits"].detach()
                    state.augment.observe(_kept(real_logits, ok))
                    accuracy = ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())
                    for key, value in (("real_logits", real_logits.mean()),
                                       ("fake_logits", fake_logits.float().mean()),
                                       # r_t of every run, not only of ADA's: how sure D is of
                                       # the training images
                                       ("real_sign", real_logits.sign().mean()),
                                       ("accuracy", accuracy / 2)):
                        self._stats[f"D/{key}"].append(_kept(value, ok))
        state.d_steps += 1
        state.nimg += self.cfg.trainer.batch_size

    def _g_step(self) -> None:
        state = self.state
        real = self.feed.next() if self.loss.g_needs_real else None
        for phase in self.phases:
            if phase.trains == "G" and state.g_steps % phase.every == 0:
                self._run_phase(phase, real)
        state.g_steps += 1
        self.world.broadcast_buffers(state.G, state.D)  # batch-norm statistics: rank 0's
        trainer = self.cfg.trainer
        update_ema(state.G_ema, state.G,
                   ema_beta(trainer.batch_size, state.nimg, trainer.ema_kimg, trainer.ema_rampup))

    def iteration(self) -> None:
        self.critic.noise_std = instance_noise_std(self.cfg.loss, self.state.kimg)
        factor = lr_factor(self.cfg.optimizer.lr_schedule, self.state.kimg, self.cfg.trainer.kimg)
        scale_lr(self.state.opt_G, factor)
        scale_lr(self.state.opt_D, factor)
        for _ in range(self.cfg.trainer.d_steps):
            self._d_step()
        self._g_step()

    # ------------------------------------------------------------------ outputs
    def _log_row(self, seconds_per_kimg: float) -> dict[str, Any]:
        state = self.state
        row: dict[str, Any] = {"kind": "train", "kimg": round(state.kimg, 3),
                               "g_steps": state.g_steps, "d_steps": state.d_steps}
        if self._stats:  # NaN: a non-finite update, which counts nowhere
            means = torch.stack([torch.stack(v).float().nanmean().cpu()
                                 for v in self._stats.values()])
            self.world.mean_([means])  # over the ranks' slices: the means of the global batches
            for key, mean in zip(self._stats, means.tolist(), strict=True):
                if not math.isnan(mean):
                    row[key.replace("/D_main", "/D").replace("/G_main", "/G")] = mean
        self._stats.clear()
        row["lr/G"] = state.opt_G.param_groups[0]["lr"]
        row["lr/D"] = state.opt_D.param_groups[0]["lr"]
        row["sec_per_kimg"] = seconds_per_kimg
        if state.skipped:
            row["skipped_updates"] = state.skipped
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

    def _picture(self) -> Any:
        G = self.state.G_ema
        with torch.no_grad():
            samples = G(self.grid_z.to(self.device))
        reference = getattr(self.data, "centers", None)
        return samples_picture(samples, reference)

    def snapshot(self, runlog: RunLog | None) -> Path:
        """Sample picture of the EMA generator, then an atomic checkpoint of the whole state
        (with every rank's random state); the other ranks only send theirs."""
        state = self.state
        rank_rng = self.world.collect(capture_rng())
        if not self.world.is_main:
            return checkpoint_path(self.checkpoints, state.nimg)
        picture = self._picture()
        save_png(picture, self.samples / f"fakes_{state.nimg // 1000:06d}kimg.png")
        runlog.image("fakes", picture, state.kimg)
        path = checkpoint_path(self.checkpoints, state.nimg)
        if path.exists():  # already saved at this image count (a new best)
            return path
        for name in ("G", "D"):
            runlog.histograms(name, getattr(state, name), state.kimg)
        RunCheckpoint(config=self.config_dict, spec=self.data.spec, state=state.state_dict(),
                      version=__version__, choices=self.choices, rank_rng=rank_rng).save(path)
        protect = {Path(b["path"]) for b in state.best.values() if "path" in b}
        prune(self.checkpoints, self.cfg.trainer.checkpoints_keep, protect)
        return path

    def _reals_picture(self, runlog: RunLog) -> None:
        count = self._picture_count()
        order = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(0))
        picture = samples_picture(self.data.batch(order[:count]),
                                  getattr(self.data, "centers", None))
        save_png(picture, self.samples / "reals.png")
        runlog.image("reals", picture, 0)

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        cfg, state, main = self.cfg.trainer, self.state, self.world.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.resume()
        runlog = RunLog(self.run_dir, resume_kimg=state.kimg if resumed else None) if main else None
        if resumed is None and runlog is not None:
            self._reals_picture(runlog)
        total = int(cfg.kimg * 1000)
        every = {name: int(getattr(cfg, f"{name}_every_kimg") * 1000)
                 for name in ("log", "snapshot")}
        eval_every = int(self.cfg.metrics.every_kimg * 1000)
        if eval_every and self.cfg.metrics.names:
            every["eval"] = eval_every
        due = {name: (state.nimg // n + 1) * n for name, n in every.items()}
        start_time, start_nimg = time.perf_counter(), state.nimg
        last_time, last_nimg = start_time, state.nimg
        row: dict[str, Any] = {}
        log.info("training %s on %s (%s) for %g kimg -> %s", self.cfg.model.name,
                 self.data.description, self.device, cfg.kimg, self.run_dir)
        with TrainingProgress(cfg.kimg, cfg.progress and main) as progress, \
                StopRequest() as stop:
            while state.nimg < total:
                self.iteration()
                stopped: Signals | None = self.world.agreed_signal(stop.signal)
                finished = state.nimg >= total
                if stopped is not None or finished or any(state.nimg >= n for n in due.values()):
                    self.settle_nonfinite()  # the only wait for the device between these points
                if stopped is not None:  # every rank stops after the same iteration
                    stop.signal = stopped
                    path = self.snapshot(runlog)
                    log.warning("%s at %.1f kimg: saved %s; run the same command to resume",
                                stop.signal.name, state.kimg, path)
                    break
                if state.nimg >= due["log"] or finished:
                    now = time.perf_counter()
                    row = self._log_row((now - last_time) / max(state.nimg - last_nimg, 1) * 1000)
                    last_time, last_nimg = now, state.nimg
                    if runlog is not None:
                        runlog.write(row)
                        for message in self.watch.check(row):
                            log.warning("%.1f kimg: %s", state.kimg, message)
                    due["log"] = (state.nimg // every["log"] + 1) * every["log"]
                    progress.update(state.kimg, _status(row))
                if "eval" in due and (state.nimg >= due["eval"] or finished):
                    self._evaluate(runlog, progress)
                    due["eval"] = (state.nimg // every["eval"] + 1) * every["eval"]
                if state.nimg >= due["snapshot"] or finished:
                    self.snapshot(runlog)
                    due["snapshot"] = (state.nimg // every["snapshot"] + 1) * every["snapshot"]
            final_fakes = self.cfg.metrics.final_num_fakes
            if (self.cfg.metrics.names and final_fakes
                    and self.world.agreed_signal(stop.signal) is None):
                self._evaluate(runlog, progress, final_fakes, kind="final")
        wall = time.perf_counter() - start_time
        summary = {
            "kimg": state.kimg, "wall_seconds": round(wall, 2),
            "sec_per_kimg": round(wall / max(state.nimg - start_nimg, 1) * 1000, 3),
            "final": {k: v for k, v in row.items() if k.startswith(("loss/", "reg/"))},
            "best": state.best, "resumed_from": str(resumed) if resumed else None,
            # what a sweeper minimizes or maximizes: the best value of metrics.best
            "objective": state.best.get(self.cfg.metrics.best, {}).get("value"),
            "stopped_by": stop.signal.name if stop.signal is not None else None,
            "exit_status": stop.exit_status,
            "choices": self.choices,
        }
        if runlog is None:
            return summary
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        runlog.close()
        return summary

    def _evaluate(self, runlog: RunLog | None, progress: TrainingProgress,
                  num_fakes: int | None = None, kind: str = "eval") -> dict[str, Any]:
        """Metrics of the EMA generator; a new best (``metrics.best``) gets a checkpoint that
        pruning keeps. Rank 0 evaluates alone; the other ranks wait for its results."""
        evaluator, state = self.evaluator, self.state
        results = None
        if evaluator is not None and runlog is not None:
            advance, remove = progress.subtask(f"{kind}: {'/'.join(self.cfg.metrics.names)}",
                                               evaluator.work(num_fakes))
            try:
                results = evaluator(state.G_ema, num_fakes, advance=advance)
            finally:
                remove()
            runlog.write({"kind": kind, "kimg": round(state.kimg, 3), **results})
        results = self.world.share(results)
        state.history.append({"kind": kind, "kimg": round(state.kimg, 3),
                              **{k: results[k] for k in METRIC_KEYS if k in results}})
        log.info("%.1f kimg %s (%d fakes): %s", state.kimg, kind, results["num_fakes"],
                 "  ".join(f"{k}={results[k]:.4g}" for k in METRIC_KEYS if k in results))
        metric = self.cfg.metrics.best
        if kind == "eval" and metric in results and better(
                metric, results[metric], state.best.get(metric, {}).get("value")):
            path = checkpoint_path(self.checkpoints, state.nimg)
            state.best[metric] = {"value": results[metric], "kimg": state.kimg, "path": str(path)}
            self.snapshot(runlog)
        return results


def _kept(value: Tensor, ok: Tensor) -> Tensor:
    """``value`` (detached, float) where ``ok``, else NaN: a statistic of a dropped update."""
    return value.detach().float().where(ok, math.nan)


def _pick(section: dict[str, Any], keys: tuple[str, ...] | None) -> dict[str, Any]:
    return dict(section) if keys is None else {k: section.get(k) for k in keys}


def _status(row: dict[str, Any]) -> str:
    return "  ".join(f"{k.split('/')[-1]}={row[k]:.3f}" for k in ("loss/D", "loss/G") if k in row)
