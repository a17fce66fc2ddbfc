"""What the app remembers between sessions, written as it changes (not only at quit).

Window geometry, dock layout and the training form are saved by :class:`SettingsKeeper` a second
after the last change (a debounce: a drag or a typed number writes once), and at quit; the recent
files are written at once. A crash loses at most the last second of changes. Tests give each
window its own ini file.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QSettings, QStandardPaths, QTimer

#: Version of the saved dock layout (``QMainWindow.saveState``); bump when docks change.
SETTINGS_VERSION = 1

#: Milliseconds of quiet after a change before the settings are written.
AUTOSAVE_MS = 1000

MAX_RECENT = 10


def runs_folder() -> str:
    """Where new runs are written: ``<AppDataLocation>/runs``."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return os.path.join(base or os.path.expanduser("~/.latent-explorer"), "runs")


class SettingsKeeper(QObject):
    """Restores a main window's settings and writes them back when they change.

    The window calls :meth:`changed` (directly, or through the signals :meth:`watch` connects)
    whenever something it saves may have changed; :meth:`save` writes everything now.
    """

    def __init__(self, window: Any, settings: QSettings, delay_ms: int = AUTOSAVE_MS) -> None:
        super().__init__(window)
        self.window = window
        self.settings = settings
        self.restored_state: QByteArray | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(delay_ms))
        self._timer.timeout.connect(self.save)
        self._restoring = False

    def changed(self, *_args: Any) -> None:
        """Something saved changed: write in ``delay_ms`` unless another change comes first."""
        if not self._restoring:
            self._timer.start()

    def watch(self, *signals: Any) -> None:
        """Call :meth:`changed` on each of ``signals``."""
        for signal in signals:
            signal.connect(self.changed)

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

    def restore(self) -> None:
        w, s = self.window, self.settings
        self._restoring = True
        try:
            geometry = s.value("window/geometry")
            if isinstance(geometry, QByteArray) and not geometry.isEmpty():
                w.restoreGeometry(geometry)
            else:
                w.resize(1400, 900)
            state = s.value("window/state")
            if isinstance(state, QByteArray) and not state.isEmpty():
                if w.restoreState(state, SETTINGS_VERSION):
                    self.restored_state = state
            w.training_panel.restore_settings(s)
        finally:
            self._restoring = False

    def save(self) -> None:
        """Write the window and the form now."""
        self._timer.stop()
        w, s = self.window, self.settings
        s.setValue("window/geometry", w.saveGeometry())
        s.setValue("window/state", w.saveState(SETTINGS_VERSION))
        w.training_panel.save_settings(s)
        s.sync()

    # ------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        value = self.settings.value("recent/files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def set_recent_files(self, files: list[str]) -> None:
        self.settings.setValue("recent/files", list(files)[:MAX_RECENT])
        self.settings.sync()
