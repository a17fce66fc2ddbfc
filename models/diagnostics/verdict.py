"""The verdict: plain words on what the latent space does, claiming only what was measured.

Rules (each threshold below is named and documented in docs/diagnostics.md):

- Training progress. With a validation-ELBO history, a run whose last epoch still raised the
  ELBO by more than ``IMPROVING_NATS_PER_DIM`` nats per data dimension (or that has one epoch)
  is *too short to judge*: collapse then says nothing yet about the data, and no smaller latent
  size is suggested. A smaller latent size is suggested only for a run known to have converged.
- Collapse. The collapsed dimensions' summed KL is reported; they "cost nothing" only when it is
  below ``FREE_COLLAPSE_NATS``. beta is named only when known.
- A fixed Gaussian ``obs_std`` is named as a cause of collapse only when it is at least
  ``LARGE_OBS_STD_FRACTION`` of the data's spread (``summary.data_spread``).
- I(X;Z) and marginal KL. At the estimator's ceiling (``mi_saturated``) both are bounds, and
  the verdict says so instead of judging the marginal KL.
- The ELBO gap is judged only with ``K >= MIN_GAP_K`` importance samples (at K = 1 the gap is
  about 0 by construction), against absolute thresholds in nats: the gap is a KL between
  distributions over z, so it does not change with the data's units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from models.config import ModelConfig, ObjectiveConfig

#: The ELBO gap is judged only with at least this many importance samples.
MIN_GAP_K = 100
#: An ELBO gap above this many nats is large, below SMALL_GAP_NATS small (an amortised encoder
#: on MNIST typically leaves 2-5 nats; Cremer et al. 2018, "Inference suboptimality in VAEs").
LARGE_GAP_NATS = 5.0
SMALL_GAP_NATS = 0.5
#: Below this much I(X;Z), active dimensions carry little information.
LOW_INFO_NATS = 0.5
#: Collapsed dimensions whose summed KL is below this cost next to nothing.
FREE_COLLAPSE_NATS = 0.05
#: A validation ELBO that rose by more than this many nats per data dimension in the last epoch
#: is still improving quickly (0.78 nats per epoch on MNIST's 784 pixels).
IMPROVING_NATS_PER_DIM = 1e-3
#: A fixed obs_std at least this fraction of the data's spread makes reconstruction cheap.
LARGE_OBS_STD_FRACTION = 0.5


def training_state(val_elbos: Sequence[float] | None, data_dim: int | None) -> tuple[str, str]:
    """``("unknown" | "short" | "converged", words)`` from the validation ELBO per epoch."""
    if val_elbos is None or len(val_elbos) == 0 or not data_dim:
        return "unknown", ""
    if not all(math.isfinite(float(v)) for v in val_elbos[-2:]):
        return "unknown", ""
    if len(val_elbos) == 1:
        return "short", "after one epoch there is no history to judge convergence by"
    gain = float(val_elbos[-1]) - float(val_elbos[-2])
    if gain > IMPROVING_NATS_PER_DIM * data_dim:
        return "short", (
            f"the validation ELBO still rose by {gain:.2f} nats ({gain / data_dim:.2g} per data "
            f"dimension) in the last epoch"
        )
    return "converged", ""


def verdict(
    summary: Mapping[str, Any],
    objective: ObjectiveConfig | None = None,
    model_config: ModelConfig | None = None,
) -> str:
    """Plain words on what the latent space does, with the likely reason and a remedy.

    ``summary`` is a ``latent_summary`` dict, optionally with ``elbo_gap`` and ``iw_samples``
    (the IWAE bound's K), ``val_elbos`` (the validation ELBO per epoch so far) and ``data_std``
    (``data_spread`` of the rows). ``objective`` and ``model_config`` name likely causes (beta,
    KL warm-up, free bits, the likelihood); what is unknown is not mentioned.
    """
    kl = list(summary["kl_per_dim"])
    d = len(kl)
    active = int(summary["active_units"])
    collapsed = list(summary["collapsed_dims"])
    rate = float(summary["rate"])
    mi = float(summary["mutual_info"])
    data_dim = model_config.data_dim if model_config is not None else summary.get("data_dim")
    state, why = training_state(summary.get("val_elbos"), data_dim)
    parts: list[str] = []
    if state == "short":
        parts.append(f"Training too short to judge: {why}, so what follows may still change.")

    info = f"rate {_nats(rate)} nats, I(X;Z) {_mi(summary)} nats"
    if active == 0:
        parts.append(
            f"All {d} latent dimensions are collapsed{' so far' if state == 'short' else ''} "
            f"(posterior collapse): {info}, so the decoder ignores z and models x on its own."
        )
        if state != "short":
            parts.append(_collapse_causes(objective, model_config, summary.get("data_std")))
    elif collapsed:
        parts.append(f"{len(collapsed)} of {d} dimensions collapsed ({_dims(collapsed)}), "
                     f"{active} active; {info}. {_collapsed_cost(summary)}")
        if state != "short":
            parts.append(_partial_collapse_reason(objective, active, state == "converged"))
    else:
        parts.append(f"All {d} dimensions active: {info}.")
        if mi >= LOW_INFO_NATS and state != "short":
            parts.append(
                "Every dimension is used; if reconstructions lack detail, more latent dimensions "
                "may help."
            )
    if active > 0 and mi < LOW_INFO_NATS:
        parts.append(
            f"Yet the code carries little information (I(X;Z) {_mi(summary)} nats): expected early "
            "in training; if it persists, the model is close to posterior collapse."
        )
    parts.append(_rate_split(summary))
    parts.append(_gap(summary))
    return " ".join(p for p in parts if p)


def _collapsed_cost(summary: Mapping[str, Any]) -> str:
    ckl = float(summary.get("collapsed_kl", 0.0))
    if ckl < FREE_COLLAPSE_NATS:
        return f"The collapsed ones carry {_nats(ckl)} nats of KL in all: they cost next to nothing."
    return (
        f"The collapsed ones still carry {_nats(ckl)} nats of KL in all, rate spent without "
        "information (their posteriors sit off the prior without following x)."
    )


def _partial_collapse_reason(objective: ObjectiveConfig | None, active: int, converged: bool) -> str:
    if objective is not None and objective.beta > 1.0:
        return (
            f"beta = {objective.beta:g} charges {objective.beta:g} nats of objective for each nat "
            "of information, which switches dimensions off; lower beta or warm the KL up if "
            "reconstructions lack detail."
        )
    if objective is not None and objective.free_bits > 0:
        return (
            f"Free bits of {objective.free_bits:g} nats per dimension did not keep them in use; "
            "the data probably need only the active ones."
        )
    text = "Not an error by itself: a model with more latent dimensions than the data need leaves "
    text += "the others unused"
    if objective is not None:
        text += f" (here at beta = {objective.beta:g})"
    text += "."
    if converged:
        text += f" The run has converged: latent_dim = {active} would likely fit as well."
    return text


def _collapse_causes(
    objective: ObjectiveConfig | None, cfg: ModelConfig | None, data_std: float | None
) -> str:
    causes: list[str] = []
    remedies: list[str] = []
    if objective is not None and objective.beta > 1.0:
        causes.append(
            f"beta = {objective.beta:g} charges {objective.beta:g} nats of objective for each nat "
            "of information"
        )
        remedies.append("lower beta (1 trains on the true ELBO)")
    if objective is not None and objective.warmup_steps == 0:
        causes.append("the KL is weighted in full from the first step (no warm-up)")
        remedies.append("warm the KL up over a few epochs")
    if objective is not None and objective.free_bits == 0:
        remedies.append("set free bits (e.g. 0.1 to 0.5 nats per dimension)")
    if (cfg is not None and cfg.likelihood == "gaussian" and cfg.obs_std is not None
            and data_std and cfg.obs_std >= LARGE_OBS_STD_FRACTION * data_std):
        causes.append(
            f"the fixed obs_std = {cfg.obs_std:g}, large against the data's spread "
            f"{data_std:.3g}, sets a low price on reconstruction error"
        )
        remedies.append("lower obs_std or learn it")
    causes.append("a decoder strong enough to model x without z")
    text = "Likely cause: " + "; or ".join(causes) + "."
    if remedies:
        text += " Remedy: " + ", or ".join(remedies) + "."
    return text


def _rate_split(summary: Mapping[str, Any]) -> str:
    rate = float(summary["rate"])
    mkl = float(summary["marginal_kl"])
    if summary.get("mi_saturated"):
        return (
            f"I(X;Z) reached its estimator's ceiling log N = {float(summary['mi_ceiling']):.2f} "
            f"nats (N = {summary['n_samples']} samples), so it is a lower estimate and the "
            f"marginal KL ({_nats(mkl)} nats) an upper estimate; more samples would tighten both."
        )
    if rate > 1.0 and mkl > 0.5 * rate:
        return (
            f"{_nats(mkl)} of the {_nats(rate)} nats of rate are marginal KL: the aggregate "
            "posterior q(z) differs from the prior N(0, I), so samples drawn from the prior may "
            "look worse than reconstructions."
        )
    return ""


def _gap(summary: Mapping[str, Any]) -> str:
    gap = summary.get("elbo_gap")
    if gap is None:
        return ""
    k = int(summary.get("iw_samples") or 0)
    if k < MIN_GAP_K:
        return (
            f"ELBO gap not judged: IWAE-{k} minus the ELBO is {_nats(gap)} nats, but with fewer "
            f"than {MIN_GAP_K} importance samples the gap is underestimated (about 0 at K = 1 by "
            "construction)."
        )
    bound = f"the IWAE-{k} estimate"
    if gap > LARGE_GAP_NATS:
        return (
            f"Large ELBO gap: the ELBO is {_nats(gap)} nats below {bound} of log p(x), so "
            "q(z|x) fits the true posterior p(z|x) loosely (the inference gap: amortisation and "
            "the diagonal-Gaussian family). Train longer or widen the encoder; meanwhile the IWAE "
            "figure is the better log-likelihood estimate."
        )
    if gap > SMALL_GAP_NATS:
        return (
            f"ELBO gap {_nats(gap)} nats ({bound} of log p(x) minus the ELBO): the usual "
            "inference gap of an amortised diagonal-Gaussian encoder."
        )
    return f"ELBO gap {_nats(gap)} nats at K = {k}: q(z|x) fits the true posterior closely."


def _nats(v: float) -> str:
    """Two decimals, without a "-0.00" for a tiny negative Monte Carlo estimate."""
    return f"{round(float(v), 2) + 0.0:.2f}"


def _mi(summary: Mapping[str, Any]) -> str:
    """I(X;Z) with its Monte Carlo error where the error shows at two decimals."""
    se = float(summary.get("mutual_info_stderr") or 0.0)
    text = _nats(summary["mutual_info"])
    return f"{text} ± {se:.2f}" if se >= 0.005 else text


def _dims(idx: list[int], limit: int = 12) -> str:
    shown = ", ".join(str(i) for i in idx[:limit])
    more = f", ... ({len(idx) - limit} more)" if len(idx) > limit else ""
    return ("dim " if len(idx) == 1 else "dims ") + shown + more
