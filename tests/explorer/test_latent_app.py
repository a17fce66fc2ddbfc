"""The latent explorer inside the main window: its dock, File > Open ONNX decoder…, .onnx files,
and following the current run."""

from __future__ import annotations

from latent_helpers import third_party_decoder
from PySide6.QtWidgets import QFileDialog


def test_the_explorer_dock_and_menu_are_in_the_window(window):
    assert window.latent_panel.dock.windowTitle() == "Latent explorer"
    texts = [a.text() for a in window.file_menu.actions()]
    assert "Open ONNX &decoder…" in texts
    assert window.act_open_decoder.shortcut().toString() == "Ctrl+Shift+D"
    assert window.latent_panel.dock in window.tabifiedDockWidgets(window.rd_dock)


def test_opening_an_onnx_file_through_the_window(window, tmp_path, qtbot, errors, monkeypatch):
    path, _, _ = third_party_decoder(tmp_path / "shared.onnx")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (path, ""))
    window.act_open_decoder.trigger()
    panel = window.latent_panel
    assert panel.explorer is not None and panel.space.latent_dim == 3
    assert not panel.space.has_encodings
    assert errors == []
    # A file that is not ONNX: one error dialog with one line, the explorer keeps its decoder.
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00" * 64)
    window.open_path(str(bad))
    assert len(errors) == 1 and str(bad) in errors[0] and "\n" not in errors[0]
    assert panel.space.latent_dim == 3


def test_a_finished_run_fills_the_explorer_once_it_is_shown(window, finished_run, qtbot, errors):
    panel = window.latent_panel
    window.open_path(finished_run)
    qtbot.wait(50)
    assert not panel.busy and panel.explorer is None  # its tab is hidden: nothing to do yet
    with qtbot.waitSignal(panel.encodingsReady, timeout=120_000):
        panel.dock.raise_()
    assert panel.space.has_encodings and panel.space.latent_dim == 3
    assert panel.run_path.endswith("finished.h5")
    panel.explorer.renderer.settle()
    assert panel.explorer.renderer.strip is not None
    assert errors == []
