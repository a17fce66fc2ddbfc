"""The verdict claims only what was measured: each test fails on a plausible over-claim.

The summaries are built by hand (as ``latent_summary`` plus the diagnosis' extra keys), so each
rule is tested alone: the gap only at a K that can show it, in absolute nats whatever the data's
units, beta named only when known, the KL of collapsed dimensions, convergence before advice.
"""

from __future__ import annotations

import math

from models import diagnostics as dg
from models.config import ModelConfig, ObjectiveConfig

MNIST_CFG = ModelConfig(arch="mlp", data_shape=(784,), latent_dim=5, hidden=(8,))
CONVERGED = [-100.3, -100.0]  # the last epoch gained 0.3 nats over 784 dims: converged
IMPROVING = [-160.0, -120.0]  # 40 nats in one epoch: still improving quickly


def _summary(kl: list[float], active: list[bool], mi: float = 1.0, **extra) -> dict:
    r = sum(kl)
    collapsed = [i for i, a in enumerate(active) if not a]
    s = {
        "kl_per_dim": kl,
        "activity_per_dim": [1.0 if a else 0.0 for a in active],
        "active_units": sum(active),
        "collapsed_dims": collapsed,
        "collapsed_kl": sum(kl[i] for i in collapsed),
        "rate": r,
        "mutual_info": mi,
        "mutual_info_stderr": 0.0,
        "mi_ceiling": math.log(10000),
        "mi_saturated": False,
        "marginal_kl": r - mi,
        "n_samples": 10000,
    }
    s.update(extra)
    return s


SOME = dict(kl=[2.0, 2.0, 0.0, 0.0, 0.0], active=[True, True, False, False, False], mi=3.8)


# --------------------------------------------------------------------------- partial collapse
def test_some_collapsed_at_beta_1_after_convergence_suggests_a_smaller_latent() -> None:
    v = dg.verdict(_summary(**SOME, val_elbos=CONVERGED), ObjectiveConfig(beta=1.0), MNIST_CFG)
    assert v.startswith("3 of 5 dimensions collapsed (dims 2, 3, 4), 2 active")
    assert "Not an error" in v and "beta = 1" in v and "latent_dim = 2" in v
    assert "0.00 nats of KL in all: they cost next to nothing" in v
    assert "too short" not in v


def test_no_smaller_latent_without_evidence_of_convergence() -> None:
    for history in (None, IMPROVING):
        v = dg.verdict(_summary(**SOME, val_elbos=history), ObjectiveConfig(), MNIST_CFG)
        assert "latent_dim =" not in v


def test_beta_is_mentioned_only_when_known() -> None:
    unknown = dg.verdict(_summary(**SOME, val_elbos=CONVERGED), None, MNIST_CFG)
    assert "beta" not in unknown and "Not an error" in unknown
    low = dg.verdict(_summary(**SOME, val_elbos=CONVERGED), ObjectiveConfig(beta=0.5), MNIST_CFG)
    assert "beta = 0.5" in low and "beta = 1" not in low


def test_a_collapsed_dimension_that_still_carries_kl_is_reported_with_its_cost() -> None:
    s = _summary([2.0, 2.0, 0.3, 0.45, 0.0], [True, True, False, False, False], mi=3.8,
                 val_elbos=CONVERGED)
    v = dg.verdict(s, ObjectiveConfig(beta=1.0), MNIST_CFG)
    assert "still carry 0.75 nats of KL" in v
    assert "cost next to nothing" not in v and "cost nothing" not in v


def test_large_beta_is_named() -> None:
    s = _summary([0.2, 0.2] + [0.0] * 8, [True, True] + [False] * 8, mi=0.35, val_elbos=CONVERGED)
    v = dg.verdict(s, ObjectiveConfig(beta=4.0, warmup_steps=0), MNIST_CFG)
    assert v.startswith("8 of 10 dimensions collapsed") and "rate 0.40 nats" in v
    assert "beta = 4" in v and "lower beta" in v and "Not an error" not in v


# --------------------------------------------------------------------------- training too short
def test_one_epoch_or_a_fast_rising_elbo_is_too_short_to_judge() -> None:
    """The issue's case: one epoch of 16 steps, 9 of 10 dims inactive; no advice on the data."""
    kl, active = [1.5] + [0.01] * 9, [True] + [False] * 9
    for history in ([-200.0], IMPROVING):
        v = dg.verdict(_summary(kl, active, mi=1.2, val_elbos=history), ObjectiveConfig(),
                       MNIST_CFG)
        assert v.startswith("Training too short to judge")
        assert "latent_dim =" not in v and "Not an error" not in v
    assert dg.training_state(IMPROVING, 784)[0] == "short"
    assert dg.training_state(CONVERGED, 784)[0] == "converged"
    assert dg.training_state(None, 784)[0] == "unknown"
    assert dg.training_state([-100.0, float("nan")], 784)[0] == "unknown"  # a diverged epoch


def test_total_collapse_of_a_short_run_names_no_cause() -> None:
    s = _summary([0.0] * 4, [False] * 4, mi=0.0, val_elbos=[-300.0])
    v = dg.verdict(s, ObjectiveConfig(), MNIST_CFG)
    assert "too short" in v and "collapsed so far" in v and "Likely cause" not in v


# --------------------------------------------------------------------------- obs_std
def test_obs_std_is_blamed_only_when_large_against_the_data_spread() -> None:
    s = _summary([0.0] * 4, [False] * 4, mi=0.0, val_elbos=CONVERGED)

    def gaussian(obs_std: float) -> ModelConfig:
        return ModelConfig(arch="mlp", data_shape=(784,), latent_dim=4, hidden=(8,),
                           likelihood="gaussian", obs_std=obs_std)

    obj = ObjectiveConfig(beta=1.0, warmup_steps=0)
    v = dg.verdict(dict(s, data_std=0.3), obj, gaussian(1.0))
    assert v.startswith("All 4 latent dimensions are collapsed (posterior collapse)")
    assert "obs_std = 1" in v and "lower obs_std" in v and "warm" in v
    assert "beta = " not in v  # beta 1 is not blamed
    # the same obs_std on data 100 times wider, or a small one, or an unknown spread: not blamed
    for spread, std in ((30.0, 1.0), (0.3, 0.05), (None, 1.0)):
        assert "obs_std" not in dg.verdict(dict(s, data_std=spread), obj, gaussian(std))


# --------------------------------------------------------------------------- the ELBO gap
def _gap(gap: float, k: int, iwae: float) -> dict:
    return _summary([1.0] * 3, [True] * 3, mi=2.9, elbo=iwae - gap, iwae=iwae, elbo_gap=gap,
                    iw_samples=k)


def test_the_gap_is_not_judged_at_k_1() -> None:
    v = dg.verdict(_gap(0.0, 1, -90.0), ObjectiveConfig())
    assert "ELBO gap not judged" in v and "closely" not in v
    assert "closely" in dg.verdict(_gap(0.1, 100, -90.0), ObjectiveConfig())


def test_the_gap_thresholds_do_not_scale_with_the_data_units() -> None:
    """Gaussian data at two scales: |IWAE| 20 or 2000 nats, the same gap, the same words."""
    for iwae in (-20.0, -2000.0, 2000.0):
        assert "Large ELBO gap" in dg.verdict(_gap(8.0, 100, iwae))
        usual = dg.verdict(_gap(3.0, 1000, iwae))
        assert "usual inference gap" in usual and "Large" not in usual
    assert "IWAE-100" in dg.verdict(_gap(8.0, 100, -90.0))


# --------------------------------------------------------------------------- I(X;Z)
def test_a_saturated_estimate_is_called_a_bound() -> None:
    s = _summary([6.0, 6.0], [True, True], mi=9.0, mi_saturated=True)
    v = dg.verdict(s)
    assert "ceiling log N = 9.21" in v and "lower estimate" in v and "upper estimate" in v
    assert "marginal KL: the aggregate" not in v
    assert "marginal KL" in dg.verdict(_summary([2.0, 2.0], [True, True], mi=1.0))


def test_the_monte_carlo_error_of_i_is_shown() -> None:
    v = dg.verdict(_summary([0.004], [True], mi=0.004, mutual_info_stderr=0.02))
    assert "I(X;Z) 0.00 ± 0.02 nats" in v


def test_active_dimensions_with_little_information() -> None:
    s = _summary([0.05] * 4, [True] * 4, mi=0.1)
    v = dg.verdict(s)
    assert v.startswith("All 4 dimensions active") and "little information" in v
    assert "more latent dimensions" not in v
    assert "little information" not in dg.verdict(_summary([1.0] * 4, [True] * 4, mi=3.0))
