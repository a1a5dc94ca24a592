"""Everything that must survive a restart, in one object.

``TrainState.state_dict()`` is the checkpoint: networks, optimizers, augmentation state,
regularizer statistics, counters, the data position and every random generator. Exact resume
is a property of this object, not a list kept in sync elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gan_runner.augment.base import DAugment
from gan_runner.core.rng import capture_rng, restore_rng
from gan_runner.data.stream import BatchStream


@dataclass
class TrainState:
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    augment: DAugment
    stateful: dict[str, nn.Module]  # regularizers with running statistics (path length)
    stream: BatchStream
    latents: torch.Generator  # the z of every training step
    scalers: dict[str, torch.amp.GradScaler]  # "G", "D": fp16 loss scales (disabled otherwise)
    nimg: int = 0  # real images shown to D
    g_steps: int = 0
    d_steps: int = 0
    best: dict[str, Any] = field(default_factory=dict)  # metric name -> {value, kimg, path}
    history: list[dict[str, Any]] = field(default_factory=list)  # every evaluation's results
    skipped: int = 0  # updates skipped because a loss or gradient was not finite
    restores: int = 0  # restores of the last checkpoint after non-finite streaks

    NETWORKS = ("G", "D", "G_ema", "opt_G", "opt_D", "augment")

    @property
    def kimg(self) -> float:
        return self.nimg / 1000

    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "augment": self.augment.state_dict(),
            "stateful": {k: m.state_dict() for k, m in self.stateful.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "stream": self.stream.state_dict(), "latents": self.latents.get_state(),
            "counters": {"nimg": self.nimg, "g_steps": self.g_steps, "d_steps": self.d_steps,
                         "skipped": self.skipped, "restores": self.restores},
            "best": self.best, "history": self.history, "rng": capture_rng(),
        }

    def load_training(self, state: dict[str, Any]) -> None:
        """What the networks learned: weights, optimizer moments, augmentation and penalty
        statistics, loss scales - everything but the position in the run."""
        for key in self.NETWORKS:
            getattr(self, key).load_state_dict(state[key])
        for key, module in self.stateful.items():
            module.load_state_dict(state["stateful"][key])
        for key, scaler in self.scalers.items():
            if state["scalers"].get(key):  # empty when saved without fp16
                scaler.load_state_dict(state["scalers"][key])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_training(state)
        self.stream.load_state_dict(state["stream"])
        self.latents.set_state(state["latents"])
        counters = state["counters"]
        self.nimg, self.g_steps, self.d_steps = (counters[k] for k in ("nimg", "g_steps",
                                                                       "d_steps"))
        self.skipped, self.restores = counters["skipped"], counters["restores"]
        self.best = dict(state["best"])
        self.history = list(state["history"])
        restore_rng(state["rng"])
