"""The ADA probability controller and the overfitting heuristics of Karras et al. 2020.

"Training generative adversarial networks with limited data", sec. 3: when D overfits, it grows
confident on the training images, so r_t = E[sign(D(real))] drifts from 0 towards 1. Every
``interval`` D steps the controller moves p by a fixed step towards keeping r_t at ``target``;
the step lets p traverse 0 -> 1 in ``ada_kimg`` thousand real images.

Defaults are the paper's: target 0.6, interval 4, ada_kimg 500. The reference code drops
ada_kimg to 100 only when fine-tuning a pretrained network (so p catches up quickly); from
scratch, as here, 500 is the paper's value.

Unlike the reference, p is clamped to ``p_max`` (0.8 by default): the paper shows (Fig. 3) that
above about 0.8 the augmentations start to leak into G's output (e.g. it learns rotated images,
because D can no longer tell the original orientation apart from the augmented ones). On
healthy datasets p settles far below the cap; it only binds on tiny sets where leaking would
be the larger harm.

The loop calls ``observe`` with logits still on the accelerator. The sign sum is accumulated
there and read back once per interval (the only host sync, as in the reference); p and the
step count live on the host for the pipe to read, mirrored into buffers so that ``state_dict``
holds everything a resume needs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def ada_step(batch_size: int, interval: int, ada_kimg: float) -> float:
    """How far one adjustment moves p: ``interval`` steps of ``batch_size`` reals."""
    return batch_size * interval / (ada_kimg * 1000)


class AdaController(nn.Module):
    """p from the r_t heuristic; all of its state is in buffers."""

    def __init__(self, batch_size: int, target: float = 0.6, interval: int = 4,
                 ada_kimg: float = 500.0, p_max: float = 0.8, p_init: float = 0.0) -> None:
        super().__init__()
        self.target, self.interval, self.p_max = target, interval, p_max
        self.step_size = ada_step(batch_size, interval, ada_kimg)
        f64 = {"dtype": torch.float64}
        self.register_buffer("p", torch.tensor(p_init, **f64))
        self.register_buffer("rt", torch.tensor(math.nan, **f64))  # nan until the first update
        self.register_buffer("sign_sum", torch.tensor(0.0, **f64))
        self.register_buffer("sign_count", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("steps", torch.tensor(0, dtype=torch.int64))  # within the interval
        self._pull()
        self.register_load_state_dict_post_hook(AdaController._pull)

    @property
    def p_value(self) -> float:
        """p without a device sync, for the pipe's per-sample coin flips."""
        return self._p

    def observe(self, real_logits: Tensor) -> None:
        """One D main step: accumulate signs; at the end of an interval, move p."""
        self.sign_sum += real_logits.detach().double().sign().sum()
        self.sign_count += real_logits.numel()
        self._steps += 1
        if self._steps < self.interval:
            self.steps.fill_(self._steps)
            return
        rt = float(self.sign_sum / self.sign_count)
        direction = (rt > self.target) - (rt < self.target)
        self._p = min(max(self._p + direction * self.step_size, 0.0), self.p_max)
        self._rt, self._steps = rt, 0
        self.p.fill_(self._p)
        self.rt.fill_(rt)
        self.steps.zero_()
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def stats(self) -> dict[str, float]:
        out = {"augment/p": self._p}
        if not math.isnan(self._rt):
            out["augment/rt"] = self._rt
        return out

    def _pull(self, _incompatible_keys: object = None) -> None:
        """Refresh the host copies from the buffers (after construction or a state load)."""
        self._p, self._rt, self._steps = float(self.p), float(self.rt), int(self.steps)

    def extra_repr(self) -> str:
        return (f"target={self.target}, interval={self.interval}, p_max={self.p_max}, "
                f"step_size={self.step_size:.3g}")


def r_v(train_logits: Tensor, val_logits: Tensor, generated_logits: Tensor) -> float:
    """The validation heuristic (E[D(train)] - E[D(val)]) / (E[D(train)] - E[D(generated)]).

    0 when D scores held-out reals like training reals, 1 when it scores them like fakes (full
    overfitting). The paper uses it only to validate r_t, since it needs a held-out split; nan
    or inf when D scores training and generated images alike.
    """
    train = train_logits.detach().double().mean()
    num = train - val_logits.detach().double().mean()
    den = train - generated_logits.detach().double().mean()
    return float(num / den)

