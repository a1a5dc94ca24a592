"""What the data looks like to a model: the one fact the data and model layers share.

Datasets produce it, model factories build for it, checkpoints store it; it lives below both
so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataSpec:
    """The shape of one sample: (C, H, W) for images, (dim,) for points."""

    shape: tuple[int, ...]

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def resolution(self) -> int:
        return self.shape[-1]
