"""The text report of a diagnosis, as ``latent-explorer diagnose`` prints it."""

from __future__ import annotations

from typing import Any

from models.latent.stats import ACTIVE_THRESHOLD


def format_report(d: Any, run_file: str, source: str, data_dim: int, config: Any) -> str:
    """The human-readable text of a ``Diagnosis`` ``d`` of the run ``config`` on ``source``."""
    obj = config.objective
    head = [
        f"{run_file}: {source}",
        f"  objective: beta {obj.beta:g}, KL warm-up {obj.warmup_steps} steps, "
        f"free bits {obj.free_bits:g} nats; likelihood {config.model.likelihood} "
        f"({d.likelihood_kind}); all values nats per sample, {kind_words(d.likelihood_kind)}",
    ]
    return "\n".join(head + report_body(d, data_dim))


def kind_words(kind: str) -> str:
    """What the reported log-likelihoods are, for a likelihood kind."""
    if kind == "discrete":
        return "log-probability bounds of the discrete data"
    return "log-densities of continuous data (no bits/dim)"


def report_body(d: Any, data_dim: int) -> list[str]:
    """The figures, the table per dimension and the verdict of a ``Diagnosis``, as lines (the
    first one blank): shared by the run-file and the ONNX-pair reports."""
    ceiling = f"at most log N = {d.mi_ceiling:.2f}"
    if d.mi_saturated:
        ceiling = f"SATURATED at log N = {d.mi_ceiling:.2f}: a lower estimate"
    lines = [
        "",
        f"  ELBO                 {d.elbo:12.4f}   = -(distortion + rate)",
        f"  distortion D         {d.distortion:12.4f}   -E_q[log p(x|z)], "
        f"{d.iw_samples} draws of z",
        f"  rate R               {d.rate:12.4f}   KL(q(z|x) || p(z)), exact",
        f"  IWAE log p(x) >=     {d.iwae:12.4f}   K = {d.iw_samples}",
        f"  ELBO gap             {d.elbo_gap:12.4f}   IWAE - ELBO",
    ]
    if d.bits_per_dim is not None:
        lines.append(f"  bits/dim             {d.bits_per_dim:12.4f}   from IWAE, "
                     f"{data_dim} dimensions")
    mkl_note = "an upper estimate" if d.mi_saturated else "KL(q(z) || p(z)) = R - I(X;Z)"
    lines += [
        f"  I(X;Z)               {d.mutual_info:12.4f}   ± {d.mutual_info_stderr:.4f}, mixture "
        f"estimate, {ceiling}",
        f"  marginal KL          {d.marginal_kl:12.4f}   {mkl_note}",
        f"  active units         {d.active_units:>5d} of {len(d.kl_per_dim)}"
        f"   variance of the posterior mean over the data > {ACTIVE_THRESHOLD:g}",
        "",
        "  dim   KL (nats)   activity   state",
    ]
    collapsed = set(d.collapsed_dims)
    for i, (kl, act) in enumerate(zip(d.kl_per_dim, d.activity_per_dim)):
        state = "collapsed" if i in collapsed else "active"
        lines.append(f"  {i:>3d}  {kl:10.4f}  {act:9.4f}   {state}")
    lines += ["", "verdict: " + d.verdict]
    return lines
