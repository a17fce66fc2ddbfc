"""A probabilistic-PCA model built from the project's own VAE, for exact tests.

x = W z + b + sigma eps, z ~ N(0, I), with orthogonal columns of W, so log p(x) is closed form and
the exact posterior p(z|x) is a diagonal Gaussian that the VAE's encoder can represent. The VAE is
the MLP with one hidden layer of 2D ReLUs whose weights make it exactly linear
(relu(h) - relu(-h) = h), so every term is computed by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from models.config import ModelConfig
from models.nn.vae import VAE

D, K_LAT, SIGMA = 6, 2, 0.5


# --------------------------------------------------------------------------- a linear VAE
class PPCA:
    """x = W z + b + sigma eps with orthogonal columns of W, so the exact posterior is diagonal."""

    def __init__(self, seed: int = 0) -> None:
        g = np.random.default_rng(seed)
        q = np.linalg.qr(g.standard_normal((D, K_LAT)))[0]
        self.W = q * np.array([3.0, 1.5])  # [D, k], columns orthogonal
        self.b = g.standard_normal(D)
        m = self.W.T @ self.W + SIGMA**2 * np.eye(K_LAT)  # diagonal
        self.post_A = np.linalg.solve(m, self.W.T)  # posterior mean = A (x - b)
        self.post_var = SIGMA**2 / np.diag(m)  # posterior variances [k]

    def sample(self, n: int, seed: int = 1) -> np.ndarray:
        g = np.random.default_rng(seed)
        z = g.standard_normal((n, K_LAT))
        return z @ self.W.T + self.b + SIGMA * g.standard_normal((n, D))

    def log_px(self, x: np.ndarray) -> np.ndarray:
        """Exact log N(x; b, W W^T + sigma^2 I), per row."""
        c = self.W @ self.W.T + SIGMA**2 * np.eye(D)
        r = x - self.b
        _, logdet = np.linalg.slogdet(c)
        maha = np.einsum("ni,ij,nj->n", r, np.linalg.inv(c), r)
        return -0.5 * (D * math.log(2 * math.pi) + logdet + maha)

    def vae(self, mean_shift: float = 0.0, var_scale: float = 1.0) -> VAE:
        """The project's VAE set to this model; the encoder is the exact posterior, optionally with
        its mean shifted by ``mean_shift`` and its variances scaled by ``var_scale``."""
        cfg = ModelConfig(
            arch="mlp", data_shape=(D,), latent_dim=K_LAT, hidden=(2 * D,),
            likelihood="gaussian", obs_std=SIGMA,
        )
        vae = VAE(cfg).double()
        eye = np.eye(D)
        pm = np.vstack([eye, -eye])  # [2D, D]: relu(+x), relu(-x)
        a = self.post_A
        with torch.no_grad():
            enc = vae.encoder
            enc.body[0].weight.copy_(torch.from_numpy(pm))
            enc.body[0].bias.zero_()
            enc.head.mu.weight.copy_(torch.from_numpy(np.hstack([a, -a])))
            enc.head.mu.bias.copy_(torch.from_numpy(-a @ self.b + mean_shift))
            enc.head.logvar.weight.zero_()
            enc.head.logvar.bias.copy_(torch.from_numpy(np.log(self.post_var * var_scale)))
            dec = vae.decoder.net
            dec[0].weight.copy_(torch.from_numpy(np.vstack([self.W, -self.W])))
            dec[0].bias.zero_()
            dec[2].weight.copy_(torch.from_numpy(np.hstack([eye, -eye])))
            dec[2].bias.copy_(torch.from_numpy(self.b))
        return vae

    def exact_elbo(self, x: np.ndarray, mean_shift: float, var_scale: float) -> np.ndarray:
        """log p(x) - KL(q(z|x) || p(z|x)), both Gaussians with diagonal covariance."""
        m_true = (x - self.b) @ self.post_A.T
        v_true = self.post_var
        m_q = m_true + mean_shift
        v_q = v_true * var_scale
        kl = 0.5 * (np.log(v_true / v_q) + (v_q + (m_q - m_true) ** 2) / v_true - 1).sum(1)
        return self.log_px(x) - kl
