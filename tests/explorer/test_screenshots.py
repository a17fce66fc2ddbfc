"""Screenshots of the app after short MNIST runs, saved to artifacts/ for people to look at.

Two runs (beta 1 and beta 20) on 10,000 MNIST digits overlay in the rate-distortion plane; the
beta = 20 run is current, so the KL panel and the diagnosis show its collapsed dimensions.
"""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtGui import QImage

from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(REPO, "artifacts")


def _mnist(beta: float) -> RunConfig:
    return RunConfig(
        model=ModelConfig(latent_dim=10, hidden=(256,)),
        objective=ObjectiveConfig(beta=beta),
        train=TrainConfig(data="mnist", epochs=5, batch_size=100, max_train_samples=10_000,
                          log_every=2),
    )


def _not_blank(path: str) -> None:
    image = QImage(path)
    assert not image.isNull() and image.width() > 200 and image.height() > 150
    ptr = image.convertToFormat(QImage.Format.Format_Grayscale8).constBits()
    pixels = np.frombuffer(ptr, dtype=np.uint8)
    assert pixels.std() > 10, f"{path} looks blank"


def test_screenshots_after_short_training_runs(window, qtbot, wait_idle, errors):
    os.makedirs(ARTIFACTS, exist_ok=True)
    first = window.start_training(_mnist(1.0))
    wait_idle(window, timeout=240_000)
    second = window.start_training(_mnist(20.0))
    wait_idle(window, timeout=240_000)
    assert errors == []
    assert first.status == second.status == "finished"
    assert window.runs.current is second
    # beta = 20 leaves fewer dimensions active than beta = 1, and the panels say so.
    assert second.diagnosis["active_units"] < first.diagnosis["active_units"]
    for panel in (window.rd_panel, window.curves_panel, window.kl_panel):
        panel.flush()
    assert window.kl_panel.collapsed.sum() == 10 - second.diagnosis["active_units"]
    assert "collapsed" in window.diagnosis_panel.verdict.text()
    qtbot.wait(100)
    shots = {
        "main_window.png": window,
        "training_panel.png": window.training_dock,
        "rd_plane.png": window.rd_dock,
        "curves.png": window.curves_dock,
        "kl_per_dimension.png": window.kl_dock,
        "diagnosis.png": window.diagnosis_dock,
    }
    for name, widget in shots.items():
        path = os.path.join(ARTIFACTS, name)
        assert widget.grab().save(path), path
        _not_blank(path)
    # The hover read-out names the point under the mouse.
    r, d = second.steps.last("rate"), second.steps.last("distortion")
    text = window.rd_panel.hover_at(r, d)
    assert text is not None and f"R = {r:.3f} nats" in text
    window.rd_dock.grab().save(os.path.join(ARTIFACTS, "rd_plane_hover.png"))
