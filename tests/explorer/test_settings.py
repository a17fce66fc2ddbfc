"""Settings are written as they change (a second's debounce), not only at quit."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

from explorer.settings import AUTOSAVE_MS


def _read(settings_path: str) -> QSettings:
    return QSettings(settings_path, QSettings.Format.IniFormat)  # what another process would see


def test_a_changed_setting_is_on_disk_within_seconds_without_quitting(window, settings_path, qtbot):
    window.training_panel.beta_spin.setValue(4.5)
    window.training_panel.latent_spin.setValue(9)
    assert window.settings_keeper.pending
    qtbot.waitUntil(lambda: not window.settings_keeper.pending, timeout=AUTOSAVE_MS + 3000)
    saved = _read(settings_path).value("training/config", "")
    assert '"beta": 4.5' in saved and '"latent_dim": 9' in saved
    assert window.isVisible()  # nothing quit


def test_a_hidden_dock_is_saved_without_quitting(window, settings_path, qtbot):
    qtbot.waitUntil(lambda: not window.settings_keeper.pending, timeout=AUTOSAVE_MS + 3000)
    before = _read(settings_path).value("window/state")
    window.kl_dock.hide()
    qtbot.waitUntil(lambda: not window.settings_keeper.pending, timeout=AUTOSAVE_MS + 3000)
    after = _read(settings_path).value("window/state")
    assert after is not None and after != before


def test_recent_files_are_written_at_once(window, settings_path, finished_run):
    assert window.open_path(finished_run)
    recent = _read(settings_path).value("recent/files")
    recent = [recent] if isinstance(recent, str) else list(recent)
    assert recent[0] == os.path.abspath(finished_run)
