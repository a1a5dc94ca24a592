"""The step runner: phases -> optimizer steps, with the non-finite guard and the statistics.

One iteration = ``trainer.d_steps`` D steps (each: the D phases due at that step, in order)
followed by one G step (the G phases due) and an EMA update. What a phase needs from the loop
it says itself (``Phase.reads``, ``Phase.observed``, ``Phase.after_step``), so a new penalty
or network is new phases and tasks, not a change here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gan_runner.config.schema import TrainConfig
from gan_runner.core.devices import to_device
from gan_runner.data.feed import Feed, Labelled
from gan_runner.models.base import sample_classes, sample_latents
from gan_runner.objectives.tricks import instance_noise_std
from gan_runner.train.distributed import World
from gan_runner.train.ema import ema_beta, update_ema
from gan_runner.train.nonfinite import NonFiniteCounter
from gan_runner.train.optim import grad_norm, lr_factor, scale_lr
from gan_runner.train.phases import AugmentedCritic, Phase
from gan_runner.train.scheduler import StepScheduler
from gan_runner.train.state import TrainState


@dataclass
class StepRunner:
    """Runs iterations on ``state``; collects per-phase statistics as device tensors."""

    cfg: TrainConfig
    state: TrainState
    phases: Sequence[Phase]
    critic: AugmentedCritic
    scheduler: StepScheduler
    feed: Feed
    world: World
    device: torch.device
    autocast: Any  # a context manager: the precision's autocast, or a no-op
    nonfinite: NonFiniteCounter
    class_counts: tuple[int, ...] = ()  # of the training set: the fakes' label distribution
    stats: dict[str, list[Tensor]] = field(default_factory=lambda: defaultdict(list))

    def iteration(self) -> None:
        cfg, state = self.cfg, self.state
        self.critic.noise_std = instance_noise_std(cfg.loss, state.kimg)
        factor = lr_factor(cfg.optimizer.lr_schedule, state.kimg, cfg.trainer.kimg)
        scale_lr(state.opt_G, factor)
        scale_lr(state.opt_D, factor)
        for _ in range(cfg.trainer.d_steps):
            self._network_step("D")
            state.d_steps += 1
            state.nimg += cfg.trainer.batch_size
        self._network_step("G")
        state.g_steps += 1
        self.world.broadcast_buffers(state.G, state.D)  # batch-norm statistics: rank 0's
        trainer = cfg.trainer
        update_ema(state.G_ema, state.G,
                   ema_beta(trainer.batch_size, state.nimg, trainer.ema_kimg, trainer.ema_rampup))

    def _network_step(self, net: str) -> None:
        """The phases of ``net`` due at its current step; one real batch serves them all."""
        state = self.state
        step = state.d_steps if net == "D" else state.g_steps
        phases = [p for p in self.phases if p.trains == net]
        real: Labelled | None = None
        if any("real_c" in p.reads for p in phases):
            real = self.feed.next_labelled()
        elif any("real" in p.reads for p in phases):
            real = (self.feed.next(), None)
        for phase in phases:
            if step % phase.every == 0:
                env, ok = self.run_phase(phase, real)
                if phase.observed:
                    self._observe(env, ok)

    def run_phase(self, phase: Phase, real: Labelled | None
                  ) -> tuple[dict[str, Tensor], Tensor]:
        """One optimizer step of ``phase``; ``real`` (images and labels) only where the phase
        reads real data. The fakes' labels are drawn after their latents, in the proportion of
        the training set's classes.

        Returns the task outputs and ``ok``, a 0-dim bool on the device: whether the loss and
        gradient were finite. Nothing here waits for the device: an update that was not ok
        goes ahead with a zeroed gradient and is counted (``NonFiniteCounter``), and the loop
        settles the count at its next log row, snapshot or evaluation; its statistics are
        recorded as NaN, which the log row leaves out. fp16 overflows in the gradient are the
        scaler's business, not a non-finite update.
        """
        state, scheduler = self.state, self.scheduler
        net, other, opt = ((state.D, state.G, state.opt_D) if phase.trains == "D"
                           else (state.G, state.D, state.opt_G))
        scaler = state.scalers[phase.trains]
        net.requires_grad_(True)
        other.requires_grad_(False)
        batch, local = self.cfg.trainer.batch_size, self.world.local_slice
        z = sample_latents(state.G, batch, state.latents)  # of the global batch
        env = {"z": to_device(local(z), self.device)}
        if "c" in phase.reads:
            c = sample_classes(state.G, batch, state.latents, counts=self.class_counts)
            env["c"] = to_device(local(c), self.device)  # type: ignore[arg-type]
        if real is not None:
            env["real"] = real[0]
            if real[1] is not None:
                env["real_c"] = real[1]
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
        for hook in phase.after_step:
            hook()
        stats = self.stats
        stats[f"loss/{phase.label}"].append(kept(loss, ok))
        stats[f"grad_norm/{phase.label}"].append(kept(norm, ok))
        for name in phase.reported:
            stats[f"reg/{name}"].append(kept(env[name], ok))
        return env, ok

    def _observe(self, env: dict[str, Tensor], ok: Tensor) -> None:
        """ADA's r_t counts the signs of the whole global batch, as one process would; the
        logits of a non-finite update count nowhere (NaN)."""
        real_logits = self.world.gather(env["real_logits"].detach().float())
        fake_logits = env["fake_logits"].detach()
        self.state.augment.observe(kept(real_logits, ok))
        accuracy = (real_logits > 0).float().mean() + (fake_logits < 0).float().mean()
        for key, value in (("real_logits", real_logits.mean()),
                           ("fake_logits", fake_logits.float().mean()),
                           # r_t of every run, not only of ADA's: how sure D is of the
                           # training images
                           ("real_sign", real_logits.sign().mean()),
                           ("accuracy", accuracy / 2)):
            self.stats[f"D/{key}"].append(kept(value, ok))

    def take_means(self) -> dict[str, float]:
        """The mean of each statistic over the steps since the last call and over the ranks'
        slices (the means of the global batches); one transfer. NaN entries (non-finite
        updates) count nowhere; a statistic with none left is left out."""
        if not self.stats:
            return {}
        means = torch.stack([torch.stack(v).float().nanmean().cpu()
                             for v in self.stats.values()])
        self.world.mean_([means])
        row = {key: mean for key, mean in zip(self.stats, means.tolist(), strict=True)
               if not math.isnan(mean)}
        self.stats.clear()
        return row


def kept(value: Tensor, ok: Tensor) -> Tensor:
    """``value`` (detached, float) where ``ok``, else NaN: a statistic of a dropped update."""
    return value.detach().float().where(ok, math.nan)
