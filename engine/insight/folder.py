"""RUN_DIR/insights: the analysis's folder, replaced whole or not at all (torch-free).

An analysis writes its files into a work folder inside (`.work-PID/`), then moves them into
place — insights.json removed first and put back last, so a kill half-way leaves no
insights.json (nothing is shown as analysed; the next analysis starts over) rather than an old
insights.json beside new pictures. A cancelled or failed analysis removes its work folder and
leaves the previous analysis as it was. Only the names an analysis writes are ever replaced or
removed; a folder holding anything else (a user's file, a symlink) is refused, named.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from engine.errors import InputError

JSON = "insights.json"
FILES = {JSON, "arrays.npz", "amalgamation.png", "confusion.png", "agreement.png", "calibration.png"}
THUMBS = "mistakes"
THUMB = re.compile(r"\d{3}\.png")
WORK = re.compile(r"\.work-\d+")


class InsightsFolder:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.work = self.folder / f".work-{os.getpid()}"
        self.created = False  # the folder is this analysis's own making (removed if it fails)

    def open(self) -> Path:
        """Check that the folder is the analyses' own, remove work folders that killed analyses
        left, and make this one's (with its `mistakes/`); returns it. InputError otherwise."""
        foreign = self._foreign()
        if foreign:
            raise InputError.one("RUN_DIR", f"{self.folder} holds {', '.join(foreign[:5])}, which no analysis "
                                 "wrote; an analysis never overwrites or deletes files it did not write",
                                 "move those out of the folder (or the whole folder away), then analyse again")
        try:
            self.created = not self.folder.exists()
            self.folder.mkdir(exist_ok=True)
            for p in self.folder.iterdir():
                if WORK.fullmatch(p.name):
                    shutil.rmtree(p)
            (self.work / THUMBS).mkdir(parents=True)
        except OSError as exc:
            raise InputError.one("RUN_DIR", f"cannot write in {self.folder} ({exc.strerror or exc})",
                                 "analyse a run whose folder you can write to (copy the run folder "
                                 "somewhere writable)") from None
        return self.work

    def _foreign(self) -> list[str]:
        f = self.folder
        if f.is_symlink() or (f.exists() and not f.is_dir()):
            return [f.name]
        if not f.exists():
            return []
        out = []
        for p in sorted(f.iterdir()):
            if p.is_symlink() or not (p.name in FILES and p.is_file() or WORK.fullmatch(p.name) and p.is_dir()
                                      or p.name == THUMBS and p.is_dir()):
                out.append(p.name)
            elif p.name == THUMBS:
                out += [f"{THUMBS}/{q.name}" for q in sorted(p.iterdir())
                        if q.is_symlink() or not q.is_file() or not THUMB.fullmatch(q.name)]
        return out

    def publish(self) -> None:
        """Move the work folder's files into place, insights.json last; the previous analysis's
        thumbnails that this one did not write are removed."""
        f, w = self.folder, self.work
        (f / JSON).unlink(missing_ok=True)
        thumbs = f / THUMBS
        thumbs.mkdir(exist_ok=True)
        new = {p.name for p in (w / THUMBS).iterdir()}
        for p in thumbs.iterdir():
            if THUMB.fullmatch(p.name) and p.name not in new:
                p.unlink()
        for name in sorted(new):
            os.replace(w / THUMBS / name, thumbs / name)
        for name in sorted(FILES - {JSON}):
            if (w / name).exists():
                os.replace(w / name, f / name)
            else:
                (f / name).unlink(missing_ok=True)
        os.replace(w / JSON, f / JSON)
        shutil.rmtree(w)

    def discard(self) -> None:
        """A cancelled or failed analysis: its work folder goes, the previous analysis stays."""
        shutil.rmtree(self.work, ignore_errors=True)
        if self.created:
            try:
                self.folder.rmdir()  # only if empty
            except OSError:
                pass
