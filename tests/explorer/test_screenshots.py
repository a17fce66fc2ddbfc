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


# --------------------------------------------------------------------------- screen sizes
SCREENS = ((1280, 720), (1366, 768), (1920, 1080))
#: Where the layout screenshots go (artifacts/screens by default).
SHOTS = os.environ.get("LATENT_SHOTS_DIR") or os.path.join(ARTIFACTS, "screens")


def _cut_widgets(window) -> list[str]:
    """Docks whose content is squeezed below its minimum size (text or plots would be cut or
    overlap), and one-line labels narrower than their text: what a user could not read."""
    from PySide6.QtWidgets import QDockWidget, QLabel

    from explorer.widgets import needed_size

    cut = []
    for dock in window.findChildren(QDockWidget):
        content = getattr(dock, "content", None)
        if content is None or not dock.isVisible() or dock.visibleRegion().isEmpty():
            continue
        need = needed_size(content)
        if content.width() < need.width() or content.height() < need.height():
            cut.append(f"{dock.objectName()}: {content.width()}x{content.height()} < "
                       f"{need.width()}x{need.height()}")
        for label in content.findChildren(QLabel):
            if (label.isVisible() and not label.wordWrap() and label.text()
                    and "<" not in label.text() and label.objectName() != "busyOverlay"
                    and label.width() < label.minimumSizeHint().width()):
                cut.append(f"{dock.objectName()}: label {label.text()!r} in {label.width()} px")
    return cut


def test_the_window_fits_each_screen_and_nothing_is_cut(window, finished_run, tmp_path, qtbot,
                                                        errors):
    """At 1280 x 720, 1366 x 768 and 1920 x 1080 the window's minimum size fits the screen (the
    explorer loaded too), and no dock's content is squeezed: a dock smaller than its content
    scrolls. Screenshots of each size for people to look at."""
    from latent_helpers import export_vae_decoder

    os.makedirs(SHOTS, exist_ok=True)
    assert window.open_path(finished_run)
    assert window.open_path(export_vae_decoder(tmp_path / "decoder.onnx", latent_dim=3))
    space = window.latent_panel.space
    space.add_anchor(z=np.array([1.0, -1.0, 0.5], np.float32))  # three anchors
    window.latent_panel.explorer.renderer.settle()
    window.statusBar().showMessage("Ready: press Start (F5) to train on MNIST")
    for width, height in SCREENS:
        # The frame and a panel (taskbar) take about 60 px of a laptop's height.
        hint = window.minimumSizeHint()
        assert hint.width() <= width and hint.height() <= height - 60, (width, height, hint)
        window.resize(width, height - 60)
        window.reset_layout()
        window.latent_panel.dock.raise_()
        qtbot.wait(600)  # the panels' throttled redraws and the layout settle
        assert window.width() <= width and window.height() <= height - 60
        assert _cut_widgets(window) == [], (width, height)
        # Each plot keeps room for its axis labels (the dock scrolls instead): at 1280 x 720
        # the KL bars and heat map were 15 px tall, their labels on top of each other.
        plots = {"kl bars": window.kl_panel.bar_plot, "kl heat map": window.kl_panel.heat_plot,
                 **window.curves_panel.plots}
        short = {k: round(p.getViewBox().height()) for k, p in plots.items()
                 if p.getViewBox().height() < 25}  # two label heights (SpacedAxis thins)
        assert short == {}, (width, height, short)
        assert window.statusBar().currentMessage().startswith("Ready")
        assert window.run_file_label.geometry().left() > window.statusBar().fontMetrics() \
            .horizontalAdvance(window.statusBar().currentMessage()) // 2
        path = os.path.join(SHOTS, f"main_window_explorer_{width}x{height}.png")
        assert window.grab().save(path), path
        _not_blank(path)
        window.samples_dock.raise_()
        qtbot.wait(100)
        path = os.path.join(SHOTS, f"main_window_samples_{width}x{height}.png")
        assert window.grab().save(path), path
        window.curves_dock.raise_()
    assert errors == []
