"""Torch-free statistics of a latent space: KL per dimension, activity, collapse, I(X;Z).

The one definition of each rule; ``models.diagnostics``, the geometry of the explorer, the ONNX
export and a torch-free diagnosis all import them from here. Every value is per data sample, in
nats, computed in float64 from N encodings ``(mu, logvar)``, each [N, d].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: A dimension is active when the variance over the data of its posterior mean exceeds this;
#: otherwise collapsed (Burda et al. 2016, "Importance weighted autoencoders", section 5.2).
ACTIVE_THRESHOLD = 0.01

#: Number of z draws (one per subsampled data point) behind the mutual-information estimate.
MI_SAMPLES = 1000

#: An I(X;Z) estimate within this many nats of its ceiling log N counts as saturated: the
#: estimate is then a lower estimate of I, and R - I an upper estimate of the marginal KL.
MI_CEILING_MARGIN = 1.0

#: log-variances are clamped here before the mixture's quadratic expansion (exact enough in f64).
_MIN_LOGVAR = -30.0
#: log(2 pi), of every Gaussian log-density in the engine.
LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- per dimension
def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean over the data of KL(N(mu_i, exp(logvar_i)) || N(0, 1)) per dimension, closed form:
    ``0.5 (mu^2 + sigma^2 - 1 - log sigma^2)``, [d], nats (float64)."""
    mu = np.asarray(mu, dtype=np.float64)
    logvar = np.asarray(logvar, dtype=np.float64)
    return (0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar)).mean(axis=0)


def activity(mu: np.ndarray) -> np.ndarray:
    """Activity ``A_i = Var_x(E_q[z_i | x])``, the population variance over the data of each
    posterior mean, [d]. A dimension is active when ``A_i > ACTIVE_THRESHOLD``."""
    return np.asarray(mu, dtype=np.float64).var(axis=0)


def collapsed_from_activity(act: np.ndarray) -> list[int]:
    """The dimensions whose activity is at most ``ACTIVE_THRESHOLD``, ascending."""
    return [int(i) for i in np.flatnonzero(np.asarray(act) <= ACTIVE_THRESHOLD)]


def collapsed_dims(mu: np.ndarray) -> list[int]:
    """Dimensions whose posterior mean barely varies over the data (activity <= threshold)."""
    return collapsed_from_activity(activity(mu))


def dims_by_kl(kl: np.ndarray | None, latent_dim: int) -> np.ndarray:
    """Dimension indices, most KL first (ties keep index order); index order without KL."""
    if kl is None:
        return np.arange(latent_dim)
    kl = np.asarray(kl, dtype=np.float64)
    if kl.shape != (latent_dim,):
        raise ValueError(f"kl_per_dim has shape {kl.shape}, expected ({latent_dim},)")
    return np.argsort(-kl, kind="stable")


# --------------------------------------------------------------------------- mutual information
@dataclass(frozen=True)
class MutualInfo:
    """An estimate of I(X;Z) with its limits, nats.

    ``value`` is the estimate kept within ``0 <= I <= rate`` (so the marginal KL ``rate - value``
    is never negative); ``raw`` the estimate before that; ``stderr`` its Monte Carlo standard
    error over the M draws; ``ceiling`` = log N, which no estimate can exceed; ``saturated``
    when ``raw`` is within ``MI_CEILING_MARGIN`` of it (then ``value`` is a lower estimate of the
    population I and ``marginal_kl`` an upper estimate of KL(q(z) || p(z))).
    """

    value: float
    raw: float
    stderr: float
    ceiling: float
    saturated: bool
    rate: float

    @property
    def marginal_kl(self) -> float:
        return self.rate - self.value


def mi_ceiling(n: int) -> float:
    """The mixture estimator's ceiling, log N, for N encodings."""
    return math.log(max(int(n), 1))


def mutual_information(
    mu: np.ndarray,
    logvar: np.ndarray,
    n_z: int = MI_SAMPLES,
    rng: np.random.Generator | int | None = None,
) -> MutualInfo:
    """I(X;Z) under the encoder by the mixture ("minibatch") estimator, in nats.

    Estimator (Hoffman & Johnson 2016; He et al. 2019, "Lagging inference networks")::

        I ~= 1/M sum_m [ log q(z_m | x_m) - log q^(z_m) ],   q^(z) = 1/N sum_n q(z | x_n)

    with M = ``n_z`` of the N data points drawn without replacement (all when N <= M), one
    ``z_m ~ q(z|x_m)`` each, and q^ the mixture of all N posteriors. For the N-point empirical
    distribution of x it is an unbiased Monte Carlo estimate of the exact I (whose largest value
    is log N); for the population I it is, in expectation, a lower bound (the InfoNCE bound with
    the encoder as critic, Poole et al. 2019), never above log N: each z_m's own component gives
    ``q^(z_m) >= q(z_m|x_m) / N``. It underestimates I when the posteriors barely overlap.

    log q(z_m | x_m) is computed from the standard-normal noise (no cancellation when
    sigma << |mu|); the M x N Gaussian log-densities are one matrix product, in float64.
    ``rng`` (a Generator or a seed; None means 0) drives the subsample and the draws.
    """
    mu, lv = as_encodings(mu, logvar)
    n, d = mu.shape
    rate = float(kl_per_dim(mu, lv).sum())
    ceiling = mi_ceiling(n)
    if n < 2:
        return MutualInfo(0.0, 0.0, 0.0, ceiling, True, rate)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
    m = min(n, int(n_z))
    idx = np.sort(gen.choice(n, size=m, replace=False)) if m < n else np.arange(n)
    eps = gen.standard_normal((m, d))
    lv = np.maximum(lv, _MIN_LOGVAR)
    mu = mu - mu.mean(0)  # a shift of z changes no density, and keeps the expansion exact
    z = mu[idx] + np.exp(0.5 * lv[idx]) * eps
    log_q_own = -0.5 * (LOG_2PI + lv[idx] + eps**2).sum(1)  # [M]
    log_q_agg = log_mixture(z, mu, lv, own=(idx, log_q_own)) - math.log(n)  # [M]
    terms = log_q_own - log_q_agg
    raw = float(terms.mean())
    stderr = float(terms.std(ddof=1) / math.sqrt(m)) if m > 1 else 0.0
    value = min(max(raw, 0.0), rate)
    return MutualInfo(value, raw, stderr, ceiling, raw > ceiling - MI_CEILING_MARGIN, rate)


def log_mixture(
    z: np.ndarray,
    mu: np.ndarray,
    logvar: np.ndarray,
    own: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``log sum_n N(z_m; mu_n, diag exp(logvar_n))`` for each row of z: [M] (float64).

    ``log N = -1/2 [d log 2pi + sum lv + sum z^2 p - 2 sum z mu p + sum mu^2 p]`` with
    p = exp(-lv): one [m, 2d] x [2d, N] product per chunk of rows instead of an [M, N, d] array;
    chunks keep each [m, N] block about 8 MB. ``own = (idx, log_q)`` replaces component
    ``idx[m]`` of row m by its exact value ``log_q[m]``, so the result is never below it (the
    expansion loses precision for posteriors much narrower than the spread of their means).
    """
    prec = np.exp(-logvar)  # [N, d]
    const = -0.5 * (z.shape[1] * LOG_2PI + logvar.sum(1) + (mu**2 * prec).sum(1))  # [N]
    weights = np.concatenate([mu * prec, -0.5 * prec], 1).T  # [2d, N]
    rows = max(1, 1_000_000 // max(1, mu.shape[0]))
    out = np.empty(z.shape[0])
    for s in range(0, z.shape[0], rows):
        zc = z[s : s + rows]
        logp = np.concatenate([zc, zc**2], 1) @ weights + const  # [m, N]
        if own is not None:
            logp[np.arange(len(zc)), own[0][s : s + rows]] = own[1][s : s + rows]
        top = logp.max(1)
        out[s : s + rows] = top + np.log(np.exp(logp - top[:, None]).sum(1))
    return out


def as_encodings(mu: np.ndarray, logvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two non-empty [N, d] arrays of one shape as float64; ValueError otherwise."""
    mu = np.asarray(mu, dtype=np.float64)
    lv = np.asarray(logvar, dtype=np.float64)
    if mu.ndim != 2 or mu.shape != lv.shape or mu.shape[0] == 0:
        raise ValueError(
            f"mu and logvar must be two non-empty [N, d] arrays of one shape, "
            f"not {mu.shape} and {lv.shape}"
        )
    return mu, lv
