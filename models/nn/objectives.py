"""Objectives, per sample, in nats.

- distortion D = -E_q[log p(x|z)] (Monte Carlo, reparameterised), rate R = KL(q(z|x) || p(z)) in
  closed form per latent dimension, ELBO = -(D + R): the true bound, whatever is trained on.
- the training objective: D + beta_t * sum_i max(lambda, E_batch[KL_i]) with linear KL warm-up
  beta_t = beta * min(1, step / warmup) or cyclical annealing (Fu et al. 2019), and free bits
  lambda (Kingma et al. 2016).
- the importance-weighted bound with K samples (Burda et al. 2016), log p(x) >= IWAE_K >= ELBO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from models.config import ObjectiveConfig
from models.errors import ConfigError
from models.latent.stats import LOG_2PI
from models.nn.vae import VAE


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) for each latent dimension, in closed form: [B, d]."""
    return 0.5 * (mu.square() + torch.exp(logvar) - 1.0 - logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last axis, for any z.

    For a draw ``z = mu + sigma * eps`` use ``log_normal_from_noise(eps, logvar)``: the same value
    without forming ``z - mu``, which loses float32 precision when sigma << |mu|.
    """
    return -0.5 * (LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar)).sum(-1)


def log_normal_from_noise(eps: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(mu + sigma eps; mu, sigma^2) summed over the last axis: -1/2 (log 2pi + lv + eps^2)."""
    return -0.5 * (LOG_2PI + logvar + eps.square()).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (LOG_2PI + z.square()).sum(-1)


@dataclass
class ElboTerms:
    """Per-sample terms of one minibatch, in nats."""

    distortion: torch.Tensor  # [B]  -E_q[log p(x|z)]
    kl_per_dim: torch.Tensor  # [B, d]
    mu: torch.Tensor  # [B, d]
    logvar: torch.Tensor  # [B, d]

    @property
    def rate(self) -> torch.Tensor:  # [B]
        return self.kl_per_dim.sum(1)

    @property
    def elbo(self) -> torch.Tensor:  # [B]
        return -(self.distortion + self.rate)


def elbo_terms(
    vae: VAE, x: torch.Tensor, n_samples: int = 1, generator: torch.Generator | None = None
) -> ElboTerms:
    """D (Monte Carlo over ``n_samples`` draws of z), KL per dimension (exact), for a batch x."""
    mu, logvar = vae.encode(x)
    if n_samples == 1:
        z = vae.reparameterize(mu, logvar, generator)
        distortion = -vae.log_px_given_z(x, z)
    else:
        b = x.shape[0]
        mu_k = mu.repeat(n_samples, 1)
        lv_k = logvar.repeat(n_samples, 1)
        z = vae.reparameterize(mu_k, lv_k, generator)
        x_k = x.repeat(n_samples, *([1] * (x.dim() - 1)))
        distortion = -vae.log_px_given_z(x_k, z).reshape(n_samples, b).mean(0)
    return ElboTerms(distortion=distortion, kl_per_dim=kl_per_dim(mu, logvar), mu=mu, logvar=logvar)


def kl_weight(step: int, objective: ObjectiveConfig, total_steps: int = 0) -> float:
    """The KL weight beta_t in effect at ``step`` (0-based) of a run of ``total_steps`` steps.

    - constant: ``beta``;
    - warm-up (``warmup_steps`` W > 0): ``beta * min(1, step / W)``;
    - cyclical (``kl_cycles`` M > 0, Fu et al. 2019): the run's T = ``total_steps`` steps in M
      cycles of T / M steps; with tau = (step mod (T / M)) / (T / M), the position in the cycle,
      ``beta * min(1, tau / R)``, R = ``kl_cycle_ramp``: a linear ramp from 0 over the first
      fraction R of each cycle, then ``beta``. The cycles need T: ``total_steps < 1`` is a
      ConfigError there.
    """
    if objective.kl_cycles > 0:
        if total_steps < 1:
            raise ConfigError("cyclical KL annealing needs the run's total number of steps")
        # tau = frac(step * M / T), exactly, in integers
        tau = (step * objective.kl_cycles) % total_steps / total_steps
        return objective.beta * min(1.0, tau / objective.kl_cycle_ramp)
    if objective.warmup_steps <= 0:
        return objective.beta
    return objective.beta * min(1.0, step / objective.warmup_steps)


def training_loss(terms: ElboTerms, beta_t: float, free_bits: float = 0.0) -> torch.Tensor:
    """The minibatch objective to minimise: mean D + beta_t * sum_i max(lambda, mean_batch KL_i).

    With beta_t = 1 and lambda = 0 this is exactly the negative mean ELBO.
    """
    kl_dims = terms.kl_per_dim.mean(0)
    if free_bits > 0:
        kl_dims = torch.clamp(kl_dims, min=free_bits)
    return terms.distortion.mean() + beta_t * kl_dims.sum()


@torch.no_grad()
def importance_weights(
    vae: VAE, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int = 64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """K draws z_k ~ q(z|x) per sample: ``(log p(x|z_k) [K, B], log w_k [K, B], mu, logvar)``.

    ``log w = log p(x|z) + log p(z) - log q(z|x)``, with log q from the standard-normal noise.
    ``chunk`` limits how many of the K samples are decoded at once ([chunk, B, d] draws each), so
    one generator state gives the same draws whatever uses them. ``k < 1``: ConfigError.
    """
    if int(k) < 1:
        raise ConfigError(f"the number of importance samples must be at least 1, not {k}")
    mu, logvar = vae.encode(x)
    b, d = mu.shape
    log_px_parts, log_w_parts = [], []
    done = 0
    while done < k:
        kk = min(chunk, k - done)
        eps = torch.randn((kk, b, d), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps  # [kk, B, d]
        xf = x.unsqueeze(0).expand(kk, *x.shape).reshape(kk * b, *x.shape[1:])
        log_px = vae.log_px_given_z(xf, z.reshape(kk * b, d)).reshape(kk, b)
        log_px_parts.append(log_px)
        log_w_parts.append(log_px + log_standard_normal(z) - log_normal_from_noise(eps, logvar))
        done += kk
    return torch.cat(log_px_parts, 0), torch.cat(log_w_parts, 0), mu, logvar


def iwae_bound(
    vae: VAE, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int = 64
) -> torch.Tensor:
    """The importance-weighted bound with K samples (Burda et al. 2016), per sample [B], in nats.

    log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K, z_k ~ q(z|x).
    It is a lower bound on log p(x) that tightens as K grows; K = 1 is the ELBO (in expectation).
    ``chunk`` limits how many of the K samples are decoded at once. ``k < 1``: ConfigError.
    """
    _log_px, log_w, _mu, _lv = importance_weights(vae, x, k, generator, chunk)
    return torch.logsumexp(log_w, 0) - math.log(k)
