"""Real batches for the training step, made so that the device never waits for them.

Sets that fit (Fashion-MNIST, CIFAR-10, MNIST, the toy points: a few hundred MB at most) are
copied to the device once, images as uint8, and each batch is indexed there: only the batch's
indices cross from the host, without blocking. Larger sets (image folders, decoded on demand)
come through a ``DataLoader`` whose workers decode the next batches ahead of time, into pinned
memory, from where they are copied without blocking.

Either way a batch is the stream's (``BatchStream``), so the images a step sees do not depend
on the feed: the loader follows its own copy of the stream from the live stream's position,
and starts over from there whenever the live position moved (a resume). Each feed measures how
long the host waited for its batches (``take_wait``), which the loop logs. A labelled set's
labels come with its images (``next_labelled``), indexed by the same indices: on the device for
a resident set, through the loader (pinned, copied without blocking) otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from gan_runner.core.devices import to_device
from gan_runner.core.errors import UserError
from gan_runner.data.datasets import RealData, labels_of
from gan_runner.data.stream import BatchStream

Slice = Callable[[Tensor], Tensor]  # this rank's share of a global batch (``World.local_slice``)
Labelled = tuple[Tensor, Tensor | None]  # images and their int64 labels (None: unlabelled)

# a set is kept on a GPU when it takes at most this share of the memory free there
DEVICE_SHARE = 0.25


class Feed:
    """``next_labelled()`` -> the next real batch (this rank's slice) on the device, as
    floats, and its labels there; ``next()`` -> the images alone."""

    def __init__(self, stream: BatchStream, local_slice: Slice, device: torch.device,
                 memory_format: torch.memory_format) -> None:
        self.stream, self.local_slice, self.device = stream, local_slice, device
        self.memory_format = memory_format
        self._waited, self._batches = 0.0, 0

    def next(self) -> Tensor:
        return self.next_labelled()[0]

    def next_labelled(self) -> Labelled:
        start = time.perf_counter()
        batch = self._next()
        self._waited += time.perf_counter() - start
        self._batches += 1
        return batch

    def take_wait(self) -> float | None:
        """Mean host milliseconds spent per batch since the last call (None without batches)."""
        if not self._batches:
            return None
        mean = self._waited / self._batches * 1000
        self._waited, self._batches = 0.0, 0
        return mean

    def _next(self) -> Labelled:
        raise NotImplementedError


class ResidentFeed(Feed):
    """Batches indexed on the device from a copy of the whole set there."""

    def __init__(self, data: RealData, stream: BatchStream, local_slice: Slice,
                 device: torch.device, memory_format: torch.memory_format) -> None:
        super().__init__(stream, local_slice, device, memory_format)
        self.data = data.on_device(device)  # type: ignore[attr-defined]

    def _next(self) -> Labelled:
        indices = to_device(self.local_slice(self.stream.next_indices()), self.device)
        labels = labels_of(self.data)
        if labels is not None:
            labels = labels[indices]
        return self.data.batch(indices).contiguous(memory_format=self.memory_format), labels


class _Batches(torch.utils.data.Dataset):
    """A loader's items are whole batches: ``data.batch(indices)`` and their labels, in a
    worker."""

    def __init__(self, data: RealData) -> None:
        self.data = data

    def __getitem__(self, indices: Tensor) -> Labelled | UserError:
        try:
            images = self.data.batch(indices)
        except UserError as error:  # sent as data: a raise would come back wrapped in a trace
            return error
        labels = labels_of(self.data)
        return images, None if labels is None else labels[indices]


class _Ahead:
    """This rank's index batches of a private copy of ``stream``, endlessly."""

    def __init__(self, stream: BatchStream, local_slice: Slice) -> None:
        self.stream = BatchStream(stream.data, stream.batch_size, stream.seed)
        self.stream.load_state_dict(stream.state_dict())
        self.local_slice = local_slice

    def __iter__(self) -> Iterator[Tensor]:
        while True:
            yield self.local_slice(self.stream.next_indices())


class LoaderFeed(Feed):
    """Batches decoded ahead by ``workers`` processes (in this one when 0)."""

    def __init__(self, data: RealData, stream: BatchStream, local_slice: Slice,
                 device: torch.device, memory_format: torch.memory_format, workers: int) -> None:
        super().__init__(stream, local_slice, device, memory_format)
        self.data, self.workers = data, workers
        self._batches_ahead: Iterator[Tensor] | None = None
        self._position: tuple[int, int] | None = None  # the live stream's, at the loader's head

    def _start(self) -> None:
        options: dict[str, Any] = {}
        if self.workers:
            # fork: the workers inherit the set as it is (its file list, a closure), unpickled
            options = {"multiprocessing_context": "fork", "prefetch_factor": 2}
        loader = DataLoader(_Batches(self.data), batch_size=None,
                            sampler=_Ahead(self.stream, self.local_slice), num_workers=self.workers,
                            pin_memory=self.device.type == "cuda", **options)
        self._batches_ahead = iter(loader)

    def _next(self) -> Labelled:
        if self._position != (self.stream.epoch, self.stream.position):
            self._start()
        self.stream.next_indices()  # the live stream moves with the loader's copy
        self._position = (self.stream.epoch, self.stream.position)
        batch = next(self._batches_ahead)  # type: ignore[arg-type]
        if isinstance(batch, UserError):  # an unreadable image: the one line it is
            raise batch
        images, labels = batch
        return (to_device(images, self.device, self.memory_format),
                None if labels is None else to_device(labels, self.device))


def fits_on(device: torch.device, nbytes: int) -> bool:
    """Whether a set of ``nbytes`` may live on ``device`` (host memory holds it already)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_SHARE * free


def build_feed(data: RealData, stream: BatchStream, local_slice: Slice, device: torch.device,
               memory_format: torch.memory_format, workers: int) -> Feed:
    """The resident feed for sets held in memory (``memory_bytes``) that fit on the device,
    the loader otherwise."""
    nbytes = getattr(data, "memory_bytes", None)
    if nbytes is not None and fits_on(device, nbytes):
        return ResidentFeed(data, stream, local_slice, device, memory_format)
    return LoaderFeed(data, stream, local_slice, device, memory_format, workers)
