"""The decoder's likelihoods p(x|z), and the dequantisation of 8-bit data they train on.

Every ``log_prob`` is a true log-density (Gaussian) or log-probability (Bernoulli) in nats per
sample, normalising constants included. For 8-bit data a Gaussian is trained and evaluated on
dequantised values (``dequantize_bytes``); the discrete bound then subtracts D log 256
(``models.latent.discrete``, where the conventions live without torch).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from models.config import LOG_STD_FLOOR, ModelConfig
from models.latent.discrete import BINS
from models.latent.stats import LOG_2PI


class BernoulliLikelihood(nn.Module):
    """p(x|z) = prod_j Bernoulli(x_j; sigmoid(logit_j)), for binary x."""

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per sample, summed over all data dimensions: shape [B]."""
        nll = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return -nll.flatten(1).sum(1)  # negated after the sum: one pass fewer over the pixels

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


class GaussianLikelihood(nn.Module):
    """p(x|z) = prod_j N(x_j; mu_j, sigma^2) with one shared sigma, fixed or learned.

    log sigma is floored at ``LOG_STD_FLOOR`` (the config's rule), which keeps the density finite
    on constant pixels.
    """

    def __init__(self, obs_std: float | None) -> None:
        super().__init__()
        self.learned = obs_std is None
        init = 0.0 if obs_std is None else math.log(obs_std)
        log_std = torch.tensor(float(init))
        if self.learned:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    def floored_log_std(self) -> torch.Tensor:
        return self.log_std.clamp(min=LOG_STD_FLOOR)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_std = self.floored_log_std()
        z = (x - params) * torch.exp(-log_std)
        ll = -0.5 * z.square() - log_std - 0.5 * LOG_2PI
        return ll.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    @property
    def std(self) -> float:
        return float(torch.exp(self.floored_log_std().detach()).cpu())


def make_likelihood(cfg: ModelConfig) -> nn.Module:
    """The likelihood module a model configuration names."""
    if cfg.likelihood == "bernoulli":
        return BernoulliLikelihood()
    return GaussianLikelihood(cfg.obs_std)


def dequantize_bytes(k: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(k + u) / 256``, u ~ U(0, 1) afresh per value, for integer levels k (uint8 or float
    holding whole numbers): float32 in (0, 1). The torch twin of ``discrete.dequantize_uint8``."""
    u = torch.rand(k.shape, generator=generator, device=k.device)
    return (k.float() + u).div_(BINS)
