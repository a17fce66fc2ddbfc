"""The states a run and the app's training go through, as enums (compare by member).

``RunStatus`` is the app's view of a run: every status of the engine's
``models.training.events.RunStatus`` (the strings a run file and a ``FinishedEvent`` carry; a
``StrEnum``, so a member equals its string), plus what only the app knows: ``unknown`` (not read
yet), ``starting`` (loading its data) and ``paused``. ``parse`` maps the engine's members onto
it; a test keeps the two in step.
"""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """Where one run is, as far as the app knows."""

    UNKNOWN = "unknown"  # opened, not read yet
    STARTING = "starting"  # this process is loading its data
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"  # by the user; the run file holds everything so far
    DIVERGED = "diverged"
    ERROR = "error"
    INTERRUPTED = "interrupted"  # its file says running, but the writer is gone

    @classmethod
    def parse(cls, value: object) -> RunStatus:
        """A status read from a file or an event; an unknown word is ``UNKNOWN``."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.UNKNOWN

    @property
    def live(self) -> bool:
        """Still being trained: more rows will come."""
        return self in (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.PAUSED)

    @property
    def bad(self) -> bool:
        """Ended abnormally; reported in a dialog."""
        return self in (RunStatus.DIVERGED, RunStatus.ERROR)


class TrainingState(enum.StrEnum):
    """The app's training controls: what Start, Pause and Stop can do now."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"

    @property
    def busy(self) -> bool:
        return self is not TrainingState.IDLE

    @property
    def stoppable(self) -> bool:
        return self in (TrainingState.STARTING, TrainingState.RUNNING, TrainingState.PAUSED)
