"""A training step as data: phases made of named tasks with declared inputs.

Each phase (D main, D regularization, G main, G regularization - the split of StyleGAN2's
training loss) lists its tasks and the outputs that add up to its loss. The scheduler decides
how to run the tasks (in order on the CPU; issue-level work can put independent tasks on CUDA
streams), so adding a penalty means adding a task, not editing the loop.

Environment names a phase can start from: ``real`` (a batch of real samples) and ``z``
(latents for this phase).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gan_runner.augment.base import DAugment
from gan_runner.core.errors import UserError
from gan_runner.objectives.base import AdversarialLoss, DBatch, GBatch, Regularizer
from gan_runner.objectives.tricks import instance_noise

GRAPH_INPUTS = ("real", "z")  # what the loop puts in a phase's environment before its tasks


@dataclass(frozen=True)
class Task:
    """``name = fn(*inputs)``: one node of a phase's graph."""

    name: str
    inputs: tuple[str, ...]
    fn: Callable[..., Tensor]


@dataclass(frozen=True)
class Phase:
    name: str
    trains: str  # "G" or "D": whose optimizer steps after this phase
    every: int  # runs on that network's steps where step % every == 0
    tasks: tuple[Task, ...]
    terms: dict[str, float]  # task output -> weight in the phase loss (lazy gain included)

    def __post_init__(self) -> None:
        known = set(GRAPH_INPUTS)
        for task in self.tasks:
            missing = set(task.inputs) - known
            if missing:
                raise ValueError(f"{self.name}: task {task.name} needs {missing} before it")
            known.add(task.name)
        if not set(self.terms) <= known:
            raise ValueError(f"{self.name}: loss terms {set(self.terms) - known} are not tasks")


@dataclass
class AugmentedCritic:
    """D as every task sees it: augmentation, then instance noise, then D.

    ``fast_D`` (a compiled D, see ``train.speed``) serves the main losses; penalties that
    differentiate through D's input gradient call the critic itself, which uses plain ``D``.
    """

    D: nn.Module
    augment: DAugment
    noise_std: float = 0.0
    fast_D: nn.Module | None = None

    def __call__(self, images: Tensor) -> Tensor:
        return self.D(instance_noise(self.augment(images), self.noise_std))

    def main(self, images: Tensor) -> Tensor:
        D = self.D if self.fast_D is None else self.fast_D
        return D(instance_noise(self.augment(images), self.noise_std))


@dataclass
class StepParts:
    """Everything the phases are built from."""

    G: nn.Module
    critic: AugmentedCritic
    loss: AdversarialLoss
    regularizers: Sequence[Regularizer] = field(default_factory=list)
    batch_size: int = 1
    fast_G: nn.Module | None = None  # a compiled G for the main phases (``train.speed``)
    mean_over_ranks: Callable[[list[Tensor]], None] = lambda tensors: None  # World.mean_


def _fake(G: nn.Module, with_grad: bool) -> Callable[[Tensor], Tensor]:
    def generate(z: Tensor) -> Tensor:
        with torch.set_grad_enabled(with_grad):
            return G(z)
    return generate


def _reg_task(reg: Regularizer, parts: StepParts) -> Task:
    if reg.side == "D":
        return Task(reg.name, ("real", "fake"),
                    lambda real, fake: reg.penalty(DBatch(parts.critic, real, fake)))
    return Task(reg.name, (),
                lambda: reg.penalty(GBatch(parts.G, parts.batch_size, parts.mean_over_ranks)))


def _lazy_every(regs: Sequence[Regularizer], side: str) -> int:
    """The one lazy interval of a side (mixed intervals would need several optimizer fixes)."""
    intervals = {r.every for r in regs if r.side == side and r.every > 1}
    if len(intervals) > 1:
        raise UserError(f"lazy {side} regularizers use different intervals {sorted(intervals)}",
                        "give them the same regularizer.<name>.every")
    return intervals.pop() if intervals else 1


def lazy_intervals(regs: Sequence[Regularizer]) -> dict[str, int]:
    return {side: _lazy_every(regs, side) for side in ("D", "G")}


def build_phases(parts: StepParts) -> list[Phase]:
    """D main (+ eager D penalties), lazy D penalties, G main (+ eager G penalties), lazy G."""
    critic, loss = parts.critic.main, parts.loss
    G = parts.G if parts.fast_G is None else parts.fast_G
    d_main = [
        Task("fake", ("z",), _fake(G, with_grad=False)),
        Task("real_logits", ("real",), critic),
        Task("fake_logits", ("fake",), critic),
        Task("d_loss", ("real_logits", "fake_logits"), loss.d),
    ]
    g_main = [
        Task("fake", ("z",), _fake(G, with_grad=True)),
        Task("fake_logits", ("fake",), critic),
    ]
    if loss.g_needs_real:
        g_main.append(Task("real_logits", ("real",), critic))
        g_main.append(Task("g_loss", ("fake_logits", "real_logits"), loss.g))
    else:
        g_main.append(Task("g_loss", ("fake_logits",), lambda fake_logits: loss.g(fake_logits,
                                                                                   None)))
    phases = []
    for side, main, main_loss in (("D", d_main, "d_loss"), ("G", g_main, "g_loss")):
        regs = [r for r in parts.regularizers if r.side == side]
        eager = [r for r in regs if r.every == 1]
        lazy = [r for r in regs if r.every > 1]
        tasks = main + [_reg_task(r, parts) for r in eager]
        terms = {main_loss: 1.0, **{r.name: r.weight for r in eager}}
        phases.append(Phase(f"{side}_main", side, 1, tuple(tasks), terms))
        if lazy:
            every = _lazy_every(lazy, side)
            fake = [d_main[0]] if side == "D" else []
            phases.append(Phase(f"{side}_reg", side, every,
                                tuple(fake + [_reg_task(r, parts) for r in lazy]),
                                {r.name: r.weight * every for r in lazy}))
    return phases
