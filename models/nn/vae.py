"""The VAE: diagonal-Gaussian encoder q(z|x), standard-normal prior p(z), decoder p(x|z).

``encode`` and ``decode`` are separate so the decoder exports alone. Say which value a
function returns: ``encode`` returns the posterior's parameters (mean and log-variance), never a
sample; ``decode`` returns the *mean* of p(x|z) (probabilities for Bernoulli, means for Gaussian);
``decoder_params`` returns the raw likelihood parameter (logits, or means).

The likelihoods live in ``models.nn.likelihoods``; every log-density is a true log-density in
nats, normalising constants included.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from models.config import ModelConfig
from models.nn.likelihoods import make_likelihood


# --------------------------------------------------------------------------- networks
def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def conv_stages(size: int) -> tuple[int, int]:
    """Number of stride-2 stages and the final spatial size: 28 -> (2, 7), 32 -> (3, 4), 64 -> (4, 4)."""
    n = 0
    while size % 2 == 0 and size > 4:
        size //= 2
        n += 1
    return n, size


class _GaussianHead(nn.Module):
    """Splits a 2d-wide output into the posterior mean and log-variance."""

    def __init__(self, width: int, latent_dim: int) -> None:
        super().__init__()
        self.mu = nn.Linear(width, latent_dim)
        self.logvar = nn.Linear(width, latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), self.logvar(h)


class MLPEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.body = _mlp([cfg.data_dim, *cfg.hidden])
        self.head = _GaussianHead(cfg.hidden[-1], cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(F.relu(self.body(x.flatten(1))))


class MLPDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.data_shape = cfg.data_shape
        self.net = _mlp([cfg.latent_dim, *reversed(cfg.hidden), cfg.data_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).reshape(z.shape[0], *self.data_shape)


class ConvEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c, size, _ = cfg.data_shape
        n, final = conv_stages(size)
        chans = _conv_channels(cfg.hidden, n)
        layers: list[nn.Module] = []
        for cout in chans:
            layers += [nn.Conv2d(c, cout, 4, stride=2, padding=1), nn.ReLU()]
            c = cout
        self.conv = nn.Sequential(*layers)
        fc = cfg.hidden[-1]
        self.fc = nn.Linear(c * final * final, fc)
        self.head = _GaussianHead(fc, cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x).flatten(1)
        return self.head(F.relu(self.fc(h)))


class ConvDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c_out, size, _ = cfg.data_shape
        n, final = conv_stages(size)
        chans = list(reversed(_conv_channels(cfg.hidden, n)))
        fc = cfg.hidden[-1]
        self.start = (chans[0], final, final)
        self.fc = nn.Sequential(
            nn.Linear(cfg.latent_dim, fc), nn.ReLU(), nn.Linear(fc, chans[0] * final * final), nn.ReLU()
        )
        layers: list[nn.Module] = []
        for i in range(n):
            cin = chans[i]
            cout = chans[i + 1] if i + 1 < n else c_out
            layers.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))
            if i + 1 < n:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).reshape(z.shape[0], *self.start)
        return self.deconv(h)


def _conv_channels(hidden: tuple[int, ...], n: int) -> list[int]:
    """Channels of the n stride-2 stages: hidden[:-1] (the last entry is the FC width), padded."""
    chans = list(hidden[:-1]) or [32]
    while len(chans) < n:
        chans.append(chans[-1])
    return chans[:n]


# --------------------------------------------------------------------------- the model
class VAE(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.config = cfg
        if cfg.arch == "mlp":
            self.encoder: nn.Module = MLPEncoder(cfg)
            self.decoder: nn.Module = MLPDecoder(cfg)
        else:
            self.encoder = ConvEncoder(cfg)
            self.decoder = ConvDecoder(cfg)
        self.likelihood: nn.Module = make_likelihood(cfg)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters (mu, logvar) of q(z|x), each [B, latent_dim]. Not a sample."""
        return self.encoder(x.reshape(x.shape[0], *self.config.data_shape))

    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's raw parameter in the data's shape: logits (Bernoulli) or means (Gaussian)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z) in the data's shape: probabilities (Bernoulli) or means (Gaussian)."""
        return self.likelihood.mean(self.decoder(z))

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats per sample, [B]; x in the data's shape (or flat)."""
        params = self.decoder(z)
        return self.likelihood.log_prob(params, x.reshape(params.shape))

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One draw z ~ q(z|x) = N(mu, exp(logvar)), differentiable in mu and logvar."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps


class DecoderMean(nn.Module):
    """z [N, d] -> mean of p(x|z) in the data's shape: the module exported to ONNX."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.decoder = vae.decoder
        self.likelihood = vae.likelihood

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.likelihood.mean(self.decoder(z))


class EncoderParams(nn.Module):
    """x [N, *data_shape] -> (mu, logvar) of q(z|x): the encoder exported to ONNX."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.encoder = vae.encoder
        self.data_shape = vae.config.data_shape

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x.reshape(x.shape[0], *self.data_shape))
