"""Filling the Insights panel's table-like tabs from the insights on show: the amalgamation
(student against its best teacher, per class), calibration (reliability curves and the ECE table)
and the student's most confident mistakes. The panel builds the widgets; these fill them.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem

from gui import theme
from gui.panels.dashboard import PALETTE
from gui.panels.insights_file import Insights

# the cells' colours (student ahead / behind; right, wrong, not counted) are the theme's:
# theme.current().beats, .trails, .good, .error, .muted
THUMB = 64  # pixels: a mistake's thumbnail


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f} pts".replace("-", "−")


# amalgamation
def fill_amalgamation(table: QTableWidget, summary: QLabel, insights: Insights) -> None:
    """Per class: the student's recall, each teacher's, the best teacher's and the verdict."""
    rows = insights.data["amalgamation"]
    teachers = [m["name"] for m in insights.teachers]
    columns = ["class", "support", "student", *teachers, "best teacher", "Δ (student − best)", "verdict"]
    table.setRowCount(0)
    table.setColumnCount(len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.setRowCount(len(rows))
    counts = {"beats": 0, "trails": 0, "matches": 0, "no teacher": 0}
    for i, r in enumerate(rows):
        counts[r["verdict"]] += 1
        cells = [insights.class_name(r["class"]), str(r["support"]) if r["support"] is not None else "–",
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
                c = theme.current()
                item.setBackground(QBrush(QColor(c.beats if r["verdict"] == "beats" else c.trails)))
                item.setForeground(QBrush(QColor(c.good if r["verdict"] == "beats" else c.error)))
            table.setItem(i, j, item)
    summary.setText(_verdict_words(counts))


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


# calibration
def clear_calibration(plot: pg.PlotItem, legend: pg.LegendItem) -> None:
    for item in list(plot.listDataItems()):
        plot.removeItem(item)
    legend.clear()


def fill_calibration(plot: pg.PlotItem, legend: pg.LegendItem, ece_table: QTableWidget,
                     insights: Insights, curves: dict[str, pg.PlotDataItem]) -> None:
    """Each model's reliability curve (into `curves`, by name) and its accuracy and ECE."""
    diagonal = plot.plot([0, 1], [0, 1], pen=pg.mkPen("#9ca3af", width=1.2, style=Qt.DashLine))  # grey: both themes
    legend.addItem(diagonal, "perfectly calibrated")
    for k, model in enumerate(insights.data["calibration"]["models"]):
        points = [(c, a) for c, a in zip(model["confidence"], model["accuracy"])
                  if c is not None and a is not None]
        x = np.array([p[0] for p in points], dtype=float)
        y = np.array([p[1] for p in points], dtype=float)
        color = PALETTE[k % len(PALETTE)]
        width = 2.6 if k == 0 else 1.6
        ece = f"ECE {model['ece']:.3f}" if model["ece"] is not None else "ECE not measured"
        curve = plot.plot(x, y, pen=pg.mkPen(color, width=width), symbol="o", symbolSize=6,
                          symbolBrush=color, symbolPen=None, name=f"{model['name']} ({ece})")
        curves[model["name"]] = curve
    models = insights.data["models"]
    ece_table.setRowCount(len(models))
    for i, m in enumerate(models):
        cells = [f"{m['name']} ({m['role']})", _pct(m["accuracy"]),
                 f"{m['ece']:.3f}" if m["ece"] is not None else "–",
                 str(m["samples"]) if m["samples"] is not None else "–"]
        for j, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if j:
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            ece_table.setItem(i, j, item)


# mistakes
class MistakesFill:
    """Fills the mistakes table: per mistake the sample, its input (a thumbnail, the text or the
    row), the true class, what the student said and what each teacher said."""

    def __init__(self, table: QTableWidget, insights: Insights):
        self.table, self.insights = table, insights
        self.thumbnails = 0  # thumbnails shown (tests read it)

    def fill(self) -> int:
        """Fill the table; the number of mistakes."""
        insights = self.insights
        mistakes = insights.data["mistakes"]
        names = [m["name"] for m in insights.teachers]
        for m in mistakes:
            names += [t["name"] for t in m["teachers"] if t["name"] not in names]
        kind = insights.data["kind"]
        columns = ["sample", "input", "true class", "student says", *[f"{n} says" for n in names]]
        table = self.table
        table.setRowCount(0)
        table.setColumnCount(len(columns))
        table.setHorizontalHeaderLabels(columns)
        table.setRowCount(len(mistakes))
        for i, m in enumerate(mistakes):
            true = insights.class_name(m["label"])
            table.setItem(i, 0, QTableWidgetItem(f"#{m['sample']}"))
            table.setItem(i, 1, self._input(m, kind))
            table.setItem(i, 2, QTableWidgetItem(true))
            said = QTableWidgetItem(f"{insights.class_name(m['predicted'])} ({_pct(m['confidence'])})")
            said.setForeground(QBrush(QColor(theme.current().error)))
            table.setItem(i, 3, said)
            answers = {t["name"]: t for t in m["teachers"]}
            for j, name in enumerate(names):
                t = answers.get(name)
                if t is None or t["says"] is None:
                    item = QTableWidgetItem("—")
                    item.setForeground(QBrush(QColor(theme.current().muted)))
                    item.setToolTip(f"{name} does not know the class {true}: its answer is not counted as wrong")
                else:
                    conf = f" ({_pct(t['confidence'])})" if t["confidence"] is not None else ""
                    item = QTableWidgetItem(insights.class_name(t["says"]) + conf)
                    item.setForeground(QBrush(QColor(theme.current().good if t["says"] == m["label"]
                                                     else theme.current().error)))
                table.setItem(i, 4 + j, item)
            if kind == "image":
                table.setRowHeight(i, THUMB + 6)
        return len(mistakes)

    def _input(self, m: dict, kind: str) -> QTableWidgetItem:
        if m["thumbnail"]:
            folder = self.insights.folder
            path = (folder / m["thumbnail"]).resolve()
            pixmap = QPixmap(str(path)) if path.is_relative_to(folder.resolve()) else QPixmap()
            if not pixmap.isNull():
                item = QTableWidgetItem()
                item.setIcon(QIcon(pixmap.scaled(THUMB, THUMB, Qt.KeepAspectRatio, Qt.FastTransformation)))
                item.setToolTip(str(path))
                self.thumbnails += 1
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
