"""The latent explorer's place in the main window: its dock, File > Open ONNX decoder and
``.onnx`` files, installed through the window's extension API."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from .panel import LatentExplorerPanel


def install(window: Any) -> LatentExplorerPanel:
    """Add the explorer to the app's main window through its extension API.

    A "Latent explorer" dock (tabbed with the rate-distortion plane) following the window's
    current run; File > Open ONNX decoder… (the window's ``act_open_decoder``); ``.onnx``
    files opened by the window (File > Open, drag and drop, the command line, recent files)
    go to the explorer; errors go
    to the window's error dialog and messages to its status bar. Call ``shutdown()`` on the
    returned panel when the window closes.
    """
    panel = LatentExplorerPanel(window.runs)
    dock = window.add_dock(panel, "Latent explorer", Qt.DockWidgetArea.RightDockWidgetArea,
                           "dock.latent")
    rd_dock = getattr(window, "rd_dock", None)
    if rd_dock is not None:
        window.tabifyDockWidget(rd_dock, dock)
        rd_dock.raise_()
    panel.dock = dock
    panel.set_on_screen(False)
    dock.visibilityChanged.connect(panel.set_on_screen)

    def open_decoder(path: str) -> bool:
        if not panel.open_decoder(path):
            return False
        dock.show()
        dock.raise_()
        return True

    def open_dialog() -> None:
        path, _ = QFileDialog.getOpenFileName(
            window, "Open ONNX decoder", "", "ONNX models (*.onnx);;All files (*)"
        )
        if path:
            window.open_path(path)  # through the window: recent files, then open_decoder

    window.act_open_decoder.triggered.connect(open_dialog)  # the window's table places it
    window.add_file_handler((".onnx",), open_decoder)
    panel.error.connect(window.show_error)
    panel.message.connect(lambda text: window.statusBar().showMessage(text, 8000))
    panel.open_button.clicked.disconnect()
    panel.open_button.clicked.connect(open_dialog)
    return panel
