"""The real entry point, in a subprocess: it starts, opens files from the command line, quits."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtCore import QSettings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(tmp_path, **extra) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / name.lower())
    env.update(extra)
    return env


def _settings(tmp_path) -> QSettings:
    path = tmp_path / "xdg_config_home" / "LatentExplorer" / "Latent Explorer.conf"
    assert path.exists(), "the app saved no settings"
    return QSettings(str(path), QSettings.Format.IniFormat)


def test_main_py_starts_and_quits_by_timer(tmp_path):
    proc = subprocess.run(
        [sys.executable, "main.py", "--quit-after", "1500"], cwd=REPO, env=_env(tmp_path),
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # Closing saved the window layout and the form.
    settings = _settings(tmp_path)
    assert settings.value("window/state") is not None
    assert "mnist" in settings.value("training/config", "")


def test_main_py_opens_a_run_named_on_the_command_line(tmp_path, finished_run):
    proc = subprocess.run(
        [sys.executable, "main.py", finished_run], cwd=REPO,
        env=_env(tmp_path, LATENT_EXPLORER_QUIT_AFTER_MS="1500"),
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    recent = _settings(tmp_path).value("recent/files")
    recent = [recent] if isinstance(recent, str) else list(recent)
    assert recent[0] == os.path.abspath(finished_run)
