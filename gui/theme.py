"""Colours and words the canvas and the panels share, so that a node's state looks the same
on its card and in the inspector."""

from __future__ import annotations

from PySide6.QtGui import QColor

from gui.document.validation import ERROR, INCOMPLETE, OK

ACCENT = "#1f6feb"  # selection, a link being dragged, a running run
STATE_COLORS = {OK: QColor("#2f9e6b"), INCOMPLETE: QColor("#d9a21b"), ERROR: QColor("#d64545")}
STATE_WORDS = {OK: "configured", INCOMPLETE: "incomplete", ERROR: "error"}
