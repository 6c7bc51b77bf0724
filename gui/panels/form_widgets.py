"""Editors the inspector's generated forms use beyond Qt's own: a number field that knows the
spec's bounds, and a few lines of text that say when editing is finished."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLineEdit, QPlainTextEdit

from gui.document.schema import Bounds


class NumberEdit(QLineEdit):
    """A number typed as text, so that a value out of the spec's bounds can be shown with the
    spec's own message while typing; the Up and Down keys and the wheel step it, within the
    bounds. `stepped` is emitted with the new text."""

    stepped = Signal(str)

    def __init__(self, text: str, bounds: Bounds, integer: bool, parent=None):
        super().__init__(text, parent)
        self.bounds, self.integer = bounds, integer
        if bounds.words():
            self.setPlaceholderText(bounds.words())

    def step_by(self, steps: int) -> None:
        try:
            value = float(self.text())
        except ValueError:
            return
        if not math.isfinite(value) or (self.integer and value != int(value)):
            return  # the field shows the spec's message for such text; stepping would guess
        size = 1.0 if self.integer else 10.0 ** math.floor(math.log10(abs(value))) if value else 0.1
        new = self._clamp(value + steps * size)
        self.setText(str(int(new)) if self.integer else f"{new:g}")
        self.stepped.emit(self.text())

    def _clamp(self, value: float) -> float:
        b = self.bounds
        low = b.ge if b.ge is not None else b.gt
        high = b.le if b.le is not None else b.lt
        if low is not None and (value < low or (b.gt is not None and value <= b.gt)):
            return float(self.text())
        if high is not None and (value > high or (b.lt is not None and value >= b.lt)):
            return float(self.text())
        return value

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key_Up, Qt.Key_Down):
            self.step_by(1 if event.key() == Qt.Key_Up else -1)
            return
        super().keyPressEvent(event)

    def wheelEvent(self, event) -> None:
        if self.hasFocus() and event.angleDelta().y():
            self.step_by(1 if event.angleDelta().y() > 0 else -1)
            return
        super().wheelEvent(event)


class LinesEdit(QPlainTextEdit):
    """A few lines of text that, like a line edit, says when editing is finished (focus out)."""

    editingFinished = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.NoWrap)
        lines = self.fontMetrics().lineSpacing()
        self.setFixedHeight(4 * lines + 14)

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.editingFinished.emit()
