"""Decoder only: a shared .onnx decoder explored without torch.

The explorer runs in a subprocess where ``import torch`` fails (a ``torch`` package on
PYTHONPATH that raises ImportError), opens the decoder through the panel, drags an anchor with
QTest mouse events, adds one, reads the strip and the traversal, saves PNGs, and checks that
torch never got imported. The decoders are real ONNX files: one exported by
``models.io.onnx_export`` (with metadata) and one built with ``onnx.helper`` (no metadata).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from latent_helpers import export_vae_decoder, third_party_decoder

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("torch should not be importable in this test")

    import numpy as np
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from explorer.latent.panel import LatentExplorerPanel

    path, out = sys.argv[1], sys.argv[2]
    panel = LatentExplorerPanel()
    errors = []
    panel.error.connect(errors.append)
    panel.resize(1200, 700)
    panel.show()
    assert panel.open_decoder(path), errors
    for _ in range(10):
        app.processEvents()
        QTest.qWait(10)
    e = panel.explorer
    space, r, dec = e.space, e.renderer, e.space.decoder
    assert not space.has_encodings and len(space.points) == 5000  # the prior's draws

    def expected(z):
        x = dec.decode(np.atleast_2d(z))
        return (x * 255 + 0.5).astype(np.uint8).reshape(len(x), *dec.image_shape)

    # Drag anchor A1 with the mouse.
    m = e.map
    vb = m.getPlotItem().getViewBox()
    to_px = lambda x, y: m.mapFromScene(vb.mapViewToScene(QPointF(x, y)))
    x0, y0 = space.anchor_position(0)
    p0, p1 = to_px(x0, y0), to_px(x0 + 0.8, y0 - 1.2)
    vp = m.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p0)
    for k in range(1, 6):
        t = k / 5
        QTest.mouseMove(vp, QPoint(round(p0.x() + t * (p1.x() - p0.x())),
                                   round(p0.y() + t * (p1.y() - p0.y()))))
        QTest.qWait(20)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p1)
    QTest.qWait(30)
    r.settle()
    x1, y1 = space.anchor_position(0)
    assert abs(x1 - (x0 + 0.8)) < 0.1 and abs(y1 - (y0 - 1.2)) < 0.1, (x1, y1)
    np.testing.assert_array_equal(r.anchor_image, expected(space.anchor(0))[0])

    # A third anchor: the strip runs through all three.
    space.add_anchor(xy=(0.5, 1.0))
    space.set_mode("spherical")
    r.settle()
    np.testing.assert_array_equal(r.strip_images, expected(space.path_latents()))
    np.testing.assert_array_equal(r.grid_images, expected(space.traversal_latents()))
    e.save("strip", out + "/strip.png")
    e.save("grid", out + "/grid.png")
    assert not errors, errors
    assert "torch" not in sys.modules, "torch was imported"
    print("OK", len(r.strip_images), r.grid.shape)
    """
)


@pytest.fixture(scope="module")
def blocked_torch(tmp_path_factory):
    d = tmp_path_factory.mktemp("notorch")
    (d / "torch").mkdir()
    (d / "torch" / "__init__.py").write_text('raise ImportError("torch is blocked for this test")\n')
    return d


def run_child(blocked, decoder_path, out):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(blocked), str(ROOT)])
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(decoder_path), str(out)],
        env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=240,
    )


def test_our_decoder_explored_without_torch(tmp_path, blocked_torch):
    path = export_vae_decoder(tmp_path / "shared.onnx", latent_dim=6, metadata={"dataset": "mnist"})
    done = run_child(blocked_torch, path, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("OK 15")  # 3 anchors, 8 steps per segment
    assert (tmp_path / "strip.png").stat().st_size > 0 and (tmp_path / "grid.png").stat().st_size > 0


def test_third_party_decoder_explored_without_torch(tmp_path, blocked_torch):
    path, _, _ = third_party_decoder(tmp_path / "theirs.onnx", latent_dim=3, dead_dims=(1,))
    done = run_child(blocked_torch, path, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("OK 15")


def test_the_app_opens_a_decoder_named_on_the_command_line_without_torch(tmp_path, blocked_torch):
    from PySide6.QtCore import QSettings

    path = export_vae_decoder(tmp_path / "shared.onnx", latent_dim=4)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LATENT_EXPLORER_QUIT_AFTER_MS="2000")
    env["PYTHONPATH"] = os.pathsep.join([str(blocked_torch), str(ROOT)])
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / name.lower())
    done = subprocess.run([sys.executable, "main.py", str(path)], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    # Only a decoder that opened goes into the recent files.
    conf = tmp_path / "xdg_config_home" / "LatentExplorer" / "Latent Explorer.conf"
    recent = QSettings(str(conf), QSettings.Format.IniFormat).value("recent/files")
    recent = [recent] if isinstance(recent, str) else list(recent or [])
    assert recent[:1] == [str(path)]


def test_file_open_onnx_decoder_dialog_and_a_bad_file(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from explorer.latent.panel import LatentExplorerPanel

    panel = LatentExplorerPanel()
    qtbot.addWidget(panel)
    errors = []
    panel.error.connect(errors.append)
    bad = tmp_path / "noise.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(300))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    panel.open_decoder_dialog()
    assert panel.explorer is None and len(errors) == 1
    assert str(bad) in errors[0] and "\n" not in errors[0]

    good, _, _ = third_party_decoder(tmp_path / "theirs.onnx")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (good, ""))
    panel.open_decoder_dialog()
    assert panel.explorer is not None and panel.space.latent_dim == 3
    assert "no metadata" in panel.source_label.text()
    panel.shutdown()
