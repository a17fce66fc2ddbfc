"""The runs table: figures from the runs, rename, hide, remove, and runs remembered across launches."""

from __future__ import annotations

import dataclasses
import os

from explorer.panels.runs_table import (
    ACTIVE, DIST, ELBO, IWAE, NAME, RATE, SETTINGS, STATUS, config_differences,
)


def _text(panel, row, col):
    return panel.proxy.index(row, col).data()


def test_the_table_shows_each_runs_figures_and_the_settings_that_differ(window, finished_run, tiny_config):
    first = window.controller.open_run(finished_run)
    panel = window.sweeps.table
    assert panel.model.rowCount() == 1
    assert _text(panel, 0, NAME) == first.name and _text(panel, 0, STATUS) == "finished"
    assert _text(panel, 0, RATE) == f"{first.epochs['val_rate'][-1]:.2f}"
    assert _text(panel, 0, DIST) == f"{first.epochs['val_distortion'][-1]:.2f}"
    assert _text(panel, 0, ELBO) == f"{first.epochs['val_elbo'][-1]:.2f}"
    assert _text(panel, 0, ACTIVE) == f"{first.epochs['active_units'][-1]:.0f}"
    assert _text(panel, 0, IWAE) == ""  # no diagnosis yet
    first.set_diagnosis({"iwae": -55.137, "active_units": 3})
    assert _text(panel, 0, IWAE) == "-55.14" and _text(panel, 0, ACTIVE) == "3"
    # The settings column: what differs from the first run.
    other = dataclasses.replace(first.config, objective=dataclasses.replace(first.config.objective, beta=4.0),
                                train=dataclasses.replace(first.config.train, seed=3))
    assert config_differences(first.config, other) == "beta=4, seed=3"
    from explorer.state import RunSession

    window.runs.add(RunSession("b", config=other, source="file"))
    assert _text(panel, 1, SETTINGS) == "beta=4, seed=3" and _text(panel, 0, SETTINGS) == ""


def test_sort_rename_hide_and_remove(window, finished_run, tiny_config):
    from explorer.state import RunSession

    panel = window.sweeps.table
    a = window.controller.open_run(finished_run)
    b = window.runs.add(RunSession("zzz", config=tiny_config, source="file"))
    # Sort by name, descending: "zzz" first; the row's run is what a click selects.
    from PySide6.QtCore import Qt

    panel.view.sortByColumn(NAME, Qt.SortOrder.DescendingOrder)
    assert panel.session_at(0) is b
    panel.view.selectRow(1)
    assert window.runs.current is a
    # Rename: unique names (a taken name gets a suffix).
    idx = panel.proxy.index(1, NAME)
    assert panel.proxy.setData(idx, "zzz")
    assert a.name == "zzz (2)"
    # Hide: the plane draws nothing of it; show brings it back.
    panel.set_visible([a], False)
    window.rd_panel.flush()
    items = window.rd_panel.run_items(a)
    assert not items.train.isVisible() and len(items.points) == 0
    panel.set_visible([a], True)
    window.rd_panel.flush()
    assert items.train.isVisible() and len(items.points) > 0
    # Remove from view: the file stays.
    panel.remove([a])
    assert a not in window.runs.sessions() and os.path.exists(finished_run)
    assert panel.model.rowCount() == 1


def test_runs_and_names_come_back_on_launch_and_names_stay_unique(make_window, finished_run, tiny_config,
                                                                   qtbot, wait_idle):
    w1 = make_window()
    s = w1.controller.open_run(finished_run)
    s.rename("my best run")
    trained = w1.start_training(tiny_config)
    wait_idle(w1)
    assert trained.name == "run 1"
    w1.close()

    w2 = make_window()
    qtbot.waitUntil(lambda: len(w2.runs) == 2, timeout=10_000)
    names = {x.name for x in w2.runs}
    assert names == {"my best run", "run 1"}
    assert w2.runs.find(finished_run).name == "my best run"
    # A new run does not restart at "run 1".
    assert w2.runs.next_name() == "run 2"


def test_the_runs_dock_is_a_tab_beside_the_kl_panel_with_one_tab_bar(window, qtbot):
    from PySide6.QtWidgets import QTabBar

    def runs_bars():
        return [b for b in window.findChildren(QTabBar) if b.isVisible()
                and "Runs" in [b.tabText(i) for i in range(b.count())]]

    assert window.tabifiedDockWidgets(window.kl_dock) == [window.sweeps.dock]
    qtbot.waitUntil(lambda: len(runs_bars()) == 1, timeout=5000)
    window.resize(1900, 1000)
    qtbot.waitUntil(lambda: len(runs_bars()) == 1, timeout=5000)


def test_the_settings_column_keeps_room_in_a_laptop_sized_dock(qtbot, tiny_config):
    # At 1280 x 720 the dock is ~570 px wide: fixed column widths left Settings 15 px ("…").
    from explorer.panels.runs_table import RunsTablePanel
    from explorer.state import RunSession, RunsModel

    runs = RunsModel()
    for beta in (0.25, 1.0, 4.0, 16.0):
        cfg = dataclasses.replace(tiny_config, objective=dataclasses.replace(tiny_config.objective, beta=beta))
        runs.add(RunSession(f"beta={beta:g}", config=cfg, source="file"))
    panel = RunsTablePanel(runs)
    qtbot.addWidget(panel)
    panel.resize(570, 300)
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.view
    text = _text(panel, 1, SETTINGS)
    assert text == "beta=1"
    needed = view.fontMetrics().horizontalAdvance(text) + 12
    assert view.columnWidth(SETTINGS) >= needed
    total = sum(view.columnWidth(c) for c in range(panel.model.columnCount()))
    assert total <= view.viewport().width()  # every column in view, no sideways scrolling
