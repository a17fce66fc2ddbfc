"""What a run looks like to the views: the state they subscribe to, and nothing that computes.

- :class:`~explorer.state.session.RunSession`: one run's configuration, status and growing
  history (per-step and per-epoch numpy columns), and its latest diagnosis. Fed on the GUI
  thread by the controller, from a training task's events, a followed run file's new rows, or
  once from a finished file.
- :class:`~explorer.state.runs.RunsModel`: the runs on screen and the current one.
- :class:`~explorer.state.columns.ColumnStore`: the growing columns.
- :class:`~explorer.state.status.RunStatus`, :class:`~explorer.state.status.TrainingState`:
  the states, as enums.

Views take a session or the runs model in their constructor and connect to its signals.
All values are per data sample, in nats, as the engine reports them.
"""

from .columns import ColumnStore, event_row
from .runs import RUN_COLOURS, RunsModel
from .session import RunSession
from .status import RunStatus, TrainingState

__all__ = ["RUN_COLOURS", "ColumnStore", "RunSession", "RunStatus", "RunsModel", "TrainingState",
           "event_row"]
