"""A busy indicator for the status bar: words and a moving bar while the app waits on an engine
child (checking the pipeline, reading model files). Each wait has a key; the indicator shows
the latest wait's words and hides when none is left."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QWidget


class BusyIndicator(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("busy-indicator")
        self.label = QLabel()
        self.label.setObjectName("busy-words")
        self.bar = QProgressBar()
        self.bar.setObjectName("busy-bar")
        self.bar.setRange(0, 0)  # no fraction to tell: the bar moves to and fro
        self.bar.setFixedWidth(120)
        self.bar.setMaximumHeight(14)
        self.bar.setTextVisible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        self.setSizePolicy(QSizePolicy.Maximum, QSizePolicy.Preferred)  # the message keeps its room
        self._waits: dict[str, str] = {}  # key -> words, in the order they began
        self.hide()

    def start(self, key: str, words: str) -> None:
        self._waits.pop(key, None)
        self._waits[key] = words
        self._show()

    def finish(self, key: str) -> None:
        self._waits.pop(key, None)
        self._show()

    @property
    def words(self) -> str:
        """What it says now; empty when nothing is waited on."""
        return self.label.text() if self._waits else ""

    def _show(self) -> None:
        if not self._waits:
            self.hide()
            return
        words = list(self._waits.values())
        self.label.setText(words[-1] + (f" (and {len(words) - 1} more)" if len(words) > 1 else ""))
        self.setToolTip("\n".join(words))
        self.show()
