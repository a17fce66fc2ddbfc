"""The torch-free latent statistics: closed-form KL, the active threshold, and the I(X;Z)
estimator against known answers just below and above its ceiling log N.

The known-answer case: x ~ N(0, I_d) and q(z|x) = N(x, s^2 I), so the population
I(X;Z) = d/2 log(1 + 1/s^2), the rate is d/2 (s^2 - log s^2) and the true marginal KL
KL(N(0, (1 + s^2) I) || N(0, I)) = d/2 (s^2 - log(1 + s^2)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.latent import geometry, stats


def _gaussian_channel(n: int, d: int, true_i: float, seed: int = 12345):
    s2 = 1.0 / (math.exp(2.0 * true_i / d) - 1.0)
    mu = np.random.default_rng(seed).standard_normal((n, d))
    true_mkl = d * 0.5 * (s2 - math.log1p(s2))
    return mu, np.full((n, d), math.log(s2)), true_mkl


def test_kl_per_dim_matches_the_closed_form_by_hand():
    mu = np.array([[1.0, 0.0], [-1.0, 0.0]])
    logvar = np.array([[0.0, math.log(4.0)], [0.0, math.log(4.0)]])
    # dim 0: 0.5 * mu^2 = 0.5; dim 1: 0.5 * (4 - 1 - log 4)
    np.testing.assert_allclose(stats.kl_per_dim(mu, logvar), [0.5, 0.5 * (3 - math.log(4.0))])


def test_the_active_threshold_is_strict_and_has_one_definition():
    assert geometry.ACTIVE_THRESHOLD is stats.ACTIVE_THRESHOLD == 0.01
    # population variances just below 0.01 (collapsed), just above (active), 0 (collapsed)
    mu = np.array([[0.0999, 0.1001, 1.0], [-0.0999, -0.1001, 1.0]])
    np.testing.assert_allclose(stats.activity(mu), [0.0999**2, 0.1001**2, 0.0])
    assert stats.collapsed_dims(mu) == [0, 2]


def test_mi_just_below_the_ceiling_is_close_and_not_flagged():
    """True I = log N - 2: the estimate lies within a few tenths below it (a lower bound)."""
    n = 1000
    true_i = math.log(n) - 2.0
    mu, lv, true_mkl = _gaussian_channel(n, 4, true_i)
    est = stats.mutual_information(mu, lv)
    assert est.ceiling == pytest.approx(math.log(n))
    assert not est.saturated
    assert true_i - 0.5 < est.value < true_i + 3 * est.stderr
    assert 0.0 <= est.marginal_kl < true_mkl + 0.5


def test_mi_above_the_ceiling_is_flagged_and_its_marginal_kl_is_an_upper_estimate():
    """True I = log N + 3: the estimate stops just under log N, flagged; R - I overshoots."""
    n = 1000
    true_i = math.log(n) + 3.0
    mu, lv, true_mkl = _gaussian_channel(n, 4, true_i)
    est = stats.mutual_information(mu, lv)
    assert est.saturated
    assert math.log(n) - 0.2 < est.value <= math.log(n)
    assert est.value < true_i - 2.5  # a lower estimate, far below the truth
    assert est.marginal_kl > true_mkl + 2.5  # an upper estimate, far above the truth (~0)


def test_mi_stays_within_zero_and_the_rate():
    """Nearly prior posteriors (a beta = 30 run): the raw estimate may fall outside [0, R] by
    Monte Carlo noise; the value shown never does, and the marginal KL is never negative."""
    g = np.random.default_rng(7)
    for seed in range(5):
        mu = 0.02 * g.standard_normal((2000, 10))
        lv = -0.001 + 0.001 * g.standard_normal((2000, 10))
        est = stats.mutual_information(mu, lv, rng=seed)
        assert 0.0 <= est.value <= est.rate
        assert est.marginal_kl >= 0.0
        assert est.stderr > 0.0


def test_the_estimate_is_seeded_and_its_error_shrinks_with_more_draws():
    mu, lv, _ = _gaussian_channel(3000, 3, 2.0)
    a = stats.mutual_information(mu, lv, n_z=300, rng=1)
    assert a == stats.mutual_information(mu, lv, n_z=300, rng=np.random.default_rng(1))
    b = stats.mutual_information(mu, lv, n_z=3000, rng=1)
    assert b.stderr < 0.6 * a.stderr
    assert abs(b.value - 2.0) < 0.2


def test_log_q_of_a_narrow_posterior_far_from_zero_is_exact():
    """Posteriors of sigma = 1e-6 around means near 1e4, far apart: I(X;Z) is huge, and the
    estimate must sit at its ceiling log N, not beyond it (the own term comes from the noise,
    and the mixture keeps it exactly)."""
    n, d = 50, 2
    mu = 1e4 + np.arange(n * d, dtype=np.float64).reshape(n, d)
    lv = np.full((n, d), math.log(1e-12))
    est = stats.mutual_information(mu, lv)
    assert est.raw == pytest.approx(math.log(n), abs=1e-6) and est.raw <= math.log(n) + 1e-12
    assert est.saturated


def test_dims_by_kl_and_empty_input():
    assert list(stats.dims_by_kl(np.array([0.1, 3.0, 0.0]), 3)) == [1, 0, 2]
    with pytest.raises(ValueError, match="shape"):
        stats.mutual_information(np.zeros((0, 2)), np.zeros((0, 2)))
