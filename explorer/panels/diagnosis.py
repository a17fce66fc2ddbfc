"""Diagnosis of the current run: how much of the rate is information, and is the posterior collapsed?

Shown, per data sample in nats:

- active units: dimensions whose posterior mean varies over the data (activity above
  ``models.latent.stats.ACTIVE_THRESHOLD``; the collapsed ones are
  ``models.latent.stats.collapsed_from_activity``, the one rule);
- I(X;Z): the information the code keeps about the data (mixture estimator), with its Monte
  Carlo error when known and its ceiling log N: "at most log N = …", or "SATURATED: a lower
  estimate" when the estimate reached it; a run file written before the ceiling was recorded
  says "ceiling unknown";
- marginal KL, KL(q(z) || p(z)): rate spent on making the aggregate posterior differ from the prior;
  R = I(X;Z) + marginal KL; "an upper estimate" when I(X;Z) is saturated;
- what the likelihoods are (``likelihood_kind``: discrete, a log-probability bound with bits/dim;
  continuous, a log-density without bits/dim), beside the ELBO and the IWAE bound;
- the ELBO gap, IWAE_K - ELBO: how much tighter an importance-weighted bound is, an estimate of how
  far q(z|x) is from the true posterior. It needs K decoder passes per sample, so it is computed on
  demand ("Diagnose now"), not every epoch;
- the verdict, in plain words, with its reason and a remedy.

Every number is the engine's (``models.diagnostics`` or the run file's epoch rows): the engine
keeps 0 <= I(X;Z) <= R, and the panel shows what it was given.

Figures from the per-epoch validation pass update as epochs end; "Diagnose now" runs
``models.diagnostics.diagnose`` on the run's validation data in a worker.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.latent.stats import collapsed_from_activity

from ..actions import keys_text
from ..state import RunSession, RunsModel
from ..state.external import ModelSession

ROWS = (
    ("epoch", "Epoch"),
    ("active_units", "Active units"),
    ("rate", "Rate R"),
    ("mutual_info", "I(X;Z)"),
    ("marginal_kl", "Marginal KL(q(z) ‖ p(z))"),
    ("likelihood_kind", "Likelihoods"),
    ("elbo", "ELBO (validation)"),
    ("iwae", "IWAE bound"),
    ("elbo_gap", "ELBO gap (IWAE − ELBO)"),
    ("bits_per_dim", "Bits/dim (from IWAE)"),
    ("collapsed_dims", "Collapsed dimensions"),
    ("collapsed_kl", "KL in collapsed dims"),
)

KIND_WORDS = {
    "discrete": "discrete: log-probability bounds (bits/dim comparable to published ones)",
    "continuous": "continuous: log-densities of float data (no bits/dim)",
}


def _nats(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f} nats"


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def mi_text(d: dict) -> str:
    """I(X;Z) with its Monte Carlo error and its ceiling flag, as the engine gave them."""
    mi = _finite(d.get("mutual_info"))
    if mi is None:
        return "–"
    text = f"{mi:.3f} nats"
    err = _finite(d.get("mutual_info_stderr"))
    if err is not None and err > 0:
        text += f" ± {err:.3f}"
    ceiling, saturated = _finite(d.get("mi_ceiling")), d.get("mi_saturated")
    if ceiling is None or saturated is None:
        return text + " (ceiling log N unknown: an older run file)"
    if saturated:
        return text + f" (SATURATED at log N = {ceiling:.2f}: a lower estimate)"
    return text + f" (at most log N = {ceiling:.2f})"


def marginal_kl_text(d: dict) -> str:
    mkl = _finite(d.get("marginal_kl"))
    if mkl is None:
        return "–"
    if d.get("mi_saturated"):
        return f"{mkl:.3f} nats (an upper estimate: I(X;Z) is saturated)"
    return f"{mkl:.3f} nats"


class DiagnosisPanel(QWidget):
    """Per-epoch and on-demand diagnosis of the current run of a :class:`RunsModel`."""

    #: importance samples K, validation samples (0 = all), for the current run or opened model
    diagnoseRequested = Signal(int, int)
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

        # The figures scroll when the dock is short; the controls stay in view below them.
        body = QWidget()
        inner = QVBoxLayout(body)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.verdict)
        inner.addLayout(form)
        inner.addWidget(self.source)
        inner.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(controls)

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
        if isinstance(self.session, ModelSession):
            self.values["epoch"].setText("– (trained elsewhere)")
        else:
            self.values["epoch"].setText("–" if d.get("epoch") is None else str(d["epoch"]))
        self.values["active_units"].setText(
            "–" if au is None else (f"{au} of {n_dims}" if n_dims else str(au)))
        rate = d.get("rate")
        if rate is None and kl:
            rate = float(sum(kl))
        self.values["rate"].setText(_nats(rate))
        d = self._with_ceiling(d)
        self.values["mutual_info"].setText(mi_text(d))
        self.values["marginal_kl"].setText(marginal_kl_text(d))
        kind = d.get("likelihood_kind") or self._session_kind()
        self.values["likelihood_kind"].setText(KIND_WORDS.get(str(kind), "–") if kind else "–")
        self.values["elbo"].setText(_nats(d.get("elbo")))
        self.values["iwae"].setText(_nats(d.get("iwae")) if "iwae" in d else "– (Diagnose now)")
        self.values["elbo_gap"].setText(_nats(d.get("elbo_gap")) if "elbo_gap" in d else "– (Diagnose now)")
        bpd = _finite(d.get("bits_per_dim"))
        self.values["bits_per_dim"].setText(
            f"{bpd:.4f}" if bpd is not None else
            "– (continuous data: none)" if kind == "continuous" else
            "– (Diagnose now)" if "iwae" not in d else "–")
        ckl = _finite(d.get("collapsed_kl"))
        self.values["collapsed_kl"].setText(_nats(ckl) if ckl is not None else "–")
        collapsed = d.get("collapsed_dims")
        if collapsed is None and d.get("activity_per_dim") is not None:
            collapsed = collapsed_from_activity(d["activity_per_dim"])
        if collapsed is None:
            self.values["collapsed_dims"].setText("–")
        elif not collapsed:
            self.values["collapsed_dims"].setText("none")
        else:
            shown = ", ".join(str(i) for i in collapsed[:24])
            self.values["collapsed_dims"].setText(shown + (" …" if len(collapsed) > 24 else ""))
        self.verdict.setText(d.get("verdict") or "No verdict yet.")
        if d.get("source") == "model":
            self.source.setText(f"One pass over {d.get('description', 'the data')} (one draw of z "
                                "per row): Diagnose now for the IWAE bound and the ELBO gap.")
        elif d.get("source") == "diagnose":
            n = d.get("n_samples")
            rows = "rows" if isinstance(self.session, ModelSession) else "validation samples"
            self.source.setText(f"Full diagnosis on {n:,} {rows}." if n else "Full diagnosis.")
        else:
            extra = ""
            if "elbo_gap" in d:
                extra = f" ELBO gap and IWAE from the diagnosis at epoch {d.get('diagnose_epoch', '?')}."
            self.source.setText("From the latest epoch's validation pass." + extra)

    def _with_ceiling(self, d: dict) -> dict:
        """``d`` with the ceiling flag of its epoch: an epoch summary takes ``mi_ceiling`` and
        ``mi_saturated`` from the session's epoch rows (NaN or absent in files written before
        they were recorded: unknown)."""
        if "mi_ceiling" in d or self.session is None or d.get("source") == "diagnose":
            return d
        epochs = self.session.epochs
        ceiling, saturated = _finite(epochs.last("mi_ceiling")), _finite(epochs.last("mi_saturated"))
        if ceiling is None or saturated is None:
            return d
        return {**d, "mi_ceiling": ceiling, "mi_saturated": bool(saturated)}

    def _session_kind(self) -> str | None:
        info = getattr(self.session, "dataset_info", None) or {}
        kind = info.get("likelihood_kind")
        return str(kind) if kind else None
