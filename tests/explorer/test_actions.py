"""Menus, toolbar and the shortcuts help come from one table of actions."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence

from explorer.actions import ACTIONS, MENUS, SPECS, TOOLBAR, shortcut_rows


def test_every_action_of_the_window_has_the_keys_of_the_table(window):
    for key, action in window.actions_by_key.items():
        want = [QKeySequence(s) for s in SPECS[key].shortcuts]
        assert action.shortcuts() == want, key
        assert getattr(window, f"act_{key}") is action


def test_no_two_actions_share_a_key():
    keys = [QKeySequence(s).toString() for spec in ACTIONS for s in spec.shortcuts]
    assert len(keys) == len(set(keys))


def test_the_help_lists_the_table(window, monkeypatch):
    rows = dict(shortcut_rows())
    for spec in ACTIONS:
        if spec.shortcuts:
            assert spec.title in rows
    assert rows["Start training"] == "F5"
    assert rows["Open ONNX decoder…"] == "Ctrl+Shift+D"
    shown = []
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()))
    window.act_shortcuts.trigger()
    assert "Start training" in shown[0] and "Shift+F5" in shown[0]


def test_menus_and_toolbar_hold_the_table_in_its_order(window):
    for name, _title, items in MENUS:
        menu = getattr(window, f"{name}_menu")
        texts = [a.text() for a in menu.actions() if not a.isSeparator()]
        want = [SPECS[k].text for k in items if k and not k.startswith("@")]
        assert [t for t in texts if t in want] == want, name
    toolbar = [a for a in window.toolbar.actions() if a in window.actions_by_key.values()]
    assert toolbar == [window.actions_by_key[k] for k in TOOLBAR if k]


def test_start_in_the_menu_asks_the_form(window, errors):
    window.training_panel.hidden_edit.setText("not numbers")
    window.act_start.trigger()  # the form's public request, not a private slot
    assert len(errors) == 1 and "hidden" in errors[0]
