"""The non-finite guard of a training step, decided on the device.

A NaN or inf in a loss or gradient must not reach the weights, or one bad batch ruins the run.
Asking the host (``if not torch.isfinite(loss)``) makes it wait for the device in every phase,
which serializes the very streams the scheduler lays out. Instead ``screen`` zeroes the whole
gradient of such an update on the device, so that update adds nothing new to the weights
(StyleGAN2-ADA zeroes the non-finite entries in the same spirit; the optimizer still takes its
step, so Adam's momentum carries on), and counts it there. ``read`` brings the counts to the
host where the loop synchronizes anyway (log rows, snapshots, evaluations), and the loop
decides there whether a streak calls for the last checkpoint.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

NETWORKS = ("G", "D")


class Counts(NamedTuple):
    """One network's non-finite updates as of a ``read``."""

    new: int  # since the last read
    streak: int  # in a row, up to now
    longest: int  # the longest streak since the last read (a streak may span reads)


class NonFiniteCounter:
    """Per network, on the device: updates since the last read, the current streak and the
    longest streak since the last read."""

    def __init__(self, device: torch.device) -> None:
        self._counts = torch.zeros(len(NETWORKS), 3, dtype=torch.int64, device=device)

    def screen(self, net: str, module: nn.Module, ok: Tensor) -> None:
        """Zero ``module``'s gradients unless ``ok`` (a 0-dim bool on the device); count."""
        bad = ~ok
        for parameter in module.parameters():
            if parameter.grad is not None:
                parameter.grad.masked_fill_(bad, 0.0)
        new, streak, longest = self._counts[NETWORKS.index(net)]
        new += bad
        streak.mul_(bad).add_(bad)  # (streak + 1) after a bad update, 0 after a good one
        torch.maximum(longest, streak, out=longest)

    def read(self) -> dict[str, Counts]:
        """The counts on the host (one device sync); starts the next window."""
        values = self._counts.tolist()
        self._counts[:, 0] = 0
        self._counts[:, 2] = self._counts[:, 1]
        return {net: Counts(*row) for net, row in zip(NETWORKS, values, strict=True)}

    def clear(self) -> None:
        """Forget every streak (after the networks came back from a checkpoint)."""
        self._counts.zero_()
