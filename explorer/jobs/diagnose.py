"""The full diagnosis of a run (``models.diagnostics.diagnose``), with progress and cancel."""

from __future__ import annotations

import numpy as np

from ..tasks import TaskState


class CheckedRows:
    """Model-ready rows that report progress and check for a cancel each time a batch is read.

    ``models.diagnostics.diagnose`` reads data that are not an array through ``len(x)`` and
    ``x.read(indices)`` (as it reads a ``models.data.Dataset``), one batch at a time: this is
    the one place between its batches where the app can look at its task's state.
    """

    def __init__(self, x: np.ndarray, state: TaskState | None) -> None:
        self.x = x
        self.state = state

    def __len__(self) -> int:
        return len(self.x)

    def read(self, indices: np.ndarray) -> np.ndarray:
        if self.state is not None:
            self.state.raise_if_interrupted()
            self.state.set_progress(int(indices[0]) if len(indices) else len(self.x), len(self.x))
        return self.x[indices]


def diagnose_run(run_path: str, iw_samples: int = 100, max_samples: int = 2000,
                 seed: int = 0, state: TaskState | None = None) -> dict:
    """The full diagnosis (``models.diagnostics.diagnose``) of a run on its validation data.

    Uses the run file's last saved weights and the run's validation rows, read and binarised
    exactly as ``latent-explorer diagnose`` does; ``max_samples`` (0: all) takes a seeded subset.
    Returns ``Diagnosis.to_json_dict()``. With a ``state``: progress per batch, and
    ``Cancelled`` between batches once a cancel is requested.
    """
    from models.data import validation_rows
    from models.diagnostics import diagnose
    from models.io.runfile import RunReader
    from models.training.devices import default_device

    with RunReader(run_path) as reader:
        config = reader.config
        vae = reader.load_model(default_device())
        x = validation_rows(reader, max_samples=int(max_samples) if max_samples else None,
                            seed=seed).x
        kind = reader.dataset_info.get("likelihood_kind")
        val_elbos = reader.epochs().get("val_elbo")
    if state is not None:
        state.raise_if_interrupted()
    result = diagnose(vae, CheckedRows(x, state), config.objective, iw_samples=int(iw_samples),
                      seed=seed, likelihood_kind=kind, val_elbos=val_elbos)
    return result.to_json_dict()


def diagnose_task(state: TaskState, run_path: str, iw_samples: int, max_samples: int) -> dict:
    """The task: :func:`diagnose_run` with progress, cancelled between batches."""
    return diagnose_run(run_path, iw_samples, max_samples, state=state)
