"""The manifest's run statuses and the run file's stay one vocabulary."""


def test_a_sweep_run_status_is_every_run_file_status_and_pending():
    """The manifest's statuses are the run file's (models.training.events.RunStatus) plus
    "pending": a status read from a run file always has a manifest member."""
    from models.sweep.manifest import RunStatus as SweepStatus
    from models.training.events import RunStatus

    assert {s.value for s in SweepStatus} == {s.value for s in RunStatus} | {"pending"}
