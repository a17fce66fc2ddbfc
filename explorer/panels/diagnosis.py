"""Diagnosis of the current run: how much of the rate is information, and is the posterior collapsed?

Shown, per data sample in nats:

- active units: dimensions whose posterior mean varies over the data (activity > 0.01);
- I(X;Z): the information the code keeps about the data (mixture estimator);
- marginal KL, KL(q(z) || p(z)): rate spent on making the aggregate posterior differ from the prior;
  R = I(X;Z) + marginal KL;
- the ELBO gap, IWAE_K - ELBO: how much tighter an importance-weighted bound is, an estimate of how
  far q(z|x) is from the true posterior. It needs K decoder passes per sample, so it is computed on
  demand ("Diagnose now"), not every epoch;
- the verdict, in plain words, with its reason and a remedy.

Figures from the per-epoch validation pass update as epochs end; "Diagnose now" runs
``models.diagnostics.diagnose`` on the run's validation data in a worker.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..actions import keys_text
from ..state import RunSession, RunsModel

ROWS = (
    ("epoch", "Epoch"),
    ("active_units", "Active units"),
    ("rate", "Rate R"),
    ("mutual_info", "I(X;Z)"),
    ("marginal_kl", "Marginal KL(q(z) ‖ p(z))"),
    ("elbo", "ELBO (validation)"),
    ("iwae", "IWAE bound"),
    ("elbo_gap", "ELBO gap (IWAE − ELBO)"),
    ("collapsed_dims", "Collapsed dimensions"),
)


def _nats(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f} nats"


class DiagnosisPanel(QWidget):
    """Per-epoch and on-demand diagnosis of the current run of a :class:`RunsModel`."""

    diagnoseRequested = Signal(int, int)  # importance samples K, validation samples (0 = all)
    cancelRequested = Signal()

    def __init__(self, runs: RunsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.session: RunSession | None = None
        self.values: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for key, title in ROWS:
            label = QLabel("–")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.values[key] = label
            form.addRow(title, label)
        self.verdict = QLabel("No run yet.")
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verdict.setFrameShape(QFrame.Shape.StyledPanel)
        self.verdict.setStyleSheet("QLabel { background: #f6f6f2; padding: 6px; font-size: 10pt; }")
        self.verdict.setMinimumHeight(48)
        self.source = QLabel("")
        self.source.setStyleSheet("color: #555; font-size: 8pt;")
        self.source.setWordWrap(True)

        self.iw_spin = QSpinBox()
        self.iw_spin.setRange(1, 5000)
        self.iw_spin.setValue(100)
        self.iw_spin.setToolTip("Importance samples K of the IWAE bound")
        self.n_spin = QSpinBox()
        self.n_spin.setRange(0, 1_000_000)
        self.n_spin.setSingleStep(500)
        self.n_spin.setValue(2000)
        self.n_spin.setSpecialValueText("all")
        self.n_spin.setToolTip("Validation samples to diagnose (0 = all)")
        self.button = QPushButton("Diagnose now")
        self.button.setToolTip("Compute the ELBO gap and the full diagnosis on validation data "
                               f"({keys_text('diagnose')})")
        self.button.clicked.connect(self.request)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the diagnosis in progress")
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.cancel_button.hide()
        controls = QHBoxLayout()
        controls.addWidget(QLabel("K"))
        controls.addWidget(self.iw_spin)
        controls.addWidget(QLabel("samples"))
        controls.addWidget(self.n_spin)
        controls.addWidget(self.button, 1)
        controls.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.verdict)
        layout.addLayout(form)
        layout.addWidget(self.source)
        layout.addLayout(controls)
        layout.addStretch(1)

        runs.currentChanged.connect(self.set_session)
        self.set_session(runs.current)

    def set_session(self, session: RunSession | None) -> None:
        if self.session is not None:
            try:
                self.session.diagnosisChanged.disconnect(self.show_diagnosis)
            except (RuntimeError, TypeError):
                pass
        self.session = session
        if session is not None:
            session.diagnosisChanged.connect(self.show_diagnosis)
        self.show_diagnosis(session.diagnosis if session is not None else None)

    def set_busy(self, busy: bool) -> None:
        self.button.setEnabled(not busy)
        self.button.setText("Diagnosing…" if busy else "Diagnose now")
        self.cancel_button.setVisible(busy)

    def request(self) -> None:
        """Ask for a full diagnosis with the K and sample count in the panel."""
        self.diagnoseRequested.emit(self.iw_spin.value(), self.n_spin.value())

    def show_diagnosis(self, d: dict | None) -> None:
        if d is None:
            for label in self.values.values():
                label.setText("–")
            self.verdict.setText("No diagnosis yet: figures appear when the first epoch ends."
                                 if self.session is not None else "No run yet.")
            self.source.setText("")
            return
        kl = d.get("kl_per_dim")
        n_dims = len(kl) if kl else (len(d["activity_per_dim"]) if d.get("activity_per_dim") else None)
        au = d.get("active_units")
        self.values["epoch"].setText("–" if d.get("epoch") is None else str(d["epoch"]))
        self.values["active_units"].setText(
            "–" if au is None else (f"{au} of {n_dims}" if n_dims else str(au)))
        rate = d.get("rate")
        if rate is None and kl:
            rate = float(sum(kl))
        self.values["rate"].setText(_nats(rate))
        self.values["mutual_info"].setText(_nats(d.get("mutual_info")))
        self.values["marginal_kl"].setText(_nats(d.get("marginal_kl")))
        self.values["elbo"].setText(_nats(d.get("elbo")))
        self.values["iwae"].setText(_nats(d.get("iwae")) if "iwae" in d else "– (Diagnose now)")
        self.values["elbo_gap"].setText(_nats(d.get("elbo_gap")) if "elbo_gap" in d else "– (Diagnose now)")
        collapsed = d.get("collapsed_dims")
        if collapsed is None and d.get("activity_per_dim") is not None:
            collapsed = [i for i, a in enumerate(d["activity_per_dim"]) if a <= 0.01]
        if collapsed is None:
            self.values["collapsed_dims"].setText("–")
        elif not collapsed:
            self.values["collapsed_dims"].setText("none")
        else:
            shown = ", ".join(str(i) for i in collapsed[:24])
            self.values["collapsed_dims"].setText(shown + (" …" if len(collapsed) > 24 else ""))
        self.verdict.setText(d.get("verdict") or "No verdict yet.")
        if d.get("source") == "diagnose":
            n = d.get("n_samples")
            self.source.setText(f"Full diagnosis on {n:,} validation samples." if n else "Full diagnosis.")
        else:
            extra = ""
            if "elbo_gap" in d:
                extra = f" ELBO gap and IWAE from the diagnosis at epoch {d.get('diagnose_epoch', '?')}."
            self.source.setText("From the latest epoch's validation pass." + extra)
