"""The latent-space summary of N encodings, and the data's spread the verdict compares with.

Every value is per data sample, in nats. The rules (KL per dimension, activity, the active
threshold, the I(X;Z) estimator and its ceiling) are ``models.latent.stats``'s; this module
gathers them into the JSON-able dict that the trainer (every epoch), ``diagnose`` and the views
share.
"""

from __future__ import annotations

import math

import numpy as np

from models.errors import TrainingError
from models.latent.stats import (
    MI_SAMPLES,
    activity,
    as_encodings,
    collapsed_from_activity,
    kl_per_dim,
    mutual_information,
)


def latent_summary(
    mu: np.ndarray,
    logvar: np.ndarray,
    rng: np.random.Generator | int | None = None,
    n_z: int = MI_SAMPLES,
) -> dict:
    """The latent-space statistics of N encodings ``(mu, logvar)``, each [N, d]; nats per sample.

    Returns a JSON-able dict:

    ``kl_per_dim``
        list[float], ``E_x KL(q(z_i|x) || N(0,1))`` per dimension, closed form.
    ``rate``
        float, their sum ``R``.
    ``activity_per_dim``
        list[float], ``A_i = Var_x(mu_i)``.
    ``active_units``, ``collapsed_dims``
        int, the dimensions with ``A_i > ACTIVE_THRESHOLD``; list[int], the others, ascending.
    ``collapsed_kl``
        float, the summed KL of the collapsed dimensions: rate that carries no information.
    ``mutual_info``, ``mutual_info_stderr``
        float, ``I(X;Z)`` by the mixture estimator (``latent.stats.mutual_information``), kept
        within ``0 <= I <= R``, and its Monte Carlo standard error.
    ``mi_ceiling``, ``mi_saturated``
        float, log N, above which the estimator cannot go; bool, whether the estimate is within
        ``MI_CEILING_MARGIN`` of it. When saturated, ``mutual_info`` is a lower estimate of the
        population I and ``marginal_kl`` an upper estimate.
    ``marginal_kl``
        float, ``R - I(X;Z)``, the estimate of ``KL(q(z) || p(z))``, never negative.
    ``n_samples``
        int, N.

    Collapse is judged by activity (Burda et al. 2016), not by KL: a dimension whose posterior
    mean ignores x carries no information even if its KL is large (that KL is marginal KL).
    Conversely ``KL_i >= A_i / 2``, so every dimension with ``KL_i < 0.005`` nats is collapsed.

    ``rng`` (a Generator or a seed; ``None`` means seed 0, so repeated calls agree) drives the
    mutual-information estimate, the only random part. Raises ``TrainingError`` on non-finite
    input, ``ValueError`` on arrays of the wrong shape.
    """
    mu, logvar = as_encodings(mu, logvar)
    if not (np.isfinite(mu).all() and np.isfinite(logvar).all()):
        raise TrainingError("the encoder produced non-finite posterior parameters (NaN or inf)")
    kl = kl_per_dim(mu, logvar)
    act = activity(mu)
    collapsed = collapsed_from_activity(act)
    mi = mutual_information(mu, logvar, n_z=n_z, rng=0 if rng is None else rng)
    return {
        "kl_per_dim": [float(v) for v in kl],
        "rate": float(kl.sum()),
        "activity_per_dim": [float(v) for v in act],
        "active_units": int(mu.shape[1] - len(collapsed)),
        "collapsed_dims": collapsed,
        "collapsed_kl": float(kl[collapsed].sum()) if collapsed else 0.0,
        "mutual_info": mi.value,
        "mutual_info_stderr": mi.stderr,
        "mi_ceiling": mi.ceiling,
        "mi_saturated": bool(mi.saturated),
        "marginal_kl": mi.marginal_kl,
        "n_samples": int(mu.shape[0]),
    }


def data_spread(x: np.ndarray) -> float:
    """The data's typical spread: ``sqrt(mean_j Var(x_j))`` over rows of x, in the data's units.

    The verdict compares a fixed Gaussian obs_std with it."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return float(math.sqrt(x.var(0).mean())) if len(x) else 0.0
