"""Sweeps: runs differing in one or two settings, trained out of process (locally or on Ray).

``SweepSpec`` plans the runs, ``Sweep`` runs and resumes them in a folder with ``sweep.json``,
``LocalBackend`` / ``RayBackend`` train any run out of process and return a ``RunHandle``
(live events, pause/resume/stop, status). None of these import torch or the trainer here.
"""

from models.sweep.handle import Backend, RunHandle, threads_per_run
from models.sweep.local import LocalBackend
from models.sweep.manifest import Manifest, RunRecord, RunStatus, RunSummary, summarize
from models.sweep.ray_backend import RayBackend
from models.sweep.runner import Sweep
from models.sweep.spec import DEFAULT_BETAS, SETTINGS, PlannedRun, SweepSpec

__all__ = [
    "DEFAULT_BETAS", "SETTINGS", "Backend", "LocalBackend", "Manifest", "PlannedRun", "RayBackend",
    "RunHandle", "RunRecord", "RunStatus", "RunSummary", "Sweep", "SweepSpec", "summarize",
    "threads_per_run",
]
