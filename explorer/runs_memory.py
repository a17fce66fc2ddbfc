"""What the app remembers of its runs across launches: the runs open, their names, the counter.

:class:`RunsMemory` writes, as they change, in the window's ``QSettings``:

- ``runs/open``: the run files on screen (JSON: path, name, visible, a sweep's folder and
  settings), reopened by :meth:`RunsMemory.restore` at launch;
- ``runs/names``: every name given to a run file (path -> name), so a renamed run keeps its
  name when it is opened again;
- ``runs/counter``: the last ``run N`` handed out, so new names never repeat an old one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from PySide6.QtCore import QObject, QSettings

from .state import RunSession, RunsModel

#: At most this many remembered names (the oldest are forgotten).
MAX_NAMES = 500


class RunsMemory(QObject):
    """Keeps ``runs``' files and names in ``settings``; see the module's docstring."""

    def __init__(self, runs: RunsModel, settings: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.settings = settings
        self._restoring = False
        runs.set_name_counter(int(settings.value("runs/counter", 0) or 0))
        runs.sessionAdded.connect(self._added)
        runs.sessionRemoved.connect(lambda _s: self.save())
        for s in runs.sessions():
            self._added(s)

    def _names(self) -> dict[str, str]:
        try:
            names = json.loads(str(self.settings.value("runs/names", "{}")))
        except ValueError:
            return {}
        return names if isinstance(names, dict) else {}

    def _added(self, s: RunSession) -> None:
        s.nameChanged.connect(lambda _n, s=s: self._renamed(s))
        s.visibilityChanged.connect(lambda _v: self.save())
        s.infoChanged.connect(self.save)
        name = self._names().get(os.path.abspath(s.path)) if s.path else None
        if name and name != s.name and s.source != "training":
            s.rename(self.runs.unique_name(name, s))  # its remembered name (saves)
        else:
            self.save()

    def _renamed(self, s: RunSession) -> None:
        if s.path:
            names = self._names()
            names[os.path.abspath(s.path)] = s.name
            self.settings.setValue("runs/names", json.dumps(dict(list(names.items())[-MAX_NAMES:])))
        self.save()

    def save(self) -> None:
        if self._restoring:
            return
        rows = [{"path": os.path.abspath(s.path), "name": s.name, "visible": s.visible,
                 "sweep": s.sweep, "settings": s.settings}
                for s in self.runs.sessions() if s.path]
        self.settings.setValue("runs/open", json.dumps(rows))
        self.settings.setValue("runs/counter", self.runs.name_counter)
        names = self._names()
        for row in rows:
            names.setdefault(row["path"], row["name"])
        self.settings.setValue("runs/names", json.dumps(dict(list(names.items())[-MAX_NAMES:])))

    def restore(self, open_run: Callable[[str], RunSession | None]) -> int:
        """Reopen the runs open last time (those whose files still exist); how many."""
        try:
            rows = json.loads(str(self.settings.value("runs/open", "[]")))
        except ValueError:
            rows = []
        n = 0
        self._restoring = True
        try:
            for row in rows if isinstance(rows, list) else []:
                path = row.get("path") if isinstance(row, dict) else None
                if not path or not os.path.exists(path) or self.runs.find(path) is not None:
                    continue
                s = open_run(path)
                if s is None:
                    continue
                n += 1
                s.rename(self.runs.unique_name(str(row.get("name") or s.name), s))
                s.sweep = row.get("sweep") or None
                s.settings = dict(row.get("settings") or {})
                s.set_visible(bool(row.get("visible", True)))
                s.infoChanged.emit()
        finally:
            self._restoring = False
        self.save()
        return n
