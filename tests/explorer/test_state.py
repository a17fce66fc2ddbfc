"""What the views subscribe to (explorer.state): growing columns, sessions, the runs model, states."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.state import ColumnStore, RunSession, RunsModel
from models.training import EpochEvent, StepEvent


def step_event(step: int, d: int = 3) -> StepEvent:
    return StepEvent(step=step, epoch=1, elbo=-(100.0 + step), distortion=90.0 + step, rate=10.0,
                     kl_per_dim=np.arange(d, dtype=float) + step, beta=0.5, lr=1e-3,
                     samples_per_s=1000.0)


def epoch_event(epoch: int, d: int = 3) -> EpochEvent:
    return EpochEvent(epoch=epoch, step=10 * epoch, train_elbo=-100.0, train_distortion=90.0,
                      train_rate=10.0, val_elbo=-101.0, val_distortion=91.0, val_rate=10.0,
                      val_kl_per_dim=np.full(d, 10.0 / d), activity_per_dim=np.array([0.5, 0.001, 0.2]),
                      active_units=2, mutual_info=4.0, marginal_kl=6.0, seconds=1.0,
                      verdict="1 of 3 dimensions collapsed", collapsed_dims=[1])


def test_column_store_grows_past_its_capacity_and_keeps_rows():
    store = ColumnStore()
    for i in range(1000):
        store.append_row({"step": i, "kl": np.array([i, 2 * i]), "note": "text is skipped"})
    assert len(store) == 1000
    assert store.names() == ["step", "kl"]
    np.testing.assert_array_equal(store["step"], np.arange(1000))
    np.testing.assert_array_equal(store["kl"][:, 1], 2 * np.arange(1000))
    assert not store["step"].flags.writeable
    assert store.last("step") == 999


def test_column_store_block_extend_fills_missing_columns_with_nan():
    store = ColumnStore()
    store.extend({"a": np.arange(3), "b": np.ones(3)})
    store.extend({"a": np.arange(2)})
    np.testing.assert_array_equal(store["a"], [0, 1, 2, 0, 1])
    assert np.isnan(store["b"][3:]).all()
    with pytest.raises(ValueError):
        store.extend({"a": np.arange(2), "b": np.arange(3)})


def test_session_appends_events_and_derives_the_diagnosis(qtbot):
    s = RunSession("run")
    with qtbot.waitSignal(s.stepsAppended) as sig:
        s.append_step(step_event(1))
    assert sig.args == [1]
    s.append_steps([step_event(2), step_event(3)])
    assert len(s.steps) == 3
    np.testing.assert_array_equal(s.steps["kl_per_dim"][2], [3, 4, 5])
    assert s.current_beta() == 0.5
    with qtbot.waitSignal(s.diagnosisChanged) as sig:
        s.append_epoch(epoch_event(1))
    d = sig.args[0]
    assert d["active_units"] == 2 and d["collapsed_dims"] == [1]
    assert d["activity_per_dim"] == [0.5, 0.001, 0.2]
    assert d["verdict"] == "1 of 3 dimensions collapsed"
    assert d["elbo"] == -101.0
    # A full diagnosis keeps its ELBO gap through later epochs.
    s.set_diagnosis({"elbo_gap": 1.5, "iwae": -99.5, "n_samples": 100, "verdict": "fine"})
    assert s.diagnosis["source"] == "diagnose" and s.diagnosis["epoch"] == 1
    s.append_epoch(epoch_event(2))
    assert s.diagnosis["elbo_gap"] == 1.5 and s.diagnosis["diagnose_epoch"] == 1
    assert s.diagnosis["epoch"] == 2


def test_runs_model_tracks_current_and_colours(qtbot):
    runs = RunsModel()
    a, b = RunSession("a", path="/tmp/a.h5"), RunSession("b", path="/tmp/b.h5")
    with qtbot.waitSignals([runs.sessionAdded, runs.currentChanged]):
        runs.add(a)
    runs.add(b, make_current=False)
    assert runs.current is a and len(runs) == 2
    assert a.colour != b.colour
    assert runs.find("/tmp/b.h5") is b
    with qtbot.waitSignal(runs.currentChanged) as sig:
        runs.remove(a)
    assert sig.args == [b] and runs.current is b
    with pytest.raises(ValueError):
        runs.set_current(a)


def test_statuses_are_members_and_files_words_still_compare(qtbot):
    from explorer.state import RunStatus, TrainingState

    s = RunSession("run", source="file")
    assert s.status is RunStatus.UNKNOWN
    with qtbot.waitSignal(s.statusChanged) as sig:
        s.set_status("finished")  # as a run file or a FinishedEvent says it
    assert sig.args == [RunStatus.FINISHED] and s.status is RunStatus.FINISHED
    assert s.status == "finished" and not s.is_live
    s.set_status("no such word")
    assert s.status is RunStatus.UNKNOWN
    assert RunStatus.DIVERGED.bad and RunStatus.PAUSED.live and not RunStatus.STOPPED.live
    assert RunSession("t").status is RunStatus.STARTING
    assert TrainingState.PAUSED.stoppable and not TrainingState.STOPPING.stoppable
    assert not TrainingState.IDLE.busy


def test_the_apps_run_status_holds_every_engine_status():
    from models.training.events import RunStatus as EngineStatus

    from explorer.state.status import RunStatus

    for status in EngineStatus:
        assert RunStatus.parse(status) is RunStatus(status.value)
