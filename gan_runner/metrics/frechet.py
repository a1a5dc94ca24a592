"""Gaussian feature statistics and the Fréchet distance between them (the formula behind FID).

Statistics are kept separately from the distance so the real-data side can be computed once,
saved, and reused for every evaluation of a run.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_runner.core.errors import UserError
from gan_runner.core.paths import atomic_write
from gan_runner.metrics.base import MetricContext, Outputs, Result, register_metric

# Rows converted to float64 at a time: bounds the extra memory of from_features to a few
# hundred MB even for 50k x 2048 float32 features.
_CHUNK_ROWS = 4096


def check_features(features: np.ndarray | torch.Tensor, name: str, min_rows: int = 2) -> None:
    """Reject anything that is not a (samples, dims) matrix with enough samples for the metric."""
    if features.ndim != 2 or features.shape[0] < min_rows:
        raise UserError(
            f"{name} features must be a 2-D (samples, dims) array with at least {min_rows} rows, "
            f"got shape {tuple(features.shape)}",
            "evaluate on more samples",
        )


def check_feature_pair(
    real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, min_rows: int = 2
) -> None:
    """Both sides must be valid and come from the same feature space to be comparable."""
    check_features(real, "real", min_rows)
    check_features(fake, "fake", min_rows)
    if real.shape[1] != fake.shape[1]:
        raise UserError(
            f"real and fake features have different dimensions ({real.shape[1]} vs "
            f"{fake.shape[1]})",
            "compute both with the same feature extractor",
        )


def _as_numpy(features: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        return features.detach().cpu().numpy()
    return np.asarray(features)


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Mean, unbiased covariance and sample count of a feature set, all that FID needs.

    The file format is pytorch-fid's and clean-fid's (an .npz with ``mu`` and ``sigma``), so
    their published statistics load here and ours load there; ours add ``count`` and, in
    ``meta``, how the features were made (extractor, its weights' sha256, resize, dataset).
    A foreign file has no count (None) and no meta.
    """

    mu: np.ndarray
    sigma: np.ndarray
    count: int | None
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Coerced here so every way of building stats (features, file, by hand) is float64.
        object.__setattr__(self, "mu", np.ascontiguousarray(self.mu, dtype=np.float64))
        object.__setattr__(self, "sigma", np.ascontiguousarray(self.sigma, dtype=np.float64))
        object.__setattr__(self, "count", None if self.count is None else int(self.count))
        dim = self.mu.shape[0] if self.mu.ndim == 1 else -1
        if self.sigma.shape != (dim, dim):
            raise UserError(
                f"inconsistent feature statistics: mu {self.mu.shape}, sigma {self.sigma.shape}",
                "recompute the statistics file",
            )

    @classmethod
    def from_features(cls, features: np.ndarray | torch.Tensor) -> FeatureStats:
        """Two passes over float64 chunks: centring before the products avoids the cancellation
        of sum(x x^T) - n mu mu^T, and ddof=1 matches pytorch-fid and torch-fidelity."""
        check_features(features, "input")
        x = _as_numpy(features)
        n, dim = x.shape
        mu = np.zeros(dim)
        for start in range(0, n, _CHUNK_ROWS):
            mu += x[start : start + _CHUNK_ROWS].sum(axis=0, dtype=np.float64)
        mu /= n
        sigma = np.zeros((dim, dim))
        for start in range(0, n, _CHUNK_ROWS):
            centred = x[start : start + _CHUNK_ROWS].astype(np.float64) - mu
            sigma += centred.T @ centred
        sigma /= n - 1
        return cls(mu, sigma, n)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write an .npz at exactly ``path``; the rename makes a crash leave no half-written
        cache that a later run would trust."""
        buffer = io.BytesIO()
        extra: dict[str, Any] = {} if self.count is None else {"count": np.int64(self.count)}
        extra.update({f"meta_{key}": np.str_(value) for key, value in self.meta.items()})
        np.savez(buffer, mu=self.mu, sigma=self.sigma, **extra)
        atomic_write(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FeatureStats:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = {key[5:]: str(data[key]) for key in data.files if key.startswith("meta_")}
                count = int(data["count"]) if "count" in data.files else None
                return cls(data["mu"], data["sigma"], count, meta)
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as err:
            raise UserError(
                f"cannot read feature statistics from {os.fspath(path)}: {err}",
                "delete the file to have it recomputed",
            ) from None


def _factor(sigma: np.ndarray) -> np.ndarray:
    """A with A A^T = sigma. Cholesky is ~10x cheaper than eigh and backward stable; eigh,
    with round-off negatives clamped, covers the singular covariances that Cholesky rejects
    (fewer samples than dims, dead feature units)."""
    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(sigma)
        return v * np.sqrt(np.clip(w, 0.0, None))


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr(sqrt(S_a S_b)), the FID formula.

    The trace term is computed without ``scipy.linalg.sqrtm``. Factor S_a = A A^T; then
    S_a S_b = A (A^T S_b) while (A^T S_b) A = A^T S_b A, and the products XY and YX of square
    matrices have the same eigenvalues. So S_a S_b has the eigenvalues of the symmetric PSD
    matrix A^T S_b A, which are real and >= 0, and the principal square root that sqrtm
    returns has their square roots as eigenvalues; its trace is their sum. A factorisation
    plus one symmetric eigenvalue problem is exact to round-off and 5-10x faster than a
    Schur-based sqrtm of the non-symmetric product, and it cannot produce the spurious
    imaginary parts sqrtm reports. Eigenvalues that round-off pushes below zero are clamped.
    """
    if a.mu.shape != b.mu.shape:
        raise UserError(
            f"feature statistics have different dimensions ({a.mu.shape[0]} vs {b.mu.shape[0]})",
            "compute both with the same feature extractor",
        )
    factor = _factor(a.sigma)
    product_eigenvalues = np.linalg.eigvalsh(factor.T @ (b.sigma @ factor))
    trace_sqrt = np.sqrt(np.clip(product_eigenvalues, 0.0, None)).sum()
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * trace_sqrt)


def fd_values(real: Outputs, fake: Outputs, context: MetricContext, key: str
              ) -> dict[str, float]:
    """The Fréchet distance under result ``key``; the real statistics once per evaluator
    (or, given ``metrics.real_stats``, the file's: the evaluator puts them there)."""
    real_stats = context.from_real(key, lambda: FeatureStats.from_features(real["features"]))
    return {key: frechet_distance(real_stats, FeatureStats.from_features(fake["features"]))}


@register_metric("fid", Result("fid", lower_is_better=True, label="FID", log_scale=True), order=0)
def fid_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    return fd_values(real, fake, context, "fid")


def dinov2_space(cfg: Any, main: str) -> str:
    """Stein et al.'s space, whatever the evaluation's main one."""
    return "dinov2"


@register_metric("fd_dinov2", Result("fd_dinov2", lower_is_better=True, label="FD (DINOv2)",
                                     log_scale=True), order=8, space=dinov2_space)
def fd_dinov2_metric(real: Outputs, fake: Outputs, context: MetricContext) -> dict[str, float]:
    return fd_values(real, fake, context, "fd_dinov2")
