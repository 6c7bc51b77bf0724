"""The main window: canvas in the middle, palette and inspector docked, menus and shortcuts.

Project files are saved atomically; a broken or newer file is refused with its problems and
changes nothing; unsaved changes are marked in the title and asked about on close.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
from pathlib import Path

import shiboken6
from PySide6.QtCore import QProcess, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.atomic_io import atomic_write, atomic_write_text
from engine.errors import InputError, Problem
from gui import theme
from gui.asset_paths import EXAMPLES
from gui.autosave import Autosave
from gui.canvas.drops import DropHandler
from gui.canvas.items import NodeItem
from gui.canvas.scene import PipelineScene
from gui.canvas.view import CanvasView
from gui.document.convert import project_json, project_to_nodes, read_project
from gui.document.model import Document
from gui.document.validation import OK, node_status
from gui.engine_client.engine_command import describe_program
from gui.engine_client.inspect import ModelInspector
from gui.engine_client.process import start_engine
from gui.folder_opener import FolderPathDialog, open_folder
from gui.folder_scans import FolderScans
from gui.panels.busy import BusyIndicator
from gui.panels.dashboard import Dashboard
from gui.panels.export_panel import STAGES, ExportPanel
from gui.panels.insights import InsightsPanel
from gui.panels.inspector import Inspector
from gui.panels.palette import Palette
from gui.panels.problem_words import Checked, problems_on_nodes
from gui.panels.result_bar import ResultBar, result_words
from gui.panels.runs import RunsPanel
from gui.panels.status_bar import StatusBar
from gui.panels.welcome import WelcomePage
from gui.run_controller import RunController
from gui.store_recovery import open_store
from gui.teacher_files import TeacherFiles
from gui.text_previews import TextPreviews

PROJECT_FILTER = "Distill Studio projects (*.distill.json);;JSON (*.json)"
MAX_RECENT = 8
LAYOUT_VERSION = 4  # bump when the docks change (3: the Export dock; 4: the Insights dock)


def default_settings() -> QSettings:
    return QSettings(QSettings.IniFormat, QSettings.UserScope, "distill-studio", "studio")


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, db: Path | None = None):
        super().__init__()
        self.setObjectName("main-window")
        self.setStatusBar(StatusBar(self))  # a message that does not fit: its tooltip and a click tell it all
        self.settings = settings or default_settings()
        self.path: Path | None = None
        self.doc = Document()
        self.undo_stack = QUndoStack(self)
        self.model_inspector = ModelInspector(self)
        self.scene = PipelineScene(self.doc, self.undo_stack, self)
        self.drops = DropHandler(self.doc, self.undo_stack, self.model_inspector, self)
        self.view = CanvasView(self.scene, self.drops)
        self.welcome = WelcomePage()
        self.welcome.openExample.connect(self.open_example)
        self.welcome.openProject.connect(self.open_dialog)
        self.welcome.openRecent.connect(lambda path: self.open_project(path))
        self.welcome.emptyCanvas.connect(self.show_canvas)
        self.result_bar = ResultBar()
        self.result_bar.exportClicked.connect(self.export_now)
        self.result_bar.insightsClicked.connect(self.show_insights)
        self.result_bar.openFolderClicked.connect(self.open_folder)
        self.canvas_stack = QStackedWidget()
        self.canvas_stack.setObjectName("canvas-stack")
        self.canvas_stack.addWidget(self.view)
        self.canvas_stack.addWidget(self.welcome)
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.result_bar)
        central_layout.addWidget(self.canvas_stack, 1)
        self.setCentralWidget(central)
        self.doc.nodeAdded.connect(lambda _id: self.show_canvas())  # the welcome goes once work starts
        self.result_run: dict | None = None  # the completed run the result bar speaks of
        self.folder_dialog: FolderPathDialog | None = None
        self.bar_export = False  # the export under way was started from the result bar
        self.pending_export: int | None = None  # a run to export once the Insights analysis ends

        self.palette = Palette(self.model_inspector, self.settings)
        self.folder_scans = FolderScans(self.doc, self.undo_stack, self)
        self.text_previews = TextPreviews(self.doc, self.undo_stack, self.model_inspector, self)
        self.inspector = Inspector(self.doc, self.undo_stack, folders=self.folder_scans, texts=self.text_previews)
        self.palette_dock = self._dock(self.palette, "Palette", Qt.LeftDockWidgetArea, "palette-dock")
        self.inspector_dock = self._dock(self.inspector, "Inspector", Qt.RightDockWidgetArea, "inspector-dock")
        self.store = open_store(db)  # read here; written by the engine processes (a damaged one: asked)
        self.dashboard = Dashboard()
        self.runs = RunsPanel(self.store)
        self.dashboard_dock = self._dock(self.dashboard, "Dashboard", Qt.BottomDockWidgetArea, "dashboard-dock")
        self.runs_dock = self._dock(self.runs, "Runs", Qt.BottomDockWidgetArea, "runs-dock")
        self.export_panel = ExportPanel(self.store)
        self.export_dock = self._dock(self.export_panel, "Export", Qt.BottomDockWidgetArea, "export-dock")
        self.tabifyDockWidget(self.dashboard_dock, self.runs_dock)
        self.insights = InsightsPanel()
        self.insights_dock = self._dock(self.insights, "Insights", Qt.BottomDockWidgetArea, "insights-dock")
        self.tabifyDockWidget(self.runs_dock, self.export_dock)
        self.tabifyDockWidget(self.export_dock, self.insights_dock)
        self.dashboard_dock.raise_()
        self.runs.changed.connect(self.export_panel.refresh_runs)
        self.export_panel.engine.progress.connect(self._export_progress)
        self.export_panel.engine.done.connect(self._export_done)
        self.export_panel.engine.failed.connect(self._export_failed)
        self.export_panel.engine.cancelled.connect(lambda: self._export_failed("cancelled"))
        for ended in (self.insights.engine.done, self.insights.engine.failed, self.insights.engine.cancelled):
            ended.connect(lambda *_: QTimer.singleShot(0, self, self._start_pending_export))
        self.runs.exportRun.connect(self.show_export)
        self.runs.compare.connect(self._runs_selected)  # the Insights panel follows the selected run
        self.runner = RunController(self, self.store, self.dashboard, self.runs)
        self.runner.runEnded.connect(self._run_ended)
        self.insights.engine.protocolProblem.connect(lambda text: self.dashboard.add_log(text, error=True))
        self.export_panel.engine.protocolProblem.connect(lambda text: self.dashboard.add_log(text, error=True))
        self.keep_engine_running = False  # set when the user closes the app but keeps the run
        self.status_label = QLabel()
        self.busy = BusyIndicator()  # words and a busy bar while the app waits on an engine child
        self.statusBar().addPermanentWidget(self.busy)
        self.statusBar().addPermanentWidget(self.status_label)
        for source in (self.scene.message, self.drops.message, self.palette.message,
                       self.export_panel.message, self.insights.message, self.folder_scans.message):
            source.connect(lambda text: self.statusBar().showMessage(text, 8000))

        self.scene.selectionChanged.connect(self._selection_changed)
        self.undo_stack.cleanChanged.connect(lambda _clean: self._update_title())
        self.doc.changed.connect(self._update_summary)
        self.doc.nameChanged.connect(lambda _n: self._update_title())
        self.teacher_files = TeacherFiles(self.doc, self.undo_stack, self.model_inspector, self)
        self.teacher_files.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.text_previews.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.model_inspector.busyChanged.connect(lambda _n: self._update_summary())
        self._build_actions()
        self._restore_layout()
        self._update_title()
        self._update_summary()
        self.autosave = Autosave(self, Path(self.settings.fileName()).resolve().parent / "autosave")
        self.show_welcome()  # no project yet: opening one (or adding a node) shows the canvas
        self.recovery_box: QMessageBox | None = None
        QTimer.singleShot(0, self, self.offer_recovery)  # context: never called once the window is gone

    def offer_recovery(self) -> None:
        """Edits a previous session did not save (it crashed, or was killed): offer them back."""
        record = self.autosave.pending()
        if record is None:
            return
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record["saved"]))
        where = f" (from {record['path']})" if record.get("path") else " (never saved)"
        box = QMessageBox(QMessageBox.Question, "Recover unsaved changes?",
                          f"Distill Studio closed without saving your changes to "
                          f"'{record.get('name', 'untitled')}'{where}, last autosaved {when}.",
                          parent=self)
        box.setObjectName("recover-box")
        box.setInformativeText("Recover opens them as they were; Discard deletes them.")
        recover = box.addButton("Recover", QMessageBox.AcceptRole)
        box.addButton("Discard", QMessageBox.DestructiveRole)
        box.buttonClicked.connect(lambda button: self.recover(record) if button is recover
                                  else self.autosave.discard())
        self.recovery_box = box
        box.open()  # not exec(): nothing waits on it

    def recover(self, record: dict) -> bool:
        path = Path(record["path"]) if record.get("path") else None
        try:
            fixed: list[str] = []
            name, nodes, links = project_to_nodes(record["project"], path.parent if path else Path.home(), fixed)
        except InputError as exc:
            self.show_problems("Cannot recover the unsaved changes", exc)
            return False
        self._load_document(name, nodes, links)
        self.undo_stack.resetClean()  # recovered edits are unsaved edits
        self.path = path
        self._update_title()
        self.statusBar().showMessage("Recovered the unsaved changes; save them to keep them", 10000)
        self._say_fixed(fixed)
        return True

    def show_export(self, run_id: int | None = None, report: dict | None = None) -> None:
        """Bring the Export panel up, on a run (or showing a run's export report)."""
        if run_id is not None and not self.export_panel.select_run(run_id):
            self.statusBar().showMessage(f"run #{run_id} has no trained student to export "
                                         "(it did not complete)", 10000)
            return
        if report is not None:
            self.export_panel.show_report(report)
        self.export_dock.show()
        self.export_dock.raise_()

    def show_insights(self, run_id: int | None = None) -> None:
        """Bring the Insights panel up, on a run of the store (its analysis starts if it has none)."""
        if run_id is not None:
            row = self.store.run(run_id)
            if row is None:
                self.statusBar().showMessage(f"run #{run_id} is not in the run store", 8000)
                return
            self.insights.show_run(run_id, row["run_dir"], row["status"])
        self.insights_dock.show()
        self.insights_dock.raise_()

    def _runs_selected(self, run_ids: list[int]) -> None:
        """One run selected in the Runs panel: the Insights panel shows it."""
        if len(run_ids) != 1:
            return
        row = self.runs.run_row(run_ids[0])
        if row is not None:
            self.insights.show_run(row["id"], row["run_dir"], row["status"])

    def _run_ended(self, status: str, _message: str) -> None:
        """A run of this app completed: its insights, worked out by the engine, come up, and the
        result bar says what it scored and offers the export (or says where its export went)."""
        engine = self.runner.engine
        if status != "completed" or engine.run_dir is None:
            return
        self.insights.show_run(engine.run_id, engine.run_dir, status)
        self.insights_dock.show()
        self.insights_dock.raise_()
        finished = engine.finished_event
        best = (finished.best if finished else None) or {}
        final = (finished.final if finished else None) or {}
        export = (finished.export if finished else None) or {}
        problems = export.get("problems") or []
        problem = problems[0].get("message", "") if problems and isinstance(problems[0], dict) else ""
        self.result_run = {"id": engine.run_id, "test": final.get("test/acc"), "val": best.get("val/acc")}
        self.result_bar.show_completed(engine.run_id, final.get("test/acc"), best.get("val/acc"),
                                       str(export.get("folder") or ""),
                                       problem or (finished.export_error if finished else "") or "")

    # the result bar
    def export_now(self, run_id: int | None = None) -> bool:
        """Export a completed run at once with the Export panel's settings (int8 on, the run's
        export folder unless the user chose another); the bar shows the progress."""
        run_id = run_id if run_id is not None else (self.result_run or {}).get("id")
        if run_id is None:
            self.show_export()
            return False
        if self.export_panel.engine.running:
            self.show_export()
            self.statusBar().showMessage("An export is under way; it is in the Export panel", 8000)
            return False
        if self.insights.engine.running:  # two engines in one run folder: the export waits its turn
            self.pending_export = run_id
            self.result_bar.run_id = run_id
            self.result_bar.show_exporting("waiting for the Insights analysis of the run to finish", 0.0)
            return True
        self.show_export(run_id)
        if self.export_panel.run_box.currentData() is None or self.export_panel.run_box.currentData()["id"] != run_id:
            return False  # show_export said why
        self.export_panel.int8.setChecked(True)
        self.export_panel.start()
        if self.export_panel.engine.running:
            self.bar_export = True
            self.result_bar.run_id = run_id
            self.result_bar.show_exporting("starting the export", 0.0)
            return True
        return False

    def _start_pending_export(self) -> None:
        """The Insights analysis ended: the export asked for meanwhile starts (it reuses the analysis)."""
        if self.pending_export is None or self.insights.engine.running:
            return
        run_id, self.pending_export = self.pending_export, None
        if not self.export_now(run_id):
            self.result_bar.show_failed(self._result_headline(), "it could not start; see the Export panel")

    def _result_headline(self) -> str:
        r = self.result_run or {}
        return result_words(r.get("test"), r.get("val")) + "."

    def _export_progress(self, stage: str, fraction: float) -> None:
        if self.bar_export:
            self.result_bar.show_exporting(STAGES.get(stage, stage), fraction)

    def _export_done(self, report: dict, problems: list | None = None) -> None:
        if not self.bar_export:
            return
        self.bar_export = False
        problems = report.get("problems", []) if problems is None else problems
        problem = problems[0].get("message", "") if problems and isinstance(problems[0], dict) else ""
        self.result_bar.show_exported(str(report.get("folder") or ""), self._result_headline(), problem)

    def _export_failed(self, message: str) -> None:
        if self.bar_export:
            self.bar_export = False
            self.result_bar.show_failed(self._result_headline(), message)

    def open_folder(self, folder: str) -> FolderPathDialog | None:
        """A folder in the file manager; where there is none, its path in a dialog to copy."""
        if folder:
            self.folder_dialog = open_folder(folder, self)
            return self.folder_dialog
        return None

    # the welcome page
    def show_welcome(self) -> None:
        self.welcome.set_recent(self._recent())
        self.welcome.empty_button.setText("Back to the canvas" if self.doc.nodes else "Start with an empty canvas")
        self.canvas_stack.setCurrentWidget(self.welcome)
        self.welcome.demo_button.setFocus()

    def show_canvas(self) -> None:
        if self.canvas_stack.currentWidget() is not self.view:
            self.canvas_stack.setCurrentWidget(self.view)
            self.view.fit_to_view()

    @property
    def welcome_shown(self) -> bool:
        return self.canvas_stack.currentWidget() is self.welcome

    # layout
    def _dock(self, widget, title: str, area, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
            self.resizeDocks([self.palette_dock, self.inspector_dock], [250, 340], Qt.Horizontal)
            self.resizeDocks([self.dashboard_dock], [260], Qt.Vertical)  # the canvas keeps the room
        state = self.settings.value("window/state")
        if state is not None:  # a layout saved by an older build (other docks) is not restored
            self.restoreState(state, LAYOUT_VERSION)

    def _save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))

    # actions
    def _action(self, text: str, slot, shortcut=None, name: str = "", tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, list):
                action.setShortcuts(shortcut)
            else:
                action.setShortcut(shortcut)
        action.triggered.connect(slot)
        action.setObjectName(name or text.lower().replace(" ", "-").strip("…."))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        self.act_new = self._action("&New", self.new_project, QKeySequence.New, "new")
        self.act_open = self._action("&Open…", self.open_dialog, QKeySequence.Open, "open")
        self.act_save = self._action("&Save", self.save, QKeySequence.Save, "save")
        self.act_save_as = self._action("Save &As…", self.save_as, QKeySequence.SaveAs, "save-as")
        self.act_quit = self._action("&Quit", self.close, QKeySequence.Quit, "quit")
        self.recent_menu = None
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_new, self.act_open])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addActions([self.act_save, self.act_save_as])
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        self._rebuild_recent()

        self.act_undo = self.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence.Undo)
        self.act_undo.setObjectName("undo")
        self.act_redo = self.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.act_redo.setObjectName("redo")
        # the toolbar keeps its width: what would be undone goes to the tooltip, not the button
        self.undo_stack.undoTextChanged.connect(self._undo_words)
        self.undo_stack.redoTextChanged.connect(self._undo_words)
        self.act_delete = self._action("&Delete", self.scene.delete_selection,
                                       [QKeySequence.Delete, QKeySequence("Backspace")], "delete")
        self.act_select_all = self._action("Select &All", self._select_all, QKeySequence.SelectAll,
                                           "select-all")
        edit = bar.addMenu("&Edit")
        edit.addActions([self.act_undo, self.act_redo])
        edit.addSeparator()
        edit.addActions([self.act_delete, self.act_select_all])

        self.act_fit = self._action("&Fit to View", self.view.fit_to_view,
                                    [QKeySequence("Ctrl+0"), QKeySequence("F")], "fit")
        self.act_zoom_in = self._action("Zoom &In", lambda: self.view.zoom(1.2), QKeySequence.ZoomIn, "zoom-in")
        self.act_zoom_out = self._action("Zoom &Out", lambda: self.view.zoom(1 / 1.2), QKeySequence.ZoomOut,
                                         "zoom-out")
        view = bar.addMenu("&View")
        view.addActions([self.act_fit, self.act_zoom_in, self.act_zoom_out])
        view.addSeparator()
        for dock in self.findChildren(QDockWidget):
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        self.theme_actions = theme.add_menu(view, self.settings)  # System / Light / Dark, applied now

        self.act_check = self._action("&Check Pipeline", self.check_pipeline, QKeySequence("Ctrl+K"), "check",
                                      "Ask the engine whether this pipeline can run (spec, data, model files)")
        pipeline = bar.addMenu("&Pipeline")
        pipeline.addActions([self.runner.act_run, self.runner.act_pause, self.runner.act_stop,
                             self.runner.act_all_gpus])
        pipeline.addSeparator()
        pipeline.addAction(self.act_check)
        self.act_export = self._action("&Export Run…", lambda: self.show_export(), QKeySequence("Ctrl+E"),
                                       "export", "Export a completed run as verified ONNX (and int8) with a report")
        pipeline.addAction(self.act_export)
        self.act_insights = self._action("&Insights of the Selected Run", self._insights_of_selection,
                                         QKeySequence("Ctrl+I"), "insights",
                                         "What the student learned, and from which teacher (per class, "
                                         "confusion, calibration, mistakes, attributions)")
        pipeline.addAction(self.act_insights)

        help_menu = bar.addMenu("&Help")
        examples = help_menu.addMenu("&Examples")
        for path in sorted(EXAMPLES.glob("*.distill.json")):
            title = path.name.removesuffix(".distill.json").replace("-", " ")
            examples.addAction(self._action(title, lambda _=False, p=path: self.open_example(p),
                                            name=f"example-{path.stem}"))
        self.act_welcome = self._action("&Welcome", self.show_welcome, name="welcome",
                                        tip="The welcome page: the demo, the examples, recent projects, "
                                            "the three steps")
        help_menu.addAction(self.act_welcome)
        help_menu.addAction(self._action("&About Distill Studio", self._about, name="about"))

        tools = QToolBar("Main")
        tools.setObjectName("main-toolbar")
        tools.addActions([self.act_new, self.act_open, self.act_save])
        tools.addSeparator()
        tools.addActions([self.act_undo, self.act_redo, self.act_delete])
        tools.addSeparator()
        tools.addActions([self.act_fit, self.act_check])
        tools.addSeparator()
        tools.addActions([self.runner.act_run, self.runner.act_pause, self.runner.act_stop])
        self.addToolBar(tools)

    def _insights_of_selection(self) -> None:
        ids = self.runs.selected_ids()
        self.show_insights(ids[0] if len(ids) == 1 else None)

    def _select_all(self) -> None:
        for item in self.scene.node_items.values():
            item.setSelected(True)

    def _about(self) -> None:
        QMessageBox.about(self, "About Distill Studio",
                          "Distill Studio: distil many small expert models into one larger model.")

    # selection and status
    def _selection_changed(self) -> None:
        nodes = [i for i in self.scene.selectedItems() if isinstance(i, NodeItem)]
        self.inspector.show_node(nodes[0].node.id if len(nodes) == 1 else None)

    def _update_title(self) -> None:
        name = self.path.name if self.path else f"{self.doc.name} (unsaved)"
        self.setWindowTitle(f"{name}[*] — Distill Studio")
        self.setWindowModified(not self.undo_stack.isClean())

    def _update_summary(self) -> None:
        states = [node_status(self.doc, n)[0] for n in self.doc.nodes.values()]
        ready = sum(s == OK for s in states)
        self.status_label.setText(f"{len(states)} nodes, {ready} configured")
        reading = self.model_inspector.busy
        if reading:
            self.busy.start("read", f"Reading {reading} model file{'s' if reading > 1 else ''}…")
        else:
            self.busy.finish("read")

    # files
    def maybe_save(self) -> bool:
        """True when it is fine to drop the current document."""
        if self.undo_stack.isClean():
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to '{self.doc.name}' first?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if answer == QMessageBox.Save:
            return self.save()
        return answer == QMessageBox.Discard

    def new_project(self) -> None:
        if not self.maybe_save():
            return
        self.doc.clear()
        self.doc.set_name("untitled pipeline")
        self.undo_stack.clear()
        self.path = None
        self.runs.clear_selection()  # an earlier pipeline's runs no longer overlaid nor compared
        self._update_title()
        self.result_bar.hide()
        self.show_welcome()

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        start = str(self.path.parent) if self.path else str(EXAMPLES)
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, PROJECT_FILTER)
        if path:
            self.open_project(Path(path), ask=False)

    def open_example(self, path: Path) -> None:
        if self.maybe_save():
            self.open_project(path, ask=False, as_copy=True)

    def open_project(self, path: Path, ask: bool = True, as_copy: bool = False,
                     keep_compared: bool = False) -> bool:
        """Open a project; on any problem show it and change nothing. `as_copy`: an example,
        opened untitled so that saving never overwrites the bundled file. The runs compared
        before are let go, unless `keep_compared` (a run opened from the Runs panel)."""
        if ask and not self.maybe_save():
            return False
        path = Path(path)
        try:
            fixed: list[str] = []
            name, nodes, links = project_to_nodes(read_project(path), path.resolve().parent, fixed)
        except InputError as exc:
            self.show_problems(f"Cannot open {path.name}", exc)
            return False
        except RecursionError:  # whatever walks the project, a damaged file must not end the app
            self.show_problems(f"Cannot open {path.name}", InputError.one(
                "(file)", f"{path.name} is nested too deeply to read", "open another project"))
            return False
        self._load_document(name, nodes, links)
        if not keep_compared:
            self.runs.clear_selection()
        self.path = None if as_copy else path.resolve()
        if not as_copy:
            self._remember_recent(self.path)
        self._update_title()
        self.statusBar().showMessage(f"Opened {path.name}", 5000)
        self._say_fixed(fixed)
        return True

    def _say_fixed(self, fixed: list[str]) -> None:
        """Say what opening a project had to mend (impossible node places), in the status bar."""
        if fixed:
            more = f" (and {len(fixed) - 3} more)" if len(fixed) > 3 else ""
            self.statusBar().showMessage("Moved nodes whose places were not usable numbers: "
                                         + "; ".join(fixed[:3]) + more, 15000)

    def _load_document(self, name: str, nodes: list, links: list) -> None:
        """Replace the document (opened or recovered); its teachers' files are read anew."""
        self.scene.clearSelection()
        with self.doc.batch():  # one validation pass after the load, not one per node
            self.doc.clear()
            self.doc.set_name(name)
            for node in nodes:
                self.doc.add_node(node)
            for link in links:
                self.doc.add_link(link)
        self.undo_stack.clear()
        self.show_canvas()
        self.view.fit_to_view()  # and again when the view gets its size (the window shown, docks placed)
        self.result_bar.hide()  # the bar spoke of the previous project's run
        for node in self.doc.of_kind("teacher"):
            if node.props.get("path"):
                self.teacher_files.read(node.id, node.props["path"])

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self.save_to(self.path)

    def save_as(self) -> bool:
        start = str(self.path) if self.path else str(Path.home() / f"{self.doc.name}.distill.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save project", start, PROJECT_FILTER)
        if not path:
            return False
        path = Path(path)
        if not path.name.endswith(".json"):
            path = path.with_name(path.name + ".distill.json")
        return self.save_to(path)

    def save_to(self, path: Path) -> bool:
        path = Path(path).resolve()
        try:
            if path.is_file():  # the previous version stays as PROJECT.bak
                backup = path.with_name(path.name + ".bak")
                atomic_write(backup, lambda tmp: shutil.copyfile(path, tmp))
            atomic_write_text(path, project_json(self.doc, path.parent))
        except OSError as exc:
            QMessageBox.warning(self, "Not saved", f"Cannot save {path}:\n{exc.strerror or exc}\n\n"
                                "Your pipeline is still open; choose another folder with Save As.")
            return False
        self.path = path
        self.undo_stack.setClean()
        self._remember_recent(path)
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _remember_recent(self, path: Path) -> None:
        recent = [p for p in self._recent() if p != str(path)]
        self.settings.setValue("recent", json.dumps([str(path)] + recent[:MAX_RECENT - 1]))
        self._rebuild_recent()

    def _recent(self) -> list[str]:
        try:
            value = json.loads(self.settings.value("recent", "[]") or "[]")
        except (json.JSONDecodeError, TypeError):
            return []
        return [p for p in value if isinstance(p, str)] if isinstance(value, list) else []

    def _rebuild_recent(self) -> None:
        if self.recent_menu is None:
            return
        self.recent_menu.clear()
        recent = self._recent()
        for p in recent:
            self.recent_menu.addAction(self._action(p, lambda _=False, p=p: self.open_project(Path(p)),
                                                    name=f"recent-{Path(p).name}"))
        self.recent_menu.setEnabled(bool(recent))
        self.welcome.set_recent(recent)

    def show_problems(self, title: str, exc: InputError, outcome: str = "Nothing was changed.") -> None:
        lines = [f"• {p.path}: {p.message}\n   → {p.hint}" for p in exc.problems[:12]]
        more = len(exc.problems) - 12
        box = QMessageBox(QMessageBox.Warning, title, f"{title}. {outcome}".strip(),
                          QMessageBox.Ok, self)
        box.setObjectName("problems-box")
        box.setInformativeText("\n".join(lines) + (f"\n… and {more} more" if more > 0 else ""))
        box.open()

    def _undo_words(self, _text: str = "") -> None:
        """Undo and Redo say just that; the tooltip says what they would undo or redo."""
        for action, word, text in ((self.act_undo, "&Undo", self.undo_stack.undoText()),
                                   (self.act_redo, "&Redo", self.undo_stack.redoText())):
            if shiboken6.isValid(action):  # the window may be closing while the stack clears
                action.setText(word)
                action.setToolTip(f"{word.replace('&', '')} {text}".strip())

    # asking the engine
    def check_pipeline(self) -> None:
        """Write the pipeline to a temp file and run `engine validate --json` on it."""
        folder = Path(tempfile.mkdtemp(prefix="distill-check-"))
        spec = folder / "check.distill.json"
        spec.write_text(project_json(self.doc, None), encoding="utf-8")
        written = Checked.of(self.doc)  # its problems go to these nodes, if they are still as checked

        def done(code, _status):
            self.busy.finish("check")  # "Checking…" ends with the check, before its result shows
            self.act_check.setEnabled(True)
            out = bytes(proc.readAllStandardOutput()).decode("utf-8", "replace")
            proc.deleteLater()
            try:
                result = json.loads(out)
            except json.JSONDecodeError:
                self.statusBar().showMessage(f"The engine could not check the pipeline (exit {code})", 8000)
                return
            if result.get("valid"):
                self.clear_teacher_checks(problems=True)
                for data in self.doc.of_kind("data"):  # the student's size follows from it
                    checked = {"props": data.props, "shape": result.get("sample_shape")}
                    if checked["shape"] and data.info.get("checked_shape") != checked:
                        self.doc.set_info(data.id, {**data.info, "checked_shape": copy.deepcopy(checked)})
                student = self.doc.student()  # the layers a hint may read, for this architecture
                if student is not None and result.get("student_layers"):
                    layers = {"architecture": student.props.get("architecture"), "layers": result["student_layers"]}
                    if student.info.get("checked_layers") != layers:
                        self.doc.set_info(student.id, {**student.info, "checked_layers": copy.deepcopy(layers)})
                checks = result.get("checks", [])
                for c in checks:
                    self.show_teacher_check(c["teacher"], c["level"], c["message"], c.get("hint", ""),
                                            c.get("accuracy"), c.get("samples"), c.get("field", ""), c.get("fix"))
                warnings = [c for c in checks if c["level"] == "warning"]
                self.statusBar().showMessage(
                    f"Pipeline ready: {len(result['teachers'])} teachers → student with "
                    f"{result['student_parameters']:,} parameters; {result['samples']['train']} "
                    "training samples" + (f"; {len(warnings)} warning(s) on the teachers" if warnings else ""),
                    10000)
                if warnings:
                    self.show_problems("The pipeline can run, but check these teachers", InputError(
                        [Problem(c["field"], c["message"], c.get("hint", "")) for c in warnings]),
                        "Their warnings are on their nodes too.")
            else:
                self.show_engine_problems([Problem(**p) for p in result["problems"]], written)

        def not_started():
            self.busy.finish("check")
            self.act_check.setEnabled(True)
            proc.deleteLater()
            self.statusBar().showMessage(f"The engine could not start ({describe_program()})", 8000)

        self.busy.start("check", "Checking the pipeline…")
        self.act_check.setEnabled(False)  # one check at a time
        proc = start_engine(self, ["validate", "--json", str(spec)], finished=done, failed_to_start=not_started)

    def show_teacher_check(self, teacher: str, level: str, message: str, hint: str, accuracy: float | None,
                           samples: int | None, field: str = "", fix: dict | None = None) -> None:
        """What the engine's checks found about a teacher, on its node: a warning in amber, or
        its accuracy on the labelled samples."""
        for item in self.scene.node_items.values():
            node = item.node
            if node.kind != "teacher" or node.props.get("name") != teacher:
                continue
            if level == "warning":  # kept with the file's info: the inspector offers the fix
                self.doc.set_info(node.id, {**node.info, "check": {
                    "message": message, "hint": hint, "field": field, "fix": fix or {}}})
            elif accuracy is not None and not item.warning:
                item.set_live(f"accuracy {accuracy:.3f} on {samples} labelled samples")

    def clear_teacher_checks(self, problems: bool = False) -> None:
        """A new check or run says again what still holds: the teachers' warnings, and with
        `problems` what the last check of this pipeline found on its nodes (a run of a stored
        spec leaves those)."""
        drop = ("check", "problems") if problems else ("check",)
        for node in list(self.doc.nodes.values()):
            if any(k in node.info for k in drop):
                self.doc.set_info(node.id, {k: v for k, v in node.info.items() if k not in drop})

    def show_engine_problems(self, problems: list[Problem], checked: Checked,
                             title: str = "The pipeline cannot run yet", outcome: str = "") -> None:
        """Every problem the engine found in the spec written from `checked`, on its node while
        that node is as it was (red until it is changed or checked again; Run refuses
        meanwhile), and all of them in one box, in the window's words."""
        self.clear_teacher_checks(problems=True)
        on_nodes, lines = problems_on_nodes(self.doc, problems, checked)
        for node_id, found in on_nodes.items():
            node = self.doc.nodes[node_id]
            self.doc.set_info(node_id, {**node.info, "problems": {"props": copy.deepcopy(node.props), "list": found}})
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        for old in self.findChildren(QMessageBox, "problems-box"):  # one box: the latest answer
            old.setObjectName("")
            old.close()
            old.deleteLater()
        box = QMessageBox(QMessageBox.Warning, title, f"{title}: {count}. {outcome}".strip(), QMessageBox.Ok, self)
        box.setObjectName("problems-box")
        shown = lines[:12]
        more = len(lines) - len(shown)
        marked = ("\n\nThe nodes concerned are marked red; Run waits until they change or Check Pipeline "
                  "passes." if on_nodes else "")
        box.setInformativeText("\n".join(f"• {line}" for line in shown) + (f"\n… and {more} more" if more > 0 else "")
                               + marked)
        box.open()
        self.statusBar().showMessage(f"{title}: {count}" + (", marked on the nodes" if on_nodes else ""), 10000)

    def show_dashboard(self) -> None:
        self.dashboard_dock.show()
        self.dashboard_dock.raise_()

    # closing
    def closeEvent(self, event) -> None:
        if self.runner.running and not self._ask_about_run():
            event.ignore()
            return
        devices = self.runner.devices_proc
        if devices is not None and devices.state() != QProcess.NotRunning:
            devices.kill()
        if self.maybe_save():
            if self.export_panel.engine.running:  # an export is quick to redo: it is not asked about
                self.export_panel.engine.cancel()
            if self.insights.engine.running:  # nor is an analysis (the one before it stays whole)
                self.insights.engine.cancel()
            self.autosave.discard()  # saved, or the user chose to discard the changes
            self.folder_scans.scanner.cancel_all()  # a scan is quick to redo
            self._save_layout()
            self.settings.sync()
            event.accept()
        else:
            event.ignore()

    def _ask_about_run(self) -> bool:
        """A run is going on: stop it, or keep it running without the window. False: cancel."""
        choice = self.choose_close_action()
        if choice == "stop":
            self.runner.engine.ended.connect(lambda *_: self.close(), Qt.SingleShotConnection)
            self.runner.stop()
            return False  # the window closes when the engine has saved and exited
        if choice == "keep":
            self.keep_engine_running = True
            self.runner.engine.detach()
            return True
        return False

    def choose_close_action(self) -> str:
        """Ask what to do with the run: 'stop', 'keep' or 'cancel'."""
        box = QMessageBox(QMessageBox.Question, "A run is in progress",
                          "A run is in progress. Stop it (it saves a checkpoint first), or keep it "
                          "running in the background? It keeps writing to the run store and shows "
                          "up in the Runs panel when you open the app again.", parent=self)
        box.setObjectName("close-while-running")
        stop = box.addButton("Stop the Run", QMessageBox.DestructiveRole)
        keep = box.addButton("Keep Running", QMessageBox.AcceptRole)
        box.addButton(QMessageBox.Cancel)
        box.exec()  # closing waits for the answer by design; training goes on meanwhile
        return {id(stop): "stop", id(keep): "keep"}.get(id(box.clickedButton()), "cancel")

    def grab_screenshot(self, path: Path) -> None:
        QApplication.processEvents()
        self.grab().save(str(path))
