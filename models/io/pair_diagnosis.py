"""Diagnose a VAE given as two ONNX files, with onnxruntime and numpy only (no torch).

The same figures as ``models.diagnostics.diagnose`` for our own runs, by the same definitions,
in nats per sample: the distortion ``D = -E_q log p(x|z)`` (a Monte Carlo mean over K draws of
z per row), the rate ``R = sum_i KL_i`` (closed form per dimension), ``ELBO = -(D + R)``,
``IWAE_K = E_x[logsumexp_k log w_k - log K]`` with ``log w = log p(x|z) + log p(z) - log q(z|x)``
from the same draws (Burda et al. 2016), the gap ``IWAE_K - ELBO``, I(X;Z) by the mixture
estimator with its ceiling ``log N``, the marginal KL ``R - I``, activity, active units and
collapsed dimensions, and the verdict of ``models.diagnostics.verdict`` (with the JSON keys of
``models.diagnostics.JSON_KEYS``) plus a remedy phrased for a model trained elsewhere, whose
beta, warm-up and free bits are unknown here.

``log q(z|x)`` is computed from the standard-normal noise (``-1/2 sum(log 2pi + logvar +
eps^2)``), which keeps its precision when sigma << |mu|. Work is batched (``batch_size`` rows,
K draws in chunks); ``progress(done, total)`` is called after each batch and ``should_stop()``
checked before each, raising :class:`DiagnosisStopped`.

:func:`open_model` is what the app runs in a background task: it opens the pair and the data,
encodes the rows and returns a :class:`PairModel` with ``encode``, ``decode``,
``log_likelihood`` (IWAE per row), ``summary`` and ``diagnose``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from models.data import Dataset, load_dataset
from models.data.preprocessing import binarize_validation, subset
from models.diagnostics.result import JSON_KEYS, Diagnosis, NonFiniteModelError, assemble
from models.diagnostics.summary import latent_summary
from models.errors import DataError
from models.io.onnx_pair import OnnxPair, PairOptions
from models.io.onnx_partner import open_pair
from models.latent import discrete
from models.latent.stats import MI_SAMPLES

_LOG_2PI = math.log(2.0 * math.pi)
#: At most this many rows are diagnosed unless told otherwise (as ``diagnose RUN.h5 --data``).
MAX_ROWS = 10_000

Progress = Callable[[int, int], None]
StopCheck = Callable[[], bool]


class DiagnosisStopped(Exception):
    """``should_stop()`` said stop; nothing was computed to the end."""


class _Rows(Protocol):
    def __len__(self) -> int: ...
    def read(self, indices: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------- the decoder terms
def importance_terms(pair: OnnxPair, x: np.ndarray, k: int, rng: np.random.Generator,
                     chunk_rows: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """K draws z_k ~ q(z|x) for each row of x [B, ...]: per row the distortion
    ``-1/K sum_k log p(x|z_k)`` and ``IWAE_K``, and (mu, logvar); float64. The draws are decoded
    about ``chunk_rows`` at a time."""
    mu, lv = pair.encode(x)
    b, d = mu.shape
    per = max(1, chunk_rows // max(1, b))
    log_px_all, log_w_all = np.empty((k, b)), np.empty((k, b))
    xf = np.asarray(x, dtype=np.float32).reshape(b, -1)
    done = 0
    while done < k:
        kk = min(per, k - done)
        eps = rng.standard_normal((kk, b, d))
        z = mu + np.exp(0.5 * lv) * eps
        z32 = z.astype(np.float32)
        xs = np.broadcast_to(xf, (kk, *xf.shape)).reshape(kk * b, -1)
        log_px = pair.log_px_given_z(xs, z32.reshape(kk * b, d)).reshape(kk, b)
        z64 = z32.astype(np.float64)  # the very values decoded
        log_pz = -0.5 * (d * _LOG_2PI + (z64**2).sum(2))
        log_q = -0.5 * (_LOG_2PI + lv + eps**2).sum(2)
        log_px_all[done : done + kk] = log_px
        log_w_all[done : done + kk] = log_px + log_pz - log_q
        done += kk
    top = log_w_all.max(0)
    with np.errstate(invalid="ignore", over="ignore"):
        iwae = top + np.log(np.exp(log_w_all - top).sum(0)) - math.log(k)
    return -log_px_all.mean(0), iwae, mu, lv


def _chunks(x: np.ndarray | _Rows, batch_size: int):
    n = len(x)
    for s in range(0, n, batch_size):
        rows = np.arange(s, min(n, s + batch_size))
        yield (x[s : s + batch_size] if isinstance(x, np.ndarray) else x.read(rows)), len(rows)


def remedy_elsewhere(summary: dict[str, Any]) -> str:
    """What to look at in a model trained elsewhere, whose objective is unknown here."""
    if int(summary["active_units"]) == 0:
        return ("Trained elsewhere, so its objective is unknown here: look at the KL weight its "
                "training used (a beta above 1, or no KL warm-up), whether it used free bits, and "
                "how strong its decoder is.")
    if summary["collapsed_dims"]:
        return ("Trained elsewhere, so its KL weight is unknown here: with the plain ELBO "
                "(weight 1) unused dimensions at the prior are expected; with a weight above 1 "
                "they may have been switched off.")
    return ""


def diagnose_pair(pair: OnnxPair, x: np.ndarray | _Rows, *, iw_samples: int = 100,
                  batch_size: int = 128, seed: int = 0, n_z: int = MI_SAMPLES,
                  progress: Progress | None = None,
                  should_stop: StopCheck | None = None, dequantized: bool = False) -> Diagnosis:
    """Diagnose the pair on model-ready rows x (array or Dataset; binary for Bernoulli).

    ``dequantized``: x are 8-bit rows dequantised as ``(k + u) / 256`` (``prepare_rows`` does it
    for a Gaussian on 8-bit data), so the figures include D log 256 and bound the discrete
    log-probability (``likelihood_kind`` "discrete", with bits/dim); a Bernoulli on binary rows
    is discrete too; a Gaussian on float rows is continuous. Seeded: the same seed, files and
    rows give the same numbers. Returns a ``models.diagnostics.Diagnosis``
    (``models.diagnostics.assemble``).
    """
    if iw_samples < 1:
        raise ValueError(f"iw_samples must be at least 1, not {iw_samples}")
    n = len(x)
    if n == 0:
        raise DataError("there are no data samples to diagnose")
    rng = np.random.default_rng(seed)
    dist_sum = iwae_sum = 0.0
    mus, lvs, done = [], [], 0
    for xb, nb in _chunks(x, batch_size):
        if should_stop is not None and should_stop():
            raise DiagnosisStopped()
        xb = np.asarray(xb, dtype=np.float32)
        if not np.isfinite(xb).all():
            raise DataError("the data contain NaN or infinite values")
        if pair.likelihood == "bernoulli" and not ((xb == 0) | (xb == 1)).all():
            raise DataError("the Bernoulli likelihood needs binary data (0 or 1); binarise them")
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            dist, iwae, mu, lv = importance_terms(pair, xb, iw_samples, rng)
        dist_sum += float(dist.sum())
        iwae_sum += float(iwae.sum())
        mus.append(mu)
        lvs.append(lv)
        done += nb
        if progress is not None:
            progress(done, n)
    distortion, iwae_mean = dist_sum / n, iwae_sum / n
    if not math.isfinite(distortion) or not math.isfinite(iwae_mean):
        what = f"the distortion was {distortion}" if not math.isfinite(distortion) else \
            f"the IWAE estimate was {iwae_mean}"
        raise NonFiniteModelError(f"{pair.decoder_path}: {what}")
    mu_all, lv_all = np.concatenate(mus), np.concatenate(lvs)
    if not (np.isfinite(mu_all).all() and np.isfinite(lv_all).all()):
        raise NonFiniteModelError(f"{pair.encoder_path}: the encoder gives NaN or infinite "
                                  "posterior parameters on these data")
    with np.errstate(all="ignore"):
        summary = latent_summary(mu_all, lv_all, rng=seed, n_z=n_z)
    kind = discrete.likelihood_kind(pair.likelihood, dequantized)
    offset = discrete.bin_log_volume(math.prod(pair.data_shape), dequantized)
    return assemble(summary, distortion + offset, iwae_mean - offset, iw_samples, kind,
                    math.prod(pair.data_shape), remedy=remedy_elsewhere)


def diagnosis_json(d: Diagnosis) -> dict[str, Any]:
    """The JSON object of ``diagnose --json``: the keys of ``JSON_KEYS``, in its order."""
    out = d.to_json_dict()
    return {k: out[k] for k in JSON_KEYS}


# --------------------------------------------------------------------------- data and the app's door
def prepare_rows(pair: OnnxPair, dataset: Dataset, *, max_samples: int | None = MAX_ROWS,
                 seed: int = 0, binarize: str = "dynamic") -> tuple[np.ndarray, np.ndarray, str]:
    """Model-ready rows of ``dataset`` for ``pair``: a seeded subset of at most ``max_samples``
    rows (sorted), checked against the pair, binarised for a Bernoulli likelihood by the
    evaluation rule, dequantised for a Gaussian on 8-bit data (:func:`dequantizes`). Returns
    (x, row indices, words saying what they are)."""
    rows, note = subset(len(dataset), max_samples, seed)
    x = dataset.read(rows)
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    pair.check_data(dataset.name, dataset.sample_shape, lo, hi)
    x = x.reshape(len(rows), *pair.data_shape)
    if pair.likelihood == "bernoulli":
        x = binarize_validation(x, binarize, dataset.name)
    elif dequantizes(pair, dataset):
        x = discrete.dequantize_uint8(discrete.unit_to_bytes(x), discrete.EVAL_DEQUANTIZE_SEED)
    return x, rows, f"{note}{len(dataset)} rows of {dataset.name}"


def dequantizes(pair: OnnxPair, dataset: Dataset) -> bool:
    """Whether the pair is evaluated on dequantised rows: a Gaussian on 8-bit data."""
    return discrete.needs_dequantization(pair.likelihood, dataset.scaling)


@dataclass
class PairModel:
    """A pair opened on a data set, with its rows encoded: what the app shows without training.

    ``mu``/``logvar`` are the posterior parameters of ``x`` (the diagnosed rows, ``rows`` of
    ``dataset``), ``labels`` their labels (or None)."""

    pair: OnnxPair
    dataset: Dataset
    x: np.ndarray
    rows: np.ndarray
    mu: np.ndarray
    logvar: np.ndarray
    labels: np.ndarray | None
    source: str

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mu, logvar) of q(z|x); never a sample."""
        return self.pair.encode(x)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """The mean of p(x|z) [N, *data_shape]."""
        return self.pair.decode(z)

    def log_likelihood(self, x: np.ndarray, k: int = 100, seed: int = 0) -> np.ndarray:
        """IWAE_K estimate of log p(x) per row, nats [N] (a lower bound in expectation)."""
        return importance_terms(self.pair, np.asarray(x, np.float32), k,
                                np.random.default_rng(seed))[1]

    def summary(self, seed: int = 0) -> dict[str, Any]:
        """Latent statistics of the encoded rows (no decoder needed):
        ``models.diagnostics.latent_summary``."""
        if not (np.isfinite(self.mu).all() and np.isfinite(self.logvar).all()):
            raise NonFiniteModelError("the encoder's posterior parameters were not finite")
        return latent_summary(self.mu, self.logvar, rng=seed)

    def diagnose(self, iw_samples: int = 100, *, seed: int = 0, batch_size: int = 128,
                 progress: Progress | None = None,
                 should_stop: StopCheck | None = None) -> Diagnosis:
        """The full diagnosis of the rows (see :func:`diagnose_pair`)."""
        return diagnose_pair(self.pair, self.x, iw_samples=iw_samples, seed=seed,
                             batch_size=batch_size, progress=progress, should_stop=should_stop,
                             dequantized=dequantizes(self.pair, self.dataset))


def open_model(encoder: str | None, decoder: str | None, data: str, *, labels: str | None = None,
               options: PairOptions = PairOptions(), max_samples: int | None = MAX_ROWS,
               seed: int = 0, batch_size: int = 512, progress: Progress | None = None,
               should_stop: StopCheck | None = None) -> PairModel:
    """Open a pair (either file alone for a pair we exported) and a data spec, and encode the rows.

    For a background task: ``progress(done, total)`` after each batch encoded, ``should_stop()``
    before each (raising :class:`DiagnosisStopped`). Errors are ``LatentExplorerError`` lines.
    """
    pair = open_pair(encoder, decoder, options)
    dataset = load_dataset(data, labels=labels)
    x, rows, source = prepare_rows(pair, dataset, max_samples=max_samples, seed=seed)
    mus, lvs = [], []
    for s in range(0, len(x), batch_size):
        if should_stop is not None and should_stop():
            raise DiagnosisStopped()
        mu, lv = pair.encode(x[s : s + batch_size])
        mus.append(mu)
        lvs.append(lv)
        if progress is not None:
            progress(min(len(x), s + batch_size), len(x))
    lab = None if dataset.labels is None else dataset.labels[rows]
    return PairModel(pair, dataset, x, rows, np.concatenate(mus), np.concatenate(lvs), lab, source)
