"""Scanning image folders through `distill-engine scan --json`, in a child process.

The app never lists or decodes a folder of images itself (a folder may hold a million files, or
images built to hurt a decoder): the engine lists it, counts the images per class and makes a
few thumbnails, reporting progress as it goes. One scan per key (a data node); starting another
for the same key ends the one before; `cancel` kills it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, QProcess, Signal

from engine.events import Error, Finished, Progress
from gui.engine_client.engine_command import describe_program
from gui.engine_client.engine_message import clean_engine_message
from gui.engine_client.events import EventReader, ProtocolProblem
from gui.engine_client.process import start_engine


class _Scan:
    def __init__(self, key: str, folder: str):
        self.key, self.folder = key, folder
        self.proc: QProcess | None = None
        self.reader = EventReader()
        self.result: dict | None = None
        self.error = ""
        self.cancelled = False


class FolderScanner(QObject):
    progress = Signal(str, str, str, int)  # key, folder, stage (listing, thumbnails), count
    done = Signal(str, str, dict)  # key, folder, the scan (engine/scan_folder.py)
    failed = Signal(str, str, str)  # key, folder, a message for the user
    cancelled = Signal(str, str)  # key, folder
    busyChanged = Signal(int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._scans: dict[str, _Scan] = {}

    @property
    def busy(self) -> int:
        return len(self._scans)

    def scanning(self, key: str) -> str | None:
        """The folder being scanned for `key`, if any."""
        scan = self._scans.get(key)
        return scan.folder if scan else None

    def scan(self, key: str, folder: str | Path) -> None:
        self.cancel(key, quiet=True)
        scan = _Scan(key, str(folder))
        self._scans[key] = scan
        scan.proc = start_engine(self, ["scan", "--json", str(folder)],
                                 stdout=lambda: self._read(scan),
                                 finished=lambda code, status: self._finished(scan, code, status),
                                 failed_to_start=lambda: self._failed_to_start(scan))
        self.busyChanged.emit(self.busy)

    def cancel(self, key: str, quiet: bool = False) -> None:
        """Kill the scan for `key`; `cancelled` follows (unless `quiet`: another scan replaces it)."""
        scan = self._scans.pop(key, None)
        if scan is None:
            return
        scan.cancelled = True
        proc, scan.proc = scan.proc, None
        if proc is not None and shiboken6.isValid(proc):
            # nothing of a cancelled scan may call back later (the window may be gone by then):
            # its signals are cut, the killed child reaped (milliseconds after SIGKILL), the
            # process object deleted by the event loop
            for signal in (proc.readyReadStandardOutput, proc.readyReadStandardError, proc.finished,
                           proc.errorOccurred):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect()
            if proc.state() != QProcess.NotRunning:
                proc.kill()
                proc.waitForFinished(2000)
            proc.deleteLater()
        self.busyChanged.emit(self.busy)
        if not quiet:
            self.cancelled.emit(key, scan.folder)

    def cancel_all(self) -> None:
        for key in list(self._scans):
            self.cancel(key, quiet=True)

    def _read(self, scan: _Scan, at_end: bool = False) -> None:
        if scan.proc is None or not shiboken6.isValid(scan.proc):
            return
        items = scan.reader.feed(bytes(scan.proc.readAllStandardOutput()))
        for event in items + (scan.reader.flush() if at_end else []):
            if scan.cancelled:
                return
            if isinstance(event, ProtocolProblem):
                scan.error = scan.error or event.message
            elif isinstance(event, Progress) and event.phase == "scan":
                self.progress.emit(scan.key, scan.folder, event.stage or "", event.step or 0)
            elif isinstance(event, Error):
                scan.error = f"{event.message}; {event.hint}"
            elif isinstance(event, Finished) and event.status == "completed" and event.report is not None:
                scan.result = event.report

    def _failed_to_start(self, scan: _Scan) -> None:
        if self._scans.get(scan.key) is scan:
            del self._scans[scan.key]
            self.busyChanged.emit(self.busy)
            self.failed.emit(scan.key, scan.folder, f"could not start the engine ({describe_program()})")

    def _finished(self, scan: _Scan, code: int, status) -> None:
        if not shiboken6.isValid(self) or scan.proc is None or not shiboken6.isValid(scan.proc):
            return  # the app is closing
        self._read(scan, at_end=True)
        err = bytes(scan.proc.readAllStandardError()).decode("utf-8", "replace")
        scan.proc.deleteLater()
        scan.proc = None
        if scan.cancelled or self._scans.get(scan.key) is not scan:
            return  # cancelled (said so then) or replaced by a newer scan
        del self._scans[scan.key]
        self.busyChanged.emit(self.busy)
        if code == 0 and status == QProcess.NormalExit and scan.result is not None:
            self.done.emit(scan.key, scan.folder, scan.result)
        elif scan.error:
            self.failed.emit(scan.key, scan.folder, scan.error)
        else:
            self.failed.emit(scan.key, scan.folder, clean_engine_message(err, code, "cannot scan: "))
