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

The loop calls ``observe`` with logits still on the accelerator, and nothing here waits for
it: the sign sum is accumulated there, r_t of an interval is computed there and copied to the
host behind the work that makes it (``HostCopy``), and p moves by that r_t at the end of the
*next* interval, when the copy has long arrived. The reference instead reads r_t at once, a
host sync every interval that stalls the streams of a GPU step; the lag of one interval (4 D
steps of the ~2000 that p needs to move by 0.01 at the defaults) is the price, and it is the
same on every device, so runs stay reproducible. Logits that are NaN (a D step whose update
was dropped as non-finite) do not count. p and the step count live on the host for the pipe to
read, mirrored into buffers; ``rt`` holds the r_t still to be applied, so that ``state_dict``
holds everything a resume needs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gan_runner.core.devices import HostCopy


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
        # r_t of the last complete interval, applied to p at the end of the next one; nan at first
        self.register_buffer("rt", torch.tensor(math.nan, **f64))
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
        """One D main step: accumulate signs; at the end of an interval, move p by the r_t of
        the interval before and start bringing this interval's r_t to the host."""
        logits = real_logits.detach().double()
        counted = ~logits.isnan()
        self.sign_sum += logits.sign().where(counted, 0.0).sum()
        self.sign_count += counted.sum()
        self._steps += 1
        if self._steps < self.interval:
            self.steps.fill_(self._steps)
            return
        rt = self._pending.value()  # nan (no move) before the first interval or without a count
        direction = (rt > self.target) - (rt < self.target)
        self._p = min(max(self._p + direction * self.step_size, 0.0), self.p_max)
        self.p.fill_(self._p)
        torch.div(self.sign_sum, self.sign_count, out=self.rt)
        self._pending = HostCopy(self.rt)
        self._steps = 0
        self.steps.zero_()
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def stats(self) -> dict[str, float]:
        """p in use and the latest r_t (read from the device: call it at log rows)."""
        out = {"augment/p": self._p}
        rt = float(self.rt)
        if not math.isnan(rt):
            out["augment/rt"] = rt
        return out

    def _pull(self, _incompatible_keys: object = None) -> None:
        """Refresh the host copies from the buffers (after construction or a state load)."""
        self._p, self._steps = float(self.p), int(self.steps)
        self._pending = HostCopy(self.rt)

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

