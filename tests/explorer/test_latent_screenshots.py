"""Screenshots of the latent explorer on a trained MNIST model, saved to artifacts/ to look at.

By default a short run is trained here (10,000 digits, 3 epochs, about 20 s on two cores), loaded
through the panel exactly as the app loads a finished run (decoder exported to ONNX, validation
digits encoded in a worker thread), and each view is saved:

- artifacts/latent_map.png: the 10,000 posterior means, coloured by digit, with the anchors;
- artifacts/interpolation.png: the decoded strip through three anchors;
- artifacts/traversal.png: the traversal grid at the current anchor;
- artifacts/latent_explorer.png: the whole panel.

``LATENT_SHOTS_RUN=RUN.h5`` uses an existing run instead (a longer one makes better pictures);
``LATENT_SHOTS_TRAVERSAL_RUN=RUN.h5`` takes the traversal from another run (one with collapsed
dimensions shows their constant rows).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtGui import QImage

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(REPO, "artifacts")


def _short_mnist_run(path: str) -> str:
    import torch

    from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
    from models.io.run_callback import start_run

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    cfg = RunConfig(
        model=ModelConfig(latent_dim=10, hidden=(256,)),
        objective=ObjectiveConfig(beta=1.0),
        train=TrainConfig(data="mnist", epochs=3, batch_size=100, max_train_samples=10_000,
                          log_every=10),
    )
    assert start_run(cfg, path).run().status == "finished"
    return path


def _not_blank(path: str, min_w: int, min_h: int) -> None:
    image = QImage(path)
    assert not image.isNull() and image.width() >= min_w and image.height() >= min_h, path
    ptr = image.convertToFormat(QImage.Format.Format_Grayscale8).constBits()
    assert np.frombuffer(ptr, dtype=np.uint8).std() > 10, f"{path} looks blank"


def _load(qtbot, panel, run):
    with qtbot.waitSignal(panel.encodingsReady, timeout=240_000):
        assert panel.load_run(run)
    panel.explorer.renderer.settle()
    qtbot.wait(100)


@pytest.mark.slow
def test_latent_explorer_screenshots(qtbot, tmp_path):
    from explorer.latent.panel import LatentExplorerPanel
    from explorer.panels.common import configure_pyqtgraph

    configure_pyqtgraph()  # the app's look
    os.makedirs(ARTIFACTS, exist_ok=True)
    run = os.environ.get("LATENT_SHOTS_RUN") or _short_mnist_run(str(tmp_path / "mnist.h5"))
    panel = LatentExplorerPanel()
    qtbot.addWidget(panel)
    errors = []
    panel.error.connect(errors.append)
    panel.resize(1500, 900)
    panel.show()
    _load(qtbot, panel, run)
    e = panel.explorer
    space = e.space
    assert space.has_encodings and len(space.points) == 10_000
    assert space.label_names is not None and len(np.unique(space.labels)) == 10
    assert len(e.map.legend.items) == 10
    # A third anchor on a digit unlike the first two (the default anchors sit on the first point
    # and on the first point of another label); the strip passes through all three.
    labels = space.labels
    second = int(np.flatnonzero(labels != labels[0])[0])
    np.testing.assert_array_equal(space.anchor(1), space.latents[second])
    third = int(np.flatnonzero((labels != labels[0]) & (labels != labels[second]))[0])
    space.add_anchor(z=space.latents[third])
    space.set_steps(7)
    e.renderer.settle()
    assert len(e.renderer.strip_images) == 13
    e.sample_view.show_point(third)
    e.map.show_point(third)
    qtbot.wait(100)

    shots = {
        "latent_map.png": (e.map, 400, 300),
        "interpolation.png": (e.strip_view, 400, 80),
        "latent_explorer.png": (panel, 1000, 600),
    }
    traversal_run = os.environ.get("LATENT_SHOTS_TRAVERSAL_RUN")
    if not traversal_run:
        shots["traversal.png"] = (e.traversal_view, 250, 250)
    for name, (widget, w, h) in shots.items():
        path = os.path.join(ARTIFACTS, name)
        assert widget.grab().save(path)
        _not_blank(path, w, h)
    if traversal_run:
        _load(qtbot, panel, traversal_run)
        panel.explorer.splitter.setSizes([500, 250, 700])
        qtbot.wait(100)
        path = os.path.join(ARTIFACTS, "traversal.png")
        assert panel.explorer.traversal_view.grab().save(path)
        _not_blank(path, 250, 250)
    assert errors == []
    panel.shutdown()
