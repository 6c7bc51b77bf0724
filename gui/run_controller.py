"""Running the pipeline from the window: Run / Pause / Stop, live curves, node states, history.

It ties the engine client to the dashboard, the canvas, the status bar and the Runs panel.
All of it is signal-driven: the GUI thread never waits for the engine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QProcess, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMessageBox, QProgressBar

from engine.atomic_io import atomic_write_text
from engine.errors import Problem
from engine.events import (
    Checkpoint,
    Error,
    Event,
    Finished,
    Log,
    Metric,
    Progress,
    Started,
    TeacherCheck,
    TeacherOutputs,
)
from engine.run import default_run_dir
from gui.document.chain import chain_after
from gui.document.convert import project_json
from gui.document.validation import OK, checked_problems, node_status
from gui.engine_client.eta import EtaEstimator, round_rate
from gui.engine_client.process import start_engine
from gui.engine_client.run import EngineRun
from gui.panels.dashboard import Dashboard
from gui.panels.problem_words import Checked
from gui.panels.runs import RunsPanel


class RunController(QObject):
    runEnded = Signal(str, str)  # status, message

    def __init__(self, window, store, dashboard: Dashboard, runs: RunsPanel):
        super().__init__(window)
        self.window, self.store, self.dashboard, self.runs = window, store, dashboard, runs
        self.engine = EngineRun(store.path, self)
        self.engine.event.connect(self._on_event)
        self.engine.ended.connect(self._on_ended)
        self.engine.protocolProblem.connect(lambda text: self.dashboard.add_log(text, error=True))
        self.engine.responding.connect(self._on_responding)
        self.paused = False
        self.stopping = False  # Stop was asked: late progress no longer speaks
        self.epochs = 0
        self.eta = EtaEstimator()
        self.clock = time.monotonic  # when progress arrives (tests give their own)
        self.last_problem_box: QMessageBox | None = None
        self.canvas: Checked | None = None  # the nodes of the canvas the run's spec was written from
        self.started = self.problems_shown = False  # the engine said Started; problems were shown

        self.act_run = self._action("&Run", self.run_pipeline, "F5", "run", "Train the student (F5)")
        self.act_pause = self._action("&Pause", self.toggle_pause, "F6", "pause", "Pause or resume the run")
        self.act_stop = self._action("&Stop", self.stop, "Shift+F5", "stop", "Checkpoint, then stop the run")
        self.gpus = 0  # CUDA GPUs the engine sees; asked in the background after start
        self.devices_proc: QProcess | None = None
        self.act_all_gpus = self._action("Use &All GPUs", lambda: None, None, "all-gpus",
                                         "Train with one process per GPU (torchrun, DistributedDataParallel)")
        self.act_all_gpus.setCheckable(True)
        self.act_all_gpus.setVisible(False)
        QTimer.singleShot(3000, self, self._ask_devices)  # after the window is up (it loads torch); not after it
        self.progress = QProgressBar()
        self.progress.setObjectName("run-progress")
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.run_label = QLabel()
        self.run_label.setObjectName("run-status")
        window.statusBar().addPermanentWidget(self.run_label)
        window.statusBar().addPermanentWidget(self.progress)

        runs.compare.connect(self.compare)
        runs.openRun.connect(self.open_run)
        runs.rerun.connect(self.rerun)
        runs.resumeRun.connect(self.resume_run)
        self._update_actions()

    def _action(self, text, slot, key, name, tip) -> QAction:
        action = QAction(text, self.window)
        if key:
            action.setShortcut(QKeySequence(key))
        action.setObjectName(name)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    @property
    def running(self) -> bool:
        return self.engine.running

    def _update_actions(self) -> None:
        self.act_run.setEnabled(not self.running)
        self.act_pause.setEnabled(self.running and not self.stopping)
        self.act_stop.setEnabled(self.running and not self.stopping)
        self.act_pause.setText("&Resume" if self.paused else "&Pause")

    # starting
    def run_pipeline(self) -> bool:
        """Check the pipeline, save a copy of it with the run, start the engine."""
        doc = self.window.doc
        problems = [f"• {n.title}: {reason}" for n in doc.nodes.values()
                    for state, reason in [node_status(doc, n)] if state != OK]
        if doc.student() is None:
            problems.insert(0, "• the pipeline has no student: drag one from the palette")
        if problems:
            checked = any(checked_problems(n) for n in doc.nodes.values())
            self._tell("The pipeline cannot run yet", "Fix these first:\n" + "\n".join(problems) + (
                "\n\nFixed a file outside the app? Check Again reads it anew." if checked else ""),
                self.window.act_check.trigger if checked else None)
            return False
        run_dir = default_run_dir(doc.name, self.store.path)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = run_dir / "pipeline.distill.json"
        atomic_write_text(spec, project_json(doc, None))
        self._start(lambda: self.engine.start_run(spec, run_dir, self.processes), Checked.of(doc))
        return True

    def rerun(self, run_id: int) -> None:
        row = self.store.run(run_id)
        if row is None or self.running:
            return
        run_dir = default_run_dir(row["name"], self.store.path)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = run_dir / "pipeline.distill.json"
        atomic_write_text(spec, row["spec"])
        self._start(lambda: self.engine.start_run(spec, run_dir, self.processes))

    def resume_run(self, run_id: int) -> None:
        row = self.store.run(run_id)
        if row is None or self.running:
            return
        self._start(lambda: self.engine.start_resume(Path(row["run_dir"]), self.processes))
        for name, (x, y) in self._history(run_id, every=True).items():  # all the curves so far
            self.dashboard.add_points(name, x, y)

    @property
    def processes(self) -> int:
        return self.gpus if self.gpus > 1 and self.act_all_gpus.isChecked() else 1

    def _ask_devices(self) -> None:
        self.devices_proc = start_engine(self, ["devices", "--json"], finished=self._devices_ended)

    def _devices_ended(self, code: int, _status) -> None:
        try:
            output = bytes(self.devices_proc.readAllStandardOutput()).decode("utf-8", "replace") if code == 0 else ""
        except RuntimeError:  # the window (and the probe with it) is being destroyed
            return
        self._devices_known(output)

    def _devices_known(self, output: str) -> None:
        """With several GPUs, offer to train on all of them."""
        try:
            self.gpus = int(json.loads(output).get("cuda", 0))
        except (ValueError, AttributeError, TypeError):
            self.gpus = 0
        self.act_all_gpus.setText(f"Use &All {self.gpus} GPUs")
        self.act_all_gpus.setVisible(self.gpus > 1)
        self.act_all_gpus.setChecked(self.gpus > 1)

    def _start(self, launch, canvas: Checked | None = None) -> None:
        """`canvas`: the nodes the run's spec was written from (None: a stored spec, run again or
        resumed), whose problems, if the engine finds any, go on them."""
        self.canvas, self.started, self.problems_shown = canvas, False, False
        self.dashboard.clear_live()
        self.paused = self.stopping = False
        self.epochs = 0
        self.eta.reset()
        for item in self.window.scene.node_items.values():
            item.set_live("")
        self.window.clear_teacher_checks(problems=canvas is not None)  # this run's checks say again what holds
        self._busy(True)  # until the engine's first progress: it loads torch, the data, the teachers
        self.progress.show()
        self.run_label.setText("Starting the engine…")
        self.run_label.setToolTip("")
        launch()
        self._update_actions()
        self.window.show_dashboard()

    def _busy(self, busy: bool) -> None:
        """The progress bar as a busy bar (no fraction to tell yet), or as the run's fraction."""
        if busy:
            self.progress.setRange(0, 0)
        elif self.progress.maximum() == 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(0)

    # controlling
    def toggle_pause(self) -> None:
        if not self.running or self.stopping:
            return
        if self.paused:
            self.engine.resume()
        else:
            self.engine.pause()
            self.eta.hold()
        self.paused = not self.paused
        text = self.run_label.text().removesuffix(" · paused")
        self.run_label.setText(text + (" · paused" if self.paused else ""))
        self._update_actions()

    def stop(self) -> None:
        if self.running:
            self.stopping = True  # what the engine says of its progress from now on is stale
            self.run_label.setText("stopping: ending the engine, which is not responding…"
                                   if self.engine.not_responding else "stopping: saving a checkpoint…")
            self._busy(True)
            self.engine.stop()
            self._update_actions()

    def _on_responding(self, responding: bool, why: str) -> None:
        """The engine stopped answering (its ETA is stale), or answers again."""
        if self.stopping:  # the label says what Stop does; the log tells the rest
            self.dashboard.add_log(why or "the engine responds again", error=not responding)
            return
        if responding:
            self.dashboard.add_log("the engine responds again")
            self.run_label.setText(self.run_label.text().removeprefix("not responding · "))
        else:
            self.dashboard.add_log(why, error=True)
            self.run_label.setText("not responding · " + self.run_label.text().split(" · ETA")[0])
            self.run_label.setToolTip(why)

    # events
    def _on_event(self, e: Event) -> None:
        scene = self.window.scene
        if isinstance(e, Started):
            self.started = True
            self.epochs = e.epochs
            if not self.stopping:
                self.run_label.setText(f"run #{e.run_id} on {e.device} · preparing…")
            self.dashboard.add_log(f"run #{e.run_id} started on {e.device} — {e.run_dir}")
            for item in scene.node_items.values():
                if item.node.kind == "teacher":
                    item.set_live("running once: outputs cached")
        elif isinstance(e, Metric):
            self.dashboard.add_metrics(e.epoch, e.values, e.step)
            acc = e.values.get("val/acc")
            student = self.window.doc.student()
            if acc is not None and student is not None:
                scene.node_items[student.id].set_live(
                    f"training: val/acc {acc:.3f} · epoch {int(e.epoch)}/{self.epochs}")
        elif isinstance(e, Progress):
            self._on_progress(e)
        elif isinstance(e, TeacherOutputs):  # a teacher's outputs: reused, or computed once
            self.dashboard.add_log(e.message)
            for item in scene.node_items.values():
                if item.node.kind == "teacher" and item.node.props.get("name") == e.teacher:
                    item.set_live("outputs cached: reused" if e.cache == "hit" else "outputs cached: computed once")
        elif isinstance(e, TeacherCheck):  # before training: how the teacher reads its input, its accuracy
            self.window.show_teacher_check(e.teacher, e.level, e.message, e.hint, e.accuracy, e.samples,
                                           e.field, e.fix)
            self.dashboard.add_log(e.message + (f" — {e.hint}" if e.level == "warning" and e.hint else ""),
                                   error=e.level == "warning")
        elif isinstance(e, Log):
            self.dashboard.add_log(e.message, error=e.level == "warning")
        elif isinstance(e, Error):
            self.dashboard.add_log(f"error: {e.message} — {e.hint}", error=True)
            if e.problems and self.canvas is not None:  # bad input: on the nodes it belongs to
                self.problems_shown = True
                self.window.show_engine_problems(
                    [Problem(p.path, p.message, p.hint) for p in e.problems], self.canvas,
                    *(("The run failed", "It is in the Runs panel.") if self.started else
                      ("The run could not start", "Nothing was trained.")))
        elif isinstance(e, Checkpoint):
            self.dashboard.add_log(f"checkpoint at step {e.step}")
        elif isinstance(e, Finished) and e.export:
            self._on_export(e.run_id, e.export)

    def _on_progress(self, e: Progress) -> None:
        if self.stopping:  # sent before the engine read Stop: it would bring back a stale ETA
            return
        self._busy(False)
        self.progress.setValue(int(1000 * e.fraction))
        if e.phase == "export":
            self.run_label.setText(f"exporting: {e.stage}")
            return
        epochs = f"epoch {e.epoch:.1f}/{e.epochs}"
        if e.phase == "prune":  # the prune node being fine-tuned says so
            self._set_chain_live("prune", e.prune_step, f"fine-tuning · {epochs}")
        fine_tune = {"distill": "", "pretrain": "self-supervised pretraining · "}.get(
            e.phase, f"prune {(e.prune_step or 0) + 1}: fine-tune · ")
        self.eta.update(self.clock(), e.step, e.total_steps, e.samples_per_s, (e.phase, e.prune_step))
        self.run_label.setText(f"{epochs} · " + fine_tune
                               + f"{round_rate(self.eta.samples_per_s)} samples/s · ETA {self.eta.text()}"
                               + (" · paused" if self.paused else ""))
        self.run_label.setToolTip(f"the engine's last reading: {e.samples_per_s:,.0f} samples/s, "
                                  f"{e.eta_s:.0f} s left of this phase; the estimate shown is averaged "
                                  "over the last half minute")

    def _on_export(self, run_id: int | None, report: dict) -> None:
        """The export report in a `finished` event (an open dict in the protocol): shown; one of
        the wrong shape is said in the log, never raised in this slot."""
        try:
            self._show_export(run_id, report)
        except (KeyError, TypeError, AttributeError, ValueError, ZeroDivisionError) as exc:
            self.dashboard.add_log(f"protocol problem: the export report does not fit what this app "
                                   f"reads ({type(exc).__name__}: {str(exc)[:120]})", error=True)

    def _show_export(self, run_id: int | None, report: dict) -> None:
        self.dashboard.add_log(f"exported to {report.get('folder')}: " + ", ".join(
            f"{k} {v['bytes']:,} bytes" for k, v in report.get("files", {}).items()))
        self.window.show_export(run_id, report)
        files = report.get("files", {})
        if "onnx_int8" in files:
            smaller = files["onnx_fp32"]["bytes"] / files["onnx_int8"]["bytes"]
            acc = report["accuracy"].get("onnx_int8")  # None: no labels, not measured
            self._set_chain_live("quantize", 0, f"int8 {smaller:.1f}× smaller · "
                                 + (f"acc {acc:.3f}" if acc is not None else "accuracy not measured"))
        self._set_chain_live("export", 0, "exported (Export panel)"
                             if not report.get("problems") else "exported with a problem")

    def _set_chain_live(self, kind: str, index: int, text: str) -> None:
        """Live text on the index-th node of a kind in the student's compression chain."""
        student = self.window.doc.student()
        if student is None:
            return
        nodes = [n for n in chain_after(self.window.doc, student) if n.kind == kind]
        if index < len(nodes) and nodes[index].id in self.window.scene.node_items:
            self.window.scene.node_items[nodes[index].id].set_live(text)

    def _on_ended(self, status: str, message: str) -> None:
        self.paused = self.stopping = False
        self._update_actions()
        self._busy(False)
        self.progress.setVisible(status == "completed")
        self.run_label.setText(f"run {status}")
        self.dashboard.add_log(message, error=status == "failed")
        student = self.window.doc.student()
        if student is not None and student.id in self.window.scene.node_items:
            item = self.window.scene.node_items[student.id]
            item.set_live(item.live.replace("training:", status + ":") if item.live else "")
        for item in self.window.scene.node_items.values():  # a fine-tune that is over
            if item.live.startswith("fine-tuning"):
                item.set_live(f"fine-tune {status}")
        self.runs.refresh()
        self.window.statusBar().showMessage(message.splitlines()[0], 10000)
        if status == "failed" and not self.problems_shown:  # problems were said in their own box
            self._tell("The run failed", message)
        self.runEnded.emit(status, message)

    def _tell(self, title: str, text: str, check_again=None) -> None:
        box = QMessageBox(QMessageBox.Warning, title, title + ".", QMessageBox.Ok, self.window)
        box.setObjectName("run-message")
        box.setInformativeText(text)
        if check_again is not None:
            box.addButton("Check Again", QMessageBox.ActionRole).clicked.connect(check_again)
        box.open()  # not exec(): nothing waits on it
        self.last_problem_box = box

    # history
    def _history(self, run_id: int, every: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """A stored run's main curves and its layer groups' gradient norms (training.gradient_norms),
        each as (x in its plot's unit, values); with `every`, each metric the dashboard shows (a
        resumed run's curves so far: the per-teacher KD losses, train/acc, … from the start)."""
        out = {}
        names = [n for n in self.store.metric_names(run_id, "") if self.dashboard.x_unit(n)] if every else \
            ["loss/total", "val/acc", "lr", *self.store.metric_names(run_id, "grad/")]
        for name in names:
            rows = self.store.metrics(run_id, name)
            x = self.dashboard.x_unit(name) or "epoch"
            out[name] = (np.array([r[x] for r in rows], dtype=float),
                         np.array([r["value"] for r in rows], dtype=float))
        return out

    def compare(self, run_ids: list[int]) -> None:
        runs = {}
        for run_id in run_ids[:8]:
            row = self.store.run(run_id)
            if row is not None:
                runs[run_id] = (row["name"], self._history(run_id))
        self.dashboard.show_history(runs)

    def open_run(self, run_id: int) -> None:
        row = self.store.run(run_id)
        if row is None:
            return
        copy = Path(row["run_dir"]) / "spec.distill.json"  # the engine's copy, layout included
        if not copy.is_file():
            self._tell("Cannot open the run", f"Its folder {row['run_dir']} no longer holds its spec.")
            return
        if self.window.maybe_save():
            self.window.open_project(copy, ask=False, as_copy=True, keep_compared=True)
