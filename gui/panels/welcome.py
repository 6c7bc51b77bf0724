"""The welcome page: what the canvas shows when no project is open. One big button opens the
demo; the other examples, Open Project… and the recent projects are beside it; three steps say
what to do: teachers and a student on the canvas, Run, Export."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gui import theme
from gui.asset_paths import DEMO, EXAMPLES
from gui.theme import ACCENT

STEPS = [
    ("Teachers + student on the canvas",
     "Drag teacher models (your .onnx files, or the palette's kinds) and one student onto the canvas, "
     "and connect them with the data and a strategy."),
    ("Run",
     "Press Run (F5): the engine trains the student from its teachers while the dashboard draws the "
     "loss and accuracy live."),
    ("Export",
     "When the run completes, press Export… in the result bar: a verified ONNX model, an int8 one, "
     "and a report of size, accuracy and speed."),
]

def page_style(c: theme.Colors) -> str:
    """The page's style sheet in the theme's colours."""
    return f"""
#welcome-page {{ background: {c.page}; }}
#welcome-title {{ font-size: 26px; font-weight: 600; color: {c.heading}; }}
#welcome-subtitle {{ font-size: 14px; color: {c.body}; }}
#welcome-demo-note {{ color: {c.body}; }}
#welcome-demo {{ font-size: 17px; font-weight: 600; color: white; background: {ACCENT};
                 border: 2px solid {ACCENT}; border-radius: 8px; padding: 14px 32px; }}
#welcome-demo:hover {{ background: {c.accent_hover}; }}
#welcome-demo:focus {{ border: 2px solid {c.accent_focus}; }}
QFrame#welcome-step {{ background: {c.surface}; border: 1px solid {c.border}; border-radius: 8px; }}
#welcome-step-number {{ font-size: 22px; font-weight: 700; color: white; background: {ACCENT};
                        border-radius: 18px; min-width: 36px; max-width: 36px; min-height: 36px;
                        max-height: 36px; }}
#welcome-step-title {{ font-size: 15px; font-weight: 600; color: {c.heading}; }}
#welcome-step-text {{ font-size: 13px; color: {c.body}; }}
#welcome-heading {{ font-size: 14px; font-weight: 600; color: {c.heading}; }}
#welcome-arrow {{ font-size: 22px; color: {c.faint}; }}
#welcome-no-recent {{ color: {c.muted}; }}
QPushButton[class="welcome-link"] {{ text-align: left; font-size: 13px; color: {c.link}; border: none;
                            background: transparent; padding: 3px 0; }}
QPushButton[class="welcome-link"]:hover {{ text-decoration: underline; }}
QPushButton[class="welcome-link"]:disabled {{ color: {c.muted}; }}
"""


def example_title(path: Path) -> str:
    return path.name.removesuffix(".distill.json").replace("-", " ")


class WelcomePage(QScrollArea):
    """Signals: openExample(path) for the demo and the other examples, openProject() for the file
    dialog, openRecent(path), emptyCanvas() to start from an empty canvas."""

    openExample = Signal(Path)
    openProject = Signal()
    openRecent = Signal(Path)
    emptyCanvas = Signal()  # also when something is dragged onto the page: the canvas takes the drop

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("welcome-scroll")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.NoFrame)
        self.setAcceptDrops(True)
        page = QWidget()
        page.setObjectName("welcome-page")
        theme.follow(page, lambda w: w.setStyleSheet(page_style(theme.current())))
        self.setWidget(page)

        title = QLabel("Welcome to Distill Studio")
        title.setObjectName("welcome-title")
        subtitle = QLabel("Distil many small expert models into one student, then export it as a "
                          "verified ONNX model.")
        subtitle.setObjectName("welcome-subtitle")
        subtitle.setWordWrap(True)
        self.demo_button = QPushButton("Open the demo")
        self.demo_button.setObjectName("welcome-demo")
        self.demo_button.setAccessibleName("Open the demo")
        self.demo_button.setToolTip(f"three digit experts → one student ({DEMO.name}); press Run next")
        self.demo_button.setCursor(Qt.PointingHandCursor)
        self.demo_button.clicked.connect(lambda: self.openExample.emit(DEMO))
        demo_note = QLabel("Three small digit experts, each knowing a few classes, teach one student. "
                           "It needs no GPU and no download; then press Run.")
        demo_note.setObjectName("welcome-demo-note")
        demo_note.setWordWrap(True)
        demo_row = QHBoxLayout()
        demo_row.addWidget(self.demo_button)
        demo_row.addSpacing(16)
        demo_row.addWidget(demo_note, 1)

        steps = QHBoxLayout()
        steps.setSpacing(12)
        self.step_frames: list[QFrame] = []
        for i, (head, text) in enumerate(STEPS, 1):
            frame = QFrame()
            frame.setObjectName("welcome-step")
            number = QLabel(str(i))
            number.setObjectName("welcome-step-number")
            number.setAlignment(Qt.AlignCenter)
            head_label = QLabel(head)
            head_label.setObjectName("welcome-step-title")
            head_label.setWordWrap(True)
            body = QLabel(text)
            body.setObjectName("welcome-step-text")
            body.setWordWrap(True)
            grid = QGridLayout(frame)
            grid.setContentsMargins(14, 12, 14, 12)
            grid.addWidget(number, 0, 0, Qt.AlignTop)
            grid.addWidget(head_label, 0, 1)
            grid.addWidget(body, 1, 1)
            grid.setColumnStretch(1, 1)
            steps.addWidget(frame, 1)
            if i < len(STEPS):
                arrow = QLabel("→")
                arrow.setObjectName("welcome-arrow")
                steps.addWidget(arrow)
            self.step_frames.append(frame)

        self.examples_box = QVBoxLayout()
        self.example_buttons: dict[str, QPushButton] = {}
        for path in sorted(EXAMPLES.glob("*.distill.json")):
            if path.resolve() == DEMO.resolve():
                continue
            button = self._link(example_title(path), f"example-{path.stem}", str(path))
            button.clicked.connect(lambda _=False, p=path: self.openExample.emit(p))
            self.example_buttons[path.name] = button
            self.examples_box.addWidget(button)
        self.open_button = self._link("Open project…", "welcome-open", "open a .distill.json file (Ctrl+O)")
        self.open_button.clicked.connect(self.openProject.emit)
        self.empty_button = self._link("Start with an empty canvas", "welcome-empty",
                                       "drag node kinds from the palette onto the canvas")
        self.empty_button.clicked.connect(self.emptyCanvas.emit)
        self.recent_box = QVBoxLayout()
        self.recent_buttons: list[QPushButton] = []
        self.no_recent = QLabel("No recent projects yet.")
        self.no_recent.setObjectName("welcome-no-recent")
        self.recent_box.addWidget(self.no_recent)

        columns = QHBoxLayout()
        columns.setSpacing(40)
        columns.addWidget(self._column("Other examples", self.examples_box), 1, Qt.AlignTop)
        start = QVBoxLayout()
        start.addWidget(self.open_button)
        start.addWidget(self.empty_button)
        columns.addWidget(self._column("Start", start), 1, Qt.AlignTop)
        columns.addWidget(self._column("Recent projects", self.recent_box), 1, Qt.AlignTop)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(40, 32, 40, 32)
        layout.setSpacing(16)
        layout.addWidget(title)
        layout.addWidget(subtitle)
        layout.addSpacing(6)
        layout.addLayout(demo_row)
        layout.addSpacing(6)
        layout.addLayout(steps)
        layout.addSpacing(6)
        layout.addLayout(columns)
        layout.addStretch(1)

    def _link(self, text: str, name: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setProperty("class", "welcome-link")
        button.setToolTip(tip)
        button.setCursor(Qt.PointingHandCursor)
        button.setFlat(True)
        return button

    @staticmethod
    def _column(heading: str, body: QVBoxLayout) -> QWidget:
        """A heading and its links, kept together at the top (extra height goes below the page)."""
        column = QWidget()
        column.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Maximum)
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        label = QLabel(heading)
        label.setObjectName("welcome-heading")
        layout.addWidget(label)
        body.setSpacing(0)
        layout.addLayout(body)
        return column

    def dragEnterEvent(self, event):
        """A node kind from the palette or a model file dragged here: the canvas comes up under the
        pointer and takes the drag from there."""
        self.emptyCanvas.emit()
        event.ignore()

    def set_recent(self, paths: list[str]) -> None:
        """The recent projects, newest first (those still on disk are offered)."""
        for button in self.recent_buttons:
            self.recent_box.removeWidget(button)
            button.deleteLater()
        self.recent_buttons = []
        for p in paths:
            path = Path(p)
            button = self._link(path.name, f"welcome-recent-{path.name}", p)
            button.setEnabled(path.is_file())
            if not path.is_file():
                button.setToolTip(f"{p} (no longer there)")
            button.clicked.connect(lambda _=False, path=path: self.openRecent.emit(path))
            self.recent_box.addWidget(button)
            self.recent_buttons.append(button)
        self.no_recent.setVisible(not self.recent_buttons)
