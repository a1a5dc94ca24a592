"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Both estimate each distribution's support as the union of balls around its samples, the radius
of a ball being the distance to the sample's k-th nearest neighbour. They split FID's single
number into fidelity (precision, density) and diversity (recall, coverage).

Distances are computed in float64 blocks of rows, so 10k x 10k sets never hold the full 800 MB
distance matrix. A sample on a precision/recall ball's boundary is inside (``<=``, as
StyleGAN2-ADA and torch-fidelity); density/coverage compare strictly (``<``, as ``prdc``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from gan_runner.core.errors import UserError
from gan_runner.metrics.base import (
    MetricContext,
    MetricsConfig,
    Outputs,
    Result,
    register_metric,
)
from gan_runner.metrics.frechet import check_feature_pair, dinov2_space

# Distance-matrix entries per block (64 MB in float64).
_BLOCK_ELEMENTS = 2**23


def _as_float64(features: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(features).detach().to(device="cpu", dtype=torch.float64)


def _distance_blocks(
    rows: torch.Tensor, columns: torch.Tensor
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield (row slice, distances from those rows to all columns), a block at a time."""
    step = max(1, _BLOCK_ELEMENTS // columns.shape[0])
    for start in range(0, rows.shape[0], step):
        block = slice(start, start + step)
        yield block, torch.cdist(rows[block], columns)


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each sample to its k-th nearest neighbour in its own set; the (k+1)-th
    smallest distance of a row, because the sample itself is at distance 0."""
    radii = torch.empty(x.shape[0], dtype=torch.float64)
    for block, distances in _distance_blocks(x, x):
        radii[block] = distances.topk(k + 1, dim=1, largest=False).values[:, -1]
    return radii


def _prepare(
    real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    if k < 1:
        raise UserError(f"k must be at least 1, got {k}", "fix k in the metrics config")
    # k neighbours besides the sample itself must exist in each set.
    check_feature_pair(real, fake, min_rows=k + 1)
    return _as_float64(real), _as_float64(fake)


def precision_recall(
    real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 3
) -> tuple[float, float]:
    """Precision: share of fake samples inside the real manifold; recall: share of real samples
    inside the fake manifold."""
    real, fake = _prepare(real, fake, k)
    real_radii = _knn_radii(real, k)
    fake_radii = _knn_radii(fake, k)
    fake_inside = torch.zeros(fake.shape[0], dtype=torch.bool)
    real_inside = torch.zeros(real.shape[0], dtype=torch.bool)
    for block, distances in _distance_blocks(fake, real):
        # on the boundary counts as inside, as in StyleGAN2-ADA and torch-fidelity
        fake_inside[block] = (distances <= real_radii).any(dim=1)
        real_inside |= (distances <= fake_radii[block, None]).any(dim=0)
    return fake_inside.double().mean().item(), real_inside.double().mean().item()


def density_coverage(
    real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 5
) -> tuple[float, float]:
    """Density: mean number of real balls containing a fake sample, divided by k (so it is 1
    in expectation for identical distributions and, unlike precision, not fooled by real
    outliers with large balls). Coverage: share of real samples whose ball contains at least
    one fake sample (robust to fake outliers, unlike recall)."""
    real, fake = _prepare(real, fake, k)
    real_radii = _knn_radii(real, k)
    containing_balls = torch.zeros(fake.shape[0], dtype=torch.float64)
    nearest_fake = torch.full((real.shape[0],), torch.inf, dtype=torch.float64)
    for block, distances in _distance_blocks(fake, real):
        containing_balls[block] = (distances < real_radii).sum(dim=1).double()
        nearest_fake = torch.minimum(nearest_fake, distances.min(dim=0).values)
    density = containing_balls.mean().item() / k
    coverage = (nearest_fake < real_radii).double().mean().item()
    return density, coverage


def pr_space(cfg: MetricsConfig, main: str) -> str:
    """VGG-16 fc2 on natural images, the space of Kynkäänniemi et al. and StyleGAN2-ADA;
    elsewhere (Fashion-MNIST's classifier, the toy points) the evaluation's own space."""
    if cfg.pr_features != "auto":
        return cfg.pr_features
    return "vgg16" if main == "inception" else main


@register_metric("pr", Result("precision", lower_is_better=False),
                 Result("recall", lower_is_better=False), order=3, space=pr_space)
def pr_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    precision, recall = precision_recall(real["features"], fake["features"], context.cfg.pr_k)
    return {"precision": precision, "recall": recall}


@register_metric("dc", Result("density", lower_is_better=False),
                 Result("coverage", lower_is_better=False), order=4)
def dc_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    density, coverage = density_coverage(real["features"], fake["features"], context.cfg.dc_k)
    return {"density": density, "coverage": coverage}


@register_metric("pr_dinov2", Result("precision_dinov2", lower_is_better=False),
                 Result("recall_dinov2", lower_is_better=False), order=10, space=dinov2_space)
def pr_dinov2_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    precision, recall = precision_recall(real["features"], fake["features"], context.cfg.pr_k)
    return {"precision_dinov2": precision, "recall_dinov2": recall}
