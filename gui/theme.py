"""Colours and words the canvas and the panels share, so that a node's state looks the same
on its card and in the inspector; and the light and dark themes.

The theme follows the desktop (Qt 6.5+: the style hints' colour scheme) unless the user picks
Light or Dark in View → Theme (kept in QSettings under `view/theme`). `apply` sets the
application's style and palette (Fusion with a dark QPalette for dark), pyqtgraph's defaults
for plots made later, and restyles the plots made earlier (`style_plot`); what paints itself
(the canvas, its cards and links) reads `current()` when it paints and repaints on `changed()`;
a widget that holds colours (a style sheet, a table cell's brush) restyles itself through
`follow`, a child object that is gone with the widget, so a closed panel is never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QPalette

from gui.document.validation import ERROR, INCOMPLETE, OK

ACCENT = "#1f6feb"  # selection, a link being dragged, a running run
STATE_COLORS = {OK: QColor("#2f9e6b"), INCOMPLETE: QColor("#d9a21b"), ERROR: QColor("#d64545")}
STATE_WORDS = {OK: "configured", INCOMPLETE: "incomplete", ERROR: "error"}

SETTING = "view/theme"
CHOICES = {"system": "&System", "light": "&Light", "dark": "&Dark"}


@dataclass(frozen=True)
class Colors:
    dark: bool
    canvas: str  # the canvas's background and its grid of dots
    grid: str
    card: str  # a node card's body, its border when idle, its title, its other lines, its rules
    card_border: str
    card_title: str
    card_text: str
    card_muted: str
    card_rule: str
    port: str  # a port's fill (its ring is the node kind's colour)
    link_lighter: int  # QColor.lighter() factor for link colours (100: as they are)
    refusal_fill: str
    refusal_text: str
    plot_background: str  # pyqtgraph plots: background, axes and text, a legend's box
    plot_foreground: str
    legend: tuple[int, int, int, int]
    missing: str  # a heat map's cell without a value
    text: str  # plain labels in the panels: body, secondary, an error
    muted: str
    error: str
    ok: str  # words that say all is well (a run completed, a node configured, an export)
    good: str  # a better figure (the student beats its teacher; a teacher right)
    warning: str  # words that ask for a look (notes, a stopped run, settings that differ)
    link: str  # a link, a running run
    heading: str  # a page's titles and headings, its body text, a faint sign (an arrow)
    body: str
    faint: str
    page: str  # a page's background (the welcome page), a box on it, the box's border
    surface: str
    border: str
    accent_hover: str  # the welcome page's big button: hovered, focused
    accent_focus: str
    note: tuple[str, str]  # (text, background) of a box that warns, of one that informs
    info: tuple[str, str]
    bar_ok: tuple[str, str]  # the result bar: (background, bottom border) done, busy, failed
    bar_busy: tuple[str, str]
    bar_bad: tuple[str, str]
    differs: str  # a table cell's background: the runs differ, the student beats, trails
    beats: str
    trails: str
    bad_border: str  # the border of a cell that failed (an unreadable thumbnail)


LIGHT = Colors(dark=False, canvas="#f5f7fa", grid="#d5dbe3", card="#ffffff", card_border="#c9ced6",
               card_title="#1d2430", card_text="#4b5563", card_muted="#6b7280", card_rule="#e5e7eb",
               port="#ffffff", link_lighter=100, refusal_fill="#fdecec", refusal_text="#9b1c1c",
               plot_background="#ffffff", plot_foreground="#374151", legend=(255, 255, 255, 200),
               missing="#c9ccd1", text="#374151", muted="#6b7280", error="#c62828",
               ok="#2f9e6b", good="#1b7f4b", warning="#b26a00", link=ACCENT,
               heading="#1d2430", body="#4b5563", faint="#9aa4b2",
               page="#f5f7fa", surface="#ffffff", border="#d5dbe3", accent_hover="#1a5fcc", accent_focus="#0b3d91",
               note=("#8a5a00", "#fff7e0"), info=("#1f2937", "#eef6ee"),
               bar_ok=("#e8f5ee", "#9fd3b6"), bar_busy=("#e8f0fc", "#a9c4f0"), bar_bad=("#fdecec", "#eba3a3"),
               differs="#fde68a", beats="#d3f0dc", trails="#f9d6d6", bad_border="#f3b4b4")
DARK = Colors(dark=True, canvas="#1b1e23", grid="#3a404a", card="#2a2e35", card_border="#4a515c",
              card_title="#e6e8eb", card_text="#b8bec7", card_muted="#9aa1ab", card_rule="#3c424c",
              port="#2a2e35", link_lighter=135, refusal_fill="#4a2326", refusal_text="#ffc9c9",
              plot_background="#1e2127", plot_foreground="#c9cdd3", legend=(40, 44, 52, 210),
              missing="#4a4f57", text="#d4d8de", muted="#9aa1ab", error="#ff7b7b",
              ok="#5cc98f", good="#6fd39b", warning="#f0b45a", link="#6ea8fe",
              heading="#e6e8eb", body="#b8bec7", faint="#7c8591",
              page="#1b1e23", surface="#2a2e35", border="#4a515c", accent_hover="#3b82f6", accent_focus="#9cc2ff",
              note=("#ffd98a", "#3b3220"), info=("#d4d8de", "#223a2b"),
              bar_ok=("#1f3a2b", "#2f6b4a"), bar_busy=("#1d2c45", "#34558a"), bar_bad=("#442326", "#8a3a3f"),
              differs="#5c4a12", beats="#1f3d2a", trails="#4a2326", bad_border="#8a3a3f")

_current = LIGHT
_choice = "system"
_original: tuple[str, QPalette] | None = None  # the app's own style and palette, for Light
_watching = False  # the desktop's colour scheme is followed (add_menu)


class _Notifier(QObject):
    changed = Signal()


_notifier: _Notifier | None = None


def current() -> Colors:
    return _current


def choice() -> str:
    return _choice


def changed():
    """The signal emitted after the theme changed (connect to repaint)."""
    global _notifier
    if _notifier is None:
        _notifier = _Notifier()
    return _notifier.changed


def system_is_dark() -> bool:
    """Whether the desktop asks for dark colours (Qt 6.5+; older: never)."""
    hints = QGuiApplication.styleHints()
    scheme = getattr(Qt, "ColorScheme", None)
    return scheme is not None and hints.colorScheme() == scheme.Dark


def dark_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor("#2b2e33"), QColor("#1f2227"), QColor("#e6e8eb")
    for group in (QPalette.Active, QPalette.Inactive):
        p.setColor(group, QPalette.Window, window)
        p.setColor(group, QPalette.WindowText, text)
        p.setColor(group, QPalette.Base, base)
        p.setColor(group, QPalette.AlternateBase, QColor("#272a30"))
        p.setColor(group, QPalette.ToolTipBase, QColor("#3a3f47"))
        p.setColor(group, QPalette.ToolTipText, text)
        p.setColor(group, QPalette.PlaceholderText, QColor("#8a919b"))
        p.setColor(group, QPalette.Text, text)
        p.setColor(group, QPalette.Button, QColor("#353940"))
        p.setColor(group, QPalette.ButtonText, text)
        p.setColor(group, QPalette.BrightText, QColor("#ff6b6b"))
        p.setColor(group, QPalette.Light, QColor("#454a53"))
        p.setColor(group, QPalette.Midlight, QColor("#3c4048"))
        p.setColor(group, QPalette.Mid, QColor("#2f3238"))
        p.setColor(group, QPalette.Dark, QColor("#1a1c20"))
        p.setColor(group, QPalette.Shadow, QColor("#0d0e10"))
        p.setColor(group, QPalette.Highlight, QColor(ACCENT))
        p.setColor(group, QPalette.HighlightedText, QColor("#ffffff"))
        p.setColor(group, QPalette.Link, QColor("#6ea8fe"))
        p.setColor(group, QPalette.LinkVisited, QColor("#b197fc"))
    disabled = QColor("#7c828c")
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, disabled)
    p.setColor(QPalette.Disabled, QPalette.Base, window)
    p.setColor(QPalette.Disabled, QPalette.Button, QColor("#2f3238"))
    return p


def apply(which: str) -> Colors:
    """Use a theme: "system" (the desktop's), "light" or "dark". Returns its colours."""
    global _current, _choice, _original
    from PySide6.QtWidgets import QApplication, QStyleFactory

    _choice = which if which in CHOICES else "system"
    dark = system_is_dark() if _choice == "system" else _choice == "dark"
    app = QApplication.instance()
    if app is not None:
        if _original is None:
            _original = (app.style().name(), QPalette(app.palette()))

        def use_style(name: str) -> None:  # a new style only when it changes: Qt deletes the old one
            if app.style().name().lower() != name.lower() and name.lower() in (k.lower() for k in QStyleFactory.keys()):
                app.setStyle(QStyleFactory.create(name))

        if dark:
            use_style("Fusion")
            app.setPalette(dark_palette())
        elif system_is_dark():  # light asked on a dark desktop: Fusion's own light colours
            use_style("Fusion")
            app.setPalette(app.style().standardPalette())
        else:
            use_style(_original[0])
            app.setPalette(_original[1])
    _current = DARK if dark else LIGHT
    _configure_pyqtgraph()
    changed().emit()  # the plots and styled widgets restyle themselves (_Follower), the canvas repaints
    return _current


def _configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(background=_current.plot_background, foreground=_current.plot_foreground)


class _Follower(QObject):
    """A widget's child that calls `restyle(widget)` on every change of theme; gone with the
    widget (Qt then drops its connection, so a closed panel is never touched). `restyle` is
    handed the widget each time rather than holding it, so nothing keeps the widget alive."""

    def __init__(self, widget, restyle: Callable[[Any], None]):
        super().__init__(widget)
        self.setObjectName("theme-follower")
        self._restyle = restyle
        changed().connect(self._changed)

    def _changed(self) -> None:
        widget = self.parent()
        if widget is not None:
            self._restyle(widget)


def follow(widget, restyle: Callable[[Any], None], now: bool = True) -> None:
    """Call `restyle(widget)` now (unless `now` is False) and after every change of theme, for
    as long as the widget lives (for colours a widget holds: a style sheet, a table cell's
    brush, a plot's items). Pass a function of the widget (`lambda w: w._recolor()`), not a
    bound method or a closure over the widget."""
    _Follower(widget, restyle)
    if now:
        restyle(widget)


def style_plot(widget) -> None:
    """A pyqtgraph PlotWidget or GraphicsLayoutWidget in the theme's colours, now and on
    every change of theme."""
    follow(widget, _style)


def note_style() -> str:
    """A box that warns (a class the student lacks, a teacher to check), in the theme's colours."""
    text, background = _current.note
    return f"color: {text}; background: {background}; padding: 6px; border-radius: 4px;"


def info_style() -> str:
    """A box that informs (how a text teacher reads its texts), in the theme's colours."""
    text, background = _current.info
    return f"color: {text}; background: {background}; padding: 6px; border-radius: 4px;"


def state_color(state: str) -> QColor:
    """A node state's colour as words on the panel's or the card's background."""
    color = STATE_COLORS[state]
    return color.lighter(125) if _current.dark else color.darker(115)


def _style(widget) -> None:
    import pyqtgraph as pg

    colors = _current
    widget.setBackground(colors.plot_background)
    pen, text = pg.mkPen(colors.plot_foreground), pg.mkColor(colors.plot_foreground)
    for item in widget.scene().items():
        if isinstance(item, pg.AxisItem):
            item.setPen(pen)
            item.setTextPen(pen)
            if item.label is not None:
                item.label.setDefaultTextColor(text)
        elif isinstance(item, pg.LabelItem):  # plot titles
            item.setText(item.text, color=colors.plot_foreground)
        elif isinstance(item, pg.LegendItem):
            item.setBrush(pg.mkBrush(*colors.legend))
            item.setLabelTextColor(text)
            for _sample, label in item.items:
                label.setText(label.text, color=colors.plot_foreground)


def add_menu(menu, settings: QSettings) -> dict[str, QAction]:
    """View → Theme: System, Light, Dark, one checked; the choice kept in `settings` and
    applied now. "System" follows the desktop when it changes."""
    sub = menu.addMenu("&Theme")
    sub.setObjectName("theme-menu")
    group = QActionGroup(sub)
    saved = str(settings.value(SETTING, "system") or "system")
    actions = {}
    for key, title in CHOICES.items():
        action = QAction(title, sub, checkable=True)
        action.setObjectName(f"theme-{key}")
        action.setChecked(key == saved)
        action.triggered.connect(lambda _=False, key=key: (settings.setValue(SETTING, key), apply(key)))
        group.addAction(action)
        sub.addAction(action)
        actions[key] = action
    global _watching
    hints = QGuiApplication.styleHints()
    if hasattr(hints, "colorSchemeChanged") and not _watching:  # once, however many windows
        _watching = True
        hints.colorSchemeChanged.connect(lambda *_: apply("system") if _choice == "system" else None)
    apply(saved if saved in CHOICES else "system")
    return actions
