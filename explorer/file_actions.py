"""The main window's file actions: open by type, the dialogs, export, plot images, recent files,
drag and drop. A mixin of :class:`~explorer.main_window.MainWindow` (it uses ``runs``,
``controller``, ``training_panel``, ``settings_keeper`` and ``show_error``)."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QWidget

from .panels.common import PlotPanel
from .settings import runs_folder

RUN_SUFFIXES = (".h5", ".hdf5", ".he5")


def classify_file(path: str) -> str:
    """``"run"``, ``"data"`` or ``"other"``: how to open a file.

    A Latent Explorer run file (also one being written, opened for SWMR reading) is a run; an
    HDF5 file without the run marker is a data set; anything else (not HDF5, unreadable, a
    folder) is "other", which :meth:`FileActions.open_path` hands to the run reader so the user
    gets its one-line explanation.
    """
    import h5py

    from models.io.runfile import FORMAT_NAME

    try:
        if not os.path.isfile(path) or not h5py.is_hdf5(path):
            return "other"
    except OSError:
        return "other"
    for kwargs in ({"libver": "latest", "swmr": True}, {}):
        try:
            with h5py.File(path, "r", **kwargs) as f:
                fmt = f.attrs.get("format", b"")
        except (OSError, ValueError):
            continue
        if isinstance(fmt, bytes):
            fmt = fmt.decode("utf-8", "replace")
        return "run" if str(fmt) == FORMAT_NAME else "data"
    return "other"


class FileActions:
    """Opening, exporting and saving files; the recent files menu; dropped files."""

    _file_handlers: list[tuple[tuple[str, ...], Callable[[str], object]]]

    def add_file_handler(self, suffixes: tuple[str, ...] | list[str],
                         handler: Callable[[str], object]) -> None:
        """Open files ending in one of ``suffixes`` (e.g. ``(".onnx",)``) with ``handler(path)``.

        Used by File > Open run… (their types are added to the dialog), drag and drop, paths on
        the command line and the recent files. Handlers report problems through
        :meth:`show_error` themselves and return False when the file could not be opened (it
        then stays out of the recent files). A later registration for the same suffix wins.
        """
        self._file_handlers.append((tuple(s.lower() for s in suffixes), handler))

    def open_path(self, path: str) -> bool:
        """Open a file by type: a run file, an HDF5 data set, or a registered type."""
        path = os.path.abspath(os.path.expanduser(path))
        lower = path.lower()
        for suffixes, handler in reversed(self._file_handlers):  # the latest registration wins
            if lower.endswith(suffixes):
                if handler(path) is False:
                    return False
                self.add_recent_file(path)
                return True
        if not os.path.exists(path):
            self.show_error(f"{path}: no such file")
            return False
        if classify_file(path) == "data":
            return self.open_dataset(path)
        return self.open_run(path)

    def open_paths(self, paths: list[str]) -> None:
        """Open several files (dropped, or named on the command line); the interrupted runs
        among them are offered recovery in one dialog (``explorer.recover``)."""
        for path in self.recover_offer.take(paths):
            self.open_path(path)

    def open_run(self, path: str) -> bool:
        if not self.recover_offer.take([path]):  # interrupted: the offer asks, then opens it
            return True
        session = self.controller.open_run(path)
        if session is None:
            return False
        self.add_recent_file(path)
        return True

    def open_dataset(self, path: str) -> bool:
        ok = self.training_panel.set_data_file(path)
        if ok:
            self.training_dock.show()
            self.training_dock.raise_()
            self.add_recent_file(path)
            self.statusBar().showMessage(f"Data set: {path}", 8000)
        return ok

    def _start_dir(self) -> str:
        recent = self.recent_files()
        return os.path.dirname(recent[0]) if recent else runs_folder()

    def open_run_dialog(self) -> None:
        filters = ["Run files (*.h5 *.hdf5)"]
        for suffixes, _h in self._file_handlers:
            filters.append(" ".join(f"*{s}" for s in suffixes).join(("Other (", ")")))
        filters.append("All files (*)")
        path, _ = QFileDialog.getOpenFileName(self, "Open run", self._start_dir(), ";;".join(filters))
        if path:
            self.open_path(path)

    def open_dataset_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open data set", self._start_dir(),
                                              "HDF5 files (*.h5 *.hdf5 *.he5);;All files (*)")
        if path:
            self.open_dataset(path)

    def export_dialog(self) -> None:
        session = self.runs.current
        if session is None or not session.path:
            self.show_error("no run to export: train or open a run first")
            return
        base = os.path.splitext(session.path)[0] + "-decoder.onnx"
        path, _ = QFileDialog.getSaveFileName(self, "Export decoder to ONNX", base,
                                              "ONNX models (*.onnx)")
        if path:
            if not path.lower().endswith(".onnx"):
                path += ".onnx"
            self.controller.export_decoder(path, session)

    def save_plot_dialog(self) -> None:
        panel = self._active_plot or self.rd_panel
        default = os.path.join(self._start_dir(), f"{panel.plot_title}.png")
        path, _ = QFileDialog.getSaveFileName(self, f"Save plot as image ({panel.plot_title})",
                                              default, "PNG images (*.png);;JPEG images (*.jpg)")
        if path:
            self.save_plot(path, panel)

    def save_plot(self, path: str, panel: PlotPanel | None = None) -> bool:
        from models.errors import LatentExplorerError

        panel = panel or self._active_plot or self.rd_panel
        if not os.path.splitext(path)[1]:
            path += ".png"
        try:
            panel.save_image(path)
        except LatentExplorerError as exc:
            self.show_error(str(exc))
            return False
        self.statusBar().showMessage(f"Saved {path}", 8000)
        return True

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        w = new
        while w is not None:
            if isinstance(w, PlotPanel):
                self._active_plot = w
                return
            w = w.parentWidget()

    # ------------------------------------------------------------------ recent files
    def recent_files(self) -> list[str]:
        return self.settings_keeper.recent_files()

    def add_recent_file(self, path: str | None) -> None:
        if not path:
            return
        path = os.path.abspath(path)
        files = [p for p in self.recent_files() if p != path]
        self.settings_keeper.set_recent_files([path, *files])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        if not files:
            empty = self.recent_menu.addAction("(none)")
            empty.setEnabled(False)
            return
        for i, path in enumerate(files):
            act = self.recent_menu.addAction(f"&{i + 1} {os.path.basename(path)}")
            act.setToolTip(path)
            act.setStatusTip(path)
            act.setData(path)
            act.triggered.connect(self._open_recent)
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear list", lambda: self.settings_keeper.set_recent_files([]))

    def _open_recent(self) -> None:
        act = self.sender()
        if isinstance(act, QAction) and act.data():
            self.open_path(str(act.data()))

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt)
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.open_paths(paths)
