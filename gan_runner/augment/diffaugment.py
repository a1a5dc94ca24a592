"""DiffAugment (Zhao et al. 2020, "Differentiable augmentation for data-efficient GAN training").

Unlike ADA, every op is applied to every image, every time: the paper relies on the
augmentations being strong and differentiable rather than on p. The policy is a comma-separated
list of groups, applied in the order given:

- ``color``: brightness + U(-0.5, 0.5), saturation x U(0, 2) around each pixel's grey level,
  contrast x U(0.5, 1.5) around each image's mean (on grey images saturation does nothing);
- ``translation``: a shift by whole pixels of up to 1/8 of each side, the uncovered border
  filled with zeros as in the paper;
- ``cutout``: a square of half the side set to 0, its centre anywhere in the image (so it may
  overhang a border by up to half its side).

Outputs are not clamped, as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from gan_runner.augment.base import AUGMENTS, AugmentConfig, DAugment
from gan_runner.core.checks import require
from gan_runner.core.image_ops import cut_boxes, translate

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _per_image(x: Tensor, values: Tensor) -> Tensor:
    return values.view(-1, 1, 1, 1).to(x.dtype)


def brightness(x: Tensor) -> Tensor:
    return x + _per_image(x, torch.rand(x.shape[0], device=x.device) - 0.5)


def saturation(x: Tensor) -> Tensor:
    grey = x.mean(dim=1, keepdim=True)
    return grey + (x - grey) * _per_image(x, torch.rand(x.shape[0], device=x.device) * 2)


def contrast(x: Tensor) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (x - mean) * _per_image(x, torch.rand(x.shape[0], device=x.device) + 0.5)


def _pixels(side: int, ratio: float) -> int:
    return int(side * ratio + 0.5)


def translation(x: Tensor) -> Tensor:
    n, _, h, w = x.shape
    ry, rx = _pixels(h, TRANSLATION_RATIO), _pixels(w, TRANSLATION_RATIO)
    dy = torch.randint(-ry, ry + 1, (n,), device=x.device)
    dx = torch.randint(-rx, rx + 1, (n,), device=x.device)
    return translate(x, dy, dx, fill="zeros")


def cutout(x: Tensor) -> Tensor:
    n, _, h, w = x.shape

    def inside(side: int) -> Tensor:
        size = _pixels(side, CUTOUT_RATIO)
        # centres 0..side (even size) or 0..side-1 (odd) overhang both borders equally
        centre = torch.randint(0, side + 1 - size % 2, (n, 1), device=x.device)
        start = centre - size // 2
        coords = torch.arange(side, device=x.device).view(1, side)
        return (coords >= start) & (coords < start + size)

    return cut_boxes(x, inside(h), inside(w))


POLICIES: dict[str, tuple[Callable[[Tensor], Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in policy.split(",") if name.strip())


class DiffAugment(DAugment):
    """The policy's ops on every image; nothing adapts, so nothing to observe or save."""

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        super().__init__()
        self.policy = parse_policy(policy)
        unknown = set(self.policy) - set(POLICIES)
        if unknown:
            raise ValueError(f"unknown DiffAugment ops {sorted(unknown)}; known: {list(POLICIES)}")

    def forward(self, images: Tensor) -> Tensor:
        for name in self.policy:
            for op in POLICIES[name]:
                images = op(images)
        return images

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}"


@dataclass
class DiffAugmentConfig(AugmentConfig):
    """The paper's full policy by default."""

    name: str = "diffaugment"
    policy: str = "color,translation,cutout"

    def __post_init__(self) -> None:
        names = parse_policy(self.policy)
        require(set(names) <= set(POLICIES), "augment.policy", self.policy,
                "a comma-separated list of " + "|".join(POLICIES))


@AUGMENTS.register("diffaugment", schema=DiffAugmentConfig)
def diff_augment(cfg: DiffAugmentConfig, batch_size: int) -> DAugment:
    """DiffAugment with the configured policy."""
    return DiffAugment(cfg.policy)
