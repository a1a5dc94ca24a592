"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs").

KID is an unbiased estimate of the squared MMD under the cubic polynomial kernel, averaged over
random subsets; unlike FID it has no bias that depends on the number of samples, so values from
small evaluations can be compared with large ones.

Speed: the three Gram blocks of a subset are matrix products at the precision the features
come in (float32 from every extractor: the inputs lose nothing, and NumPy computes ``x @ x.T``
as a symmetric rank-k update, half a product), the cube too, and the sums in float64. Float64
features are computed in float64 throughout, which is how the parity tests reach
torch-fidelity to 1e-13.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from gan_runner.core.errors import UserError
from gan_runner.metrics.base import MetricContext, Outputs, Result, register_metric
from gan_runner.metrics.frechet import check_feature_pair, dinov2_space

log = logging.getLogger(__name__)


Matrix = np.ndarray | torch.Tensor


def _sum64(a: Matrix) -> float:
    return float(a.sum(dtype=torch.float64) if isinstance(a, torch.Tensor)
                 else a.sum(dtype=np.float64))


def _kernel_sum(x: Matrix, y: Matrix, symmetric: bool) -> float:
    """Sum of k(x_i, y_j) = (x_i.y_j / d + 1)^3 over all pairs, leaving out i == j when
    ``symmetric`` (k(x_i, x_i) would bias the within-set means upwards). The cube stays in
    the features' precision and is summed in float64: float32 rounding of each term is
    random, so it averages out of a sum of 10^6 terms (4e-9 relative on KID at 10k x 2048).
    NumPy arrays or torch tensors (on a GPU: the evaluator's device) alike."""
    k = x @ y.T
    k *= 1.0 / x.shape[1]
    k += 1.0
    cube = k * k  # two products instead of ``** 3``, which NumPy evaluates with pow()
    cube *= k
    total = _sum64(cube)
    return total - _sum64(cube.diagonal()) if symmetric else total


def mmd2_unbiased(x: Matrix, y: Matrix) -> float:
    """Unbiased MMD^2 of two equal-size samples: within-set kernel means exclude the diagonal;
    the cross term keeps all m^2 pairs."""
    m = x.shape[0]
    within = (_kernel_sum(x, x, True) + _kernel_sum(y, y, True)) / (m * (m - 1))
    return within - 2.0 * _kernel_sum(x, y, False) / (m * m)


@dataclass(frozen=True)
class KID:
    """The estimate, its spread over subsets (NaN when the subsets cannot vary: one subset,
    or subsets that are a whole set), and the subsets actually drawn."""

    mean: float
    std: float
    subset_size: int
    subsets: int


def _as_matrix(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def kid(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0, device: torch.device | None = None) -> KID:
    """Mean and (population) standard deviation of MMD^2 over random subsets.

    Each subset draws ``subset_size`` real and then ``subset_size`` fake rows without
    replacement from ``np.random.RandomState(seed)``, the same draws torch-fidelity makes, so a
    given seed reproduces its number (torch-fidelity's default seed is 2020).

    A ``subset_size`` above a set's size is capped at it, with a warning (torch-fidelity
    refuses). The subsets then always hold that whole set, so their spread no longer measures
    the estimator's: the std is NaN, and when both sets are whole every subset is the same and
    one is computed. Values slightly below zero are valid: the estimator is unbiased.

    On a CUDA ``device`` the products run there (TF32 off: full float32), with the same
    draws; on the CPU they are NumPy's.
    """
    if num_subsets < 1 or subset_size < 2:
        raise UserError(
            f"KID needs num_subsets >= 1 and subset_size >= 2, got {num_subsets} and {subset_size}",
            "fix the KID options of the metrics config",
        )
    check_feature_pair(real, fake)
    real, fake = _as_matrix(real), _as_matrix(fake)
    if real.dtype != fake.dtype:
        real, fake = real.astype(np.float64), fake.astype(np.float64)
    n_real, n_fake = real.shape[0], fake.shape[0]
    size = min(subset_size, n_real, n_fake)
    capped = size < subset_size
    if capped:
        log.warning("KID: subsets of %d requested from %d real and %d fake samples; using %d, "
                    "and no std (every subset holds a whole set)", subset_size, n_real, n_fake,
                    size)
    whole = size == n_real and size == n_fake
    subsets = 1 if whole else num_subsets
    # RandomState rather than default_rng: its stream is frozen by NumPy, which keeps both the
    # parity with torch-fidelity and old results reproducible.
    rng = np.random.RandomState(seed)
    on_gpu = device is not None and torch.device(device).type == "cuda"
    rows: tuple[Matrix, Matrix] = (real, fake)
    if on_gpu:
        rows = (torch.from_numpy(real).to(device), torch.from_numpy(fake).to(device))
    mmds = np.empty(subsets)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for i in range(subsets):
            x = rows[0][_index(rng.choice(n_real, size, replace=False), on_gpu, device)]
            y = rows[1][_index(rng.choice(n_fake, size, replace=False), on_gpu, device)]
            mmds[i] = mmd2_unbiased(x, y)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    std = math.nan if capped or whole or subsets < 2 else float(mmds.std())
    return KID(float(mmds.mean()), std, size, subsets)


def _index(indices: np.ndarray, on_gpu: bool, device: torch.device | None
           ) -> np.ndarray | torch.Tensor:
    return torch.from_numpy(indices).to(device) if on_gpu else indices


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """``kid(...)`` as (mean, std)."""
    result = kid(real, fake, num_subsets, subset_size, seed)
    return result.mean, result.std


def kid_metric_values(real: Outputs, fake: Outputs, context: MetricContext, prefix: str
                      ) -> dict[str, float]:
    """KID's result keys under ``prefix`` (``kid``, ``kid_dinov2``), its subsets noted."""
    cfg = context.cfg
    result = kid(real["features"], fake["features"], cfg.kid_subsets, cfg.kid_subset_size,
                 device=context.device)
    context.note(**{f"{prefix}_subset_size": result.subset_size,
                    f"{prefix}_subsets": result.subsets})
    return {prefix: result.mean, f"{prefix}_std": result.std}


@register_metric("kid", Result("kid", lower_is_better=True, label="KID"),
                 Result("kid_std", lower_is_better=None), order=1)
def kid_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    return kid_metric_values(real, fake, context, "kid")


@register_metric("kid_dinov2", Result("kid_dinov2", lower_is_better=True, label="KID (DINOv2)"),
                 Result("kid_dinov2_std", lower_is_better=None), order=9, space=dinov2_space)
def kid_dinov2_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    return kid_metric_values(real, fake, context, "kid_dinov2")
