"""The 2-D Gaussian-mixture mode-collapse benchmark (Unrolled GAN, VEEGAN, PacGAN).

``toy_ring8``: 8 modes evenly on a circle of radius ``scale``; ``toy_grid25``: 25 modes on a
5x5 grid with spacing ``scale``. A fixed pool of ``num_samples`` points is drawn once from
``seed``, so batches, resumes and metrics all see the same data. Each point's label is the
index of the mode it was drawn around (``dataset.labels=none`` drops them).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import Tensor

from gan_runner.core.checks import require, require_choice
from gan_runner.data.datasets import DATASETS, labelled_spec, require_penalty_weights


@dataclass
class ToyDatasetConfig:
    """A 2-D Gaussian mixture, sampled once from ``seed`` into ``num_samples`` points."""

    name: str = MISSING
    num_samples: int = 100_000
    std: float = 0.05
    scale: float = 2.0  # ring radius, or grid spacing
    seed: int = 0
    # R1/R2 penalise ||grad D||^2, whose size depends on the data's scale: the images' gamma of
    # 10 flattens D across a grid of points 2 apart (HQ samples 7%), 0.1 lets it separate them
    r1_gamma: float = 0.1
    # WGAN-GP's lambda weighs (||grad D|| - 1)^2 against the critic's score gap, which grows with
    # the data's scale: the images' 10 leaves the toy critic a tilted plane, 1 lets it form peaks
    gp_lambda: float = 1.0
    labels: str = "auto"  # auto: each point's mode index | none

    def __post_init__(self) -> None:
        require_choice("dataset.labels", self.labels, ("auto", "none"))
        require(self.num_samples > 0, "dataset.num_samples", self.num_samples, "a positive count")
        require(self.std > 0, "dataset.std", self.std, "a positive standard deviation")
        require(self.scale > 0, "dataset.scale", self.scale, "a positive number")
        require_penalty_weights(self)


def mode_centers(name: str, scale: float) -> Tensor:
    """(M, 2) mode centers of the named mixture."""
    if name == "toy_ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return (scale * torch.stack([angles.cos(), angles.sin()], dim=1)).float()
    if name == "toy_grid25":
        axis = torch.arange(-2, 3, dtype=torch.float32) * scale
        return torch.cartesian_prod(axis, axis)
    raise KeyError(name)


class ToyPoints:
    """A fixed pool of mixture samples; each sample picks a mode uniformly."""

    def __init__(self, cfg: ToyDatasetConfig) -> None:
        self.centers = mode_centers(cfg.name, cfg.scale)
        self.std = cfg.std
        generator = torch.Generator().manual_seed(cfg.seed)
        modes = torch.randint(len(self.centers), (cfg.num_samples,), generator=generator)
        noise = torch.randn(cfg.num_samples, 2, generator=generator) * cfg.std
        self.points = self.centers[modes] + noise
        self.memory_bytes = self.points.nbytes
        self.labels = modes if cfg.labels == "auto" else None
        names = tuple(f"mode {k}" for k in range(len(self.centers)))
        self.spec = labelled_spec((2,), self.labels, names if self.labels is not None else ())
        self.description = (
            f"{cfg.name}(scale={cfg.scale}, std={cfg.std}, n={cfg.num_samples}, seed={cfg.seed})"
        )

    def __len__(self) -> int:
        return len(self.points)

    def on_device(self, device: torch.device) -> ToyPoints:
        """The same pool on ``device``: ``batch`` then takes indices there."""
        moved = copy.copy(self)
        moved.points = self.points.to(device)
        moved.labels = None if self.labels is None else self.labels.to(device)
        return moved

    def batch(self, indices: Tensor) -> Tensor:
        return self.points[indices]


DATASETS.register("toy_ring8", schema=ToyDatasetConfig)(ToyPoints)
DATASETS.register("toy_grid25", schema=ToyDatasetConfig)(ToyPoints)
