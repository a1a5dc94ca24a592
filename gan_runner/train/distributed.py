"""Data-parallel training over processes started by ``torchrun``, meaning what one process means.

Global batch semantics: ``trainer.batch_size`` is the batch of the whole run. Every rank draws
the same global batch (data indices and latents, from the same seeded streams) and trains on
its own contiguous slice; gradients are averaged before each optimizer step. So the data, the
latents and the updates are those of one process with the same batch size, and the training
state (every checkpoint) does not depend on the number of ranks: a run may resume on another.

Why not ``DistributedDataParallel``: it reduces inside ``backward()``, which sits badly with the
lazy R1 and path-length phases (double backward) and with phases whose backward also passes
through the network that is not stepping. Averaging the gradient buffers once after backward is
the same arithmetic for every phase of ours, lazy or not.

What stays per rank: the global random streams (augmentation coin flips, instance noise, the
samples penalties draw) are seeded per rank, or every rank would repeat rank 0's draws on its
slice; and batch norm normalizes with each rank's slice (as DDP without SyncBatchNorm). Module
buffers such as batch-norm running statistics are rank 0's, broadcast every iteration (DDP's
``broadcast_buffers``), so the networks stay identical on all ranks.
"""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from gan_runner.core.errors import UserError
from gan_runner.core.rng import restore_rng, seed_everything

T = TypeVar("T")
# every collective waits this long for the slowest rank: long enough for rank 0 to run an
# evaluation (the others wait for its results) before a stuck run is declared dead
TIMEOUT = timedelta(hours=1)


@dataclass(frozen=True)
class World:
    """This process's place among the ranks; with one rank every collective is a no-op."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """The rank that writes files and evaluates."""
        return self.rank == 0

    def local_batch(self, batch_size: int) -> int:
        if batch_size % self.size:
            raise UserError(f"trainer.batch_size={batch_size} cannot be split evenly over "
                            f"{self.size} processes (it is the global batch)",
                            f"use a multiple of {self.size}")
        return batch_size // self.size

    def local_slice(self, batch: Tensor) -> Tensor:
        """This rank's contiguous share of a global batch (dim 0)."""
        size = self.local_batch(len(batch))
        return batch[self.rank * size:(self.rank + 1) * size]

    def mean_(self, tensors: Sequence[Tensor]) -> None:
        """Replaces each tensor by its mean over the ranks (floating point tensors)."""
        if self.size > 1:
            in_buckets(tensors, self._average)

    def _average(self, flat: Tensor) -> None:
        dist.all_reduce(flat)
        flat.div_(self.size)

    def average_gradients(self, module: nn.Module, loss: Tensor) -> Tensor:
        """Averages ``module``'s gradients over the ranks; returns the loss averaged the same
        way, so every rank takes the same skip decision and logs the global loss."""
        if self.size == 1:
            return loss
        mean_loss = loss.detach().float().clone()
        self.mean_([*(p.grad for p in module.parameters() if p.grad is not None), mean_loss])
        return mean_loss

    def gather(self, tensor: Tensor) -> Tensor:
        """Every rank's ``tensor`` concatenated in rank order: the global batch of a slice."""
        if self.size == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def broadcast_buffers(self, *modules: nn.Module) -> None:
        """Rank 0's buffers (batch-norm statistics, ...) on every rank."""
        buffers = [b for module in modules for b in module.buffers()]
        if self.size > 1 and buffers:
            in_buckets(buffers, lambda flat: dist.broadcast(flat, src=0))

    def agreed_signal(self, received: signal.Signals | None) -> signal.Signals | None:
        """A stop signal any rank received (the highest number if several), the same on every
        rank, so all of them leave the loop after the same iteration."""
        if self.size == 1:
            return received
        code = torch.tensor([int(received or 0)])
        dist.all_reduce(code, op=dist.ReduceOp.MAX)
        return signal.Signals(int(code)) if int(code) else None

    def share(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def collect(self, obj: T) -> list[T] | None:
        """Every rank's ``obj`` on rank 0, in rank order (None elsewhere)."""
        if self.size == 1:
            return [obj]
        found: list[Any] | None = [None] * self.size if self.is_main else None
        dist.gather_object(obj, found, dst=0)
        return found


def in_buckets(tensors: Sequence[Tensor], collective: Callable[[Tensor], Any]) -> None:
    """Runs ``collective`` in place on one flat copy per device and dtype, then writes the
    results back: one call per bucket instead of one per tensor."""
    buckets: dict[tuple[torch.device, torch.dtype], list[Tensor]] = defaultdict(list)
    for tensor in tensors:
        buckets[(tensor.device, tensor.dtype)].append(tensor)
    for bucket in buckets.values():
        flat = torch.cat([t.reshape(-1) for t in bucket])
        collective(flat)
        for tensor, part in zip(bucket, flat.split([t.numel() for t in bucket]), strict=True):
            tensor.copy_(part.view_as(tensor))


def current() -> World:
    """The process group this process has joined, or a world of one."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def init_from_env(device: torch.device) -> World:
    """Joins the group that torchrun describes in RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
    MASTER_PORT. Training on ``device`` "cuda", each rank takes GPU LOCAL_RANK and NCCL carries
    the CUDA tensors; gloo carries CPU tensors (all of them on ``device`` "cpu")."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "gloo"
        if device.type == "cuda":
            _take_gpu(int(os.environ.get("LOCAL_RANK", "0")))
            backend = "cpu:gloo,cuda:nccl"
        try:
            dist.init_process_group(backend, init_method="env://", timeout=TIMEOUT)
        except ValueError as error:  # a torchrun variable is missing
            raise UserError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} is set but {error}",
                            "start several processes with `torchrun --nproc_per_node N -m "
                            "gan_runner.cli.train ...`, or unset WORLD_SIZE") from error
    return current()


def _take_gpu(local_rank: int) -> None:
    """One GPU per rank: NCCL cannot run two ranks on one device."""
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise UserError(f"torchrun started more processes on this machine than the {count} "
                        "visible GPUs", f"use torchrun --nproc_per_node {count}, or "
                        "trainer.device=cpu")
    torch.cuda.set_device(local_rank)


@contextmanager
def process_group(device: torch.device) -> Iterator[World]:
    """The torchrun group for the duration of a run (a world of one without torchrun)."""
    world = init_from_env(device)
    try:
        yield world
    finally:
        if world.size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def rank_seed(seed: int, rank: int, nimg: int = 0) -> int:
    """A seed for a rank's own random streams, unrelated to the run's and other ranks'."""
    return int(np.random.SeedSequence([seed, rank, nimg]).generate_state(1)[0])


def own_random_state(world: World, seed: int, nimg: int = 0,
                     saved: list[dict[str, Any]] | None = None) -> None:
    """Rank 0 keeps the run's random state (a single process's); every other rank takes its
    own, from ``saved`` (a checkpoint's per-rank states) when it was saved by as many ranks,
    so a resume on the same number of ranks continues exactly."""
    if world.is_main:
        return
    if saved is not None and len(saved) == world.size:
        restore_rng(saved[world.rank])
    else:
        seed_everything(rank_seed(seed, world.rank, nimg))
