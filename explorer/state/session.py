"""One run as the views see it: configuration, status, growing history, latest diagnosis.

A :class:`RunSession` is fed by the controller on the GUI thread: from a training task's events
(``models.training``), from the new rows of a run file another process writes, or once from a
finished run file. Views never ask the engine; they connect to the session's signals and read
its columns. All values are per data sample, in nats, as the engine reports them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from .columns import ColumnStore, event_row
from .status import RunStatus

class RunSession(QObject):
    """One run's configuration, status and growing history; the views subscribe to it.

    Signals
    -------
    stepsAppended(int)
        ``n`` new rows in :attr:`steps` (training minibatch metrics, one row per logged step).
    epochsAppended(int)
        ``n`` new rows in :attr:`epochs` (validation metrics and diagnostics, one per epoch).
    statusChanged(object)
        the new :class:`~explorer.state.status.RunStatus`.
    infoChanged()
        the configuration, the path or the total step count became known or changed.
    diagnosisChanged(object)
        a new diagnosis summary (a dict with the keys of ``Diagnosis.to_json_dict``, possibly
        only those an epoch provides: ``active_units``, ``mutual_info``, ``marginal_kl``,
        ``verdict``, ``activity_per_dim``, ``kl_per_dim``).
    cleared()
        the history was emptied (before a reload).
    nameChanged(str), visibilityChanged(bool)
        renamed in the runs table; shown or hidden in the plots.
    """

    stepsAppended = Signal(int)
    epochsAppended = Signal(int)
    statusChanged = Signal(object)
    infoChanged = Signal()
    diagnosisChanged = Signal(object)
    cleared = Signal()
    nameChanged = Signal(str)
    visibilityChanged = Signal(bool)

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
        self.status = RunStatus.STARTING if source == "training" else RunStatus.UNKNOWN
        self.message = ""
        self.total_steps: int | None = None
        self.dataset_info: dict = {}
        self.colour = "#0072B2"  # RunsModel.add gives each run its own
        self.steps = ColumnStore()
        self.epochs = ColumnStore()
        self.verdicts: list[str] = []
        self.diagnosis: dict | None = None
        self.pid: int | None = None  # the process training it, when this app started it
        #: A sweep's run: the sweep's folder and the values of its varied settings, in order.
        self.sweep: str | None = None
        self.settings: dict[str, Any] = {}
        #: A remedy run: the session it tries to improve, and the remedy's words.
        self.parent_run: RunSession | None = None
        self.remedy = ""
        self.visible = True

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
        return self.status.live

    def current_beta(self) -> float | None:
        """The KL weight in effect at the latest logged step (warm-up included)."""
        beta = self.steps.last("beta")
        if beta is not None and np.isfinite(beta):
            return float(beta)
        if self.config is not None:
            return float(self.config.objective.beta)
        return None

    # ------------------------------------------------------------------ updates
    def rename(self, name: str) -> None:
        name = name.strip()
        if name and name != self.name:
            self.name = name
            self.nameChanged.emit(name)

    def set_visible(self, visible: bool) -> None:
        if bool(visible) is not self.visible:
            self.visible = bool(visible)
            self.visibilityChanged.emit(self.visible)

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

    def set_status(self, status: RunStatus | str, message: str = "") -> None:
        """A new status (a member, or its string as files and events carry it)."""
        status = RunStatus.parse(status)
        if status is self.status and message == self.message:
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
