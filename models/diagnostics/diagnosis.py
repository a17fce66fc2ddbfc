"""The full diagnosis of a trained VAE on data: ELBO, IWAE, gap, bits/dim, the latent summary.

Every value is per data sample, in nats. For discrete data (binary pixels under a Bernoulli
likelihood, 8-bit pixels dequantised for a Gaussian) the ELBO and IWAE are bounds on the
log-*probability* (``models.latent.discrete``) and ``bits_per_dim`` comes from the IWAE bound;
for float data they are log-densities (``likelihood_kind`` "continuous", no bits/dim).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch

from models.config import ObjectiveConfig, check_seed
from models.diagnostics.result import Diagnosis, NonFiniteModelError, assemble, non_finite_what
from models.diagnostics.summary import latent_summary
from models.errors import ConfigError, DataError
from models.latent.discrete import LikelihoodKind, bin_log_volume
from models.latent.stats import MI_SAMPLES
from models.nn.objectives import importance_weights
from models.nn.vae import VAE


class _Rows(Protocol):  # a models.data.Dataset, or anything that reads rows by index
    def __len__(self) -> int: ...
    def read(self, indices: np.ndarray) -> np.ndarray: ...


Data = np.ndarray | torch.Tensor | _Rows


def _batches(vae: VAE, x: Data, batch_size: int) -> Iterator[torch.Tensor]:
    """Rows of x in order, as tensors on the model's device in its floating-point type."""
    param = next(vae.parameters())
    n = len(x)
    for s in range(0, n, batch_size):
        if isinstance(x, torch.Tensor):
            xb = x[s : s + batch_size]
        elif isinstance(x, np.ndarray):
            xb = torch.from_numpy(np.ascontiguousarray(x[s : s + batch_size]))
        else:
            xb = torch.from_numpy(np.asarray(x.read(np.arange(s, min(n, s + batch_size)))))
        yield xb.to(device=param.device, dtype=param.dtype)


@torch.no_grad()
def encode_dataset(vae: VAE, x: Data, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The posterior parameters (mu, logvar) of every row of x, as float32 numpy [N, d] each.

    x is an array or tensor [N, *data_shape] (or flat), or a ``models.data.Dataset`` (read in
    order, batch by batch). Runs on the model's device; the model's state is left unchanged.
    """
    mus, lvs = [], []
    for xb in _batches(vae, x, batch_size):
        mu, lv = vae.encode(xb)
        mus.append(mu.float().cpu().numpy())
        lvs.append(lv.float().cpu().numpy())
    d = vae.latent_dim
    if not mus:
        return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
    return np.concatenate(mus), np.concatenate(lvs)


@torch.no_grad()
def importance_terms(
    vae: VAE, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int = 64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass of K draws z_k ~ q(z|x) giving, per sample [B]: distortion, IWAE_K, mu, logvar.

    distortion = -1/K sum_k log p(x|z_k) (Monte Carlo) and IWAE_K = logsumexp_k log w_k - log K
    from the *same* draws (``objectives.importance_weights``, as ``iwae_bound`` makes them), so
    the ELBO gap has less noise than from two passes and the IWAE values equal ``iwae_bound``'s
    for one generator state.
    """
    log_px, log_w, mu, logvar = importance_weights(vae, x, k, generator, chunk)
    return -log_px.mean(0), torch.logsumexp(log_w, 0) - math.log(k), mu, logvar


def diagnose(
    vae: VAE,
    x: Data,
    objective: ObjectiveConfig | None = None,
    iw_samples: int = 100,
    batch_size: int = 128,
    seed: int = 0,
    n_z: int = MI_SAMPLES,
    likelihood_kind: str | None = None,
    val_elbos: Sequence[float] | None = None,
) -> Diagnosis:
    """Diagnose ``vae`` on the data x (array, tensor or Dataset of N model-ready rows).

    The distortion is a Monte Carlo mean over ``iw_samples`` draws of z per sample, the rate is
    exact, ``IWAE_K`` (K = ``iw_samples``, Burda et al. 2016) uses the same draws, and the latent
    statistics come from ``latent_summary``. ``likelihood_kind``: "discrete" for a Gaussian on
    dequantised 8-bit rows (x = (k + u) / 256, as in training), whose numbers then include
    D log 256 and bound the log-probability of the bytes; "continuous" for float data; None
    means discrete for a Bernoulli likelihood (binary data) and continuous for a Gaussian.
    ``objective`` (what the model was trained on) and ``val_elbos`` (its validation ELBO per
    epoch) only shape the verdict; the ELBO reported is the true bound. The model is evaluated in
    eval mode (its mode is restored after). Seeded: the same seed, model and data give the same
    numbers. With a Bernoulli likelihood x must be binary (0 or 1): ``DataError`` otherwise. A
    model whose values are not finite on x raises ``NonFiniteModelError`` (a ``TrainingError``)
    saying which value; every number of a returned Diagnosis is finite.
    """
    if iw_samples < 1:
        raise ConfigError(f"iw_samples must be at least 1, not {iw_samples}")
    check_seed(int(seed))
    n = len(x)
    if n == 0:
        raise DataError("there are no data samples to diagnose")
    binary = vae.config.likelihood == "bernoulli"
    kind = LikelihoodKind(likelihood_kind or ("discrete" if binary else "continuous"))
    offset = bin_log_volume(vae.config.data_dim, dequantized=kind == "discrete" and not binary)
    was_training = vae.training
    vae.eval()
    try:
        dist_sum, iwae_sum, mu_all, lv_all, spread = _importance_pass(
            vae, x, iw_samples, batch_size, int(seed), binary
        )
    finally:
        vae.train(was_training)
    distortion = dist_sum / n + offset
    iwae_mean = iwae_sum / n - offset
    if not (math.isfinite(distortion) and math.isfinite(iwae_mean)
            and np.isfinite(mu_all).all() and np.isfinite(lv_all).all()):
        raise NonFiniteModelError(non_finite_what(distortion, iwae_mean, mu_all, lv_all))
    with np.errstate(all="ignore"):  # overflow shows up as the non-finite values checked below
        summary = latent_summary(mu_all, lv_all, rng=int(seed), n_z=n_z)
    return assemble(
        summary, distortion, iwae_mean, iw_samples, kind, vae.config.data_dim,
        verdict_context=(objective, vae.config), data_std=spread, val_elbos=val_elbos,
    )


@torch.no_grad()
def _importance_pass(
    vae: VAE, x: Data, k: int, batch_size: int, seed: int, binary: bool
) -> tuple[float, float, np.ndarray, np.ndarray, float]:
    """Sums over x of the distortion and IWAE_K (continuous, no bin offset), the encodings, and
    the data's spread (``summary.data_spread`` of all rows, accumulated batch by batch)."""
    gen = torch.Generator(device=vae.device)
    gen.manual_seed(seed)
    dist_sum = iwae_sum = 0.0
    s1 = s2 = None
    mus, lvs = [], []
    for xb in _batches(vae, x, batch_size):
        if not torch.isfinite(xb).all():
            raise DataError("the data contain NaN or infinite values")
        if binary and not ((xb == 0) | (xb == 1)).all():
            raise DataError(
                "the model has a Bernoulli likelihood but the data are not binary (0 or 1); "
                "binarise them as in training"
            )
        flat = xb.double().flatten(1)
        s1 = flat.sum(0) if s1 is None else s1 + flat.sum(0)
        s2 = flat.square().sum(0) if s2 is None else s2 + flat.square().sum(0)
        dist, iwae, mu, lv = importance_terms(vae, xb, k, gen)
        dist_sum += float(dist.double().sum())
        iwae_sum += float(iwae.double().sum())
        mus.append(mu.float().cpu().numpy())
        lvs.append(lv.float().cpu().numpy())
    n = len(x)
    var = (s2 / n - (s1 / n).square()).clamp(min=0.0)
    return dist_sum, iwae_sum, np.concatenate(mus), np.concatenate(lvs), float(var.mean().sqrt())
