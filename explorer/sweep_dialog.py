"""Run > New sweep…: the training form, the values of the settings that vary, and where to run.

:class:`SweepDialog` holds a :class:`~explorer.panels.training_form.TrainingForm` (the base
run), one row per setting a sweep may vary (:data:`models.sweep.spec.SETTINGS`: a check box and
its comma-separated values; beta is checked with log-spaced values by default, and a
"log-spaced" helper fills a list), the workers (with the torch threads each run gets, so that
runs x threads <= cores with one core left to the GUI), the backend (local child processes or
Ray, with its address) and the sweep's folder. :meth:`job` builds the
:class:`~explorer.jobs.sweep.SweepJob` or raises ``ConfigError`` with one line; OK shows that
line in the app's error dialog and keeps the dialog open.
"""

from __future__ import annotations

import math
import os
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.errors import ConfigError
from models.sweep.handle import threads_per_run
from models.sweep.spec import DEFAULT_BETAS, SETTINGS, SweepSpec, format_value, log_spaced

from . import dialogs
from .jobs.sweep import BACKENDS, SweepJob
from .panels.training_form import TrainingForm


BACKEND_LABELS = {"local": "Local (child processes)", "ray": "Ray (local instance or cluster)"}


def parse_values(text: str, kind: type) -> list:
    """``"0.25, 1, 4"`` -> ``[0.25, 1.0, 4.0]`` (``kind`` int or float); ConfigError otherwise."""
    out = []
    for word in text.replace(";", ",").split(","):
        word = word.strip()
        if not word:
            continue
        try:
            out.append(kind(float(word)) if kind is int and float(word).is_integer() else kind(word))
        except ValueError:
            raise ConfigError(f"{word!r} is not a {'whole number' if kind is int else 'number'}") from None
    return out


def default_folder(runs_folder: str) -> str:
    return os.path.join(runs_folder, time.strftime("sweep-%Y%m%d-%H%M%S"))


class SweepDialog(QDialog):
    """The sweep's settings; ``job()`` after ``exec()`` returns Accepted."""

    def __init__(self, runs_folder: str, base=None, parent: QWidget | None = None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.setWindowTitle("New sweep")
        self.setObjectName("SweepDialog")
        self.cores = os.cpu_count() or 1
        self.form = TrainingForm()
        if base is not None:
            self.form.set_config(base)
        self.form.setParent(self)
        self.form.hide()  # its settings show in its scroll area, laid out below
        # Each run's file is named by its settings, in the sweep's folder: no run file box.
        self.form.out_edit.parentWidget().hide()

        # --- the settings that vary
        vary = QGroupBox("Settings that vary (one or two)")
        grid = QGridLayout(vary)
        self.vary_checks: dict[str, QCheckBox] = {}
        self.value_edits: dict[str, QLineEdit] = {}
        for row, (name, setting) in enumerate(SETTINGS.items()):
            check = QCheckBox(name.replace("_", " "))
            check.setToolTip(setting.description)
            edit = QLineEdit()
            edit.setPlaceholderText("comma-separated values")
            edit.setToolTip(f"{setting.description}: the values of the runs, e.g. 0.25, 1, 4, 16")
            check.toggled.connect(edit.setEnabled)
            edit.setEnabled(False)
            grid.addWidget(check, row, 0)
            grid.addWidget(edit, row, 1)
            self.vary_checks[name], self.value_edits[name] = check, edit
        self.value_edits["beta"].setText(", ".join(format_value(v) for v in DEFAULT_BETAS))
        self.vary_checks["beta"].setChecked(True)
        # log-spaced helper for beta
        self.log_low = _dspin(1e-4, 1e4, 0.25)
        self.log_high = _dspin(1e-4, 1e4, 16.0)
        self.log_n = QSpinBox()
        self.log_n.setRange(2, 32)
        self.log_n.setValue(4)
        fill = QPushButton("Fill β")
        fill.setToolTip("Fill the beta values with a log-spaced list")
        fill.clicked.connect(self._fill_log_betas)
        helper = QHBoxLayout()
        for w in (QLabel("log-spaced from"), self.log_low, QLabel("to"), self.log_high,
                  QLabel("n"), self.log_n, fill):
            helper.addWidget(w)
        helper.addStretch(1)
        grid.addLayout(helper, len(SETTINGS), 0, 1, 2)

        # --- where
        where = QGroupBox("Where it runs")
        wform = QFormLayout(where)
        self.backend_combo = QComboBox()
        for key in BACKENDS:
            self.backend_combo.addItem(BACKEND_LABELS[key], key)
        self.address_edit = QLineEdit()
        self.address_edit.setPlaceholderText("empty: a local Ray instance; auto; ray://HOST:PORT")
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, 64)
        self.workers_spin.setValue(max(1, min(4, self.cores - 1)))
        self.threads_label = QLabel()
        self.folder_edit = QLineEdit(default_folder(runs_folder))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.setContentsMargins(0, 0, 0, 0)
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        wform.addRow("Backend", self.backend_combo)
        wform.addRow("Ray address", self.address_edit)
        wform.addRow("Runs at once", self.workers_spin)
        wform.addRow("", self.threads_label)
        wform.addRow("Folder", folder_row)
        self.backend_combo.currentIndexChanged.connect(self._backend_changed)
        self.workers_spin.valueChanged.connect(self._update_counts)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start sweep")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        right = QVBoxLayout()
        right.addWidget(vary)
        right.addWidget(where)
        right.addWidget(self.summary)
        right.addStretch(1)
        columns = QHBoxLayout()
        columns.addWidget(self.form.form_area, 1)
        columns.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(columns, 1)
        layout.addWidget(buttons)
        for name, check in self.vary_checks.items():
            check.toggled.connect(self._update_counts)
            self.value_edits[name].textChanged.connect(self._update_counts)
        self._backend_changed()
        self.resize(980, 640)

    # ------------------------------------------------------------------ reading it
    def varied(self) -> dict[str, list]:
        out = {}
        for name, check in self.vary_checks.items():
            if check.isChecked():
                try:
                    out[name] = parse_values(self.value_edits[name].text(), SETTINGS[name].kind)
                except ConfigError as exc:
                    raise ConfigError(f"{name}: {exc}") from None
        if not out:
            raise ConfigError("check at least one setting to vary (beta, by default)")
        return out

    def job(self) -> SweepJob:
        """The sweep the dialog describes; ConfigError with one line if it is not one."""
        spec = SweepSpec(self.form.config(), self.varied())
        folder = self.folder_edit.text().strip()
        if not folder:
            raise ConfigError("choose a folder for the sweep's run files")
        backend = self.backend_combo.currentData()
        workers = min(self.workers_spin.value(), len(spec.runs))
        threads = threads_per_run(workers, reserve_cores=1, cores=self.cores) if backend == "local" else None
        return SweepJob(spec, os.path.abspath(folder), backend=backend, workers=workers,
                        address=self.address_edit.text().strip() or None, threads=threads)

    def accept(self) -> None:
        try:
            self.job()
        except ConfigError as exc:
            dialogs.show_error(self, str(exc))
            return
        super().accept()

    # ------------------------------------------------------------------ reactions
    def _fill_log_betas(self) -> None:
        try:
            values = log_spaced(self.log_low.value(), self.log_high.value(), self.log_n.value())
        except ConfigError as exc:
            dialogs.show_error(self, str(exc))
            return
        self.value_edits["beta"].setText(", ".join(format_value(v) for v in values))
        self.vary_checks["beta"].setChecked(True)

    def _backend_changed(self) -> None:
        self.address_edit.setEnabled(self.backend_combo.currentData() == "ray")
        self._update_counts()

    def _update_counts(self) -> None:
        workers = self.workers_spin.value()
        if self.backend_combo.currentData() == "local":
            t = threads_per_run(workers, reserve_cores=1, cores=self.cores)
            note = "" if workers * t <= max(1, self.cores - 1) else " (more runs than free cores)"
            self.threads_label.setText(f"{t} torch thread(s) each: {workers} × {t} of {self.cores} "
                                       f"cores, one left to the app{note}")
        else:
            self.threads_label.setText("Ray places each run by the CPUs it asks for")
        try:
            varied = self.varied()
        except ConfigError as exc:
            self.summary.setText(str(exc))
            return
        n = math.prod(len(v) for v in varied.values())
        what = " × ".join(f"{k} {', '.join(map(format_value, v))}" for k, v in varied.items())
        self.summary.setText(f"{n} runs: {what}")

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Sweep folder", self.folder_edit.text())
        if path:
            self.folder_edit.setText(path)


def _dspin(lo: float, hi: float, value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(lo, hi)
    spin.setDecimals(4)
    spin.setValue(value)
    spin.setAlignment(Qt.AlignmentFlag.AlignRight)
    return spin
