"""Public comments (公众意见) pinned on the map: a transparent overlay over a map canvas.

The comments are points in the project CRS (:mod:`multiplan.core.comments`, table
``mp_public_comments``). The overlay paints one pin per comment at its place in the current
view (no re-render of the map: it repaints when the view changes), with the comment id beside
it when few pins are in view. Mouse events pass through to the canvas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

PIN_FILL = QColor(255, 140, 0)
PIN_EDGE = QColor(90, 40, 0)
PIN_SELECTED = QColor(0, 150, 255)
#: Ids are written beside the pins when at most this many are in view.
LABEL_MAX = 60


def comments_of(frame: pd.DataFrame | None, item_id: str) -> pd.DataFrame:
    """The comments linked to the register row ``item_id`` (``conflict_ids`` lists them)."""
    if frame is None or not len(frame) or "conflict_ids" not in frame.columns:
        return pd.DataFrame()
    ids = frame["conflict_ids"].fillna("").astype(str)
    hit = ids.map(lambda s: item_id in s.split(","))
    return frame[hit.to_numpy(dtype=bool)]


class CommentPins(QWidget):
    """Pins of the public comments over ``canvas``."""

    def __init__(self, canvas: Any) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.setObjectName("comment_pins")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.xy = np.empty((0, 2), dtype=float)
        self.ids: list[str] = []
        self.selected: set[str] = set()
        self.setGeometry(canvas.rect())
        canvas.installEventFilter(self)
        canvas.viewChanged.connect(self.update)
        self.hide()

    def set_comments(self, frame: pd.DataFrame | None) -> None:
        if frame is None or not len(frame):
            self.xy = np.empty((0, 2), dtype=float)
            self.ids = []
        else:
            self.xy = np.column_stack([pd.to_numeric(frame["x"], errors="coerce"),
                                       pd.to_numeric(frame["y"], errors="coerce")])
            self.ids = [str(v) for v in frame["comment_id"]]
        self.update()

    def set_selected(self, ids: list[str]) -> None:
        self.selected = set(ids)
        self.update()

    def in_view(self) -> np.ndarray:
        """Positions of the pins inside the canvas's current view."""
        if not len(self.xy):
            return np.empty(0, dtype=np.int64)
        x0, y0, x1, y1 = self.canvas.view_bounds()
        x, y = self.xy[:, 0], self.xy[:, 1]
        return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.canvas and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.canvas.rect())
        return False

    def paintEvent(self, event: Any) -> None:
        shown = self.in_view()
        if not len(shown):
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        label = len(shown) <= LABEL_MAX
        for i in shown.tolist():
            pt = self.canvas.world_to_pixel(float(self.xy[i, 0]), float(self.xy[i, 1]))
            sel = self.ids[i] in self.selected
            p.setPen(QPen(PIN_EDGE, 1.2))
            p.setBrush(QBrush(PIN_SELECTED if sel else PIN_FILL))
            # a map pin: a disc above its point, the point itself a small dot
            head = QPointF(pt.x(), pt.y() - 11)
            p.drawLine(pt, head)
            p.drawEllipse(head, 6.5 if sel else 5.0, 6.5 if sel else 5.0)
            p.drawEllipse(pt, 1.5, 1.5)
            if label:
                p.setPen(QPen(PIN_EDGE))
                p.drawText(QRectF(pt.x() + 8, pt.y() - 22, 120, 16),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                           self.ids[i])
        p.end()
