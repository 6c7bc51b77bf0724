"""The Insights panel: what a run's student learned, and from whom.

It shows the files `distill-engine analyze` writes into RUN_DIR/insights/ (docs/INSIGHTS.md):
per class the student against its best teacher, the confusion matrix, how often the models
agree, calibration, the student's most confident mistakes with what each teacher said, and
attribution maps. Reading those files is cheap (GUI thread, every field checked by
gui/panels/insights_file.py); the analysis itself runs in an engine child process (EngineAnalyze),
with progress and a cancel. A run without insights is analysed by itself when the panel shows
it (a completed run that has a student); every picture can be saved.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from gui.engine_client.analyze import EngineAnalyze
from gui.panels.dashboard import PALETTE
from gui.panels.heatmap import HeatMap, cut
from gui.panels.insights_file import Insights, InsightsProblem, insights_folder, read_insights

STAGES = {"load": "loading the run", "predict": "running the student and its teachers",
          "attribution": "working out attributions", "pictures": "drawing the pictures", "done": "done"}
TABS = (("amalgamation", "Amalgamation"), ("confusion", "Confusion"), ("agreement", "Agreement"),
        ("calibration", "Calibration"), ("mistakes", "Mistakes"), ("attribution", "Attribution"))
BEATS, TRAILS = QColor("#d3f0dc"), QColor("#f9d6d6")  # cell backgrounds: student ahead / behind
GOOD, BAD, MUTED = "#1b7f4b", "#c62828", "#6b7280"
ERROR_STYLE, OK_STYLE, PLAIN = "color: #c62828;", "color: #2f9e6b;", ""
THUMB = 64  # pixels: a mistake's thumbnail
# attributions: transparent where a map is near zero, so the input shows through
HEAT = pg.ColorMap([0.0, 0.35, 0.7, 1.0], [(255, 255, 178, 0), (254, 178, 76, 150), (240, 59, 32, 215),
                                           (128, 0, 38, 245)])
SIGNED = pg.ColorMap([0.0, 0.5, 1.0], [(33, 102, 172, 240), (247, 247, 247, 0), (178, 24, 43, 240)])


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f} pts".replace("-", "−")


class InsightsPanel(QWidget):
    message = Signal(str)  # for the status bar
    analyzed = Signal(str)  # an analysis finished: the insights folder

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("insights-panel")
        self.setAccessibleName("Insights")
        self.run_id: int | None = None
        self.run_dir: Path | None = None
        self.status_word: str | None = None  # the run's status as the store has it (None: not known)
        self.insights: Insights | None = None
        self._analyze_when_shown = False
        self.engine = EngineAnalyze(self)
        self.engine.progress.connect(self._progress)
        self.engine.done.connect(self._analysis_done)
        self.engine.failed.connect(self._analysis_failed)
        self.engine.cancelled.connect(self._analysis_cancelled)

        self.title = QLabel("Insights")
        self.title.setObjectName("insights-title")
        self.title.setTextFormat(Qt.RichText)
        self.facts = QLabel("Select a run in the Runs panel to see what its student learned, and from whom.")
        self.facts.setObjectName("insights-facts")
        self.facts.setWordWrap(True)
        self.analyze_button = QPushButton("Analyze Again")
        self.analyze_button.setObjectName("insights-analyze")
        self.analyze_button.setToolTip("Run the student and its teachers on the test split again and "
                                       "rewrite the insights (engine child process)")
        self.analyze_button.clicked.connect(self.analyze)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("insights-cancel")
        self.cancel_button.clicked.connect(self.engine.cancel)
        self.open_button = QPushButton("Open Folder")
        self.open_button.setObjectName("insights-open")
        self.open_button.clicked.connect(self.open_folder)
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("insights-progress")
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setMaximumWidth(220)
        self.status = QLabel()
        self.status.setObjectName("insights-status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.progress_bar)
        top.addWidget(self.cancel_button)
        top.addWidget(self.analyze_button)
        top.addWidget(self.open_button)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("insights-tabs")
        self.pages: dict[str, QWidget] = {}
        self.pictures: dict[str, QWidget] = {}  # what "Save picture…" of each tab saves
        self.notices: dict[str, QLabel] = {}
        self.save_buttons: dict[str, QPushButton] = {}
        self._build_amalgamation()
        self._build_confusion()
        self._build_agreement()
        self._build_calibration()
        self._build_mistakes()
        self._build_attribution()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.facts)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self._clear()
        self._update_enabled()

    # building the tabs
    def _page(self, key: str, title: str, picture: QWidget, content: QWidget | None = None,
              controls: QWidget | None = None) -> QVBoxLayout:
        page = QWidget()
        page.setObjectName(f"insights-{key}-page")
        notice = QLabel()
        notice.setObjectName(f"insights-{key}-notice")
        notice.setWordWrap(True)
        notice.setStyleSheet(f"color: {MUTED};")
        save = QPushButton("Save Picture…")
        save.setObjectName(f"insights-{key}-save")
        save.setToolTip("Save what this tab shows as a PNG picture")
        save.clicked.connect(lambda _=False, k=key: self.save_picture_dialog(k))
        bottom = QHBoxLayout()
        bottom.addWidget(notice, 1)
        bottom.addWidget(save)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(2, 2, 2, 2)
        if controls is not None:
            layout.addWidget(controls)
        layout.addWidget(content or picture, 1)
        layout.addLayout(bottom)
        self.tabs.addTab(page, title)
        self.pages[key], self.pictures[key], self.notices[key], self.save_buttons[key] = page, picture, notice, save
        return layout

    def _build_amalgamation(self) -> None:
        box = QWidget()
        self.amalgamation_summary = QLabel()
        self.amalgamation_summary.setObjectName("insights-amalgamation-summary")
        self.amalgamation_summary.setWordWrap(True)
        self.amalgamation = QTableWidget(0, 0)
        self.amalgamation.setObjectName("insights-amalgamation")
        self.amalgamation.setAccessibleName("Student against its teachers, per class")
        self.amalgamation.verticalHeader().hide()
        self.amalgamation.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.amalgamation.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.amalgamation_summary)
        layout.addWidget(self.amalgamation, 1)
        self._page("amalgamation", "Amalgamation", box)

    def _build_confusion(self) -> None:
        self.confusion = HeatMap("insights-confusion")
        controls = QWidget()
        self.confusion_counts = QRadioButton("counts")
        self.confusion_counts.setObjectName("insights-confusion-counts")
        self.confusion_normalized = QRadioButton("normalised (share of each true class)")
        self.confusion_normalized.setObjectName("insights-confusion-normalized")
        self.confusion_counts.setChecked(True)
        group = QButtonGroup(controls)
        group.addButton(self.confusion_counts)
        group.addButton(self.confusion_normalized)
        self.confusion_normalized.toggled.connect(lambda _on: self._show_confusion())
        row = QHBoxLayout(controls)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Show"))
        row.addWidget(self.confusion_counts)
        row.addWidget(self.confusion_normalized)
        row.addStretch(1)
        row.addWidget(QLabel("classes confused with each other are side by side"))
        self._page("confusion", "Confusion", self.confusion, controls=controls)

    def _build_agreement(self) -> None:
        self.agreement = HeatMap("insights-agreement")
        self._page("agreement", "Agreement", self.agreement)

    def _build_calibration(self) -> None:
        self.calibration_plot = pg.PlotWidget()
        self.calibration_plot.setObjectName("insights-calibration-plot")
        self.calibration_plot.setBackground("w")
        plot = self.calibration_plot.getPlotItem()
        plot.setMenuEnabled(False)
        plot.setLabel("bottom", "confidence (mean of each bin)")
        plot.setLabel("left", "accuracy")
        plot.setTitle("Reliability: a calibrated model lies on the diagonal")
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setXRange(0, 1, padding=0.02)
        plot.setYRange(0, 1, padding=0.02)
        plot.setLimits(xMin=-0.05, xMax=1.05, yMin=-0.05, yMax=1.05)
        ticks = [[(v, f"{v:.1f}") for v in np.linspace(0, 1, 6)]]
        plot.getAxis("bottom").setTicks(ticks)
        plot.getAxis("left").setTicks(ticks)
        self.calibration_legend = plot.addLegend(offset=(10, 10), labelTextSize="8pt")
        self.calibration_legend.setBrush(pg.mkBrush(255, 255, 255, 220))
        self.calibration_curves: dict[str, pg.PlotDataItem] = {}
        self.ece_table = QTableWidget(0, 4)
        self.ece_table.setObjectName("insights-ece")
        self.ece_table.setHorizontalHeaderLabels(["model", "accuracy", "ECE", "samples"])
        self.ece_table.verticalHeader().hide()
        self.ece_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.ece_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.calibration_plot)
        split.addWidget(self.ece_table)
        split.setSizes([600, 260])
        self._page("calibration", "Calibration", split)

    def _build_mistakes(self) -> None:
        self.mistakes = QTableWidget(0, 0)
        self.mistakes.setObjectName("insights-mistakes")
        self.mistakes.setAccessibleName("The student's most confident mistakes")
        self.mistakes.verticalHeader().hide()
        self.mistakes.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.mistakes.setIconSize(QSize(THUMB, THUMB))
        self.mistakes.setWordWrap(True)
        self.mistakes.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.mistakes.horizontalHeader().setStretchLastSection(True)
        self._page("mistakes", "Mistakes", self.mistakes)

    def _build_attribution(self) -> None:
        controls = QWidget()
        self.attribution_box = QComboBox()
        self.attribution_box.setObjectName("insights-attribution-sample")
        self.attribution_box.setAccessibleName("Sample to explain")
        self.attribution_box.currentIndexChanged.connect(lambda _i: self._show_attribution())
        self.attribution_method = QLabel()
        row = QHBoxLayout(controls)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Sample"))
        row.addWidget(self.attribution_box, 1)
        row.addWidget(self.attribution_method)
        self.attribution_images = pg.GraphicsLayoutWidget()
        self.attribution_images.setObjectName("insights-attribution-images")
        self.attribution_images.setBackground("w")
        self.attribution_text = TokenView()
        self.attribution_text.setObjectName("insights-attribution-text")
        self.attribution_bars = pg.PlotWidget()
        self.attribution_bars.setObjectName("insights-attribution-bars")
        self.attribution_bars.setBackground("w")
        self.attribution_stack = QStackedWidget()
        for widget in (self.attribution_images, self.attribution_text, self.attribution_bars):
            self.attribution_stack.addWidget(widget)
        self.attribution_items: dict[str, pg.ImageItem] = {}  # title -> the image shown (tests read it)
        self.attribution_bar_items: dict[str, pg.BarGraphItem] = {}
        self._page("attribution", "Attribution", self.attribution_stack, controls=controls)

    # showing a run
    def show_run(self, run_id: int | None, run_dir: str | Path | None, status: str | None = None) -> None:
        """Show a run's insights; without any, analyse a completed run (when this panel is on
        screen, else as soon as it is), or say why there is nothing to show."""
        self.run_id, self.run_dir, self.status_word = run_id, Path(run_dir) if run_dir else None, status
        self._analyze_when_shown = False
        folder = insights_folder(self.run_dir) if self.run_dir else None
        if folder is not None and (folder / "insights.json").is_file():
            self.load(folder)
        else:
            self._clear()
            self._set_title()
            if self.run_dir is None:
                self._say("Select a run in the Runs panel to see what its student learned, and from whom.")
            elif self._busy_here():
                self._say(f"Analysing run #{run_id}…")
            elif self.can_analyze():
                if self.isVisible() and not self.engine.running:
                    self.analyze()
                else:
                    self._analyze_when_shown = True
                    other = (f" once the analysis of {self.engine.run_dir.name} is over" if self.engine.running
                             else " as soon as this panel is shown")
                    self._say(f"Run #{run_id} has not been analysed yet; its analysis starts{other}.")
            elif status == "running":
                self._say(f"Run #{run_id} is still running: its insights can be worked out once it completes.")
            elif not self.run_dir.is_dir():
                self._say(f"Run #{run_id}'s folder {self.run_dir} no longer exists: there is nothing to analyse.",
                          ERROR_STYLE)
            else:
                how = f" (it {status})" if status and status != "completed" else ""
                self._say(f"Run #{run_id} has no trained student{how}: there is nothing to analyse. "
                          "A run that completes saves student.safetensors, and its insights can be shown here.")
        self._update_enabled()

    def can_analyze(self) -> bool:
        return (self.run_dir is not None and (self.run_dir / "student.safetensors").is_file()
                and self.status_word in (None, "completed"))

    def load(self, folder: str | Path) -> bool:
        """Show the insights in `folder` (RUN_DIR/insights); a file that cannot be shown is said in
        the panel. True when they are shown."""
        folder = Path(folder)
        try:
            insights = read_insights(folder)
        except InsightsProblem as exc:
            self._clear()
            self._set_title()
            self._say(f"Cannot show the insights: {exc.message}. {exc.hint}", ERROR_STYLE)
            self.insights = None
            self._update_enabled()
            return False
        self.insights = insights
        if self.run_dir is None:
            self.run_dir = folder.parent
        self._set_title()
        self._show_facts()
        for key, show in (("amalgamation", self._show_amalgamation), ("confusion", self._show_confusion),
                          ("agreement", self._show_agreement), ("calibration", self._show_calibration),
                          ("mistakes", self._show_mistakes), ("attribution", self._fill_attribution)):
            problem = insights.part_problems.get(key)
            self._set_notice(key, f"This part of the file cannot be shown: {problem}. Analyze the run again."
                             if problem else "", problem is not None)
            self.pictures[key].setVisible(problem is None)
            if problem is None:
                try:
                    show()
                except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                    self.pictures[key].setVisible(False)
                    self._set_notice(key, f"This part cannot be shown ({type(exc).__name__}: {str(exc)[:120]}). "
                                     "Analyze the run again.", True)
        problems = len(insights.part_problems)
        self._say(f"Insights of {folder}" + (f"; {problems} part(s) of the file cannot be shown" if problems else ""),
                  ERROR_STYLE if problems else PLAIN)
        self._update_enabled()
        return True

    def _clear(self) -> None:
        self.insights = None
        self.amalgamation.setRowCount(0)
        self.amalgamation.setColumnCount(0)
        self.amalgamation_summary.setText("")
        self.mistakes.setRowCount(0)
        self.mistakes.setColumnCount(0)
        self.ece_table.setRowCount(0)
        self._clear_calibration()
        self.attribution_box.blockSignals(True)
        self.attribution_box.clear()
        self.attribution_box.blockSignals(False)
        self._clear_attribution()
        for key in self.pictures:
            self.pictures[key].setVisible(False)
            self._set_notice(key, "")
        self.facts.setText("")

    def _set_title(self) -> None:
        info = self.insights.data["run"] if self.insights else {}
        name = info.get("name") or (self.run_dir.name if self.run_dir else "")
        number = f"run #{self.run_id} · " if self.run_id is not None else ""
        self.title.setText(f"<b>Insights</b> · {number}{html.escape(name)}" if name or number else "<b>Insights</b>")

    def _show_facts(self) -> None:
        data = self.insights.data
        student = self.insights.student
        split = data["split_words"] or data["split"] or "the analysed split"
        parts = [f"{split}: {data['samples'] if data['samples'] is not None else '?'} samples"
                 + (f" ({data['labelled']} labelled)" if data["labelled"] not in (None, data["samples"]) else "")]
        if student is not None:
            acc = f"accuracy {student['accuracy']:.1%}" if student["accuracy"] is not None else "accuracy not measured"
            ece = f"ECE {student['ece']:.3f}" if student["ece"] is not None else "ECE not measured"
            parts.append(f"student{' ' + data['run']['student'] if data['run'].get('student') else ''}: {acc}, {ece}")
        teachers = self.insights.teachers
        if teachers:
            parts.append(f"{len(teachers)} teacher{'s' if len(teachers) != 1 else ''}")
        text = " · ".join(parts)
        if data["notes"]:
            text += "<br><span style='color:#6b7280'>" + "; ".join(html.escape(n) for n in data["notes"]) + "</span>"
        self.facts.setText(text)

    def _say(self, text: str, style: str = PLAIN) -> None:
        self.status.setStyleSheet(style)
        self.status.setText(text)

    def _set_notice(self, key: str, text: str, error: bool = False) -> None:
        self.notices[key].setText(text)
        self.notices[key].setStyleSheet(f"color: {BAD if error else MUTED};")

    # amalgamation
    def _show_amalgamation(self) -> None:
        rows = self.insights.data["amalgamation"]
        teachers = [m["name"] for m in self.insights.teachers]
        columns = ["class", "support", "student", *teachers, "best teacher", "Δ (student − best)", "verdict"]
        table = self.amalgamation
        table.setRowCount(0)
        table.setColumnCount(len(columns))
        table.setHorizontalHeaderLabels(columns)
        table.setRowCount(len(rows))
        counts = {"beats": 0, "trails": 0, "matches": 0, "no teacher": 0}
        for i, r in enumerate(rows):
            counts[r["verdict"]] += 1
            cells = [self.insights.class_name(r["class"]), str(r["support"]) if r["support"] is not None else "–",
                     _pct(r["student"]),
                     *[_pct(r["teachers"][t]) if t in r["teachers"] else "" for t in teachers],
                     r["best_teacher"] or "—", _points(r["delta"]), r["verdict"]]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if 1 <= j <= 2 + len(teachers) or j == len(cells) - 2:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                name = teachers[j - 3] if 3 <= j < 3 + len(teachers) else None
                if name is not None and name not in r["teachers"]:
                    item.setToolTip(f"{name} does not know this class")
                if name is not None and name == r["best_teacher"]:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                if j in (2, len(cells) - 2, len(cells) - 1) and r["verdict"] in ("beats", "trails"):
                    item.setBackground(QBrush(BEATS if r["verdict"] == "beats" else TRAILS))
                    item.setForeground(QBrush(QColor(GOOD if r["verdict"] == "beats" else BAD)))
                table.setItem(i, j, item)
        self.amalgamation_summary.setText(_verdict_words(counts))

    # confusion and agreement
    def _show_confusion(self) -> None:
        if self.insights is None or self.insights.data.get("confusion") is None:
            return
        confusion = self.insights.data["confusion"]
        classes = self.insights.classes
        counts, normalized = confusion["counts"], confusion["normalized"]
        shares = self.confusion_normalized.isChecked()

        def tip(i: int, j: int) -> str:
            n, share = counts[i][j], normalized[i][j]
            n_text = f"{n:.0f} samples" if n is not None else "no count"
            share_text = f" ({share:.1%} of the true {classes[i]})" if share is not None else ""
            return n_text + share_text

        top = max((v for row in counts for v in row if v is not None), default=1.0)
        self.confusion.set_matrix(normalized if shares else counts, classes, classes, order=confusion["order"],
                                  levels=(0.0, 1.0) if shares else (0.0, float(top) or 1.0),
                                  value_format="{:.2f}" if shares else "{:.0f}", x_title="predicted class",
                                  y_title="true class", bar_title="share of the true class" if shares else "samples",
                                  tip=tip)

    def _show_agreement(self) -> None:
        agreement = self.insights.data["agreement"]
        samples = agreement["samples"]

        def tip(i: int, j: int) -> str:
            n = samples[i][j]
            return "no class in common" if n is None else f"{n} samples compared"

        self.agreement.set_matrix(agreement["rate"], agreement["names"], agreement["names"], levels=(0.0, 1.0),
                                  value_format="{:.2f}", x_title="model", y_title="model",
                                  bar_title="share of samples where both predict the same class", tip=tip)

    # calibration
    def _clear_calibration(self) -> None:
        plot = self.calibration_plot.getPlotItem()
        for item in list(plot.listDataItems()):
            plot.removeItem(item)
        self.calibration_legend.clear()
        self.calibration_curves = {}

    def _show_calibration(self) -> None:
        self._clear_calibration()
        plot = self.calibration_plot.getPlotItem()
        diagonal = plot.plot([0, 1], [0, 1], pen=pg.mkPen("#9ca3af", width=1.2, style=Qt.DashLine))
        self.calibration_legend.addItem(diagonal, "perfectly calibrated")
        for k, model in enumerate(self.insights.data["calibration"]["models"]):
            points = [(c, a) for c, a in zip(model["confidence"], model["accuracy"])
                      if c is not None and a is not None]
            x = np.array([p[0] for p in points], dtype=float)
            y = np.array([p[1] for p in points], dtype=float)
            color = PALETTE[k % len(PALETTE)]
            width = 2.6 if k == 0 else 1.6
            ece = f"ECE {model['ece']:.3f}" if model["ece"] is not None else "ECE not measured"
            curve = plot.plot(x, y, pen=pg.mkPen(color, width=width), symbol="o", symbolSize=6,
                              symbolBrush=color, symbolPen=None, name=f"{model['name']} ({ece})")
            self.calibration_curves[model["name"]] = curve
        models = self.insights.data["models"]
        self.ece_table.setRowCount(len(models))
        for i, m in enumerate(models):
            cells = [f"{m['name']} ({m['role']})", _pct(m["accuracy"]),
                     f"{m['ece']:.3f}" if m["ece"] is not None else "–",
                     str(m["samples"]) if m["samples"] is not None else "–"]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.ece_table.setItem(i, j, item)

    # mistakes
    def _show_mistakes(self) -> None:
        insights = self.insights
        mistakes = insights.data["mistakes"]
        names = [m["name"] for m in insights.teachers]
        for m in mistakes:
            names += [t["name"] for t in m["teachers"] if t["name"] not in names]
        kind = insights.data["kind"]
        columns = ["sample", "input", "true class", "student says", *[f"{n} says" for n in names]]
        table = self.mistakes
        table.setRowCount(0)
        table.setColumnCount(len(columns))
        table.setHorizontalHeaderLabels(columns)
        table.setRowCount(len(mistakes))
        self.mistake_thumbnails = 0
        for i, m in enumerate(mistakes):
            true = insights.class_name(m["label"])
            table.setItem(i, 0, QTableWidgetItem(f"#{m['sample']}"))
            table.setItem(i, 1, self._mistake_input(m, kind))
            table.setItem(i, 2, QTableWidgetItem(true))
            said = QTableWidgetItem(f"{insights.class_name(m['predicted'])} ({_pct(m['confidence'])})")
            said.setForeground(QBrush(QColor(BAD)))
            table.setItem(i, 3, said)
            answers = {t["name"]: t for t in m["teachers"]}
            for j, name in enumerate(names):
                t = answers.get(name)
                if t is None or t["says"] is None:
                    item = QTableWidgetItem("—")
                    item.setForeground(QBrush(QColor(MUTED)))
                    item.setToolTip(f"{name} does not know the class {true}: its answer is not counted as wrong")
                else:
                    conf = f" ({_pct(t['confidence'])})" if t["confidence"] is not None else ""
                    item = QTableWidgetItem(insights.class_name(t["says"]) + conf)
                    item.setForeground(QBrush(QColor(GOOD if t["says"] == m["label"] else BAD)))
                table.setItem(i, 4 + j, item)
            if kind == "image":
                table.setRowHeight(i, THUMB + 6)
        if not mistakes:
            self._set_notice("mistakes", "The student makes no mistake on the labelled samples of this split.")

    def _mistake_input(self, m: dict, kind: str) -> QTableWidgetItem:
        if m["thumbnail"]:
            path = (self.insights.folder / m["thumbnail"]).resolve()
            pixmap = QPixmap(str(path)) if path.is_relative_to(self.insights.folder.resolve()) else QPixmap()
            if not pixmap.isNull():
                item = QTableWidgetItem()
                item.setIcon(QIcon(pixmap.scaled(THUMB, THUMB, Qt.KeepAspectRatio, Qt.FastTransformation)))
                item.setToolTip(str(path))
                self.mistake_thumbnails += 1
                return item
            return QTableWidgetItem(f"(thumbnail {m['thumbnail']} cannot be read)")
        if m["text"] is not None:
            text = " ".join(m["text"].split())
            item = QTableWidgetItem(text if len(text) <= 140 else text[:139] + "…")
            item.setToolTip(m["text"][:2000])
            return item
        if m["row"] is not None:
            text = ", ".join(f"{k}={v}" for k, v in m["row"].items())
            item = QTableWidgetItem(text if len(text) <= 140 else text[:139] + "…")
            item.setToolTip("\n".join(f"{k}: {v}" for k, v in m["row"].items()))
            return item
        return QTableWidgetItem(f"({kind} sample)")

    # attribution
    def _fill_attribution(self) -> None:
        attribution = self.insights.data["attribution"]
        self.attribution_box.blockSignals(True)
        self.attribution_box.clear()
        for s in attribution["samples"]:
            self.attribution_box.addItem(
                f"#{s['sample']}: true {self.insights.class_name(s['label'])} → student "
                f"{self.insights.class_name(s['predicted'])} (explained: {self.insights.class_name(s['target'])})")
        self.attribution_box.blockSignals(False)
        self.attribution_method.setText(f"method: {attribution['method']}" if attribution["method"] else "")
        self._show_attribution()

    def _clear_attribution(self) -> None:
        self.attribution_images.clear()
        self.attribution_text.clear()
        self.attribution_bars.getPlotItem().clear()
        legend = self.attribution_bars.getPlotItem().legend
        if legend is not None:
            legend.clear()
        self.attribution_items, self.attribution_bar_items = {}, {}

    def _maps(self, s: dict) -> list[tuple[str, str | None]]:
        """(title, array key) of each map of a sample: the student's, the attention, each teacher's."""
        maps = [("student", s["student"])]
        if s["attention"]:
            maps.append(("attention", s["attention"]))
        maps += [(f"teacher: {name}", key) for name, key in s["teachers"].items()]
        return maps

    def _show_attribution(self) -> None:
        self._clear_attribution()
        insights = self.insights
        if insights is None or insights.data.get("attribution") is None:
            return
        samples = insights.data["attribution"]["samples"]
        index = self.attribution_box.currentIndex()
        if not samples or index < 0:
            self.pictures["attribution"].setVisible(False)
            self._set_notice("attribution", "The analysis worked out no attribution for this run "
                             "(analyze with --attributions N to have some).")
            return
        if insights.arrays_problem:
            self.pictures["attribution"].setVisible(False)
            self._set_notice("attribution", f"The attribution maps cannot be shown: {insights.arrays_problem}. "
                             "Analyze the run again.", True)
            return
        self.pictures["attribution"].setVisible(True)
        s = samples[index]
        kind = insights.data["kind"]
        missing: list[str] = []
        if kind == "image":
            self._show_image_maps(s, missing)
        elif kind == "text":
            self._show_token_maps(s, missing)
        else:
            self._show_feature_maps(s, missing)
        self._set_notice("attribution", ("Not shown: " + "; ".join(missing) + ".") if missing else
                         _attribution_words(kind), bool(missing))

    def _array(self, key: str | None, title: str, ndim: int, missing: list[str]) -> np.ndarray | None:
        array = self.insights.array(key)
        if array is None:
            if key:
                missing.append(f"{title} ({key} is not in arrays.npz)")
            return None
        if array.ndim != ndim or not array.size or not np.isfinite(array).all():
            missing.append(f"{title} (array {key} has shape {list(array.shape)}, expected {ndim} dimensions "
                           "of finite numbers)")
            return None
        return array

    def _show_image_maps(self, s: dict, missing: list[str]) -> None:
        self.attribution_stack.setCurrentWidget(self.attribution_images)
        layout = self.attribution_images
        picture = self._array(s["input"], "the input image", 3, missing)
        if picture is not None and picture.shape[2] not in (1, 3):
            missing.append(f"the input image (shape {list(picture.shape)}: expected [H, W, 3])")
            picture = None
        gray = picture.mean(axis=2) if picture is not None else None
        col = 0
        if picture is not None:
            plot = self._image_plot(0, col, "input")
            item = pg.ImageItem(np.clip(picture, 0, 1) if picture.shape[2] == 3 else picture[:, :, 0],
                                axisOrder="row-major", levels=(0, 1))
            plot.addItem(item)
            self.attribution_items["input"] = item
            col += 2
        for title, key in self._maps(s):
            array = self._array(key, title, 2, missing)
            if array is None:
                continue
            plot = self._image_plot(0, col, title)
            if gray is not None and gray.shape == array.shape:
                under = pg.ImageItem(gray, axisOrder="row-major", levels=(0, 1))
                under.setOpacity(0.55)
                plot.addItem(under)
            item = pg.ImageItem(array, axisOrder="row-major")
            plot.addItem(item)
            low, high = float(array.min()), float(array.max())
            signed = low < 0
            top = max(abs(low), abs(high)) or 1.0
            bar = pg.ColorBarItem(values=(-top, top) if signed else (0.0, top), colorMap=SIGNED if signed else HEAT,
                                  interactive=False, width=10)
            bar.setImageItem(item)
            layout.addItem(bar, row=0, col=col + 1)
            self.attribution_items[title] = item
            col += 2

    def _image_plot(self, row: int, col: int, title: str) -> pg.PlotItem:
        plot = self.attribution_images.addPlot(row=row, col=col, title=html.escape(cut(title, 28)))
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.setMinimumWidth(140)
        return plot

    def _show_token_maps(self, s: dict, missing: list[str]) -> None:
        self.attribution_stack.setCurrentWidget(self.attribution_text)
        parts = [_legend_html()]
        for title, key in self._maps(s):
            scores = self._array(key, title, 1, missing)
            if scores is None:
                continue
            tokens = s["tokens"] if s["tokens"] and len(s["tokens"]) == len(scores) else None
            if tokens is None:
                tokens = [f"[{i}]" for i in range(len(scores))]
                missing.append(f"the tokens of {title} (insights.json lists none that fit its {len(scores)} scores)")
            top = float(np.abs(scores).max()) or 1.0
            spans = "".join(_token_span(t, float(v), top) for t, v in zip(tokens, scores))
            parts.append(f"<p><b>{html.escape(title)}</b><br>{spans}</p>")
        self.attribution_text.setHtml("".join(parts))

    def _show_feature_maps(self, s: dict, missing: list[str]) -> None:
        self.attribution_stack.setCurrentWidget(self.attribution_bars)
        plot = self.attribution_bars.getPlotItem()
        plot.setMenuEnabled(False)
        if plot.legend is None:
            plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
        plot.setLabel("left", "attribution")
        plot.setLabel("bottom", "feature")
        plot.showGrid(y=True, alpha=0.2)
        maps = [(title, scores) for title, key in self._maps(s)
                if (scores := self._array(key, title, 1, missing)) is not None]
        if not maps:
            return
        width = len(maps[0][1])
        maps = [(t, v) for t, v in maps if len(v) == width]
        names = self._feature_names(s, width)
        step = 0.8 / len(maps)
        for k, (title, scores) in enumerate(maps):
            x = np.arange(width) - 0.4 + step * (k + 0.5)
            color = PALETTE[k % len(PALETTE)]
            bars = pg.BarGraphItem(x=x, height=scores, width=step * 0.95, brush=color, pen=pg.mkPen(None))
            plot.addItem(bars)
            plot.legend.addItem(bars, title)
            self.attribution_bar_items[title] = bars
        plot.addLine(y=0, pen=pg.mkPen("#9ca3af"))
        plot.getAxis("bottom").setTicks([[(i, cut(n, 12)) for i, n in enumerate(names)], []])
        plot.autoRange()

    def _feature_names(self, s: dict, width: int) -> list[str]:
        for names in (s["features"], self.insights.data.get("features"), s["tokens"]):
            if names and len(names) == width:
                return names
        for m in self.insights.data.get("mistakes") or []:  # a table's columns, as the mistakes name them
            if m["sample"] == s["sample"] and m["row"] and len(m["row"]) == width:
                return list(m["row"])
        return [f"x[{i}]" for i in range(width)]

    # the analysis
    def analyze(self) -> None:
        """Analyse the run on show (again): an engine child process, cancellable."""
        if self.engine.running or self.run_dir is None:
            return
        if not (self.run_dir / "student.safetensors").is_file():
            self._say(f"{self.run_dir} has no student.safetensors: only a completed run can be analysed.",
                      ERROR_STYLE)
            return
        self._analyze_when_shown = False
        self.progress_bar.setValue(0)
        self._say(f"Analysing run #{self.run_id}: starting the engine…" if self.run_id is not None
                  else f"Analysing {self.run_dir.name}: starting the engine…")
        self.engine.start(self.run_dir)
        self._update_enabled()

    def _busy_here(self) -> bool:
        return self.engine.running and self.engine.run_dir == self.run_dir

    def _progress(self, stage: str, fraction: float) -> None:
        self.progress_bar.setValue(int(fraction * 100))
        if self._busy_here():
            self._say(f"Analysing run #{self.run_id}: {STAGES.get(stage, stage)}…")

    def _analysis_done(self, folder: str) -> None:
        self.progress_bar.setValue(100)
        analysed = self.engine.run_dir
        self.message.emit(f"insights written to {folder}")
        self.analyzed.emit(folder)
        if analysed == self.run_dir:
            self.load(folder)
        self._update_enabled()
        self._after_analysis()

    def _analysis_failed(self, message: str) -> None:
        self.progress_bar.setValue(0)
        self.message.emit(f"analysis failed: {message}")
        if self.engine.run_dir == self.run_dir:
            kept = " The insights shown are the last analysis's." if self.insights is not None else ""
            self._say(f"Analysis failed: {message}.{kept}", ERROR_STYLE)
        self._update_enabled()
        self._after_analysis()

    def _analysis_cancelled(self) -> None:
        self.progress_bar.setValue(0)
        if self.engine.run_dir == self.run_dir:
            kept = " The insights shown are the last analysis's." if self.insights is not None else \
                " Analyze Again starts it anew."
            self._say("Analysis cancelled." + kept)
        self.message.emit("analysis cancelled")
        self._update_enabled()
        self._after_analysis()  # a run selected meanwhile waited for this one

    def _after_analysis(self) -> None:
        """The run on show waited for the analysis of another one: its turn."""
        if self._analyze_when_shown and self.isVisible() and self.can_analyze():
            self.analyze()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._analyze_when_shown and not self.engine.running and self.can_analyze():
            self.analyze()

    def _update_enabled(self) -> None:
        busy = self.engine.running
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.analyze_button.setEnabled(not busy and self.can_analyze())
        self.analyze_button.setText("Analyze Again" if self.insights is not None else "Analyze")
        folder = insights_folder(self.run_dir) if self.run_dir else None
        self.open_button.setEnabled(folder is not None and folder.is_dir())
        for key, button in self.save_buttons.items():
            button.setEnabled(self.insights is not None and not self.pictures[key].isHidden())

    # files
    def open_folder(self) -> None:
        if self.run_dir is not None and insights_folder(self.run_dir).is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(insights_folder(self.run_dir))))

    def save_picture(self, key: str, path: str | Path) -> bool:
        """Save what the tab `key` shows as a PNG."""
        widget = self.pictures[key]
        if key == "attribution":
            widget = self.attribution_stack.currentWidget()
        ok = widget.grab().save(str(path), "PNG")
        self.message.emit(f"saved {path}" if ok else f"could not save {path}")
        return ok

    def save_picture_dialog(self, key: str) -> None:
        name = (self.insights.data["run"].get("name") if self.insights else "") or "insights"
        start = (self.run_dir or Path.home()) / f"{name.replace('/', '-')} {key}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save picture", str(start), "PNG pictures (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            if not self.save_picture(key, path):
                self._say(f"Could not save {path}: choose a folder you can write to.", ERROR_STYLE)


class TokenView(QTextBrowser):
    """Tokens coloured by their scores; the score of the token under the mouse as a tooltip."""

    def token_tip(self, pos) -> str:
        return self.cursorForPosition(pos).charFormat().toolTip()

    def event(self, event) -> bool:
        if event.type() == QEvent.ToolTip:
            tip = self.token_tip(self.viewport().mapFromGlobal(event.globalPos()))
            if tip:
                QToolTip.showText(event.globalPos(), tip, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)


def _verdict_words(counts: dict[str, int]) -> str:
    def classes(n: int) -> str:
        return f"{n} class{'es' if n != 1 else ''}"

    parts = [f"beats its best teacher on {classes(counts['beats'])}"]
    if counts["matches"]:
        parts.append(f"matches it on {classes(counts['matches'])}")
    parts.append(f"trails on {classes(counts['trails'])}")
    text = "The student " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    if counts["no teacher"]:
        text += f"; no teacher knows {classes(counts['no teacher'])}"
    return text + " (recall per class; beats or trails: more than 2 points apart)."


def _token_span(token: str, score: float, top: float) -> str:
    share = min(abs(score) / top, 1.0)
    r, g, b = (178, 24, 43) if score >= 0 else (33, 102, 172)
    color = "#fff" if share > 0.6 else "#111"
    return (f"<span style='background-color: rgba({r},{g},{b},{share:.2f}); color: {color}' "
            f"title='score {score:.4g}'>{html.escape(token)}</span> ")


def _legend_html() -> str:
    cells = "".join(f"<td style='background-color: rgba({r},{g},{b},{a:.2f}); padding: 2px 8px'>{v}</td>"
                    for r, g, b, a, v in ((33, 102, 172, 1.0, "−max"), (33, 102, 172, 0.4, ""), (255, 255, 255, 0, "0"),
                                          (178, 24, 43, 0.4, ""), (178, 24, 43, 1.0, "+max")))
    return ("<p>Each token is coloured by its attribution for the explained class, scaled to the largest "
            f"of each row: red pushes towards that class, blue away from it.</p><table><tr>{cells}</tr></table>")


def _attribution_words(kind: str) -> str:
    if kind == "image":
        return ("Warm (red) colours mark the pixels that pushed the model towards the explained class, blue ones "
                "(signed maps) away from it; each map has its own scale (its colour bar).")
    if kind == "text":
        return "Point at a token for its score."
    return "Bars: each feature's attribution for the explained class, per model."
