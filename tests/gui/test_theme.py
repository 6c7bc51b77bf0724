"""View → Theme: a dark palette for the window, the canvas, its cards and the plots; back to
light; the choice kept in the settings."""

from __future__ import annotations

import gc
import statistics
import weakref

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QMenu

from gui import theme
from gui.canvas.items import NODE_W
from gui.panels.heatmap import HeatMap
from tests.helpers import DEMO


def luminance(color: QColor) -> float:
    return 0.2126 * color.redF() + 0.7152 * color.greenF() + 0.0722 * color.blueF()


def window_luminance() -> float:
    return luminance(QApplication.instance().palette().color(QPalette.Window))


def canvas_luminance(window) -> float:
    """The median of a patch of the canvas as drawn (the background and its grid of dots)."""
    window.view.viewport().repaint()
    image = window.view.viewport().grab().toImage()
    return statistics.median(luminance(image.pixelColor(x, y)) for x in range(2, 30) for y in range(2, 30))


def card_luminance(window) -> float:
    """A node card's body as the scene paints it (inside its bottom-right corner)."""
    item = next(iter(window.scene.node_items.values()))
    box = item.sceneBoundingRect()
    image = QImage(int(box.width()), int(box.height()), QImage.Format_ARGB32)
    image.fill(QColor("magenta"))
    painter = QPainter(image)
    window.scene.render(painter, QRectF(0, 0, box.width(), box.height()), box)
    painter.end()
    at = item.mapToScene(QPointF(NODE_W - 10, item.height - 4)) - box.topLeft()
    return luminance(image.pixelColor(int(at.x()), int(at.y())))


def plot_luminance(window) -> tuple[float, float]:
    """(the dashboard plots' background, their axis text) as drawn."""
    image = window.dashboard.graphics.grab().toImage()
    background = luminance(image.pixelColor(3, 3))
    axis = next(iter(window.dashboard.plots.values())).getAxis("left")
    return background, luminance(axis.textPen().color())


@pytest.fixture
def light_after():
    yield
    theme.apply("light")  # what the other tests expect


def test_dark_and_back_to_light(window, settings, light_after):
    assert window.open_project(DEMO, ask=False)
    assert window_luminance() > 0.6 and canvas_luminance(window) > 0.6 and card_luminance(window) > 0.6
    assert plot_luminance(window)[0] > 0.6

    window.theme_actions["dark"].trigger()
    assert window_luminance() < 0.3
    assert canvas_luminance(window) < 0.3
    assert card_luminance(window) < 0.3
    background, text = plot_luminance(window)
    assert background < 0.3 and text > 0.6  # axes readable on it
    assert settings.value(theme.SETTING) == "dark"
    assert pg.getConfigOption("background") == theme.DARK.plot_background  # plots made later

    window.theme_actions["light"].trigger()
    assert window_luminance() > 0.6 and canvas_luminance(window) > 0.6 and card_luminance(window) > 0.6
    background, text = plot_luminance(window)
    assert background > 0.6 and text < 0.4
    assert settings.value(theme.SETTING) == "light"


def test_the_choice_is_kept_for_the_next_start(qapp, settings, light_after):
    settings.setValue(theme.SETTING, "dark")
    theme.apply("light")
    menu = QMenu()
    actions = theme.add_menu(menu, settings)  # as the window builds its View menu
    assert actions["dark"].isChecked() and not actions["system"].isChecked()
    assert theme.current().dark and window_luminance() < 0.3


def test_system_follows_the_desktop(qapp, monkeypatch, light_after):
    monkeypatch.setattr(theme, "system_is_dark", lambda: True)
    assert theme.apply("system").dark and window_luminance() < 0.3
    assert not theme.apply("light").dark and window_luminance() > 0.6  # Light on a dark desktop
    monkeypatch.setattr(theme, "system_is_dark", lambda: False)
    assert not theme.apply("system").dark


def test_the_runs_panel_says_where_the_tensorboard_files_are(window, tmp_path, monkeypatch):
    """The folder and the command, copied to the clipboard; no server is started."""
    told = []
    monkeypatch.setattr(window.runs, "_inform", lambda title, text: told.append(text))
    with_files, older = tmp_path / "with files", tmp_path / "older"
    (with_files / "tensorboard").mkdir(parents=True)
    (with_files / "tensorboard" / "events.out.tfevents.1.host.s0000").write_bytes(b"")
    older.mkdir()
    first = window.store.create_run("with files", "{}", "h1", with_files, "cpu")
    second = window.store.create_run("older", "{}", "h2", older, "cpu")
    window.runs.refresh()
    window.runs.select_ids([first])
    button = window.runs.buttons["tensorboard"]
    assert button.isEnabled()
    button.click()
    command = f"tensorboard --logdir '{with_files / 'tensorboard'}'"
    assert QApplication.clipboard().text() == command
    assert str(with_files / "tensorboard") in told[-1] and command in told[-1]

    window.runs.select_ids([second])
    button.click()
    written = f"distill-engine tensorboard {older} && tensorboard --logdir {older}/tensorboard"
    assert QApplication.clipboard().text() == written
    assert "no TensorBoard files yet" in told[-1]


def spread(widget) -> tuple[float, float]:
    """(the median luminance of the widget as drawn: its background, the luminance farthest from
    it: its text)."""
    image = widget.grab().toImage()
    values = [luminance(image.pixelColor(x, y)) for x in range(0, image.width(), 2)
              for y in range(0, image.height(), 2)]
    middle = statistics.median(values)
    return middle, max(values, key=lambda v: abs(v - middle))


def readable_on_dark(widget) -> bool:
    background, text = spread(widget)
    return background < 0.3 and text - background > 0.45


def readable_on_light(widget) -> bool:
    background, text = spread(widget)
    return background > 0.6 and background - text > 0.45


def test_the_welcome_page_follows(window, light_after):
    assert window.welcome_shown
    page = window.welcome.widget()
    step = window.welcome.step_frames[0]
    title = window.welcome.findChild(QLabel, "welcome-title")
    assert readable_on_light(page) and readable_on_light(step) and readable_on_light(title)
    window.theme_actions["dark"].trigger()
    assert readable_on_dark(page) and readable_on_dark(title)
    assert readable_on_dark(step)  # a step's box is no white box on the dark page
    link = window.welcome.open_button
    assert luminance(QColor(theme.DARK.link)) > 0.4 and theme.DARK.link in page.styleSheet()
    assert link.isVisible()
    window.theme_actions["light"].trigger()
    assert readable_on_light(page) and readable_on_light(step)


def test_the_result_bar_follows_whatever_it_shows(window, light_after):
    bar = window.result_bar
    bar.show_completed(7, 0.959, 0.978)
    assert readable_on_light(bar)
    window.theme_actions["dark"].trigger()
    assert readable_on_dark(bar)
    assert theme.DARK.bar_ok[0] in bar.styleSheet()
    bar.show_exporting("writing ONNX", 0.4)
    assert theme.DARK.bar_busy[0] in bar.styleSheet()
    bar.show_failed("Run #7.", "no space left")
    assert theme.DARK.bar_bad[0] in bar.styleSheet() and readable_on_dark(bar.label)
    window.theme_actions["light"].trigger()
    assert theme.LIGHT.bar_bad[0] in bar.styleSheet() and readable_on_light(bar.label)  # the same look, in light


def test_the_dashboard_legends_and_a_later_plot_follow(window, light_after):
    dash = window.dashboard
    dash.add_metrics(0.5, {"loss/total": 1.0, "val/acc": 0.5, "lr": 0.1}, step=5)
    dash._redraw()
    window.theme_actions["dark"].trigger()
    labels = [label for legend in dash.legends.values() for _, label in legend.items]
    assert labels and all(luminance(QColor(label.opts["color"])) > 0.6 for label in labels)
    dash.add_metrics(0.6, {"grad/head": 0.5}, step=6)  # a plot shown on demand, made in dark
    dash._redraw()
    grad = dash.plots["grad"]
    assert luminance(grad.getAxis("left").textPen().color()) > 0.6
    assert plot_luminance(window)[0] < 0.3
    dash.add_log("it failed", error=True)
    block = dash.log.document().lastBlock()
    assert block.begin().fragment().charFormat().foreground().color().name() == theme.DARK.error


def test_the_runs_comparison_follows(window, tmp_path, light_after):
    from tests.gui.runs_fixture import write_runs

    ids = write_runs(window.store.path, tmp_path / "work")
    window.runs.refresh()
    window.runs.select_ids(ids)
    table = window.runs.comparison.table
    differing = [(i, j) for i in range(table.rowCount()) for j in range(table.columnCount())
                 if table.item(i, j).background().style() != Qt.NoBrush]
    assert differing
    window.theme_actions["dark"].trigger()
    assert {table.item(i, j).background().color().name() for i, j in differing} == {theme.DARK.differs}
    assert all(luminance(table.item(i, j).background().color()) < 0.3 for i, j in differing)  # light text on it
    statuses = [window.runs.table.item(i, 2).foreground().color() for i in range(window.runs.table.rowCount())]
    assert statuses and all(luminance(c) > 0.4 for c in statuses)
    window.theme_actions["light"].trigger()
    assert {table.item(i, j).background().color().name() for i, j in differing} == {theme.LIGHT.differs}


def test_a_deleted_plot_is_never_restyled_and_nothing_keeps_it_alive(qapp, light_after):
    """A follower is the widget's child: gone with it, its connection with it. A widget without a
    parent is freed when Python lets it go (the follower holds no reference to it)."""
    from shiboken6 import Shiboken

    parent = pg.GraphicsLayoutWidget()
    plot = pg.PlotWidget(parent)
    theme.style_plot(plot)
    heat = HeatMap("heat", parent)
    heat.set_matrix([[1.0, None], [0.5, 0.2]], ["a", "b"], ["a", "b"])
    Shiboken.delete(parent)  # the C++ widgets go now, their children (the followers) with them
    assert not Shiboken.isValid(plot) and not Shiboken.isValid(heat)
    theme.apply("dark")  # no restyle of a deleted plot (a crash, before)
    theme.apply("light")

    loose = pg.PlotWidget()
    theme.style_plot(loose)
    alive = weakref.ref(loose)
    del loose
    gc.collect()
    assert alive() is None
    theme.apply("dark")
