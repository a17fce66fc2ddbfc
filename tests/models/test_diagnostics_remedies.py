"""The remedy runs' configurations: one change of the objective each, the seed kept."""

from __future__ import annotations

import dataclasses

import pytest

from models.config import ObjectiveConfig, RunConfig, TrainConfig
from models.diagnostics.remedies import REMEDIES, apply_remedy
from models.errors import ConfigError


def _base() -> RunConfig:
    return RunConfig(objective=ObjectiveConfig(beta=4.0, warmup_steps=10),
                     train=TrainConfig(seed=7))


@pytest.mark.parametrize("key, field, value", [
    ("warmup", "warmup_steps", 2 * 30), ("free_bits", "free_bits", 0.25),
    ("beta_quarter", "beta", 1.0), ("cyclical", "kl_cycles", 4), ("aggressive", "aggressive", True),
])
def test_each_remedy_changes_its_setting_and_keeps_the_seed(key, field, value):
    base = _base()
    out = apply_remedy(base, key, steps_per_epoch=30)
    assert getattr(out.objective, field) == value
    assert out.train == base.train and out.model == base.model
    changed = {f.name for f in dataclasses.fields(ObjectiveConfig)
               if getattr(out.objective, f.name) != getattr(base.objective, f.name)}
    # Cyclical annealing replaces the warm-up (the two schedules exclude each other).
    assert changed == ({field, "warmup_steps"} if key == "cyclical" else {field})


def test_every_remedy_gives_a_valid_config_and_an_unknown_one_is_refused():
    for key in REMEDIES:
        RunConfig.from_json(apply_remedy(_base(), key, 1).to_json())
    with pytest.raises(ConfigError, match="unknown remedy"):
        apply_remedy(_base(), "magic", 1)
