"""Diagnostics on cases whose answers are known: synthetic encodings with closed-form I(X;Z) and
marginal KL, the exact PPCA model (ELBO gap 0), and VAEs trained on PPCA data with k = 3 signal
directions (about k active units at beta = 1; total collapse at beta = 50)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from models import diagnostics as dg
from models.config import ModelConfig, ObjectiveConfig
from models.errors import DataError, TrainingError
from models.nn.objectives import elbo_terms, iwae_bound, kl_weight, training_loss
from models.nn.vae import VAE
from ppca_model import PPCA


# --------------------------------------------------------------------------- synthetic encodings
def _encodings(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """d = 4: dims 0, 1 informative (mu ~ N(0, 1), posterior variance 0.25); dim 2 carries a
    constant offset 0.5 with unit variance (KL 0.125, no information); dim 3 is the prior."""
    g = np.random.default_rng(seed)
    mu = np.zeros((n, 4))
    mu[:, :2] = g.standard_normal((n, 2))
    mu[:, 2] = 0.5
    logvar = np.zeros((n, 4))
    logvar[:, :2] = math.log(0.25)
    return mu.astype(np.float32), logvar.astype(np.float32)


def test_latent_summary_matches_closed_forms() -> None:
    mu, logvar = _encodings()
    s = dg.latent_summary(mu, logvar)
    assert set(s) >= {"kl_per_dim", "rate", "activity_per_dim", "active_units",
                      "collapsed_dims", "mutual_info", "marginal_kl"}
    ref = kl_divergence(
        Normal(torch.from_numpy(mu).double(), torch.exp(0.5 * torch.from_numpy(logvar).double())),
        Normal(0.0, 1.0),
    ).mean(0).numpy()
    np.testing.assert_allclose(s["kl_per_dim"], ref, rtol=1e-6, atol=1e-9)
    assert s["rate"] == pytest.approx(ref.sum())
    np.testing.assert_allclose(s["activity_per_dim"], mu.astype(np.float64).var(0), rtol=1e-6)
    assert s["active_units"] == 2
    assert s["collapsed_dims"] == [2, 3]
    # dim 2 has a KL well above 0.01 nats yet is collapsed: activity decides, not KL
    assert s["kl_per_dim"][2] == pytest.approx(0.125, abs=1e-6)
    # q(z_i) = N(0, 1.25) on dims 0, 1: I = 2 * 0.5 log(1.25 / 0.25); marginal KL adds dim 2's 0.125
    true_mi = math.log(5.0)
    true_mkl = 2 * 0.5 * (0.25 - math.log(1.25)) + 0.125
    assert s["mutual_info"] == pytest.approx(true_mi, abs=0.1)
    assert s["marginal_kl"] == pytest.approx(true_mkl, abs=0.1)
    assert s["mutual_info"] + s["marginal_kl"] == pytest.approx(s["rate"], abs=1e-12)
    json.dumps(s)  # JSON-able, plain Python types
    assert isinstance(s["active_units"], int)
    assert all(isinstance(i, int) for i in s["collapsed_dims"])


def test_latent_summary_is_seeded() -> None:
    mu, logvar = _encodings(n=3000)
    assert dg.latent_summary(mu, logvar) == dg.latent_summary(mu, logvar)
    a = dg.latent_summary(mu, logvar, rng=1)["mutual_info"]
    b = dg.latent_summary(mu, logvar, rng=np.random.default_rng(1))["mutual_info"]
    c = dg.latent_summary(mu, logvar, rng=2)["mutual_info"]
    assert a == b and a != c


def test_mutual_information_is_capped_by_log_n() -> None:
    """Posteriors that never overlap: I(X;Z) is large in truth, the estimator gives log N."""
    g = np.random.default_rng(0)
    n = 50
    mu = g.standard_normal((n, 3)) * 10
    logvar = np.full((n, 3), -12.0)
    est = dg.mutual_information(mu, logvar)
    mi = est.raw
    assert est.saturated and est.ceiling == pytest.approx(math.log(n))
    assert mi <= math.log(n) + 1e-9
    assert mi == pytest.approx(math.log(n), abs=1e-3)


def test_prior_posteriors_carry_no_information() -> None:
    mu = np.zeros((500, 5))
    logvar = np.zeros((500, 5))
    s = dg.latent_summary(mu, logvar)
    assert s["active_units"] == 0 and s["collapsed_dims"] == [0, 1, 2, 3, 4]
    assert s["rate"] == 0.0
    assert abs(s["mutual_info"]) < 1e-9 and abs(s["marginal_kl"]) < 1e-9


def test_mixture_density_expansion_matches_direct_evaluation() -> None:
    """The matrix-product form of log q^(z) agrees with a direct sum over components, also for
    narrow posteriors where the expansion could lose precision."""
    from models.latent.stats import log_mixture

    g = torch.Generator().manual_seed(0)
    mu = torch.randn(300, 6, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(300, 6, generator=g, dtype=torch.float64) * 3 - 4
    z = torch.randn(40, 6, generator=g, dtype=torch.float64) * 2
    direct = Normal(mu[None], torch.exp(0.5 * logvar[None])).log_prob(z[:, None]).sum(-1)
    ours = log_mixture(z.numpy(), mu.numpy(), logvar.numpy())
    np.testing.assert_allclose(ours, torch.logsumexp(direct, 1).numpy(), rtol=1e-9, atol=1e-7)


def test_latent_summary_rejects_bad_input() -> None:
    mu, logvar = _encodings(n=10)
    bad = mu.copy()
    bad[3, 1] = np.nan
    with pytest.raises(TrainingError, match="non-finite"):
        dg.latent_summary(bad, logvar)
    with pytest.raises(ValueError, match="shape"):
        dg.latent_summary(mu, logvar[:, :2])
    with pytest.raises(ValueError):
        dg.latent_summary(np.zeros((0, 3)), np.zeros((0, 3)))


# --------------------------------------------------------------------------- the exact model
def test_importance_terms_reproduce_iwae_bound() -> None:
    """diagnose's one-pass estimator draws exactly as objectives.iwae_bound (two chunks of K)."""
    ppca = PPCA()
    vae = ppca.vae(mean_shift=0.3, var_scale=2.0)
    x = torch.from_numpy(ppca.sample(30))
    dist, iw, mu, logvar = dg.importance_terms(vae, x, 100, torch.Generator().manual_seed(4))
    ref = iwae_bound(vae, x, 100, torch.Generator().manual_seed(4))
    torch.testing.assert_close(iw, ref)
    assert dist.shape == (30,) and mu.shape == (30, 2)


def test_diagnose_the_exact_ppca_model() -> None:
    """Encoder = true posterior: IWAE = log p(x) exactly, ELBO = log p(x) up to Monte Carlo noise,
    so the ELBO gap is about 0 and the verdict says the posterior fits."""
    ppca = PPCA()
    vae = ppca.vae()
    x = ppca.sample(500, seed=3)
    d = dg.diagnose(vae, x, ObjectiveConfig(), iw_samples=100, batch_size=100, seed=0)
    log_px = ppca.log_px(x).mean()
    assert d.iwae == pytest.approx(log_px, abs=1e-6)
    assert abs(d.elbo - log_px) < 0.05
    assert abs(d.elbo_gap) < 0.05
    assert d.active_units == 2 and d.collapsed_dims == []
    assert d.n_samples == 500
    assert "closely" in d.verdict
    # a wrong posterior opens the gap by about KL(q || p(z|x))
    shifted = dg.diagnose(ppca.vae(0.5, 3.0), x, iw_samples=200, seed=0)
    kl_true = log_px - ppca.exact_elbo(x, 0.5, 3.0).mean()
    assert shifted.elbo == pytest.approx(ppca.exact_elbo(x, 0.5, 3.0).mean(), abs=0.1)
    assert 0.8 * kl_true < shifted.elbo_gap <= kl_true + 0.1


def test_diagnosis_json_has_exactly_the_stable_keys_and_is_consistent() -> None:
    ppca = PPCA()
    vae = ppca.vae(0.2, 1.5).float()
    x = ppca.sample(120).astype(np.float32)
    d = dg.diagnose(vae, x, iw_samples=10, batch_size=50, seed=3)
    j = d.to_json_dict()
    assert list(j) == list(dg.JSON_KEYS)
    assert set(j) == {"elbo", "distortion", "rate", "iwae", "elbo_gap", "iw_samples",
                      "likelihood_kind", "bits_per_dim", "mutual_info", "mutual_info_stderr",
                      "mi_ceiling", "mi_saturated", "marginal_kl", "active_units", "kl_per_dim",
                      "activity_per_dim", "collapsed_dims", "collapsed_kl", "verdict",
                      "n_samples"}
    # float data under a Gaussian: a density, so no bits/dim
    assert j["likelihood_kind"] == "continuous" and j["bits_per_dim"] is None
    assert j["mi_ceiling"] == pytest.approx(math.log(120)) and j["mi_saturated"] is False
    for k in ("elbo", "distortion", "rate", "iwae", "elbo_gap", "mutual_info", "marginal_kl"):
        assert isinstance(j[k], float) and math.isfinite(j[k])
    assert isinstance(j["active_units"], int) and isinstance(j["n_samples"], int)
    assert isinstance(j["verdict"], str) and j["verdict"]
    assert len(j["kl_per_dim"]) == len(j["activity_per_dim"]) == 2
    assert j["rate"] == pytest.approx(sum(j["kl_per_dim"]))
    assert j["elbo"] == pytest.approx(-(j["distortion"] + j["rate"]))
    assert j["elbo_gap"] == pytest.approx(j["iwae"] - j["elbo"])
    assert j["mutual_info"] + j["marginal_kl"] == pytest.approx(j["rate"])
    json.loads(json.dumps(j))
    # seeded: the same seed gives the same numbers, another seed other draws
    assert dg.diagnose(vae, x, iw_samples=10, batch_size=50, seed=3).to_json_dict() == j
    assert dg.diagnose(vae, x, iw_samples=10, batch_size=50, seed=4).iwae != j["iwae"]
    # the batch size does not change what is estimated (only which draws are made)
    d2 = dg.diagnose(vae, x, iw_samples=10, batch_size=7, seed=3)
    assert d2.rate == pytest.approx(d.rate, rel=1e-5)
    assert d2.iwae == pytest.approx(d.iwae, abs=0.2)


def test_encode_dataset_accepts_arrays_tensors_and_row_readers() -> None:
    ppca = PPCA()
    vae = ppca.vae().float()
    x = ppca.sample(37).astype(np.float32)

    class Rows:
        def __len__(self) -> int:
            return len(x)

        def read(self, idx: np.ndarray) -> np.ndarray:
            return x[idx]

    mu, lv = dg.encode_dataset(vae, x, batch_size=10)
    assert mu.shape == lv.shape == (37, 2) and mu.dtype == np.float32
    for other in (torch.from_numpy(x), Rows()):
        mu2, lv2 = dg.encode_dataset(vae, other, batch_size=16)
        np.testing.assert_allclose(mu2, mu, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(lv2, lv, rtol=1e-6, atol=1e-6)


def test_diagnose_refuses_non_binary_data_for_a_bernoulli_model() -> None:
    cfg = ModelConfig(arch="mlp", data_shape=(6,), latent_dim=2, hidden=(8,))
    vae = VAE(cfg)
    grey = np.full((4, 6), 0.5, np.float32)
    with pytest.raises(DataError, match="binary"):
        dg.diagnose(vae, grey, iw_samples=2)
    ok = dg.diagnose(vae, (grey > 0.4).astype(np.float32), iw_samples=2)
    assert ok.n_samples == 4
    with pytest.raises(DataError, match="no data"):
        dg.diagnose(vae, np.zeros((0, 6), np.float32))


# --------------------------------------------------------------------------- trained on PPCA data
SIGNAL_DIMS = 3


def _ppca_data(n: int = 3000, d: int = 20, sigma: float = 0.1, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    w = np.linalg.qr(g.standard_normal((d, SIGNAL_DIMS)))[0] * np.array([3.0, 2.0, 1.5])
    z = g.standard_normal((n, SIGNAL_DIMS))
    return (z @ w.T + 0.5 + sigma * g.standard_normal((n, d))).astype(np.float32)


def _train(x: np.ndarray, objective: ObjectiveConfig, steps: int = 1000, seed: int = 0) -> VAE:
    """A plain loop on the training objective: 8 latent dimensions, learned Gaussian noise.

    One thread: these matrices are too small to gain from more, and on a busy machine the
    threads' spin-waits make it several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_loop(x, objective, steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train_loop(x: np.ndarray, objective: ObjectiveConfig, steps: int, seed: int) -> VAE:
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="mlp", data_shape=(x.shape[1],), latent_dim=8, hidden=(64,),
                      likelihood="gaussian", obs_std=None)
    vae = VAE(cfg)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    xt = torch.from_numpy(x)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        idx = torch.randint(0, len(xt), (128,), generator=g)
        terms = elbo_terms(vae, xt[idx], generator=g)
        loss = training_loss(terms, kl_weight(step, objective), objective.free_bits)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return vae


@pytest.fixture(scope="module")
def ppca_split() -> tuple[np.ndarray, np.ndarray]:
    x = _ppca_data()
    return x[:2000], x[2000:]


def _check_rate_split(d: dg.Diagnosis) -> None:
    assert d.mutual_info <= math.log(d.n_samples) + 1e-9
    assert d.marginal_kl >= -0.05
    assert d.mutual_info + d.marginal_kl == pytest.approx(d.rate, abs=1e-9)
    assert d.iwae >= d.elbo - 0.05


def test_beta_1_keeps_about_as_many_active_units_as_signal_directions(ppca_split) -> None:
    train, val = ppca_split
    obj = ObjectiveConfig(beta=1.0)
    d = dg.diagnose(_train(train, obj), val, obj, iw_samples=20, seed=0)
    assert d.active_units == SIGNAL_DIMS
    assert len(d.collapsed_dims) == 8 - SIGNAL_DIMS
    _check_rate_split(d)
    assert d.mutual_info > 2.0  # three directions carry real information
    assert "not an error" in d.verdict.lower()
    assert "latent_dim =" not in d.verdict  # convergence unknown: no smaller size suggested


def test_beta_50_collapses_every_dimension(ppca_split) -> None:
    train, val = ppca_split
    obj = ObjectiveConfig(beta=50.0)
    d = dg.diagnose(_train(train, obj), val, obj, iw_samples=20, seed=0)
    assert d.active_units == 0
    assert d.collapsed_dims == list(range(8))
    assert d.rate < 0.05 and abs(d.mutual_info) < 0.02
    _check_rate_split(d)
    v = d.verdict.lower()
    assert "collapse" in v and "beta = 50" in v and "lower beta" in v


def test_diagnose_refuses_a_seed_outside_64_bits() -> None:
    from models.config import ModelConfig
    from models.diagnostics import diagnose
    from models.errors import ConfigError
    from models.nn.vae import VAE

    vae = VAE(ModelConfig(arch="mlp", data_shape=(4,), latent_dim=2, hidden=(4,),
                          likelihood="gaussian", obs_std=1.0))
    x = np.zeros((8, 4), np.float32)
    for bad in (-1, 2**64):
        with pytest.raises(ConfigError, match="seed must be"):
            diagnose(vae, x, iw_samples=2, seed=bad)
