""""Try it": a remedy run from the same seed, beside its parent in the table and on the plane."""

from __future__ import annotations

from models.diagnostics.remedies import REMEDIES, apply_remedy


def test_a_remedy_run_starts_from_the_parent_and_sits_beside_it(window, tiny_config, qtbot, wait_idle,
                                                                 errors):
    parent = window.start_training(tiny_config)
    wait_idle(window)
    other = window.start_training(tiny_config)  # a later run: the remedy row goes above it
    wait_idle(window)
    window.runs.set_current(parent)
    assert all(a.isEnabled() for a in window.sweeps.remedy_actions.values())
    window.sweeps.remedy_actions["free_bits"].trigger()
    child = window.controller.training_session
    assert child is not parent and child.parent_run is parent
    assert not any(a.isEnabled() for a in window.sweeps.remedy_actions.values())  # one run at a time
    wait_idle(window)
    assert errors == [] and child.status == "finished"
    # The one engine mapping, same seed: steps per epoch from the parent (18 steps / 2 epochs).
    assert child.config == apply_remedy(parent.config, "free_bits", 9)
    assert child.config.objective.free_bits == 0.25
    assert child.config.train.seed == parent.config.train.seed
    assert child.name == f"{parent.name} + {REMEDIES['free_bits'].change}"
    table = window.sweeps.table
    assert [table.session_at(i) for i in range(3)] == [parent, child, other]
    assert table.proxy.index(1, 1).data() == REMEDIES["free_bits"].change
    window.rd_panel.flush()
    assert len(window.rd_panel.run_items(child).points) > 0  # overlaid on the plane


def test_no_run_no_remedy(window, errors):
    window.sweeps.try_remedy("warmup")
    assert len(errors) == 1 and "no run" in errors[0]
