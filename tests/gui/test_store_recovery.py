"""The app with a damaged run store, or a project nested too deeply: a question or a message,
never a traceback that ends it (issue 22)."""

from __future__ import annotations

import pytest


def test_the_app_starts_with_a_damaged_store_after_moving_it_aside(qtbot, settings, tmp_path, monkeypatch):
    import gui.store_recovery as recovery
    from gui.main_window import MainWindow

    db = tmp_path / "runs.sqlite"
    db.write_bytes(b"not a database at all " * 4096)
    asked = []
    monkeypatch.setattr(recovery, "ask_with_a_box", lambda exc: asked.append(exc.path) or True)
    win = MainWindow(settings, db=db)
    qtbot.addWidget(win)
    assert asked == [db]
    assert win.store.runs() == []
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("runs.sqlite.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"not a database")
    win.undo_stack.setClean()
    win.close()


def test_declining_leaves_the_damaged_store_and_quits(tmp_path):
    from gui.store_recovery import open_store

    db = tmp_path / "runs.sqlite"
    db.write_bytes(b"not a database at all " * 4096)
    with pytest.raises(SystemExit) as raised:
        open_store(db, ask=lambda exc: False)
    assert raised.value.code == 2 and db.read_bytes().startswith(b"not a database")


def test_a_deeply_nested_project_is_refused_with_a_message(window, tmp_path):
    path = tmp_path / "deep.distill.json"
    path.write_text('{"schema_version": 1, "name": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert window.open_project(path, ask=False) is False
    path.write_text('{"schema_version": 1, "layout": ' + "[" * 150 + "]" * 150 + "}")
    assert window.open_project(path, ask=False) is False
