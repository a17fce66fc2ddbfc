"""The desktop app's entry: ``python main.py [RUN.h5 | DATA.h5 ...] [--quit-after MS]``."""

from __future__ import annotations

import argparse
import os
import sys

APP_NAME = "Latent Explorer"
ORG_NAME = "LatentExplorer"
ORG_DOMAIN = "latent-explorer.example"
QUIT_ENV = "LATENT_EXPLORER_QUIT_AFTER_MS"


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="latent-explorer",
        description="Latent Explorer: train, diagnose and explore VAEs. "
        "Subcommands (train, diagnose, export, inspect, decode) run without a window.",
    )
    parser.add_argument("files", nargs="*", help="run files or HDF5 data sets to open")
    parser.add_argument("--quit-after", type=int, metavar="MS", default=None,
                        help=f"close the window after MS milliseconds (smoke tests; also ${QUIT_ENV})")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, qt_args = _parse(argv)

    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setOrganizationDomain(ORG_DOMAIN)
    QCoreApplication.setApplicationName(APP_NAME)
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationDisplayName(APP_NAME)
    from . import collector

    # No torch warm-up: runs train in child processes (explorer/jobs/training.py), which load
    # torch and the trainer themselves; the GUI process never builds an optimiser.
    from .main_window import MainWindow

    # Cycles are collected on this thread only, and the modules just imported are out of every
    # full collection's way (explorer/collector.py).
    collector.install_for_app()
    window = MainWindow()
    window.show()
    window.open_paths(args.files)  # interrupted runs among them: one recovery dialog

    quit_after = args.quit_after
    if quit_after is None and os.environ.get(QUIT_ENV):
        try:
            quit_after = int(os.environ[QUIT_ENV])
        except ValueError:
            quit_after = None
    if quit_after is not None:
        QTimer.singleShot(max(0, quit_after), window.close)
    code = int(app.exec())
    delete_before_exit(window)
    return code


def delete_before_exit(window) -> None:  # noqa: ANN001 (a QWidget)
    """Destroy ``window``'s C++ side now, while Python still runs. Left to the interpreter's
    last collection (pyqtgraph's items sit in reference cycles), its scenes were torn down in a
    finalising interpreter, calling Python overrides that no longer can run: a segmentation
    fault at exit in 3 of 10 tries of a script that trained from a window, 0 of 10 with this."""
    import shiboken6

    if shiboken6.isValid(window):
        shiboken6.delete(window)
