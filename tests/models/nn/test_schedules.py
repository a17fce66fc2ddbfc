"""The KL weight's schedules: constant, linear warm-up, and Fu et al.'s cyclical annealing."""

from __future__ import annotations

import pytest

from models.config import ObjectiveConfig, RunConfig
from models.errors import ConfigError
from models.nn.objectives import kl_weight


def test_cyclical_weight_at_given_steps_for_four_cycles_half_ramp() -> None:
    """T = 100 steps, M = 4 cycles of 25 steps, R = 0.5: beta_t = beta * min(1, tau / 0.5)."""
    obj = ObjectiveConfig(beta=2.0, kl_cycles=4, kl_cycle_ramp=0.5)
    expected = {
        0: 0.0,  # each cycle starts at 0
        5: 2.0 * (5 / 25) / 0.5,  # 0.8: on the ramp
        10: 2.0 * (10 / 25) / 0.5,  # 1.6
        12: 2.0 * (12 / 25) / 0.5,  # 1.92: the ramp's last step below beta
        13: 2.0,  # past 12.5 steps (R of the cycle): beta
        24: 2.0,  # the cycle's last step
        25: 0.0,  # the second cycle starts again at 0
        30: 0.8,
        50: 0.0,
        62: 1.92,
        75: 0.0,
        99: 2.0,  # the run's last step
    }
    got = {s: kl_weight(s, obj, 100) for s in expected}
    assert got == pytest.approx(expected, abs=1e-12)


def test_cyclical_weight_when_the_cycles_do_not_divide_the_steps() -> None:
    """T = 10, M = 4: cycles of 2.5 steps, tau = frac(step * 4 / 10), R = 0.5."""
    obj = ObjectiveConfig(beta=1.0, kl_cycles=4, kl_cycle_ramp=0.5)
    got = [kl_weight(s, obj, 10) for s in range(10)]
    taus = [0.0, 0.4, 0.8, 0.2, 0.6, 0.0, 0.4, 0.8, 0.2, 0.6]
    assert got == pytest.approx([min(1.0, t / 0.5) for t in taus], abs=1e-12)


def test_one_cycle_with_full_ramp_is_a_warm_up_over_the_run() -> None:
    obj = ObjectiveConfig(beta=3.0, kl_cycles=1, kl_cycle_ramp=1.0)
    warm = ObjectiveConfig(beta=3.0, warmup_steps=40)
    assert [kl_weight(s, obj, 40) for s in range(40)] == pytest.approx(
        [kl_weight(s, warm) for s in range(40)]
    )


def test_default_objective_keeps_constant_beta_and_warm_up() -> None:
    assert kl_weight(7, ObjectiveConfig(beta=2.5), 100) == 2.5
    assert kl_weight(7, ObjectiveConfig(beta=2.5)) == 2.5
    assert kl_weight(5, ObjectiveConfig(beta=2.0, warmup_steps=10), 100) == 1.0


def test_cyclical_weight_needs_the_total_steps() -> None:
    with pytest.raises(ConfigError, match="total number of steps"):
        kl_weight(3, ObjectiveConfig(kl_cycles=2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kl_cycles=-1), "kl_cycles"),
        (dict(kl_cycles=2, kl_cycle_ramp=0.0), "kl_cycle_ramp"),
        (dict(kl_cycles=2, kl_cycle_ramp=1.5), "kl_cycle_ramp"),
        (dict(kl_cycles=2, warmup_steps=100), "one of them"),
        (dict(aggressive_inner_steps=0), "aggressive_inner_steps"),
        (dict(aggressive="yes"), "aggressive"),
    ],
)
def test_bad_schedule_settings_are_one_line_errors(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        ObjectiveConfig(**kwargs)


def test_old_configs_load_with_todays_behaviour_and_new_ones_round_trip() -> None:
    old = RunConfig.from_dict({"objective": {"beta": 2.0, "warmup_steps": 5, "free_bits": 0.1}})
    assert (old.objective.kl_cycles, old.objective.aggressive) == (0, False)
    assert kl_weight(5, old.objective, 100) == 2.0
    new = RunConfig.from_dict({"objective": {"beta": 2.0, "kl_cycles": 4, "kl_cycle_ramp": 0.25,
                                             "aggressive": True, "aggressive_inner_steps": 20}})
    back = RunConfig.from_json(new.to_json()).objective
    assert (back.kl_cycles, back.kl_cycle_ramp, back.aggressive, back.aggressive_inner_steps) == (
        4, 0.25, True, 20
    )
