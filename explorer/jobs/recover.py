"""Recovering run files whose writer died (``models.io.recover.recover``), as a task.

Each file is recovered in turn (a verified copy renamed over it; the original stays as it was
on any failure); a file that cannot be recovered does not stop the others: its one line is in
the result. Progress per file; a cancel is seen between files.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tasks import TaskState


@dataclass(frozen=True)
class Recovered:
    """One file's outcome: ``ok`` with the engine's line, or the line saying why not."""

    path: str
    ok: bool
    line: str


def recover_task(state: TaskState, paths: list[str]) -> list[Recovered]:
    """The task: ``models.io.recover.recover`` for each of ``paths``."""
    from models.errors import LatentExplorerError
    from models.io.recover import recover

    from ..dialogs import error_line

    out: list[Recovered] = []
    for i, path in enumerate(paths):
        state.raise_if_interrupted()
        state.set_progress(i, len(paths))
        try:
            out.append(Recovered(path, True, recover(path).line))
        except (LatentExplorerError, OSError) as exc:
            out.append(Recovered(path, False, error_line(exc)))
    state.set_progress(len(paths), len(paths))
    return out
