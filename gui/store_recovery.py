"""Opening the run store when its file is damaged: say so, and offer to move it aside (kept,
renamed) and start a new, empty one, instead of failing to start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.store import Store, StoreDamaged, move_aside, open_checked


def ask_with_a_box(exc: StoreDamaged, parent=None) -> bool:
    """Whether the user chose to move the damaged store aside (the other choice quits)."""
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Warning, "The run store is damaged",
                      f"{exc.path} is damaged, and the runs it records cannot be read ({exc.detail}).",
                      parent=parent)
    box.setInformativeText("Distill Studio can move it aside (it is kept, renamed) and start a new, "
                           "empty store. The runs recorded in the old one will not be listed.")
    move = box.addButton("Move it aside and start a new store", QMessageBox.AcceptRole)
    box.addButton("Quit", QMessageBox.RejectRole)
    box.setDefaultButton(move)
    box.exec()
    return box.clickedButton() is move


def open_store(db: Path | None, ask: Callable[[StoreDamaged], bool] | None = None) -> Store:
    """The store; a damaged one is moved aside when `ask` agrees, and SystemExit(2) otherwise."""
    try:
        return open_checked(db)
    except StoreDamaged as exc:
        if not (ask or ask_with_a_box)(exc):
            raise SystemExit(2) from None
        kept = move_aside(exc.path)
        print(f"distill-studio: the damaged run store was moved to {kept}", flush=True)
        return open_checked(db)
