"""The metric formulas agree with closed forms and with answers worked out by hand."""

from __future__ import annotations

import logging
import math
from itertools import combinations

import numpy as np
import pytest
import torch

from gan_runner.core.errors import UserError
from gan_runner.metrics import prdc
from gan_runner.metrics.frechet import FeatureStats, frechet_distance
from gan_runner.metrics.inception_score import inception_score
from gan_runner.metrics.kid import kernel_inception_distance, kid
from gan_runner.metrics.prdc import density_coverage, precision_recall


def random_stats(rng: np.random.Generator, n: int, dim: int) -> FeatureStats:
    """Stats of correlated, shifted Gaussian features, so covariances do not commute."""
    mixing = rng.standard_normal((dim, dim))
    return FeatureStats.from_features(rng.standard_normal((n, dim)) @ mixing + rng.normal(size=dim))


# --- Fréchet distance -------------------------------------------------------------------------


def test_feature_stats_are_the_float64_mean_and_unbiased_covariance() -> None:
    features = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0], [0.0, 1.0]], dtype=np.float32)
    stats = FeatureStats.from_features(torch.from_numpy(features))
    # Hand computation: mean (2, 3); deviations (-1,-1), (1,2), (2,1), (-2,-2); sums of products
    # xx = 10, yy = 10, xy = 9, divided by n - 1 = 3.
    np.testing.assert_allclose(stats.mu, [2.0, 3.0], rtol=1e-15)
    np.testing.assert_allclose(stats.sigma, [[10 / 3, 3.0], [3.0, 10 / 3]], rtol=1e-15)
    assert stats.count == 4
    assert stats.mu.dtype == stats.sigma.dtype == np.float64


def test_feature_stats_do_not_depend_on_the_chunking_of_large_inputs() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(loc=1e3, size=(10_000, 3))  # more rows than one chunk, large mean
    stats = FeatureStats.from_features(features)
    np.testing.assert_allclose(stats.mu, features.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(stats.sigma, np.cov(features, rowvar=False), rtol=1e-10)


def test_feature_stats_survive_a_save_and_load(tmp_path) -> None:
    stats = random_stats(np.random.default_rng(1), 50, 4)
    path = tmp_path / "real_stats.npz"
    stats.save(path)
    loaded = FeatureStats.load(path)
    np.testing.assert_array_equal(loaded.mu, stats.mu)
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    assert loaded.count == 50
    assert [p.name for p in tmp_path.iterdir()] == ["real_stats.npz"]


@pytest.mark.parametrize("content", [None, b"not an npz file"])
def test_loading_missing_or_corrupt_stats_is_a_user_error(tmp_path, content) -> None:
    path = tmp_path / "stats.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match="cannot read feature statistics"):
        FeatureStats.load(path)


def test_feature_stats_need_a_matrix_with_two_rows() -> None:
    with pytest.raises(UserError, match="at least 2 rows"):
        FeatureStats.from_features(np.ones((1, 3)))


@pytest.mark.parametrize(
    ("n", "dead"), [(400, 0), (10, 0), (400, 3)], ids=["full-rank", "few-samples", "dead-features"]
)
def test_frechet_distance_of_identical_stats_is_zero(n: int, dead: int) -> None:
    # Fewer samples than dims, or constant ("dead") features, make the covariance singular.
    rng = np.random.default_rng(2)
    features = rng.standard_normal((n, 16)) @ rng.standard_normal((16, 16))
    features[:, :dead] = 1.0
    stats = FeatureStats.from_features(features)
    scale = 2 * np.trace(stats.sigma)
    assert abs(frechet_distance(stats, stats)) <= 1e-8 * scale


def test_frechet_distance_of_1d_gaussians_is_the_closed_form() -> None:
    a = FeatureStats(np.array([1.0]), np.array([[4.0]]), 10)
    b = FeatureStats(np.array([-2.0]), np.array([[9.0]]), 10)
    # (1 - (-2))^2 + 4 + 9 - 2 * sqrt(4 * 9) = 9 + 13 - 12
    assert frechet_distance(a, b) == pytest.approx(10.0, rel=1e-14)


@pytest.mark.parametrize(
    "s1",
    [np.array([1.0, 2.0, 0.5, 3.0]), np.array([1.0, 0.0, 0.5, 3.0])],
    ids=["positive-definite", "dead-feature"],  # a zero variance makes the covariance singular
)
def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form(s1: np.ndarray) -> None:
    mu1, mu2 = np.array([0.0, 1.0, 2.0, -1.0]), np.array([0.5, 1.0, 0.0, 3.0])
    s2 = np.array([4.0, 0.1, 0.5, 1e-3])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = frechet_distance(FeatureStats(mu1, np.diag(s1), 5), FeatureStats(mu2, np.diag(s2), 5))
    assert got == pytest.approx(expected, rel=1e-13)


def test_frechet_distance_of_non_commuting_2d_covariances_is_the_closed_form() -> None:
    # For a 2x2 matrix with eigenvalues l1, l2 >= 0, (sqrt l1 + sqrt l2)^2 = tr + 2 sqrt(det),
    # so Tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
    s1 = np.array([[2.0, 1.0], [1.0, 3.0]])
    s2 = np.array([[1.0, -0.5], [-0.5, 0.5]])
    trace_sqrt = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = 1.0**2 + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    got = frechet_distance(FeatureStats([0.0, 0.0], s1, 3), FeatureStats([1.0, 0.0], s2, 3))
    assert got == pytest.approx(expected, rel=1e-13)


def test_frechet_distance_is_symmetric() -> None:
    rng = np.random.default_rng(3)
    a, b = random_stats(rng, 300, 32), random_stats(rng, 300, 32)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-10)


def test_frechet_distance_is_invariant_to_a_common_rotation() -> None:
    rng = np.random.default_rng(4)
    a, b = random_stats(rng, 300, 32), random_stats(rng, 300, 32)
    q, _ = np.linalg.qr(rng.standard_normal((32, 32)))

    def rotate(s: FeatureStats) -> FeatureStats:
        return FeatureStats(q @ s.mu, q @ s.sigma @ q.T, s.count)

    assert frechet_distance(rotate(a), rotate(b)) == pytest.approx(
        frechet_distance(a, b), rel=1e-10
    )


def test_frechet_distance_rejects_stats_of_different_dimensions() -> None:
    a = FeatureStats(np.zeros(2), np.eye(2), 5)
    b = FeatureStats(np.zeros(3), np.eye(3), 5)
    with pytest.raises(UserError, match="different dimensions"):
        frechet_distance(a, b)


# --- Kernel Inception Distance ----------------------------------------------------------------


def mmd2_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 estimator of Binkowski et al. (2018), written out pair by pair."""
    m, d = x.shape

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_of_one_full_subset_is_the_unbiased_mmd2_written_as_loops() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)) + 0.5
    # A full-size subset is a permutation of the set, which the estimator does not see.
    mean, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=6)
    assert mean == pytest.approx(mmd2_by_loops(x, y), rel=1e-12)
    assert math.isnan(std)  # one subset has no spread to report


def test_kid_on_float32_features_agrees_with_float64_to_1e6() -> None:
    """Float32 Gram products (the fast path for extractor features) lose almost nothing:
    1.6e-7 relative here, 4e-9 on 10k x 2048 features (torch-fidelity's float32: 1.5e-6)."""
    rng = np.random.default_rng(9)
    x = np.maximum(rng.standard_normal((400, 256)) + 0.3, 0).astype(np.float32)
    y = np.maximum(rng.standard_normal((400, 256)) + 0.35, 0).astype(np.float32)
    exact, _ = kernel_inception_distance(x.astype(np.float64), y.astype(np.float64),
                                         num_subsets=5, subset_size=200)
    fast, _ = kernel_inception_distance(x, y, num_subsets=5, subset_size=200)
    assert fast == pytest.approx(exact, rel=1e-6)


def test_kid_subsets_larger_than_the_sets_warn_and_report_no_std(caplog) -> None:
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((50, 4)) + 0.3
    with caplog.at_level(logging.WARNING):
        result = kid(x, y, num_subsets=100, subset_size=1000)
    assert "subsets of 1000 requested from 50 real and 50 fake" in caplog.text
    # every subset would be the whole of both sets: one is computed, and no spread is claimed
    assert result.subset_size == 50 and result.subsets == 1 and math.isnan(result.std)
    assert result.mean == pytest.approx(mmd2_by_loops(x, y), rel=1e-12)


def test_kid_capped_on_one_side_still_draws_subsets_but_reports_no_std() -> None:
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((80, 4)), rng.standard_normal((30, 4))
    result = kid(x, y, num_subsets=10, subset_size=100)
    assert result.subset_size == 30 and result.subsets == 10 and math.isnan(result.std)
    assert not math.isnan(kid(x, y, num_subsets=10, subset_size=20).std)


def test_kid_caps_the_subset_size_at_the_smaller_set() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((9, 3)), rng.standard_normal((5, 3))
    mean, _ = kernel_inception_distance(x, y, num_subsets=1, subset_size=1000)
    # Only 5 of the 9 real rows are used, so the answer is the MMD of some 5 real rows with y.
    candidates = [mmd2_by_loops(x[list(rows)], y) for rows in combinations(range(9), 5)]
    assert min(abs(mean - c) for c in candidates) <= 1e-12 * abs(mean)


def test_kid_is_near_zero_for_samples_of_one_distribution_and_positive_when_shifted() -> None:
    rng = np.random.default_rng(7)
    real, fake = rng.standard_normal((2000, 16)), rng.standard_normal((2000, 16))
    same, same_std = kernel_inception_distance(real, fake, num_subsets=20, subset_size=500)
    shifted, _ = kernel_inception_distance(real, fake + 0.5, num_subsets=20, subset_size=500)
    assert abs(same) < 3 * same_std
    assert shifted > 50 * same_std


def test_kid_is_reproducible_for_a_seed_and_varies_across_seeds() -> None:
    rng = np.random.default_rng(8)
    real, fake = rng.standard_normal((100, 4)), rng.standard_normal((100, 4)) + 0.2
    first = kernel_inception_distance(real, fake, num_subsets=3, subset_size=20, seed=1)
    assert kernel_inception_distance(real, fake, num_subsets=3, subset_size=20, seed=1) == first
    assert kernel_inception_distance(real, fake, num_subsets=3, subset_size=20, seed=2) != first


def test_kid_rejects_features_of_different_dimensions() -> None:
    with pytest.raises(UserError, match="different dimensions"):
        kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 4)))


# --- Inception Score --------------------------------------------------------------------------


def one_hot_logits(classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Logits whose softmax is exactly one-hot in float64 (exp(-1e4) underflows to 0)."""
    logits = np.full((len(classes), num_classes), -1e4)
    logits[np.arange(len(classes)), classes] = 0.0
    return logits


def test_inception_score_of_confident_predictions_spread_over_all_classes_is_the_class_count():
    logits = one_hot_logits(np.arange(70) % 7, 7)
    # Each contiguous split of 35 rows holds every class 5 times: p(y) uniform, KL = log 7.
    mean, std = inception_score(logits, splits=2)
    assert mean == pytest.approx(7.0, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_constant_predictions_is_one() -> None:
    logits = np.tile(np.random.default_rng(9).standard_normal(10), (50, 1))
    mean, std = inception_score(logits, splits=5)
    assert mean == pytest.approx(1.0, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_two_mirrored_soft_predictions_is_the_closed_form() -> None:
    # Half the samples predict (a, 1-a), half (1-a, a): p(y) = (1/2, 1/2) and
    # KL = a log(2a) + (1-a) log(2(1-a)) for every sample.
    a = 0.8
    logits = np.log(np.tile([[a, 1 - a], [1 - a, a]], (20, 1)))
    mean, _ = inception_score(logits, splits=1)
    assert mean == pytest.approx(math.exp(a * math.log(2 * a) + (1 - a) * math.log(2 * (1 - a))))


def test_inception_score_splits_are_contiguous_and_unshuffled() -> None:
    # First half all class 0, second half all class 1: each contiguous half scores 1,
    # while the whole set (or any shuffled split) would mix the classes and score 2.
    logits = one_hot_logits(np.repeat([0, 1], 20), 2)
    assert inception_score(logits, splits=2) == pytest.approx((1.0, 0.0))
    assert inception_score(logits, splits=1)[0] == pytest.approx(2.0)


def test_inception_score_needs_at_least_one_sample_per_split() -> None:
    with pytest.raises(UserError, match="splits"):
        inception_score(np.zeros((5, 3)), splits=10)


# --- precision / recall / density / coverage --------------------------------------------------


@pytest.fixture(params=[2**23, 1], ids=["one-block", "row-by-row"])
def block_elements(request, monkeypatch) -> None:
    """Run the hand-built cases both in one block and one row at a time: batching is an
    implementation detail that must not change any answer."""
    monkeypatch.setattr(prdc, "_BLOCK_ELEMENTS", request.param)


def points(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float64)[:, None]


# Real points 0, 1, 2, 3, 10, 11: with k = 1 every real ball has radius 1.
# Fake points 0.5, 2.9, 5, 6: with k = 1 their radii are 2.4, 2.1, 1, 1.
REAL = points(0, 1, 2, 3, 10, 11)
FAKE = points(0.5, 2.9, 5, 6)


@pytest.mark.usefixtures("block_elements")
def test_precision_and_recall_on_points_on_a_line() -> None:
    # Precision: 0.5 (within 1 of 0 and 1) and 2.9 (of 2 and 3) are inside; 5, 6 are not -> 2/4.
    # Recall: reals 0, 1 lie in the ball of 0.5, reals 2, 3 in that of 2.9 (radius 2.1);
    # 10 and 11 are farther than 1 from 5 and 6 -> 4/6.
    assert precision_recall(REAL, FAKE, k=1) == pytest.approx((0.5, 4 / 6), rel=1e-15)


@pytest.mark.usefixtures("block_elements")
def test_density_and_coverage_on_points_on_a_line() -> None:
    # Density: 0.5 lies in 2 real balls, 2.9 in 2, 5 and 6 in none -> (2+2)/4 / k = 1.
    # Coverage: reals 0, 1, 2, 3 have a fake within their radius 1; 10 and 11 do not -> 4/6.
    assert density_coverage(REAL, FAKE, k=1) == pytest.approx((1.0, 4 / 6), rel=1e-15)


@pytest.mark.usefixtures("block_elements")
def test_a_fake_sample_on_a_ball_boundary_is_inside() -> None:
    # 4 is exactly radius 1 away from real 3: inside (<=), as StyleGAN2-ADA and torch-fidelity
    # count it (the prdc package's < would call it outside); 4.5 is outside every ball.
    assert precision_recall(points(0, 1, 2, 3), points(4, 4.5), k=1)[0] == 0.5


@pytest.mark.usefixtures("block_elements")
def test_density_discounts_a_fake_sample_only_a_real_outlier_covers() -> None:
    # With k = 2 the outlier 20 has radius 18 (its 2nd neighbour is 2), the others 1 or 2.
    # Fake 10 lies only in the outlier's ball: precision calls it real (1.0), density counts
    # 1 ball out of the k = 2 expected (0.5).
    real, fake = points(0, 1, 2, 3, 20), points(10, 10.5, 11)
    assert precision_recall(real, fake, k=2)[0] == 1.0
    assert density_coverage(real, fake, k=2)[0] == pytest.approx(0.5, rel=1e-15)


def test_prdc_needs_more_samples_than_neighbours() -> None:
    with pytest.raises(UserError, match="at least 4 rows"):
        precision_recall(points(0, 1, 2), points(0, 1, 2, 3), k=3)


def test_the_mmd_of_torch_tensors_is_the_mmd_of_arrays() -> None:
    """The GPU path (tensors on the evaluator's device) runs the same arithmetic as NumPy's."""
    from gan_runner.metrics.kid import mmd2_unbiased

    rng = np.random.default_rng(12)
    x, y = (rng.standard_normal((50, 8)).astype(np.float32) + s for s in (0.0, 0.3))
    expected = mmd2_unbiased(x, y)
    assert mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(
        expected, rel=1e-6)
