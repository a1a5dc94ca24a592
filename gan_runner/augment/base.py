"""The seam between the training step and discriminator augmentation.

Every image D sees (real and fake, in every phase and regularizer) goes through one
``DAugment`` module, differentiably, so gradients reach G through it. After each D main step
the loop reports the real logits through ``observe``; adaptive schemes (ADA) use them to move
their probability ``p``. The module's ``state_dict`` holds everything that must survive a
resume (p and the controller's accumulators).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from gan_runner.core.registry import Registry


@dataclass
class AugmentConfig:
    """What D sees: ``none`` here; ADA and DiffAugment add their options."""

    name: str = "none"


class DAugment(nn.Module):
    """Identity augmentation; subclasses transform images and may adapt from ``observe``."""

    def forward(self, images: Tensor) -> Tensor:
        return images

    def observe(self, real_logits: Tensor) -> None:
        """Called once per D main step with the detached logits of the real batch."""

    def stats(self) -> dict[str, float]:
        """Scalars to log (e.g. ``augment/p``, ``augment/rt``)."""
        return {}


AUGMENTS: Registry[Callable[[Any, int], DAugment]] = Registry("augment", group="augment")


@AUGMENTS.register("none", schema=AugmentConfig)
def no_augment(cfg: AugmentConfig, batch_size: int) -> DAugment:
    """D sees the images as they are."""
    return DAugment()
