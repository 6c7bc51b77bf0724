"""The Insights panel: what a run's student learned, and from whom.

It shows the files `distill-engine analyze` writes into RUN_DIR/insights/ (docs/INSIGHTS.md):
per class the student against its best teacher, the confusion matrix, how often the models
agree, calibration, the student's most confident mistakes with what each teacher said, and
attribution maps. Reading those files is cheap (GUI thread, every field checked by
gui/panels/insights_file.py); the analysis itself runs in an engine child process (EngineAnalyze),
with progress and a cancel. A run without insights is analysed by itself when the panel shows
it (a completed run that has a student); every picture can be saved.

The Attribution tab is gui/panels/attribution_view.py (AttributionView); the amalgamation,
calibration and mistakes tabs are filled by gui/panels/insights_tabs.py.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTableWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui import theme
from gui.engine_client.analyze import EngineAnalyze
from gui.folder_opener import FolderPathDialog, open_folder
from gui.panels.attribution_view import AttributionView
from gui.panels.heatmap import HeatMap
from gui.panels.insights_file import Insights, InsightsProblem, insights_folder, read_insights
from gui.panels.insights_tabs import (
    THUMB,
    MistakesFill,
    clear_calibration,
    fill_amalgamation,
    fill_calibration,
)

__all__ = ["InsightsPanel"]

STAGES = {"load": "loading the run", "predict": "running the student and its teachers",
          "attribution": "working out attributions", "pictures": "drawing the pictures", "done": "done"}
TABS = (("amalgamation", "Amalgamation"), ("confusion", "Confusion"), ("agreement", "Agreement"),
        ("calibration", "Calibration"), ("mistakes", "Mistakes"), ("attribution", "Attribution"))
ERROR_STYLE, OK_STYLE, PLAIN = "error", "ok", ""  # the status line's colour: the theme's error, ok, plain


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
        self.look = PLAIN
        self._clear()
        self._update_enabled()
        theme.follow(self, lambda w: w._recolor())

    # building the tabs
    def _page(self, key: str, title: str, picture: QWidget, content: QWidget | None = None,
              controls: QWidget | None = None) -> QVBoxLayout:
        page = QWidget()
        page.setObjectName(f"insights-{key}-page")
        notice = QLabel()
        notice.setObjectName(f"insights-{key}-notice")
        notice.setWordWrap(True)
        notice.setProperty("error", False)
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
        theme.style_plot(self.calibration_plot)  # its axes, title and legend box (made above) follow the theme
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
        self.attribution = AttributionView(lambda: self.insights,
                                           lambda text, error: self._set_notice("attribution", text, error))
        self._page("attribution", "Attribution", self.attribution.stack, content=self.attribution)

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
                          ("mistakes", self._show_mistakes), ("attribution", self.attribution.fill)):
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
        self.attribution.clear()
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
            notes = "; ".join(html.escape(n) for n in data["notes"])
            text += f"<br><span style='color:{theme.current().muted}'>{notes}</span>"
        self.facts.setText(text)

    def _say(self, text: str, style: str = PLAIN) -> None:
        self.look = style
        self._color_status()
        self.status.setText(text)

    def _color_status(self) -> None:
        c = theme.current()
        self.status.setStyleSheet({ERROR_STYLE: f"color: {c.error};", OK_STYLE: f"color: {c.ok};"}.get(self.look, ""))

    def _set_notice(self, key: str, text: str, error: bool = False) -> None:
        self.notices[key].setText(text)
        self.notices[key].setProperty("error", error)
        self._color_notice(self.notices[key])

    @staticmethod
    def _color_notice(notice: QLabel) -> None:
        c = theme.current()
        notice.setStyleSheet(f"color: {c.error if notice.property('error') else c.muted};")

    def _recolor(self) -> None:
        """The status, the notices, the facts' notes and the tables' cells in the theme's colours."""
        self._color_status()
        for notice in self.notices.values():
            self._color_notice(notice)
        if self.insights is None:
            return
        self._show_facts()
        for key, show in (("amalgamation", self._show_amalgamation), ("mistakes", self._show_mistakes)):
            if not self.insights.part_problems.get(key):
                try:
                    show()
                except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                    pass  # load() said so already

    # amalgamation
    def _show_amalgamation(self) -> None:
        fill_amalgamation(self.amalgamation, self.amalgamation_summary, self.insights)

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
        clear_calibration(self.calibration_plot.getPlotItem(), self.calibration_legend)
        self.calibration_curves = {}

    def _show_calibration(self) -> None:
        self._clear_calibration()
        fill_calibration(self.calibration_plot.getPlotItem(), self.calibration_legend, self.ece_table, self.insights,
                         self.calibration_curves)

    # mistakes
    def _show_mistakes(self) -> None:
        self.mistake_thumbnails = 0
        mistakes = MistakesFill(self.mistakes, self.insights)
        shown = mistakes.fill()
        self.mistake_thumbnails = mistakes.thumbnails
        if not shown:
            self._set_notice("mistakes", "The student makes no mistake on the labelled samples of this split.")

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
    def open_folder(self) -> FolderPathDialog | None:
        """The insights folder in the file manager (or its path, where there is none)."""
        if self.run_dir is not None and insights_folder(self.run_dir).is_dir():
            return open_folder(insights_folder(self.run_dir), self)
        return None

    def save_picture(self, key: str, path: str | Path) -> bool:
        """Save what the tab `key` shows as a PNG."""
        widget = self.pictures[key]
        if key == "attribution":
            widget = self.attribution.picture()
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
