"""The models the views subscribe to: one run's growing history, and the set of runs on screen.

A :class:`RunSession` holds what is known about one run: its configuration, its status, the
per-step and per-epoch metrics (numpy columns that grow in place), and the latest diagnosis.
It is fed by a training worker (events from ``models.training``), by a watcher following a run
file another process writes, or once from a finished run file. Views never ask the engine; they
connect to the session's signals and read its columns.

A :class:`RunsModel` holds the sessions on screen (overlaid in the rate-distortion plane and the
curves) and which one is *current* (followed by the per-run panels: KL per dimension, diagnosis,
the latent explorer).

All values are per data sample, in nats, as the engine reports them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

#: Colours given to runs in the order they are added (colour-blind safe, Okabe-Ito).
RUN_COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
)


class ColumnStore:
    """Named numpy columns of equal length that grow by appending rows, amortised O(1).

    Scalars become float64 columns ``[n]``; 1-d arrays (KL per dimension) become ``[n, d]``
    columns. A missing or ``None`` value is stored as NaN. Columns are created by the first row
    (or block) that names them; a row that lacks a known column writes NaN there.
    """

    def __init__(self) -> None:
        self._cols: dict[str, np.ndarray] = {}
        self._n = 0
        self._cap = 0

    def __len__(self) -> int:
        return self._n

    def names(self) -> list[str]:
        return list(self._cols)

    def __contains__(self, name: str) -> bool:
        return name in self._cols

    def column(self, name: str) -> np.ndarray:
        """A read-only view of the first ``len(self)`` rows of one column (empty if unknown)."""
        if name not in self._cols:
            return np.empty(0)
        view = self._cols[name][: self._n]
        view.flags.writeable = False
        return view

    def __getitem__(self, name: str) -> np.ndarray:
        return self.column(name)

    def last(self, name: str) -> Any:
        if self._n == 0 or name not in self._cols:
            return None
        return self._cols[name][self._n - 1]

    def clear(self) -> None:
        self._cols.clear()
        self._n = self._cap = 0

    def _reserve(self, n: int) -> None:
        if n <= self._cap:
            return
        cap = max(64, self._cap)
        while cap < n:
            cap *= 2
        for name, col in self._cols.items():
            grown = np.full((cap, *col.shape[1:]), np.nan, dtype=col.dtype)
            grown[: self._n] = col[: self._n]
            self._cols[name] = grown
        self._cap = cap

    def _ensure(self, name: str, tail_shape: tuple[int, ...]) -> np.ndarray:
        col = self._cols.get(name)
        if col is None:
            col = np.full((max(self._cap, 64), *tail_shape), np.nan, dtype=np.float64)
            self._cap = max(self._cap, col.shape[0])
            self._cols[name] = col
        elif col.shape[1:] != tail_shape:
            raise ValueError(f"column {name!r} has rows of shape {col.shape[1:]}, not {tail_shape}")
        return col

    def extend(self, block: dict[str, Any]) -> int:
        """Append rows given as columns of equal length; returns the number of rows added."""
        arrays: dict[str, np.ndarray] = {}
        lengths = set()
        for name, values in block.items():
            arr = _numeric(values)
            if arr is None or arr.ndim == 0:
                continue
            arrays[name] = arr
            lengths.add(arr.shape[0])
        if not arrays:
            return 0
        if len(lengths) != 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        k = lengths.pop()
        if k == 0:
            return 0
        for name, arr in arrays.items():
            self._ensure(name, arr.shape[1:])
        self._reserve(self._n + k)
        for name, col in self._cols.items():
            if name in arrays:
                col[self._n : self._n + k] = arrays[name]
            else:
                col[self._n : self._n + k] = np.nan
        self._n += k
        return k

    def append_row(self, row: dict[str, Any]) -> None:
        block = {}
        for name, value in row.items():
            arr = _numeric(value)
            if arr is not None:
                block[name] = arr[None, ...]
        self.extend(block)


def _numeric(value: Any) -> np.ndarray | None:
    """``value`` as a float64 array, or None when it is not numeric (a verdict string, ...)."""
    if value is None:
        return np.array(np.nan)
    if isinstance(value, (str, bytes, list, tuple, dict)):
        return None  # text, and variable-length lists (collapsed_dims): not a column
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr


def event_row(event: Any) -> dict[str, Any]:
    """The fields of an engine event (a dataclass) or a mapping, as a plain dict."""
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    return dict(event)


class RunSession(QObject):
    """One run's configuration, status and growing history; the views subscribe to it.

    Signals
    -------
    stepsAppended(int)
        ``n`` new rows in :attr:`steps` (training minibatch metrics, one row per logged step).
    epochsAppended(int)
        ``n`` new rows in :attr:`epochs` (validation metrics and diagnostics, one per epoch).
    statusChanged(str)
        ``"starting"``, ``"running"``, ``"paused"``, ``"finished"``, ``"stopped"``,
        ``"diverged"`` or ``"error"``.
    infoChanged()
        the configuration, the path or the total step count became known or changed.
    diagnosisChanged(object)
        a new diagnosis summary (a dict with the keys of ``Diagnosis.to_json_dict``, possibly
        only those an epoch provides: ``active_units``, ``mutual_info``, ``marginal_kl``,
        ``verdict``, ``activity_per_dim``, ``kl_per_dim``).
    cleared()
        the history was emptied (before a reload).
    """

    stepsAppended = Signal(int)
    epochsAppended = Signal(int)
    statusChanged = Signal(str)
    infoChanged = Signal()
    diagnosisChanged = Signal(object)
    cleared = Signal()

    def __init__(
        self,
        name: str,
        config: Any = None,
        path: str | None = None,
        *,
        source: str = "training",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self.config = config  # models.config.RunConfig, or None until known
        self.path = path
        self.source = source  # "training" (this process), "watching" (another process), "file"
        self.status = "starting" if source == "training" else "unknown"
        self.message = ""
        self.total_steps: int | None = None
        self.dataset_info: dict = {}
        self.colour = RUN_COLOURS[0]
        self.steps = ColumnStore()
        self.epochs = ColumnStore()
        self.verdicts: list[str] = []
        self.diagnosis: dict | None = None

    # ------------------------------------------------------------------ derived values
    @property
    def label(self) -> str:
        """Name with the beta in effect, for legends: ``"run-1 (beta=4)"``."""
        if self.config is None:
            return self.name
        beta = self.config.objective.beta
        return f"{self.name} (β={beta:g})"

    @property
    def latent_dim(self) -> int | None:
        if self.config is not None:
            return int(self.config.model.latent_dim)
        if "kl_per_dim" in self.steps:
            return int(self.steps["kl_per_dim"].shape[1])
        return None

    @property
    def epochs_planned(self) -> int | None:
        return None if self.config is None else int(self.config.train.epochs)

    @property
    def is_live(self) -> bool:
        return self.status in ("starting", "running", "paused")

    def current_beta(self) -> float | None:
        """The KL weight in effect at the latest logged step (warm-up included)."""
        beta = self.steps.last("beta")
        if beta is not None and np.isfinite(beta):
            return float(beta)
        if self.config is not None:
            return float(self.config.objective.beta)
        return None

    # ------------------------------------------------------------------ updates
    def set_info(
        self,
        *,
        config: Any = None,
        path: str | None = None,
        total_steps: int | None = None,
        dataset_info: dict | None = None,
    ) -> None:
        if config is not None:
            self.config = config
        if path is not None:
            self.path = path
        if total_steps is not None:
            self.total_steps = int(total_steps)
        if dataset_info is not None:
            self.dataset_info = dict(dataset_info)
        self.infoChanged.emit()

    @Slot(object)
    def append_step(self, event: Any) -> None:
        """Append one logged step (a ``StepEvent`` or a dict with its fields)."""
        self.steps.append_row(event_row(event))
        self.stepsAppended.emit(1)

    @Slot(object)
    def append_steps(self, events: list) -> None:
        """Append several logged steps at once (one signal)."""
        if not events:
            return
        for ev in events:
            self.steps.append_row(event_row(ev))
        self.stepsAppended.emit(len(events))

    @Slot(object)
    def append_epoch(self, event: Any) -> None:
        """Append one epoch (an ``EpochEvent`` or a dict); updates the diagnosis summary."""
        row = event_row(event)
        self.epochs.append_row(row)
        verdict = row.get("verdict")
        self.verdicts.append(str(verdict) if verdict is not None else "")
        self.epochsAppended.emit(1)
        self._diagnosis_from_epoch(row)

    def extend_steps(self, columns: dict[str, np.ndarray]) -> int:
        """Append rows read from a run file (``RunReader.steps()`` tails); emits once."""
        k = self.steps.extend(columns)
        if k:
            self.stepsAppended.emit(k)
        return k

    def extend_epochs(self, columns: dict[str, np.ndarray], verdicts: list[str] | None = None) -> int:
        k = self.epochs.extend(columns)
        if k:
            if verdicts is not None and len(verdicts) == k:
                self.verdicts.extend(verdicts)
            else:
                self.verdicts.extend([""] * k)
            self.epochsAppended.emit(k)
            row = {name: self.epochs.last(name) for name in self.epochs.names()}
            row["verdict"] = self.verdicts[-1]
            self._diagnosis_from_epoch(row)
        return k

    def set_status(self, status: str, message: str = "") -> None:
        if status == self.status and message == self.message:
            return
        self.status = status
        self.message = message
        self.statusChanged.emit(status)

    def set_diagnosis(self, diagnosis: Any) -> None:
        """A full diagnosis (``models.diagnostics.Diagnosis`` or its JSON dict), on demand."""
        if hasattr(diagnosis, "to_json_dict"):
            diagnosis = diagnosis.to_json_dict()
        merged = dict(diagnosis)
        merged["source"] = "diagnose"
        epoch = _int_or_none(self.epochs.last("epoch"))
        merged.setdefault("epoch", epoch)
        merged["diagnose_epoch"] = merged.get("epoch")
        self.diagnosis = merged
        self.diagnosisChanged.emit(merged)

    def clear(self) -> None:
        self.steps.clear()
        self.epochs.clear()
        self.verdicts.clear()
        self.diagnosis = None
        self.cleared.emit()

    def _diagnosis_from_epoch(self, row: dict) -> None:
        summary: dict[str, Any] = {"source": "epoch", "epoch": _int_or_none(row.get("epoch"))}
        for key in ("active_units", "mutual_info", "marginal_kl"):
            value = row.get(key)
            if value is not None and np.isfinite(value):
                summary[key] = float(value) if key != "active_units" else int(value)
        for key, src in (("kl_per_dim", "val_kl_per_dim"), ("activity_per_dim", "activity_per_dim")):
            value = row.get(src)
            if value is not None:
                summary[key] = [float(v) for v in np.asarray(value, dtype=np.float64).ravel()]
        for key, src in (("elbo", "val_elbo"), ("distortion", "val_distortion"), ("rate", "val_rate")):
            value = row.get(src)
            if value is not None and np.isfinite(value):
                summary[key] = float(value)
        collapsed = row.get("collapsed_dims")
        if isinstance(collapsed, (list, tuple)):
            summary["collapsed_dims"] = [int(i) for i in collapsed]
        summary["verdict"] = str(row.get("verdict") or "")
        previous = self.diagnosis or {}
        if previous.get("source") == "diagnose":
            # Keep the on-demand figures (ELBO gap, IWAE) that an epoch does not recompute,
            # marked with the epoch they were computed at.
            for key in ("iwae", "elbo_gap", "n_samples"):
                if key in previous:
                    summary[key] = previous[key]
            summary["diagnose_epoch"] = previous.get("diagnose_epoch", previous.get("epoch"))
        self.diagnosis = summary
        self.diagnosisChanged.emit(summary)


def _int_or_none(value: Any) -> int | None:
    try:
        if value is None or not np.isfinite(value):
            return None
        return int(value)
    except (TypeError, ValueError):
        return None


class RunsModel(QObject):
    """The runs on screen and the current one.

    Signals
    -------
    sessionAdded(RunSession), sessionRemoved(RunSession)
    currentChanged(object)
        the current session (a :class:`RunSession`) or ``None``.
    """

    sessionAdded = Signal(object)
    sessionRemoved = Signal(object)
    currentChanged = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._sessions: list[RunSession] = []
        self._current: RunSession | None = None
        self._colour_index = 0
        self._counter = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self):
        return iter(list(self._sessions))

    def sessions(self) -> list[RunSession]:
        return list(self._sessions)

    @property
    def current(self) -> RunSession | None:
        return self._current

    def next_name(self) -> str:
        self._counter += 1
        return f"run {self._counter}"

    def find(self, path: str) -> RunSession | None:
        """The session showing the run file ``path``, if any."""
        target = os.path.abspath(path)
        for s in self._sessions:
            if s.path and os.path.abspath(s.path) == target:
                return s
        return None

    def add(self, session: RunSession, make_current: bool = True) -> RunSession:
        session.colour = RUN_COLOURS[self._colour_index % len(RUN_COLOURS)]
        self._colour_index += 1
        session.setParent(self)
        self._sessions.append(session)
        self.sessionAdded.emit(session)
        if make_current or self._current is None:
            self.set_current(session)
        return session

    def remove(self, session: RunSession) -> None:
        if session not in self._sessions:
            return
        self._sessions.remove(session)
        if session is self._current:
            self.set_current(self._sessions[-1] if self._sessions else None)
        self.sessionRemoved.emit(session)
        session.setParent(None)

    def set_current(self, session: RunSession | None) -> None:
        if session is not None and session not in self._sessions:
            raise ValueError("set_current: the session is not in this model")
        if session is self._current:
            return
        self._current = session
        self.currentChanged.emit(session)
