"""The runs on screen, in the order they were added, and which one is current."""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal

from .session import RunSession

#: Colours given to runs in the order they are added (colour-blind safe, Okabe-Ito).
RUN_COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
)


class RunsModel(QObject):
    """The runs on screen and the current one.

    Signals
    -------
    sessionAdded(RunSession), sessionRemoved(RunSession)
    currentChanged(object)
        the current session (a :class:`RunSession`) or ``None``.
    """

    sessionAdded = Signal(object)
    sessionRemoved = Signal(object)
    currentChanged = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._sessions: list[RunSession] = []
        self._current: RunSession | None = None
        self._colour_index = 0
        self._counter = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self):
        return iter(list(self._sessions))

    def sessions(self) -> list[RunSession]:
        return list(self._sessions)

    @property
    def current(self) -> RunSession | None:
        return self._current

    @property
    def name_counter(self) -> int:
        """The number of the last name handed out (remembered across launches)."""
        return self._counter

    def set_name_counter(self, n: int) -> None:
        self._counter = max(self._counter, int(n))

    def next_name(self) -> str:
        """``run N``, unique among the runs on screen and every name handed out before."""
        taken = {s.name for s in self._sessions}
        while True:
            self._counter += 1
            name = f"run {self._counter}"
            if name not in taken:
                return name

    def unique_name(self, name: str, session: RunSession | None = None) -> str:
        """``name``, or ``name (2)``, ... when a run on screen (other than ``session``) has it."""
        taken = {s.name for s in self._sessions if s is not session}
        out, k = name, 2
        while out in taken:
            out, k = f"{name} ({k})", k + 1
        return out

    def find(self, path: str) -> RunSession | None:
        """The session showing the run file ``path``, if any."""
        target = os.path.abspath(path)
        for s in self._sessions:
            if s.path and os.path.abspath(s.path) == target:
                return s
        return None

    def add(self, session: RunSession, make_current: bool = True) -> RunSession:
        session.colour = RUN_COLOURS[self._colour_index % len(RUN_COLOURS)]
        self._colour_index += 1
        session.setParent(self)
        self._sessions.append(session)
        self.sessionAdded.emit(session)
        if make_current or self._current is None:
            self.set_current(session)
        return session

    def remove(self, session: RunSession) -> None:
        if session not in self._sessions:
            return
        self._sessions.remove(session)
        if session is self._current:
            self.set_current(self._sessions[-1] if self._sessions else None)
        self.sessionRemoved.emit(session)
        session.setParent(None)

    def set_current(self, session: RunSession | None) -> None:
        if session is not None and session not in self._sessions:
            raise ValueError("set_current: the session is not in this model")
        if session is self._current:
            return
        self._current = session
        self.currentChanged.emit(session)
