"""The app's actions, in one table: menus, toolbar, shortcuts and the shortcuts help come from it.

Each :class:`ActionSpec` names an action once, with its text, keys and tip; :data:`MENUS` and
:data:`TOOLBAR` place them; :func:`shortcut_rows` lists them in Help > Keyboard shortcuts.
The main window gives the slots (:func:`build_actions`); an extension connects the action the
table holds for it (the latent explorer: ``open_decoder``, ``remove_anchor``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence

from models.diagnostics.remedies import REMEDIES


@dataclass(frozen=True)
class ActionSpec:
    key: str  # the window's attribute is ``act_<key>``
    text: str  # with its & mnemonic
    shortcuts: tuple[str, ...] = ()
    tip: str = ""
    help: str = ""  # its name in the shortcuts help (default: the text)

    @property
    def title(self) -> str:
        return self.help or self.text.replace("&", "")


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("new", "&New run", ("Ctrl+N",), "Set up a new training run"),
    ActionSpec("open", "&Open run…", ("Ctrl+O",), "Open a run file"),
    ActionSpec("open_data", "Open &data set…", ("Ctrl+Shift+O",), "Use an HDF5 file as training data"),
    ActionSpec("open_decoder", "Open ONNX &decoder…", ("Ctrl+Shift+D",),
               "Explore a decoder someone shared (no training data or torch needed)"),
    ActionSpec("open_model", "Open &model…", ("Ctrl+Shift+M",),
               "Diagnose and explore a VAE trained elsewhere: an ONNX encoder and decoder on a data set"),
    ActionSpec("export", "&Export decoder to ONNX…", ("Ctrl+E",),
               "Export the current run's decoder for sharing"),
    ActionSpec("cancel_export", "Cancel e&xport", (), "Stop the export in progress; nothing is written"),
    ActionSpec("save_plot", "&Save plot as image…", ("Ctrl+S",), "Save the selected plot as a PNG image"),
    ActionSpec("quit", "&Quit", ("Ctrl+Q",), "Quit Latent Explorer"),
    ActionSpec("start", "&Start", ("F5",), "Start training", help="Start training"),
    ActionSpec("pause", "&Pause / resume", ("F6",), "Pause or resume training"),
    ActionSpec("stop", "S&top", ("Shift+F5",), "Stop training", help="Stop"),
    ActionSpec("new_sweep", "New s&weep…", ("Ctrl+Shift+N",),
               "Train runs that differ in one or two settings (a beta sweep: the frontier)"),
    ActionSpec("pause_sweep", "Pause / resume s&weep", (), "Pause or resume every run of the sweep"),
    ActionSpec("stop_sweep", "Stop swee&p", (), "Stop every run of the sweep within one step"),
    *(ActionSpec(f"try_{r.key}", r.text, (), f"Train the current run again, same seed, with {r.change}")
      for r in REMEDIES.values()),
    ActionSpec("diagnose", "&Diagnose now", ("F7",), "Full diagnosis of the current run, with the ELBO gap"),
    ActionSpec("cancel_diagnosis", "Cancel dia&gnosis", (), "Stop the diagnosis in progress"),
    ActionSpec("use_config", "&Use settings of this run", (),
               "Copy the current run's settings into the training form"),
    ActionSpec("prev_run", "Previous run", ("Ctrl+PgUp",)),
    ActionSpec("next_run", "Next run", ("Ctrl+PgDown",)),
    ActionSpec("close_run", "&Close run", ("Ctrl+W",), "Remove the current run from the plots"),
    ActionSpec("reset_layout", "&Reset layout", (), "Restore the default dock layout"),
    ActionSpec("runs_folder", "Open the &runs folder", (), "Show the folder where new runs are written"),
    ActionSpec("shortcuts", "&Keyboard shortcuts", ("F1",)),
    ActionSpec("about", "&About"),
    # The latent explorer's, active where its map has the focus.
    ActionSpec("remove_anchor", "Remove anchor", ("Del", "Backspace"), "Remove the current anchor",
               help="Remove the current anchor (latent explorer)"),
)

SPECS: dict[str, ActionSpec] = {spec.key: spec for spec in ACTIONS}

#: Menus by attribute name (``file_menu``...), title and content: action keys, ``None`` for a
#: separator, ``"@recent"`` for the recent files. The View menu's dock toggles come first.
MENUS: tuple[tuple[str, str, tuple[str | None, ...]], ...] = (
    ("file", "&File", ("new", "open", "open_data", "open_decoder", "open_model", "@recent", None, "export",
                       "cancel_export", "save_plot", None, "quit")),
    ("run", "&Run", ("start", "pause", "stop", None, "new_sweep", "pause_sweep", "stop_sweep", None, "diagnose", "cancel_diagnosis", None,
                     "use_config", "prev_run", "next_run", "close_run")),
    ("view", "&View", (None, "reset_layout")),
    ("tools", "&Tools", ("runs_folder",)),
    ("help", "&Help", ("shortcuts", "about")),
)

TOOLBAR: tuple[str | None, ...] = ("open", None, "start", "pause", "stop", None, "diagnose",
                                   "save_plot")

#: What the help lists besides the actions' keys.
GESTURES: tuple[tuple[str, str], ...] = (
    ("Add an anchor (latent explorer)", "double-click on the map"),
)


def make_action(key: str, parent: QObject, slot: Callable | None = None) -> QAction:
    """The QAction of ``SPECS[key]``, connected to ``slot`` when one is given."""
    spec = SPECS[key]
    action = QAction(spec.text, parent)
    action.setObjectName(f"action.{key}")
    if spec.shortcuts:
        action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
    if spec.tip:
        action.setStatusTip(spec.tip)
        keys = action.shortcut().toString()
        action.setToolTip(f"{spec.tip} ({keys})" if keys else spec.tip)
    if slot is not None:
        action.triggered.connect(slot)
    return action


def build_actions(parent: QObject, slots: dict[str, Callable]) -> dict[str, QAction]:
    """Every action placed in a menu or the toolbar, keyed like the table; those without a slot
    in ``slots`` are left for an extension to connect."""
    keys = {k for _n, _t, items in MENUS for k in items if k and not k.startswith("@")}
    keys |= {k for k in TOOLBAR if k}
    return {spec.key: make_action(spec.key, parent, slots.get(spec.key))
            for spec in ACTIONS if spec.key in keys}


def widget_action(key: str, parent, slot: Callable) -> QAction:
    """An action of the table that works only where ``parent`` (a widget) has the focus."""
    action = make_action(key, parent, slot)
    action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    parent.addAction(action)
    return action


def keys_text(key: str) -> str:
    """The keys of ``SPECS[key]`` as the user reads them (``"Shift+F5"``), for tooltips."""
    return " / ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText)
                      for s in SPECS[key].shortcuts)


def shortcut_rows() -> list[tuple[str, str]]:
    """(what, keys) for the shortcuts help: every action with keys, then the gestures."""
    rows = []
    for spec in ACTIONS:
        if spec.shortcuts:
            rows.append((spec.title, keys_text(spec.key)))
    return rows + list(GESTURES)
