"""What a diagnosis reports, torch-free: the ``Diagnosis`` record, its stable JSON keys, and
``assemble``, the one place that turns the decoder's terms and the latent summary into it (used by
``diagnose`` for our own runs and by the ONNX pair's diagnosis for models trained elsewhere).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.diagnostics.verdict import verdict
from models.errors import TrainingError
from models.latent.discrete import LikelihoodKind, bits_per_dim


JSON_KEYS = (
    "elbo",
    "distortion",
    "rate",
    "iwae",
    "elbo_gap",
    "iw_samples",
    "likelihood_kind",
    "bits_per_dim",
    "mutual_info",
    "mutual_info_stderr",
    "mi_ceiling",
    "mi_saturated",
    "marginal_kl",
    "active_units",
    "kl_per_dim",
    "activity_per_dim",
    "collapsed_dims",
    "collapsed_kl",
    "verdict",
    "n_samples",
)


@dataclass
class Diagnosis:
    """The diagnosis of a model on N data samples; every value is a mean per sample, in nats.

    ``elbo = -(distortion + rate)``, ``rate = sum(kl_per_dim) = mutual_info + marginal_kl``,
    ``elbo_gap = iwae - elbo``, K = ``iw_samples``. ``likelihood_kind`` says whether elbo and
    iwae bound a log-probability ("discrete") or are log-densities ("continuous");
    ``bits_per_dim`` is ``-iwae / (D ln 2)`` for discrete data, None for continuous. When
    ``mi_saturated``, ``mutual_info`` is a lower and ``marginal_kl`` an upper estimate.
    """

    elbo: float
    distortion: float
    rate: float
    iwae: float
    elbo_gap: float
    mutual_info: float
    marginal_kl: float
    active_units: int
    kl_per_dim: list[float]
    activity_per_dim: list[float]
    collapsed_dims: list[int]
    verdict: str
    n_samples: int
    iw_samples: int = 0
    likelihood_kind: str = LikelihoodKind.CONTINUOUS.value
    bits_per_dim: float | None = None
    mutual_info_stderr: float = 0.0
    mi_ceiling: float = 0.0
    mi_saturated: bool = False
    collapsed_kl: float = 0.0

    def to_json_dict(self) -> dict[str, Any]:
        """Exactly the stable keys of ``JSON_KEYS``, JSON-able (floats, ints, lists, strings,
        a bool, and null for ``bits_per_dim`` of continuous data)."""
        d = asdict(self)
        return {k: d[k] for k in JSON_KEYS}


class NonFiniteModelError(TrainingError):
    """The model gives non-finite values on the data (its weights diverged): nothing to diagnose."""


def non_finite_what(distortion: float, iwae: float, mu: np.ndarray, lv: np.ndarray) -> str:
    if not (np.isfinite(mu).all() and np.isfinite(lv).all()):
        return "the encoder's posterior parameters were not finite"
    if not math.isfinite(distortion):
        return f"the distortion was {distortion}"
    return f"the IWAE estimate was {iwae}"


def assemble(
    summary: dict[str, Any],
    distortion: float,
    iwae: float,
    iw_samples: int,
    kind: LikelihoodKind | str,
    data_dim: int,
    *,
    verdict_context: tuple[Any, Any] = (None, None),
    data_std: float | None = None,
    val_elbos: Sequence[float] | None = None,
    remedy: Any = None,
) -> Diagnosis:
    """The Diagnosis of a ``latent_summary`` and the decoder's terms (distortion and IWAE_K,
    nats per sample, the bin offset of discrete data included). ``verdict_context`` is the
    (objective, model config) the verdict may name (None where unknown: a model trained
    elsewhere); ``remedy(values) -> str`` adds a remedy to the verdict's words. Raises
    ``NonFiniteModelError`` if a value is not finite."""
    kind = LikelihoodKind(kind)
    rate = summary["rate"]
    elbo = -(distortion + rate)
    numbers = [distortion, iwae, rate, summary["mutual_info"], *summary["kl_per_dim"],
               *summary["activity_per_dim"]]
    if not all(math.isfinite(v) for v in numbers):
        raise NonFiniteModelError(f"the rate was {rate}" if math.isfinite(distortion + iwae)
                                  else f"the distortion was {distortion}")
    values = dict(summary, elbo=elbo, iwae=iwae, elbo_gap=iwae - elbo, iw_samples=iw_samples,
                  data_std=data_std, val_elbos=val_elbos)
    words = verdict(values, *verdict_context)
    if remedy is not None:
        words = f"{words} {remedy(values)}".strip()
    return Diagnosis(
        elbo=elbo,
        distortion=distortion,
        rate=rate,
        iwae=iwae,
        elbo_gap=iwae - elbo,
        mutual_info=summary["mutual_info"],
        marginal_kl=summary["marginal_kl"],
        active_units=summary["active_units"],
        kl_per_dim=summary["kl_per_dim"],
        activity_per_dim=summary["activity_per_dim"],
        collapsed_dims=summary["collapsed_dims"],
        verdict=words,
        n_samples=int(summary["n_samples"]),
        iw_samples=iw_samples,
        likelihood_kind=kind.value,
        bits_per_dim=bits_per_dim(-iwae, data_dim) if kind == LikelihoodKind.DISCRETE else None,
        mutual_info_stderr=summary["mutual_info_stderr"],
        mi_ceiling=summary["mi_ceiling"],
        mi_saturated=summary["mi_saturated"],
        collapsed_kl=summary["collapsed_kl"],
    )
