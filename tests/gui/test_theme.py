"""View → Theme: a dark palette for the window, the canvas, its cards and the plots; back to
light; the choice kept in the settings."""

from __future__ import annotations

import statistics

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QMenu

from gui import theme
from gui.canvas.items import NODE_W
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
