"""The Qt binding must not corrupt Python's reference counts: PySide6 6.12.0 dropped a
reference to None on every QPainter.drawLine/setPen, so the app (canvas, curves) aborted with
'deallocating None' after a few thousand paints. pyproject pins a version without the bug."""

import sys

from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage, QPainter, QPen


def test_painting_keeps_the_reference_count_of_none(qapp):
    image = QImage(32, 32, QImage.Format_ARGB32)
    painter = QPainter(image)
    try:
        before = sys.getrefcount(None)
        for _ in range(500):
            painter.setPen(QPen())
            painter.drawLine(QPointF(0, 0), QPointF(5, 5))
        assert sys.getrefcount(None) - before > -50
    finally:
        painter.end()
