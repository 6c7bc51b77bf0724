"""The Runs panel's list and its comparison of several runs, on real widgets over a real
SQLite file written through the store's API (tests/gui/runs_fixture.py)."""

from __future__ import annotations

import time

from PySide6.QtGui import QGuiApplication

from engine.store import Store
from gui import theme
from gui.panels.run_comparison import compare_runs
from tests.gui.runs_fixture import DEMO, START, write_runs


def _rows(panel) -> dict[str, list[str]]:
    table = panel.comparison.table
    return {table.verticalHeaderItem(i).text(): [table.item(i, j).text() for j in range(table.columnCount())]
            for i in range(table.rowCount())}


def _highlighted(panel, label: str) -> list[bool]:
    table = panel.comparison.table
    i = next(i for i in range(table.rowCount()) if table.verticalHeaderItem(i).text() == label)
    return [table.item(i, j).background().color().name() == theme.current().differs for j in range(table.columnCount())]


def _runs(window, tmp_path) -> list[int]:
    ids = write_runs(window.store.path, tmp_path / "work")
    window.runs.refresh()
    window.runs_dock.raise_()
    return ids


def test_the_list_tells_identical_runs_apart_and_counts_only_the_engines_time(window, tmp_path):
    first, second, third = _runs(window, tmp_path)
    table = window.runs.table
    cells = {int(table.item(i, 0).text()): [table.item(i, j).text() for j in range(table.columnCount())]
             for i in range(table.rowCount())}
    assert set(cells) == {first, second, third}
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(START))
    assert cells[first][6] == started  # the start to the second: runs of one minute told apart
    assert cells[first][6] != cells[second][6]
    # run 2 was stopped after 15 s, left an hour, resumed for 25 s: 40 s of work, not 1h 40s
    assert cells[second][4] == "40s" and cells[third][4] == "1m 17s"


def test_two_or_more_selected_runs_are_shown_side_by_side(window, qtbot, tmp_path):
    first, second, third = _runs(window, tmp_path)
    panel = window.runs
    panel.select_ids([first])
    assert not panel.comparison.isVisible() and panel.hint.isVisible()  # one run: nothing to compare

    panel.select_ids([first, second, third])
    qtbot.waitUntil(panel.comparison.isVisible)
    assert not panel.hint.isVisible()
    table = panel.comparison.table
    headers = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert len(headers) == 3 and all(h.startswith("digits experts\n#") for h in headers)
    assert headers[-1] == f"digits experts\n#{first} · " + time.strftime("%Y-%m-%d %H:%M:%S",
                                                                         time.localtime(START))
    rows = _rows(panel)  # newest first, as in the list: run 3, run 2, run 1
    assert rows["student"] == ["mlp"] * 3 and rows["student width"] == ["512", "256", "256"]
    assert rows["teachers"] == ["low digits, middle digits, high digits"] * 3
    assert rows["strategy"] == ["hinton_kd"] * 3 and rows["temperature"] == ["4"] * 3
    assert rows["epochs"] == ["30", "20", "20"] and rows["lr"] == ["0.005", "0.002", "0.002"]
    assert rows["batch size"] == ["64"] * 3 and rows["data"] == ["builtin: digits"] * 3
    assert rows["seed"] == ["7", "0", "0"]  # a differing setting the fixed rows do not show
    assert rows["duration"] == ["1m 17s", "40s", "41s"] and rows["device"] == ["cpu (8 threads)"] * 3
    assert rows["best val acc"] == ["0.9630", "0.9481", "0.9519"]
    assert rows["final test acc"] == ["0.9593", "0.9407", "0.9444"]
    assert rows["test acc: middle digits"] == ["0.9600"] * 3
    assert rows["parameters"] == ["302,602", "85,002", "85,002"]
    assert rows["export accuracy"] == ["not exported", "not exported", "ONNX 0.9444, int8 0.9407"]
    assert _highlighted(panel, "lr") == [True] * 3 and _highlighted(panel, "teachers") == [False] * 3
    summary = panel.comparison.summary.text()
    assert "4 setting(s) differ" in summary and all(k in summary for k in ("student width", "epochs", "lr", "seed"))

    panel.comparison.only_differences.setChecked(True)
    labels = list(rows)
    assert not table.isRowHidden(labels.index("lr")) and table.isRowHidden(labels.index("teachers"))
    panel.comparison.only_differences.setChecked(False)
    assert not table.isRowHidden(labels.index("teachers"))

    panel.comparison.copy_tsv.click()
    tsv = QGuiApplication.clipboard().text().splitlines()
    assert tsv[0].split("\t")[1].startswith("digits experts #") and "lr\t0.005\t0.002\t0.002" in tsv
    panel.comparison.copy_md.click()
    markdown = QGuiApplication.clipboard().text()
    assert "| **lr** | 0.005 | 0.002 | 0.002 |" in markdown and "| teachers |" in markdown

    panel.select_ids([first, second])  # one spec, run twice
    qtbot.waitUntil(lambda: panel.comparison.table.columnCount() == 2)
    assert panel.comparison.summary.text().startswith("same spec")
    rows = _rows(panel)
    assert rows["lr"] == ["0.002", "0.002"] and "seed" not in rows
    assert _highlighted(panel, "lr") == [False, False] and _highlighted(panel, "best val acc") == [True, True]

    panel.select_ids([second])
    qtbot.waitUntil(lambda: not panel.comparison.isVisible())


def test_the_selection_stays_whole_when_the_list_refreshes(window, qtbot, tmp_path):
    first, second, third = _runs(window, tmp_path)
    window.runs.select_ids([first, third])
    store = Store(window.store.path)  # another run starts: the list changes under the selection
    store.create_run("another", "{}", "h", tmp_path / "another", "cpu")
    store.close()
    window.runs.refresh()
    assert len(window.runs.rows) == 4
    assert sorted(window.runs.selected_ids()) == sorted([first, third])
    assert window.runs.comparison.isVisible() and window.runs.comparison.table.columnCount() == 2


def test_compared_overlays_go_with_a_new_or_another_project_but_stay_for_a_run_opened(window, qtbot, tmp_path):
    first, second, third = _runs(window, tmp_path)
    window.runs.select_ids([first, second])
    assert sorted(window.dashboard.history) == sorted([first, second]) and all(window.dashboard.history.values())

    window.new_project()  # File > New
    assert window.dashboard.history == {} and window.runs.selected_ids() == []
    assert not window.runs.comparison.isVisible()

    window.runs.select_ids([second, third])
    assert sorted(window.dashboard.history) == sorted([second, third])
    assert window.open_project(DEMO, ask=False)  # File > Open
    assert window.dashboard.history == {} and window.runs.selected_ids() == []

    window.runs.select_ids([third])
    window.runs.buttons["open"].click()  # the run's own pipeline: its curves stay
    qtbot.waitUntil(lambda: window.doc.student() is not None)
    assert list(window.dashboard.history) == [third] and window.runs.selected_ids() == [third]


def test_runs_without_a_readable_spec_compare_without_failing(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    a = store.create_run("a", "{}", "h", tmp_path / "a", "cpu")
    b = store.create_run("b", "not json", "h", tmp_path / "b", "cpu")
    comparison = compare_runs(store, [a, b, 999])  # 999: not in the store, left out
    assert comparison.run_ids == [a, b] and comparison.summary.startswith("same spec")
    rows = {r.label: r.values for r in comparison.rows}
    assert rows["lr"] == ["–", "–"] and rows["status"] == ["running", "running"]
    assert rows["export accuracy"] == ["not exported", "not exported"]
