"""The real-data interface the loop and the metrics read from, and its registry.

Image sets keep (or decode on demand) uint8 pixels: metrics need the exact uint8 images (an
image set's ``uint8_batch``), the training step needs floats in [-1, 1] (``batch``), and both
come from the same pixels.

A labelled set also carries one int64 class index per sample (``labels``, on the same device
as its samples); reading them draws no random numbers, so an unconditional run is the same
whether or not its data has labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from gan_runner.core.checks import require
from gan_runner.core.registry import Registry
from gan_runner.core.spec import DataSpec


def require_penalty_weights(dataset: Any) -> None:
    """Both dataset kinds carry the weights regularizer=r1|r2|gp start from, scaled to the data."""
    for key in ("r1_gamma", "gp_lambda"):
        value = getattr(dataset, key)
        require(value >= 0, f"dataset.{key}", value, "a non-negative weight")


class RealData(Protocol):
    """A finite, indexable set of real samples.

    A set held in memory also offers ``memory_bytes`` (its size) and ``on_device(device)`` (the
    same set with its samples there, whose ``batch`` takes indices there): the training feed
    keeps such sets on the GPU when they fit (``data.feed``).
    """

    spec: DataSpec
    description: str  # where the samples came from: goes into every metric's provenance
    labels: Tensor | None  # int64 (len(self),): each sample's class; None when unlabelled

    def __len__(self) -> int: ...

    def batch(self, indices: Tensor) -> Tensor:
        """Float samples for the model: images in [-1, 1], points as they are."""
        ...


LABEL_CHOICES = ("auto", "folders", "none")  # dataset.labels


def labelled_spec(shape: tuple[int, ...], labels: Tensor | None,
                  class_names: tuple[str, ...]) -> DataSpec:
    """The spec of a set with these labels (one per distinct sample: x-flips not counted),
    counting how many samples each class has."""
    if labels is None:
        return DataSpec(shape)
    counts = torch.bincount(labels, minlength=len(class_names))
    return DataSpec(shape, len(class_names), tuple(class_names),
                    tuple(int(n) for n in counts))


def labels_of(data: RealData) -> Tensor | None:
    """A set's labels; sets written before labels existed (a test's stand-in) have none."""
    return getattr(data, "labels", None)


def to_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range G's tanh produces."""
    return images.to(torch.float32) / 127.5 - 1.0


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] -> uint8, rounding as a PNG writer would, so metrics see what users see."""
    return (images.detach() * 127.5 + 128.0).clamp(0, 255).to(torch.uint8)


DATASETS: Registry[Callable[[Any], RealData]] = Registry("dataset", group="dataset")
