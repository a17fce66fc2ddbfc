"""An epoch's validation: the model scored on the validation rows, and the EpochEvent that reports it.

The distortion is one Monte Carlo draw of z per row with a fixed seed (``VAL_NOISE_SEED``), so
every epoch is scored on the same noise; the rate and the latent statistics come from the
encodings (``models.diagnostics.latent_summary``, computed by the trainer).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.nn.objectives import elbo_terms
from models.training.events import EpochEvent

#: The z draws of the validation distortion use this seed at every evaluation.
VAL_NOISE_SEED = 0
#: Validation rows scored at once.
EVAL_BATCH = 1000


@torch.no_grad()
def score_validation(
    model: Any, x: torch.Tensor, device: torch.device
) -> tuple[float, np.ndarray, np.ndarray]:
    """The mean distortion of the rows ``x`` (on ``device``; no bin offset) and their encodings
    ``(mu, logvar)`` as float64 numpy, in eval mode (the model's mode is restored after)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device)
    gen.manual_seed(VAL_NOISE_SEED)
    dist_sum = torch.zeros((), dtype=torch.float64, device=device)
    mus, lvs = [], []
    try:
        for s in range(0, len(x), EVAL_BATCH):
            terms = elbo_terms(model, x[s : s + EVAL_BATCH].float(), generator=gen)
            dist_sum += terms.distortion.double().sum()
            mus.append(terms.mu)
            lvs.append(terms.logvar)
    finally:
        model.train(was_training)
    mu = torch.cat(mus).double().cpu().numpy()
    lv = torch.cat(lvs).double().cpu().numpy()
    return float(dist_sum) / len(x), mu, lv


def epoch_event(
    epoch: int, step: int, train_means: np.ndarray, bin_nats: float, distortion: float,
    summary: dict[str, Any], verdict: str, kind: Any, seconds: float,
) -> EpochEvent:
    """The EpochEvent of a validation: ``train_means`` [D, KL_1..KL_d] over the epoch's steps
    (no bin offset), ``distortion`` the validation's (offset included), ``summary`` the
    encodings' ``latent_summary``."""
    rate = float(summary["rate"])
    tr_rate = float(train_means[1:].sum())
    tr_dist = float(train_means[0]) + bin_nats
    return EpochEvent(
        epoch=epoch,
        step=step,
        train_elbo=-(tr_dist + tr_rate),
        train_distortion=tr_dist,
        train_rate=tr_rate,
        val_elbo=-(distortion + rate),
        val_distortion=distortion,
        val_rate=rate,
        val_kl_per_dim=np.asarray(summary["kl_per_dim"], dtype=np.float64),
        activity_per_dim=np.asarray(summary["activity_per_dim"], dtype=np.float64),
        active_units=int(summary["active_units"]),
        mutual_info=float(summary["mutual_info"]),
        marginal_kl=float(summary["marginal_kl"]),
        seconds=seconds,
        verdict=verdict,
        collapsed_dims=list(summary["collapsed_dims"]),
        mi_ceiling=float(summary["mi_ceiling"]),
        mi_saturated=bool(summary["mi_saturated"]),
        likelihood_kind=str(getattr(kind, "value", kind)),
    )
