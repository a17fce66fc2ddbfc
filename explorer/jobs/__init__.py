"""The work the app runs as tasks (``explorer.tasks``): plain functions of a ``TaskState``.

Nothing here creates or touches a Qt object; each function reports plain data through its
state and checks it for a cancel between steps.

- :mod:`~explorer.jobs.training`: train one run in a child process (``TrainingJob``, which
  follows the sweep engine's ``RunHandle``), pause/resume/stop.
- :mod:`~explorer.jobs.sweep`: a sweep's runs, locally or on Ray (``SweepJob``), their events.
- :mod:`~explorer.jobs.follow`: follow a run file another process writes.
- :mod:`~explorer.jobs.export`: a run's decoder to ONNX, in a child process.
- :mod:`~explorer.jobs.diagnose`: the full diagnosis of a run, on its validation rows.
- :mod:`~explorer.jobs.samples`: reconstructions and prior samples of a run's latest weights.
"""
