"""The result bar above the canvas: what a completed run scored, and the next step in place —
Export… (which starts the export with the panel's defaults and shows its progress here), Insights,
and Open Folder once the files are written."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QToolButton

from gui import theme

OK_STYLE, BUSY_STYLE, BAD_STYLE = "ok", "busy", "bad"  # the bar's look: done, exporting, failed


def bar_style(look: str, c: theme.Colors) -> str:
    """The bar's style sheet for a look, in the theme's colours (its text too: readable on it)."""
    background, border = {OK_STYLE: c.bar_ok, BUSY_STYLE: c.bar_busy, BAD_STYLE: c.bar_bad}[look]
    return (f"QFrame#result-bar {{ background: {background}; border-bottom: 1px solid {border}; }}\n"
            f"QLabel#result-text {{ font-size: 14px; color: {c.heading}; }}")


def percent(value: float | None) -> str:
    return f"{100 * value:.1f} %"


def result_words(test_acc: float | None, best_val: float | None) -> str:
    """'Run completed: test accuracy 95.9 % (best validation 97.8 %)', with what was measured."""
    if test_acc is not None and best_val is not None:
        return f"Run completed: test accuracy {percent(test_acc)} (best validation {percent(best_val)})"
    if test_acc is not None:
        return f"Run completed: test accuracy {percent(test_acc)}"
    if best_val is not None:
        return f"Run completed: best validation accuracy {percent(best_val)} (no test accuracy measured)"
    return "Run completed (no accuracy measured: the data has no labels)"


class ResultBar(QFrame):
    exportClicked = Signal(int)  # run id
    insightsClicked = Signal(int)
    openFolderClicked = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("result-bar")
        self.setAccessibleName("Run result")
        self.run_id: int | None = None
        self.look = OK_STYLE
        self.folder = ""
        self.label = QLabel()
        self.label.setObjectName("result-text")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setObjectName("result-progress")
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(200)
        self.progress.hide()
        self.export_button = QPushButton("Export…")
        self.export_button.setObjectName("result-export")
        self.export_button.setToolTip("Export this run now: ONNX verified against PyTorch, int8, weights "
                                      "and a report (the Export panel's settings)")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(lambda: self.exportClicked.emit(self.run_id))
        self.insights_button = QPushButton("Insights")
        self.insights_button.setObjectName("result-insights")
        self.insights_button.setToolTip("What the student learned, class by class, and from which teacher")
        self.insights_button.clicked.connect(lambda: self.insightsClicked.emit(self.run_id))
        self.open_button = QPushButton("Open Folder")
        self.open_button.setObjectName("result-open-folder")
        self.open_button.clicked.connect(lambda: self.openFolderClicked.emit(self.folder))
        self.close_button = QToolButton()
        self.close_button.setObjectName("result-close")
        self.close_button.setText("✕")
        self.close_button.setToolTip("Hide this bar (the run stays in the Runs panel)")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.progress)
        for button in (self.export_button, self.insights_button, self.open_button, self.close_button):
            layout.addWidget(button)
        theme.follow(self, lambda w: w.setStyleSheet(bar_style(w.look, theme.current())))
        self.hide()

    def show_completed(self, run_id: int, test_acc: float | None, best_val: float | None,
                       exported_to: str = "", export_problem: str = "") -> None:
        """A run completed; when its spec exported (an export node), where the files are."""
        self.run_id = run_id
        text = result_words(test_acc, best_val) + "."
        if exported_to:
            text += f" Exported to {exported_to}" + (f" (with a problem: {export_problem})" if export_problem
                                                     else "")
        elif export_problem:
            text += f" Its export failed: {export_problem}"
        self._show(text, OK_STYLE if not export_problem else BAD_STYLE, exported_to)
        self.export_button.setText("Export Again…" if exported_to else "Export…")

    def show_exporting(self, stage_words: str, fraction: float) -> None:
        self.progress.setValue(int(100 * fraction))
        self.progress.show()
        self.label.setText(f"Exporting run #{self.run_id}: {stage_words}…")
        self._set_look(BUSY_STYLE)
        self.export_button.setEnabled(False)

    def show_exported(self, folder: str, headline: str, problem: str = "") -> None:
        text = (f"{headline} Exported to {folder}" if not problem
                else f"{headline} Exported to {folder}, with a problem: {problem}")
        self._show(text, BAD_STYLE if problem else OK_STYLE, folder)
        self.export_button.setText("Export Again…")

    def show_failed(self, headline: str, message: str) -> None:
        self._show(f"{headline} Export failed: {message}", BAD_STYLE, self.folder)

    def _show(self, text: str, style: str, folder: str) -> None:
        self.folder = folder
        self.label.setText(text)
        self._set_look(style)
        self.progress.hide()
        self.export_button.setEnabled(True)
        self.open_button.setVisible(bool(folder))
        self.show()

    def _set_look(self, look: str) -> None:
        self.look = look
        self.setStyleSheet(bar_style(look, theme.current()))
