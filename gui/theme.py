"""Colours and words the canvas and the panels share, so that a node's state looks the same
on its card and in the inspector; and the light and dark themes.

The theme follows the desktop (Qt 6.5+: the style hints' colour scheme) unless the user picks
Light or Dark in View → Theme (kept in QSettings under `view/theme`). `apply` sets the
application's style and palette (Fusion with a dark QPalette for dark), pyqtgraph's defaults
for plots made later, and restyles the plots made earlier (`style_plot`); what paints itself
(the canvas, its cards and links) reads `current()` when it paints and repaints on `changed()`.
"""

from __future__ import annotations

from dataclasses import dataclass

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


LIGHT = Colors(dark=False, canvas="#f5f7fa", grid="#d5dbe3", card="#ffffff", card_border="#c9ced6",
               card_title="#1d2430", card_text="#4b5563", card_muted="#6b7280", card_rule="#e5e7eb",
               port="#ffffff", link_lighter=100, refusal_fill="#fdecec", refusal_text="#9b1c1c",
               plot_background="#ffffff", plot_foreground="#374151", legend=(255, 255, 255, 200),
               missing="#c9ccd1", text="#374151", muted="#6b7280", error="#c62828")
DARK = Colors(dark=True, canvas="#1b1e23", grid="#3a404a", card="#2a2e35", card_border="#4a515c",
              card_title="#e6e8eb", card_text="#b8bec7", card_muted="#9aa1ab", card_rule="#3c424c",
              port="#2a2e35", link_lighter=135, refusal_fill="#4a2326", refusal_text="#ffc9c9",
              plot_background="#1e2127", plot_foreground="#c9cdd3", legend=(40, 44, 52, 210),
              missing="#4a4f57", text="#d4d8de", muted="#9aa1ab", error="#ff7b7b")

_current = LIGHT
_choice = "system"
_original: tuple[str, QPalette] | None = None  # the app's own style and palette, for Light


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
    changed().emit()  # the plots restyle themselves (_Restyler), the canvas repaints
    return _current


def _configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(background=_current.plot_background, foreground=_current.plot_foreground)


class _Restyler(QObject):
    """A plot's child that restyles it on a change of theme; gone with the plot (Qt then
    drops its connection, so a closed panel is never touched)."""

    def __init__(self, widget):
        super().__init__(widget)
        changed().connect(self.restyle)

    def restyle(self) -> None:
        _style(self.parent())


def style_plot(widget) -> None:
    """A pyqtgraph PlotWidget or GraphicsLayoutWidget in the theme's colours, now and on
    every change of theme."""
    _Restyler(widget)
    _style(widget)


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
    hints = QGuiApplication.styleHints()
    if hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda *_: apply("system") if _choice == "system" else None)
    apply(saved if saved in CHOICES else "system")
    return actions
