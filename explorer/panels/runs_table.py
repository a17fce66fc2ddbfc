"""The runs table (a dock): every run on screen, its settings, status and latest figures.

Columns: name (editable; the check box shows or hides the run in the plots), the settings that
differ from the first run's, status, and the latest validation R, D and ELBO, the IWAE of its
last diagnosis and its active units (nats per sample, as the engine reports them). Rows keep
the runs' order, a remedy run right below the run it tries to improve; a click on a header sorts
(a third click restores that order). The context menu hides, shows or removes runs from view,
opens a run file's folder, and tries a remedy. Selecting a row makes its run current.
"""

from __future__ import annotations

import math
import os
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableView, QVBoxLayout, QWidget

from ..state import RunSession, RunsModel

COLUMNS = ("Name", "Settings", "Status", "R", "D", "ELBO", "IWAE", "Active")
NAME, SETTINGS, STATUS, RATE, DIST, ELBO, IWAE, ACTIVE = range(len(COLUMNS))
TIPS = ("Double-click to rename; the box shows or hides the run in the plots",
        "The settings that differ from the first run's", "The run's status",
        "Latest validation rate (nats)", "Latest validation distortion (nats)",
        "Latest validation ELBO (nats)", "IWAE of the last diagnosis (nats)",
        "Active latent units (latest epoch or diagnosis)")


def _flat(config: Any) -> dict[str, Any]:
    out = {}
    for part, values in config.to_dict().items():
        if isinstance(values, dict):
            for k, v in values.items():
                out[k] = tuple(v) if isinstance(v, list) else v
        else:
            out[part] = values
    return out


def config_differences(first: Any, config: Any) -> str:
    """``"beta=4, latent_dim=8"``: the fields of ``config`` that differ from ``first``'s."""
    if first is None or config is None:
        return ""
    a, b = _flat(first), _flat(config)
    words = []
    for key, value in b.items():
        if a.get(key) != value:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            words.append(f"{key}={shown}")
    return ", ".join(words)


def _number(value: Any, digits: int = 2) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{v:.{digits}f}" if math.isfinite(v) else ""


def ordered(sessions: list[RunSession]) -> list[RunSession]:
    """The runs in order, each remedy run right after its parent (and its parent's others)."""
    out: list[RunSession] = []
    children: dict[int, list[RunSession]] = {}
    for s in sessions:
        if s.parent_run is not None and s.parent_run in sessions:
            children.setdefault(id(s.parent_run), []).append(s)

    def place(s: RunSession) -> None:
        out.append(s)
        for c in children.get(id(s), []):
            place(c)

    for s in sessions:
        if s.parent_run is None or s.parent_run not in sessions:
            place(s)
    return out


class RunsTableModel(QAbstractTableModel):
    """The rows of the runs table: one per session of a :class:`RunsModel`."""

    def __init__(self, runs: RunsModel, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.runs = runs
        self.rows: list[RunSession] = []
        runs.sessionAdded.connect(self._add)
        runs.sessionRemoved.connect(lambda _s: self.reset())
        for s in runs.sessions():
            self._add(s, reset=False)
        self.reset()

    def _add(self, s: RunSession, reset: bool = True) -> None:
        for sig in (s.epochsAppended, s.statusChanged, s.diagnosisChanged, s.nameChanged,
                    s.visibilityChanged):
            sig.connect(lambda *_a, s=s: self.refresh(s))
        s.infoChanged.connect(self.refresh_all)  # the first run's config changes every row
        if reset:
            self.reset()

    def reset(self) -> None:
        self.beginResetModel()
        self.rows = ordered(self.runs.sessions())
        self.endResetModel()

    def refresh(self, s: RunSession) -> None:
        if s in self.rows:
            r = self.rows.index(s)
            self.dataChanged.emit(self.index(r, 0), self.index(r, len(COLUMNS) - 1))

    def refresh_all(self) -> None:
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1))

    # ------------------------------------------------------------------ the Qt model
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802, ANN001
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return TIPS[section]
        return None

    def flags(self, index):  # noqa: ANN001
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == NAME:
            f |= Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable
        return f

    def first_config(self) -> Any:
        return next((s.config for s in self.runs.sessions() if s.config is not None), None)

    def value(self, s: RunSession, column: int) -> Any:
        """The cell's value (numbers for the figures: what sorting compares)."""
        diag = s.diagnosis or {}
        last = s.epochs.last
        if column == NAME:
            return f"  ↳ {s.name}" if s.parent_run is not None else s.name
        if column == SETTINGS:
            if s.remedy:
                return s.remedy
            own = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.settings.items()]
            rest = [w for w in config_differences(self.first_config(), s.config).split(", ")
                    if w and w.split("=")[0] not in s.settings]
            return ", ".join(own + rest)  # a sweep's run: its own settings first
        if column == STATUS:
            return str(s.status)
        if column == RATE:
            return last("val_rate")
        if column == DIST:
            return last("val_distortion")
        if column == ELBO:
            return last("val_elbo")
        if column == IWAE:
            return diag.get("iwae")
        return diag.get("active_units", last("active_units"))

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # noqa: ANN001
        if not index.isValid():
            return None
        s, c = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            v = self.value(s, c)
            if c in (RATE, DIST, ELBO, IWAE):
                return _number(v)
            if c == ACTIVE:
                return _number(v, 0)
            return v
        if role == Qt.ItemDataRole.EditRole and c == NAME:
            return s.name
        if role == Qt.ItemDataRole.UserRole:  # for sorting
            v = self.value(s, c)
            if c in (RATE, DIST, ELBO, IWAE, ACTIVE):
                try:
                    f = float(v)
                    return f if math.isfinite(f) else -math.inf
                except (TypeError, ValueError):
                    return -math.inf
            return str(v)
        if role == Qt.ItemDataRole.CheckStateRole and c == NAME:
            return Qt.CheckState.Checked if s.visible else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DecorationRole and c == NAME:
            return QColor(s.colour)
        if role == Qt.ItemDataRole.ToolTipRole:
            return s.path or s.name if c == NAME else (s.message or None if c == STATUS else None)
        if role == Qt.ItemDataRole.TextAlignmentRole and c >= RATE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802, ANN001
        s = self.rows[index.row()]
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == NAME:
            s.set_visible(Qt.CheckState(value) == Qt.CheckState.Checked)
            return True
        if role == Qt.ItemDataRole.EditRole and index.column() == NAME:
            name = str(value).strip()
            if not name or name == s.name:
                return False
            s.rename(self.runs.unique_name(name, s))
            return True
        return False


class RunsTablePanel(QWidget):
    """The runs table; ``tryRemedy(RunSession)`` asks for the remedy menu's actions."""

    remedyMenuRequested = Signal(object, object)  # (QMenu, RunSession): the window fills it

    def __init__(self, runs: RunsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.model = RunsTableModel(runs, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the runs' own order
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.view.verticalHeader().hide()
        self.view.setAlternatingRowColors(True)
        header = self.view.horizontalHeader()
        # The name can be resized; status and numbers are as wide as what they hold; the
        # settings that differ take the rest (fixed widths left them 15 px at 1280 x 720).
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(SETTINGS, QHeaderView.ResizeMode.Stretch)
        header.setSortIndicatorClearable(True)
        self.view.setColumnWidth(NAME, 120)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._menu)
        self.view.selectionModel().currentRowChanged.connect(self._row_changed)
        runs.currentChanged.connect(self._select)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view)

    def session_at(self, row: int) -> RunSession:
        """The run shown in view row ``row`` (after sorting)."""
        return self.model.rows[self.proxy.mapToSource(self.proxy.index(row, 0)).row()]

    def selected(self) -> list[RunSession]:
        rows = {self.proxy.mapToSource(i).row() for i in self.view.selectionModel().selectedRows()}
        return [self.model.rows[r] for r in sorted(rows)]

    def _row_changed(self, current, _previous) -> None:  # noqa: ANN001
        if current.isValid():
            s = self.model.rows[self.proxy.mapToSource(current).row()]
            if s is not self.runs.current:
                self.runs.set_current(s)

    def _select(self, s: RunSession | None) -> None:
        if s is None or s not in self.model.rows:
            return
        index = self.proxy.mapFromSource(self.model.index(self.model.rows.index(s), 0))
        if index.row() != self.view.currentIndex().row():
            self.view.selectRow(index.row())

    # ------------------------------------------------------------------ actions
    def set_visible(self, sessions: list[RunSession], visible: bool) -> None:
        for s in sessions:
            s.set_visible(visible)

    def remove(self, sessions: list[RunSession]) -> None:
        """Remove from view (the run files stay); a live run stays."""
        for s in sessions:
            if not s.is_live:
                self.runs.remove(s)

    def open_folder(self, s: RunSession) -> bool:
        if not s.path:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(os.path.abspath(s.path))))

    def _menu(self, pos) -> None:  # noqa: ANN001
        chosen = self.selected()
        if not chosen:
            return
        menu = QMenu(self)
        menu.addAction("Hide in plots", lambda: self.set_visible(chosen, False))
        menu.addAction("Show in plots", lambda: self.set_visible(chosen, True))
        remove = menu.addAction("Remove from view", lambda: self.remove(chosen))
        remove.setEnabled(any(not s.is_live for s in chosen))
        menu.addAction("Open the file's folder", lambda: self.open_folder(chosen[0]))
        menu.addSeparator()
        self.remedyMenuRequested.emit(menu.addMenu("Try a remedy"), chosen[0])
        menu.exec(self.view.viewport().mapToGlobal(pos))
