"""The app's one way to report an error a user can act on: one dialog with one clear message.

Every error path (a bad file, a diverging run, a failed export) ends in :func:`show_error`, so
tests replace this one function (``monkeypatch.setattr(explorer.dialogs, "show_error", ...)``)
and callers must look it up through the module (``dialogs.show_error(...)``), never import the
name.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget | None, message: str, title: str = "Latent Explorer") -> None:
    """Show ``message`` (one line; the first line is used if there are more) in a modal dialog."""
    line = (str(message).strip().splitlines() or ["unknown error"])[0]
    box = QMessageBox(QMessageBox.Icon.Warning, title, line, QMessageBox.StandardButton.Ok, parent)
    box.exec()


def error_line(exc: BaseException) -> str:
    """The one line a user sees for an exception: our errors carry it; others get their type."""
    from models.errors import LatentExplorerError

    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, LatentExplorerError):
        return text or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
