"""The app's one way to report an error a user can act on: one dialog with one clear message.

Every error path (a bad file, a diverging run, a failed export) ends in :func:`show_error`, so
tests replace this one function (``monkeypatch.setattr(explorer.dialogs, "show_error", ...)``)
and callers must look it up through the module (``dialogs.show_error(...)``), never import the
name. What a library said beyond the one line (HDF5's internals, a traceback's tail) goes behind
"Show details" (:func:`user_message`). :func:`ask_quit_while_training` is the question asked when
the window closes during a run (tests replace it the same way).
"""

from __future__ import annotations

import enum
import re

from PySide6.QtWidgets import QMessageBox, QWidget

#: The engine's words for a file HDF5 cannot read, then what HDF5 said.
_DAMAGED = re.compile(r"^(?P<file>.*?): .*?\(truncated or damaged file(?:\): |: )(?P<detail>.+)$")


def user_message(message: str) -> tuple[str, str]:
    """The line shown for ``message`` and the details kept behind "Show details" ("" if none).

    A file HDF5 cannot read becomes "``FILE``: truncated or damaged HDF5 file" (the engine's
    message, with HDF5's own words, is the detail); a message of several lines shows its first.
    """
    lines = str(message).strip().splitlines() or ["unknown error"]
    first, rest = lines[0], "\n".join(lines[1:]).strip()
    damaged = _DAMAGED.match(first)
    if damaged:
        return f"{damaged['file']}: truncated or damaged HDF5 file", str(message).strip()
    return first, rest


def show_error(parent: QWidget | None, message: str, title: str = "Latent Explorer") -> None:
    """Show ``message`` (its one line; any more behind "Show details") in a modal dialog."""
    line, details = user_message(message)
    box = QMessageBox(QMessageBox.Icon.Warning, title, line, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.exec()


class QuitChoice(enum.Enum):
    """What the user wants when closing the window during a run."""

    STOP_AND_QUIT = "stop and quit"
    KEEP_TRAINING = "keep training"  # the window stays; it closes when the run ends
    CANCEL = "cancel"


def ask_quit_while_training(parent: QWidget | None, run_name: str) -> QuitChoice:
    """Ask whether to stop ``run_name`` and quit (the run file keeps everything so far)."""
    box = QMessageBox(QMessageBox.Icon.Question, "Quit Latent Explorer",
                      f"{run_name} is training.", QMessageBox.StandardButton.NoButton, parent)
    box.setInformativeText("Stop it and quit (its run file keeps every epoch so far), keep it "
                           "training and quit when it ends, or cancel.")
    stop = box.addButton("Stop and quit", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("Keep training", QMessageBox.ButtonRole.ActionRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    if clicked is stop:
        return QuitChoice.STOP_AND_QUIT
    if clicked is keep:
        return QuitChoice.KEEP_TRAINING
    return QuitChoice.CANCEL


def error_line(exc: BaseException) -> str:
    """The one line a user sees for an exception: our errors carry it; others get their type."""
    from models.errors import LatentExplorerError

    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, LatentExplorerError):
        return text or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
