"""Endless shuffled batches whose position is part of the training state.

Each epoch is a fresh permutation from (seed, epoch), so a resumed run that restores
(epoch, position) draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_runner.data.datasets import RealData


class BatchStream:
    def __init__(self, data: RealData, batch_size: int, seed: int) -> None:
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.data), generator=generator)

    def next_indices(self) -> Tensor:
        chunks, needed = [], self.batch_size
        while needed:
            take = self._order[self.position:self.position + needed]
            chunks.append(take)
            needed -= len(take)
            self.position += len(take)
            if self.position == len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
        return torch.cat(chunks)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)
