"""Node cards readable at the default zoom (10 px text or more, down to Fit to View's smallest
zoom), a status that wraps to two lines and elides the rest (whole in the tooltip), and a
project fitted to the view when it opens, and again when the view's size changes."""

from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont, QFontMetrics

from gui.asset_paths import DEMO
from gui.canvas import items
from gui.canvas.items import INPUTS_W, NODE_H, NODE_W, pixel_font, wrap_lines
from gui.canvas.view import MAX_FIT, MIN_FIT
from gui.document.kinds import KINDS


def test_card_text_is_ten_pixels_or_more_at_the_default_zoom_and_the_card_fits_it(qapp):
    sizes = {"header": items.HEADER_PX, "title": items.TITLE_PX, "line": items.LINE_PX,
             "status": items.STATUS_PX}
    assert all(px * MIN_FIT >= 10 for px in sizes.values()), sizes  # also at the smallest fit
    assert items.PORT_PX >= 10
    for px, room in ((items.TITLE_PX, items.TITLE_H), (items.LINE_PX, items.LINE_H),
                     (items.STATUS_PX, items.STATUS_H)):
        assert QFontMetrics(pixel_font(QFont(), px)).height() <= room + 1, (px, room)
    inside = (items.HEADER_H + 4 + items.TITLE_H + 2 * items.LINE_H
              + items.STATUS_LINES * items.STATUS_H)
    assert NODE_H >= inside
    port_font = QFontMetrics(pixel_font(QFont(), items.PORT_PX))
    longest = max(port_font.horizontalAdvance(p.name) for k in KINDS.values() for p in k.inputs)
    assert 10 + longest <= INPUTS_W - 5  # the input names stay left of the card's divider


def test_the_status_wraps_to_two_lines_and_elides_with_the_whole_text_in_the_tooltip(window):
    assert window.open_project(DEMO, ask=False)
    student = window.scene.node_items[window.doc.student().id]
    metrics = QFontMetrics(pixel_font(QFont(), items.STATUS_PX))
    width = int(NODE_W - INPUTS_W - 16)
    text = "completed: val/acc 0.978 · epoch 20/20"
    student.set_live(text)
    lines = student.status_lines()
    assert len(lines) == 2 and " · ".join(lines) == text  # two lines, nothing cut
    assert not lines[1].startswith("·") and not lines[0].endswith("·")
    assert all(metrics.horizontalAdvance(line) <= width for line in lines)
    long = "completed: val/acc 0.978 · epoch 20/20 · " + "a very long status that goes on " * 4
    student.set_live(long)
    lines = student.status_lines()
    assert len(lines) == 2 and lines[1].endswith("…")
    assert long in student.toolTip()
    assert wrap_lines(metrics, "short", width) == ["short"]
    one_word = "x" * 200  # no space to break at: cut, then elided
    assert [len(s) > 0 for s in wrap_lines(metrics, one_word, width)] == [True, True]


def visible_scene_rect(view) -> QRectF:
    return view.mapToScene(view.viewport().rect()).boundingRect()


def test_a_project_is_fitted_and_centred_when_it_opens_and_when_the_view_grows(window, qtbot):
    window.resize(1600, 1000)
    for dock in (window.dashboard_dock, window.runs_dock, window.export_dock, window.insights_dock):
        dock.hide()
    qtbot.wait(50)
    assert window.open_project(DEMO, ask=False)
    view = window.view
    graph = window.scene.itemsBoundingRect()
    assert MIN_FIT <= view.transform().m11() <= MAX_FIT
    assert visible_scene_rect(view).contains(graph)  # the whole demo on show
    centre = view.mapFromScene(graph.center())
    assert abs(centre.x() - view.viewport().width() / 2) < 30  # not in a corner

    window.dashboard_dock.show()  # the view shrinks: fitted again
    window.resize(1200, 700)
    qtbot.waitUntil(lambda: view.viewport().height() < 500, timeout=3000)
    qtbot.wait(50)
    assert view.transform().m11() >= MIN_FIT  # never smaller than readable: the start shown,
    assert visible_scene_rect(view).top() <= graph.top()  # its top
    assert visible_scene_rect(view).left() <= graph.left()  # and its left, where the data and teachers are
    assert not visible_scene_rect(view).contains(graph)  # (the rest is a scroll away)
    view.zoom(1.2)  # the user's zoom: kept from now on
    scale = view.transform().m11()
    window.resize(1300, 760)
    qtbot.wait(50)
    assert view.transform().m11() == scale


def test_the_demo_opens_whole_and_readable_with_the_docks_in_their_first_places(window, qtbot):
    """A new user's window (1600×1000, the dashboard below, palette and inspector beside): the
    demo's default layout (the strategy beside the last teacher) is all on show at a readable zoom."""
    window.resize(1600, 1000)
    qtbot.wait(50)
    assert window.open_project(DEMO, ask=False)
    qtbot.wait(50)
    view = window.view
    assert MIN_FIT <= view.transform().m11() <= MAX_FIT
    assert visible_scene_rect(view).contains(window.scene.itemsBoundingRect())
