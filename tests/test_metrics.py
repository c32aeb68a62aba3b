"""FID, KID and IS against closed forms and known values (pure NumPy, no TensorFlow)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from tunelab.metrics import fid, frechet_distance, inception_score, kid
from tunelab.metrics.fid import trace_sqrt_product


def test_frechet_distance_of_shifted_unit_gaussians_is_the_squared_shift():
    mu = np.array([3.0, -1.0, 0.5, 2.0])
    identity = np.eye(4)
    assert frechet_distance(mu, identity, np.zeros(4), identity) == pytest.approx(
        mu @ mu, rel=1e-12
    )


def test_frechet_distance_between_unit_and_doubled_spread_is_the_dimension():
    d = 16  # d + 4d - 2 * Tr(sqrt(4 I)) = d
    assert frechet_distance(np.zeros(d), np.eye(d), np.zeros(d), 4 * np.eye(d)) == pytest.approx(
        d, rel=1e-12
    )


def test_fid_of_a_sample_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 32))
    score = fid(x, x)
    assert abs(score.value) < 1e-6 and score.n == 500 and score.reason == ""


def test_the_eigh_trace_equals_the_sqrtm_trace_on_random_spd_matrices():
    rng = np.random.default_rng(1)
    for d in (2, 8, 64):
        a, b = rng.normal(size=(d, 2 * d)), rng.normal(size=(d, 2 * d))
        s1, s2 = a @ a.T / d, b @ b.T / d
        expected = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
        assert trace_sqrt_product(s1, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_with_no_more_samples_than_dimensions_is_nan_with_a_reason():
    x = np.random.default_rng(2).normal(size=(64, 64))
    score = fid(x, x)
    assert math.isnan(score.value) and "N = 64, d = 64" in score.reason


def test_fid_grows_with_the_distance_between_samples():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(2000, 8))
    near, far = rng.normal(0.1, 1, (2000, 8)), rng.normal(1.0, 1, (2000, 8))
    assert fid(real, near).value < fid(real, far).value
    assert fid(real, far).value == pytest.approx(8 * 1.0, rel=0.1)  # ‖μ‖² = 8


def test_kid_of_two_samples_of_one_distribution_is_zero_within_three_standard_errors():
    """Unbiased: over 30 independent pairs of samples the mean KID is 0 within 3 standard
    errors, where FID of the same pairs stands far above 0 (its small-sample bias)."""
    rng = np.random.default_rng(4)
    pairs = [(rng.normal(size=(600, 16)), rng.normal(size=(600, 16))) for _ in range(30)]
    kids = [kid(a, b, subsets=20, subset_size=300, seed=i).value for i, (a, b) in enumerate(pairs)]
    standard_error = np.std(kids, ddof=1) / math.sqrt(len(kids))
    assert abs(np.mean(kids)) < 3 * standard_error
    fids = [fid(a, b).value for a, b in pairs]
    assert np.mean(fids) > 30 * np.std(fids, ddof=1) / math.sqrt(len(fids))
    shifted = kid(pairs[0][0], rng.normal(0.5, 1, (600, 16)), subsets=20, subset_size=300)
    assert shifted.value > 100 * standard_error  # a real difference stands far out


def test_kid_matches_the_unbiased_mmd_written_out():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert kid(x, y, subsets=1, subset_size=6).value == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_inception_score_is_the_class_count_for_confident_even_predictions():
    classes = 10
    logits = 100.0 * np.eye(classes)[np.arange(1000) % classes]  # one-hot, spread evenly
    score = inception_score(logits, splits=10)
    assert score.value == pytest.approx(classes, rel=1e-9) and score.std == pytest.approx(0)
    same = inception_score(np.tile(np.random.default_rng(6).normal(size=10), (1000, 1)))
    assert same.value == pytest.approx(1.0, abs=1e-12)


def test_inception_score_of_non_finite_logits_is_nan_with_a_reason():
    logits = np.full((20, 10), np.nan)
    score = inception_score(logits)
    assert math.isnan(score.value) and "not finite" in score.reason


def test_kid_of_whole_samples_is_one_exact_subset():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(300, 8)), rng.normal(0.2, 1, (300, 8))
    from tunelab.metrics.kid import polynomial_mmd2

    whole = kid(x, y, subsets=100, subset_size=1000)  # min(1000, N) = N: each subset is all
    assert whole.n == 300 and whole.std == 0.0
    assert whole.value == pytest.approx(polynomial_mmd2(x, y), rel=1e-12)


def test_a_prepared_reference_scores_as_the_mmd_of_each_pair_of_subsets():
    from tunelab.metrics.kid import KIDReference, polynomial_mmd2

    rng = np.random.default_rng(8)
    real, small, large = (rng.normal(size=(n, 4)) for n in (50, 20, 40))
    reference = KIDReference(real, subsets=5, subset_size=20, seed=3)
    picks, _ = reference._subsets(20)
    whole = reference.score(small)  # each generated subset is all 20 rows
    expected = [polynomial_mmd2(real[i], small) for i in picks]
    assert whole.value == pytest.approx(np.mean(expected), rel=1e-10)
    assert whole.std == pytest.approx(np.std(expected), rel=1e-8)
    drawn = np.random.default_rng(3 + 1)  # the generated side's subsets
    expected = [polynomial_mmd2(real[i], large[drawn.choice(40, 20, replace=False)]) for i in picks]
    assert reference.score(large).value == pytest.approx(np.mean(expected), rel=1e-10)
    assert reference.score(large).value == kid(real, large, subsets=5, subset_size=20, seed=3).value
