"""The diagnosis panel shows the engine's ceiling flag, likelihood kind and bits/dim (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.panels.diagnosis import DiagnosisPanel
from explorer.state import RunSession, RunsModel


@pytest.fixture
def panel(qtbot):
    runs = RunsModel()
    p = DiagnosisPanel(runs)
    qtbot.addWidget(p)
    return p, runs


def _full(**over):
    d = {"epoch": 3, "elbo": -100.0, "rate": 6.0, "distortion": 94.0, "iwae": -98.0,
         "elbo_gap": 2.0, "iw_samples": 100, "likelihood_kind": "discrete", "bits_per_dim": 0.18,
         "mutual_info": 5.2, "mutual_info_stderr": 0.04, "mi_ceiling": 6.9, "mi_saturated": False,
         "marginal_kl": 0.8, "active_units": 3, "kl_per_dim": [3.0, 2.0, 1.0, 0.0],
         "activity_per_dim": [1.0, 0.5, 0.2, 0.001], "collapsed_dims": [3], "collapsed_kl": 0.002,
         "verdict": "ok", "n_samples": 1000}
    d.update(over)
    return d


def test_a_full_diagnosis_shows_kind_bits_and_ceiling(panel):
    p, runs = panel
    s = runs.add(RunSession("r"))
    s.set_diagnosis(_full())
    assert p.values["mutual_info"].text() == "5.200 nats ± 0.040 (at most log N = 6.90)"
    assert p.values["marginal_kl"].text() == "0.800 nats"
    assert p.values["likelihood_kind"].text().startswith("discrete")
    assert p.values["bits_per_dim"].text() == "0.1800"
    assert p.values["collapsed_kl"].text() == "0.002 nats"


def test_saturated_estimates_say_which_way_they_err(panel):
    p, runs = panel
    s = runs.add(RunSession("r"))
    s.set_diagnosis(_full(mutual_info=6.5, marginal_kl=-0.0 + 0.5, mi_saturated=True))
    assert "SATURATED at log N = 6.90: a lower estimate" in p.values["mutual_info"].text()
    assert "an upper estimate" in p.values["marginal_kl"].text()


def test_continuous_data_show_no_bits_per_dim(panel):
    p, runs = panel
    s = runs.add(RunSession("r"))
    s.set_diagnosis(_full(likelihood_kind="continuous", bits_per_dim=None))
    assert p.values["likelihood_kind"].text().startswith("continuous")
    assert "none" in p.values["bits_per_dim"].text() and "0." not in p.values["bits_per_dim"].text()


def _epoch(session, **cols):
    row = {"epoch": 1, "step": 10, "val_elbo": -50.0, "val_rate": 4.0, "val_distortion": 46.0,
           "active_units": 2, "mutual_info": 3.0, "marginal_kl": 1.0,
           "activity_per_dim": np.array([1.0, 0.3, 0.0])}
    row.update(cols)
    session.append_epoch(row)


def test_epoch_rows_carry_their_ceiling_flag(panel):
    p, runs = panel
    s = runs.add(RunSession("r"))
    s.set_info(dataset_info={"likelihood_kind": "continuous"})
    _epoch(s, mi_ceiling=4.6, mi_saturated=1)
    assert "SATURATED at log N = 4.60" in p.values["mutual_info"].text()
    assert "an upper estimate" in p.values["marginal_kl"].text()
    assert p.values["likelihood_kind"].text().startswith("continuous")
    _epoch(s, mi_ceiling=4.6, mi_saturated=0, mutual_info=2.0)
    assert p.values["mutual_info"].text() == "2.000 nats (at most log N = 4.60)"


def test_an_old_file_without_the_columns_says_unknown(panel):
    p, runs = panel
    s = runs.add(RunSession("r"))
    _epoch(s)
    assert "unknown" in p.values["mutual_info"].text()
    assert "upper" not in p.values["marginal_kl"].text()


def test_collapse_follows_the_engine_rule(panel):
    """Without collapsed_dims the panel uses models.latent.stats.collapsed_from_activity."""
    from models.latent.stats import ACTIVE_THRESHOLD

    p, runs = panel
    s = runs.add(RunSession("r"))
    _epoch(s, activity_per_dim=np.array([ACTIVE_THRESHOLD, ACTIVE_THRESHOLD * 1.5, 0.0]))
    assert p.values["collapsed_dims"].text() == "0, 2"
