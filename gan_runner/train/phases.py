"""A training step as data: phases made of named tasks with declared inputs.

Each phase (D main, D regularization, G main, G regularization - the split of StyleGAN2's
training loss) lists its tasks and the outputs that add up to its loss. The scheduler decides
how to run the tasks (in order on the CPU; issue-level work can put independent tasks on CUDA
streams), so adding a penalty means adding a task, not editing the loop.

Environment names a phase can start from (``GRAPH_INPUTS``): ``real`` (a batch of real
samples), ``z`` (latents for this phase) and, in a class-conditional run, ``real_c`` (the real
samples' labels) and ``c`` (the labels sampled for the fakes). A conditional run is the same
graph with labels beside the samples and, for ACGAN and InfoGAN, D's auxiliary heads and their
terms as more tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial

import torch
from torch import Tensor, nn

from gan_runner.augment.base import DAugment
from gan_runner.core.errors import UserError
from gan_runner.models.base import with_labels
from gan_runner.models.conditioning import LatentCodes
from gan_runner.objectives.auxiliary import class_cross_entropy, information_loss
from gan_runner.objectives.base import AdversarialLoss, DBatch, GBatch, Regularizer
from gan_runner.objectives.tricks import instance_noise

# what the loop puts in a phase's environment before its tasks: real samples and their labels,
# latents and the labels sampled for the fakes (the labels only in a labelled conditional run)
GRAPH_INPUTS = ("real", "z", "real_c", "c")


@dataclass(frozen=True)
class Task:
    """``name = fn(*inputs)``: one node of a phase's graph."""

    name: str
    inputs: tuple[str, ...]
    fn: Callable[..., Tensor]


@dataclass(frozen=True)
class Phase:
    """One optimizer step's graph, and the facts the step runner needs about it."""

    name: str  # unique: the scheduler's plans and the timeline are keyed on it
    trains: str  # "G" or "D": whose optimizer steps after this phase
    every: int  # runs on that network's steps where step % every == 0
    tasks: tuple[Task, ...]
    terms: dict[str, float]  # task output -> weight in the phase loss (lazy gain included)
    label: str = ""  # in log keys (``loss/<label>``); the name when empty
    reported: tuple[str, ...] = ()  # task outputs logged as ``reg/<name>`` (the penalties)
    observed: bool = False  # its real_logits/fake_logits feed ADA's r_t and the D statistics
    after_step: tuple[Callable[[], None], ...] = ()  # after the optimizer step (WGAN clipping)

    @cached_property
    def reads(self) -> frozenset[str]:
        """The graph inputs (``GRAPH_INPUTS``) its tasks read (asked at every step: once)."""
        return frozenset(name for task in self.tasks for name in task.inputs
                         if name in GRAPH_INPUTS)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)
        known = set(GRAPH_INPUTS)
        for task in self.tasks:
            missing = set(task.inputs) - known
            if missing:
                raise ValueError(f"{self.name}: task {task.name} needs {missing} before it")
            known.add(task.name)
        if not set(self.terms) | set(self.reported) <= known:
            raise ValueError(f"{self.name}: loss terms {set(self.terms) - known} are not tasks")
        if self.observed and not {"real_logits", "fake_logits"} <= known:
            raise ValueError(f"{self.name}: an observed phase computes real and fake logits")


@dataclass
class AugmentedCritic:
    """D as every task sees it: augmentation, then instance noise, then D (told the labels
    ``c`` when it is conditional; None leaves them out).

    ``fast_D`` (a compiled D, see ``train.speed``) serves the main losses; penalties that
    differentiate through D's input gradient call the critic itself, which uses plain ``D``.
    """

    D: nn.Module
    augment: DAugment
    noise_std: float = 0.0
    fast_D: nn.Module | None = None

    def __call__(self, images: Tensor, c: Tensor | None = None) -> Tensor:
        return self.judge(self.augment(images), c)

    def judge(self, images: Tensor, c: Tensor | None = None) -> Tensor:
        """D's logits of images that were already augmented (instance noise still applies)."""
        return with_labels(self.D, instance_noise(images, self.noise_std), c)

    def main(self, images: Tensor, c: Tensor | None = None) -> Tensor:
        D = self.D if self.fast_D is None else self.fast_D
        return with_labels(D, instance_noise(self.augment(images), self.noise_std), c)

    def packed(self, images: Tensor, c: Tensor | None = None) -> Tensor:
        """The logit and D's auxiliary heads from one trunk pass, as columns of one tensor
        (the layout of ``Conditional.heads``): tasks pass tensors, and slice this one."""
        logits, heads = self.D.heads(instance_noise(self.augment(images), self.noise_std), c)
        return torch.cat([logits[:, None].float(), *(v.float() for v in heads.values())], 1)


@dataclass(frozen=True)
class Conditional:
    """What the phases need to know of a conditional run (None in ``StepParts``: a GAN).

    ``labelled``: G and D are told class labels, so the tasks read ``c`` (the fakes' sampled
    labels) and ``real_c``; ``acgan_weight``: D has a class head (ACGAN), trained on the fakes'
    labels too when ``acgan_fakes``; ``codes``: G's
    latent carries InfoGAN codes, which D's Q head recovers (weight ``info_weight``)."""

    labelled: bool = False
    num_classes: int = 0
    acgan_weight: float | None = None
    acgan_fakes: bool = True
    codes: LatentCodes | None = None
    info_weight: float = 1.0

    @property
    def heads(self) -> tuple[tuple[str, int], ...]:
        """D's head outputs after its logit, in ``D.heads``'s order, with their widths."""
        out: list[tuple[str, int]] = []
        if self.acgan_weight is not None:
            out.append(("class_logits", self.num_classes))
        if self.codes is not None:
            out += [("code_logits", sum(self.codes.categorical)),
                    ("code_mean", self.codes.continuous)]
        return tuple(out)


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
    conditional: Conditional | None = None

    @property
    def labelled(self) -> bool:
        return self.conditional is not None and self.conditional.labelled


def _fake(G: nn.Module, with_grad: bool) -> Callable[..., Tensor]:
    def generate(z: Tensor, c: Tensor | None = None) -> Tensor:
        with torch.set_grad_enabled(with_grad):
            return with_labels(G, z, c)
    return generate


def _fake_task(parts: StepParts, G: nn.Module, with_grad: bool) -> Task:
    return Task("fake", ("z", "c") if parts.labelled else ("z",), _fake(G, with_grad))


def _judge(parts: StepParts, side: str, critic: Callable[..., Tensor]) -> list[Task]:
    """``<side>_logits`` of the real or fake samples, and ``<side>_<head>`` for each of D's
    auxiliary heads (one trunk pass for all)."""
    images, labels = ("real", "real_c") if side == "real" else ("fake", "c")
    inputs = (images, labels) if parts.labelled else (images,)
    heads = parts.conditional.heads if parts.conditional is not None else ()
    if not heads:
        return [Task(f"{side}_logits", inputs, critic)]
    tasks = [Task(f"{side}_out", inputs, parts.critic.packed),
             Task(f"{side}_logits", (f"{side}_out",), lambda out: out[:, 0])]
    start = 1
    for name, width in heads:
        tasks.append(Task(f"{side}_{name}", (f"{side}_out",),
                          lambda out, a=start, b=start + width: out[:, a:b]))
        start += width
    return tasks


def _auxiliary(parts: StepParts, side: str) -> tuple[list[Task], dict[str, float]]:
    """ACGAN's class cross-entropy and InfoGAN's information term of one side's phase."""
    cond = parts.conditional
    if cond is None:
        return [], {}
    tasks, terms = [], {}
    if cond.acgan_weight is not None:
        if side == "D" and cond.acgan_fakes:  # the classes of real images and fakes' labels
            tasks.append(Task("acgan_D", ("real_class_logits", "real_c", "fake_class_logits", "c"),
                              lambda r, rc, f, fc: class_cross_entropy(r, rc)
                              + class_cross_entropy(f, fc)))
        elif side == "D":
            tasks.append(Task("acgan_D", ("real_class_logits", "real_c"), class_cross_entropy))
        else:  # G makes fakes that D classifies as their labels
            tasks.append(Task("acgan_G", ("fake_class_logits", "c"), class_cross_entropy))
        terms[tasks[-1].name] = cond.acgan_weight
    if cond.codes is not None:
        codes = cond.codes
        tasks.append(Task(f"info_{side}", ("fake_code_logits", "fake_code_mean", "z"),
                          lambda logits, mean, z: information_loss(logits, mean, z, codes)))
        terms[tasks[-1].name] = cond.info_weight
    return tasks, terms


LABEL_OF = {"real": "real_c", "fake": "c"}  # the labels that go with each set of samples
DBATCH_FIELD = {"real": "real", "fake": "fake", "real_c": "real_c", "c": "fake_c"}


def _reg_task(reg: Regularizer, parts: StepParts) -> Task:
    if reg.side == "D":
        inputs = tuple(reg.inputs)
        if parts.labelled:
            inputs += tuple(LABEL_OF[name] for name in reg.inputs)
        return Task(reg.name, inputs, lambda *samples: reg.penalty(
            DBatch(parts.critic, **{DBATCH_FIELD[name]: value
                                    for name, value in zip(inputs, samples, strict=True)})))
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
    """D main (+ eager D penalties), lazy D penalties, G main (+ eager G penalties), lazy G;
    a conditional run's main phases add the auxiliary terms of its heads."""
    critic, loss = parts.critic.main, parts.loss
    G = parts.G if parts.fast_G is None else parts.fast_G
    d_fake = _fake_task(parts, G, with_grad=False)
    d_main = [d_fake, *_judge(parts, "real", critic), *_judge(parts, "fake", critic),
              Task("d_loss", ("real_logits", "fake_logits"), loss.d)]
    g_main = [_fake_task(parts, G, with_grad=True), *_judge(parts, "fake", critic)]
    if loss.g_needs_real:
        g_main += _judge(parts, "real", critic)
        g_main.append(Task("g_loss", ("fake_logits", "real_logits"), loss.g))
    else:
        g_main.append(Task("g_loss", ("fake_logits",), lambda fake_logits: loss.g(fake_logits,
                                                                                   None)))
    after_d_step = () if loss.after_d_step is None else (
        partial(loss.after_d_step, parts.critic.D),)
    phases = []
    for side, main, main_loss in (("D", d_main, "d_loss"), ("G", g_main, "g_loss")):
        aux_tasks, aux_terms = _auxiliary(parts, side)
        regs = [r for r in parts.regularizers if r.side == side]
        eager = [r for r in regs if r.every == 1]
        lazy = [r for r in regs if r.every > 1]
        tasks = main + aux_tasks + [_reg_task(r, parts) for r in eager]
        terms = {main_loss: 1.0, **aux_terms, **{r.name: r.weight for r in eager}}
        after = after_d_step if side == "D" else ()
        phases.append(Phase(f"{side}_main", side, 1, tuple(tasks), terms, label=side,
                            reported=(*aux_terms, *(r.name for r in eager)),
                            observed=side == "D", after_step=after))
        if lazy:
            every = _lazy_every(lazy, side)
            # a G forward only where a lazy D penalty reads fakes (not for R1: StyleGAN2's Dreg)
            fake = [d_fake] if any("fake" in r.inputs for r in lazy if side == "D") else []
            phases.append(Phase(f"{side}_reg", side, every,
                                tuple(fake + [_reg_task(r, parts) for r in lazy]),
                                {r.name: r.weight * every for r in lazy},
                                reported=tuple(r.name for r in lazy), after_step=after))
    return phases
