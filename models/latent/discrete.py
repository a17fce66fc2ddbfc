"""Torch-free conventions for likelihoods of discrete data: dequantisation, bins, bits/dim.

8-bit pixels k in {0, ..., 255} are discrete, so their log-likelihood is a log-*probability*.
A Gaussian density is trained and evaluated on uniformly dequantised values
``y = (k + u) / 256``, u ~ U(0, 1)^D, and for any density p on y (Theis et al. 2016)::

    log P(k) >= E_u[ log p((k + u) / 256) ] - D log 256,

so subtracting ``D log 256`` (``bin_log_volume``) from the dequantised log-density gives a lower
bound on the discrete log-probability: -log P(k) >= 0 and bits/dim = -log P / (D ln 2) is
positive and comparable with published tables (the convention of the PixelCNN and Glow papers).
A Bernoulli likelihood on binary data is a log-probability already (no offset). A density on
float data is *continuous*: it has no such bound and no bits/dim.
"""

from __future__ import annotations

import enum
import math

import numpy as np

#: Levels of an 8-bit value, and the log-volume of one bin of width 1/256 (per dimension).
BINS = 256
LOG_BINS = math.log(BINS)
#: Evaluation data are dequantised once with this seed (as binarisation uses a fixed seed), so
#: runs with different seeds are scored on the same values.
EVAL_DEQUANTIZE_SEED = 0
#: ``Dataset.scaling`` of data stored as 8-bit integers (read as k / 255).
BYTE_SCALING = "uint8/255"


class LikelihoodKind(enum.StrEnum):
    """What a reported log-likelihood is: a log-probability of discrete data, or a log-density."""

    DISCRETE = "discrete"
    CONTINUOUS = "continuous"


def needs_dequantization(likelihood: str, scaling: str | None) -> bool:
    """Whether training data are dequantised: a Gaussian likelihood on 8-bit data."""
    return likelihood == "gaussian" and scaling == BYTE_SCALING


def likelihood_kind(likelihood: str, dequantized: bool) -> LikelihoodKind:
    """Bernoulli (binary data) and a Gaussian on dequantised bytes are discrete; else continuous."""
    if likelihood == "bernoulli" or dequantized:
        return LikelihoodKind.DISCRETE
    return LikelihoodKind.CONTINUOUS


def bin_log_volume(data_dim: int, dequantized: bool = True) -> float:
    """Nats to subtract from a dequantised log-density to bound the log-probability: D log 256."""
    return data_dim * LOG_BINS if dequantized else 0.0


def display_range(dequantized: bool) -> tuple[float, float]:
    """The model-space values shown as black and white (grey levels 0 and 255).

    Data read as k / 255 are shown as they are, (0, 1). A model of bytes dequantised as
    (k + u) / 256 holds level k in the bin [k, k + 1) / 256: the centres of the first and last
    bins, 0.5 / 256 and 255.5 / 256, are black and white, so that a value v is shown as level
    floor(256 v), the bin it lies in, and a bin's centre (k + 0.5) / 256 as k / 255. With (0, 1)
    a value was up to half a level off its bin: 255 v against 256 v - 0.5.
    """
    return ((0.5 / BINS, (BINS - 0.5) / BINS) if dequantized else (0.0, 1.0))


def unit_to_bytes(x: np.ndarray) -> np.ndarray:
    """Rows read as k / 255 (``Dataset.read`` of 8-bit data) back to their levels k, uint8."""
    return np.rint(np.asarray(x, dtype=np.float64) * 255.0).clip(0, 255).astype(np.uint8)


def dequantize_uint8(k: np.ndarray, rng: np.random.Generator | int = EVAL_DEQUANTIZE_SEED) -> np.ndarray:
    """``(k + u) / 256`` with u ~ U(0, 1) per value: float32 in (0, 1), the same shape as k."""
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    k = np.asarray(k)
    return ((k.astype(np.float64) + gen.random(k.shape)) / BINS).astype(np.float32)


def bits_per_dim(nats_per_sample: float, data_dim: int) -> float:
    """A per-sample negative log-likelihood in nats as bits per data dimension."""
    return nats_per_sample / (data_dim * math.log(2.0))
