"""The window's status bar, whose messages can always be read in full.

A message that does not fit (an error with its hint, a long path) is cut to its first line and
the width there is, ends with "… (click to read it all)", carries its whole text in the tooltip,
and a click on it opens the whole text in a dialog. `currentMessage()` is the whole message.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget

MORE = " … (click to read it all)"


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("status-bar")
        self._full = ""  # the whole message on show ("" when none, or another's: a status tip)
        self._shown = ""  # what is drawn of it
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.clearMessage)
        self.messageChanged.connect(self._changed)
        self.full_box: QMessageBox | None = None

    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 (Qt's name)
        self._full = text or ""
        self._timer.stop()
        if timeout > 0:
            self._timer.start(timeout)
        self._draw()
        QTimer.singleShot(0, self, self._redraw)  # once the widgets have settled; never after the bar is gone

    def currentMessage(self) -> str:  # noqa: N802
        shown = super().currentMessage()
        return self._full if shown and shown == self._shown else shown

    def clearMessage(self) -> None:  # noqa: N802
        self._full = self._shown = ""
        self._timer.stop()
        super().clearMessage()

    @property
    def cut(self) -> bool:
        """Whether the message on show is not drawn whole."""
        return bool(self._full) and self._shown != self._full and super().currentMessage() == self._shown

    def _draw(self) -> None:
        text = self._full
        room = self._room()
        fits = "\n" not in text and self.fontMetrics().horizontalAdvance(text) <= room
        if fits:
            self._shown = text
        else:
            first = text.splitlines()[0] if text.strip() else text
            self._shown = self.fontMetrics().elidedText(
                first, Qt.ElideRight, max(40, room - self.fontMetrics().horizontalAdvance(MORE))
            ).removesuffix("…") + MORE
        super().showMessage(self._shown, 0)
        self.setToolTip(text if self._shown != text else "")

    def _room(self) -> int:
        """The width left of the permanent widgets (run state, node count), where the message is drawn."""
        lefts = [w.geometry().left() for w in self.findChildren(QWidget)
                 if w.parent() is self and w.isVisible() and w.geometry().left() > 0]
        return (min(lefts) if lefts else self.width()) - 16

    def _changed(self, text: str) -> None:
        if text != self._shown:  # another's (an action's status tip), or cleared by Qt
            self._full = self._shown = ""
            self.setToolTip("")

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._redraw()

    def _redraw(self) -> None:
        if self._full and super().currentMessage() == self._shown:
            self._draw()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if self.cut and event.button() == Qt.LeftButton:
            self.show_full()
            return
        super().mousePressEvent(event)

    def show_full(self) -> None:
        """The whole message in a dialog, which stays when the status bar moves on."""
        box = QMessageBox(QMessageBox.Information, "Message", self._full.splitlines()[0], QMessageBox.Ok,
                          self.window())
        box.setObjectName("status-message-box")
        box.setTextInteractionFlags(Qt.TextSelectableByMouse)
        rest = "\n".join(self._full.splitlines()[1:]).strip()
        if len(box.text()) > 90 or rest:
            box.setText("The whole message:")
            box.setInformativeText(self._full)
        box.open()
        self.full_box = box
