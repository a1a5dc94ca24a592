"""Our metrics give the reference tools' numbers on the same features.

References: pytorch-fid (sqrtm-based Fréchet distance), torch-fidelity (FID, KID, ISC) and prdc.
They are test-only extras, so each test skips when its reference is not installed. Features are
2,000 x 512 rather than x 2048 because the sqrtm reference alone takes ~20 s at 2048 dims.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_runner.metrics.frechet import FeatureStats, frechet_distance
from gan_runner.metrics.inception_score import inception_score
from gan_runner.metrics.kid import kernel_inception_distance, mmd2_unbiased
from gan_runner.metrics.prdc import density_coverage, precision_recall

N, DIM = 2000, 512
# what is enforced: measured differences on these features are FID 2e-14 (pytorch-fid) and
# 1e-14 (torch-fidelity), KID 2e-13, IS 6e-16, precision/recall/density/coverage 0 to 2e-16
# (float64 on both sides); 1e-12 leaves room for another BLAS's summation order, while a
# formula that differs (a biased MMD, another sqrtm, an off-by-one split) is off by far more
RTOL = 1e-12


@pytest.fixture(scope="module")
def features() -> tuple[np.ndarray, np.ndarray]:
    """Non-negative, correlated float32 features, like pooled CNN activations; the fake ones are
    shifted just enough that precision, recall, density and coverage all lie strictly between
    0 and 1 (farther apart, 512-d precision drops to 0 and the comparison would prove little)."""
    rng = np.random.default_rng(2024)
    mixing = rng.standard_normal((DIM, DIM)) / np.sqrt(DIM)

    def draw(shift: float) -> np.ndarray:
        return np.maximum(rng.standard_normal((N, DIM)) @ mixing + shift, 0).astype(np.float32)

    return draw(0.3), draw(0.35)


@pytest.fixture(scope="module")
def stats(features) -> tuple[FeatureStats, FeatureStats]:
    real, fake = features
    return FeatureStats.from_features(real), FeatureStats.from_features(fake)


def test_feature_stats_match_torch_fidelity(features, stats) -> None:
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid")
    reference = metric_fid.fid_features_to_statistics(torch.from_numpy(features[0]))
    # torch-fidelity averages float32 features in float32 (~1e-6 relative round-off); we
    # accumulate in float64. np.cov works in float64, so the covariances agree far more closely.
    np.testing.assert_allclose(stats[0].mu, reference["mu"], rtol=1e-5)
    np.testing.assert_allclose(stats[0].sigma, reference["sigma"], rtol=1e-6, atol=1e-9)


def test_frechet_distance_matches_pytorch_fid(stats) -> None:
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    a, b = stats
    reference = fid_score.calculate_frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    assert frechet_distance(a, b) == pytest.approx(reference, rel=RTOL)


def test_frechet_distance_matches_torch_fidelity(stats) -> None:
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid")
    a, b = stats
    reference = metric_fid.fid_statistics_to_metric(
        {"mu": a.mu, "sigma": a.sigma}, {"mu": b.mu, "sigma": b.sigma}, verbose=False
    )[metric_fid.KEY_METRIC_FID]
    assert frechet_distance(a, b) == pytest.approx(reference, rel=RTOL)


def torch_fidelity_kid(real, fake, subsets: int, size: int, seed: int) -> tuple[float, float]:
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    out = metric_kid.kid_features_to_metric(
        torch.as_tensor(real),
        torch.as_tensor(fake),
        kid_subsets=subsets,
        kid_subset_size=size,
        rng_seed=seed,
        verbose=False,
    )
    return out[metric_kid.KEY_METRIC_KID_MEAN], out[metric_kid.KEY_METRIC_KID_STD]


def test_kid_on_the_full_sets_matches_torch_fidelity(features) -> None:
    # One subset of every sample: the draw is a permutation, which the estimator ignores.
    # torch-fidelity computes in the dtype it is given; on float32 its own round-off is ~1e-4
    # relative to a KID this small, so it gets the float64 values we compute with.
    real, fake = (f.astype(np.float64) for f in features)
    ours, _ = kernel_inception_distance(real, fake, num_subsets=1, subset_size=N)
    reference, _ = torch_fidelity_kid(real, fake, subsets=1, size=N, seed=0)
    assert ours == pytest.approx(reference, rel=10 * RTOL)  # the kernel sums of 4e6 terms


def test_kid_with_the_same_seed_draws_the_same_subsets_as_torch_fidelity(features) -> None:
    real, fake = (f.astype(np.float64) for f in features)
    ours = kernel_inception_distance(real, fake, num_subsets=10, subset_size=300, seed=2020)
    reference = torch_fidelity_kid(real, fake, subsets=10, size=300, seed=2020)
    assert ours == pytest.approx(reference, rel=1e-10)


def test_mmd2_of_one_subset_matches_torch_fidelity(features) -> None:
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    x, y = (f[:500].astype(np.float64) for f in features)
    reference = metric_kid.kernel_mmd(
        x,
        y,
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
    )
    assert mmd2_unbiased(x, y) == pytest.approx(reference, rel=1e-10)


def test_inception_score_matches_torch_fidelity_without_shuffling() -> None:
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    # 2003 rows: splits of unequal size, so the split boundaries must agree too.
    logits = torch.from_numpy(3 * np.random.default_rng(7).standard_normal((2003, 1008)))
    reference = metric_isc.isc_features_to_metric(logits.float(), splits=10, shuffle=False)
    mean, std = inception_score(logits.float(), splits=10)
    assert mean == pytest.approx(reference[metric_isc.KEY_METRIC_ISC_MEAN], rel=RTOL)
    assert std == pytest.approx(reference[metric_isc.KEY_METRIC_ISC_STD], rel=RTOL)


@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_density_coverage_match_prdc(features, k: int) -> None:
    reference = pytest.importorskip("prdc").compute_prdc(
        *(f.astype(np.float64) for f in features), nearest_k=k
    )
    precision, recall = precision_recall(*features, k=k)
    density, coverage = density_coverage(*features, k=k)
    assert (precision, recall, density, coverage) == pytest.approx(
        (reference["precision"], reference["recall"], reference["density"], reference["coverage"]),
        rel=RTOL,
    )
