"""Map tools of the editing controller: drawing, vertex editing, reshape and split lines,
with snapping and a marker, on top of the map canvas.

The canvas keeps navigation (wheel zoom, middle-button pan, keys); while an editing tool is
active an event filter takes the left and right buttons and the editing keys, and a
transparent child widget draws the rubber band, the vertices under the cursor, the snap
marker and the outlines of fresh edits (until the layer is redrawn with them).

* 绘制面 (add): click vertices; double-click, right-click or Enter finishes; Backspace
  removes the last vertex; Esc cancels.
* 顶点 (vertex): drag a vertex to move it (topological option: every parcel sharing it);
  double-click an edge to add a vertex there; Delete/Backspace deletes the vertex under the
  cursor.
* 重塑 (reshape) and 分割 (split): draw a line the same way as a polygon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import shapely
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

from multiplan.core.commands import VertexRef, iter_vertices, nearest_segment
from multiplan.core.editing import SnapIndex, Snapper, SnapResult, tolerance_for_pixels

if TYPE_CHECKING:
    from .controller import EditingController

TOOLS = ("add", "vertex", "reshape", "split")
RUBBER = QColor(230, 80, 0)
SNAP = QColor(200, 0, 200)
VERTEX = QColor(20, 20, 160)
FRESH = QColor(255, 140, 0)
#: fresh edits outlined by the overlay until the layer is redrawn (more wait for the redraw)
MAX_FRESH = 300


class EditOverlay(QWidget):
    """Transparent drawing surface over the canvas (mouse events pass through)."""

    def __init__(self, tools: EditTools) -> None:
        super().__init__(tools.canvas)
        self.tools = tools
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setGeometry(tools.canvas.rect())
        self.show()

    def paintEvent(self, event: Any) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self.tools.paint(p)
        p.end()


class EditTools(QObject):
    def __init__(self, ctl: EditingController) -> None:
        super().__init__(ctl)
        self.ctl = ctl
        self.canvas = ctl.canvas
        self.tool: str | None = None
        self.points: list[tuple[float, float]] = []
        self.cursor: tuple[float, float] | None = None
        self.snap: SnapResult | None = None
        self.hover: SnapResult | None = None  # vertex tool: the vertex under the cursor
        self.drag: tuple[int, VertexRef, float, float] | None = None
        self._ref_index: dict[str, tuple[int, SnapIndex]] = {}
        self.overlay = EditOverlay(self)
        self.canvas.installEventFilter(self)

    # ------------------------------------------------------------------ state
    def set_tool(self, tool: str | None) -> None:
        if tool is not None and tool not in TOOLS:
            raise ValueError(tool)
        self.tool = tool
        self.cancel()
        self.canvas.setCursor(Qt.CursorShape.CrossCursor if tool else
                              Qt.CursorShape.OpenHandCursor)

    def cancel(self) -> None:
        self.points = []
        self.drag = None
        self.hover = None
        self.overlay.update()

    @property
    def active(self) -> bool:
        return self.tool is not None and self.ctl.session is not None

    def tolerance(self) -> float:
        return tolerance_for_pixels(self.ctl.snap_pixels, self.canvas.units_per_pixel())

    def snapper(self, reference: bool = True) -> Snapper:
        sources: list[Any] = [self.ctl.session.snapper().sources[0]]  # type: ignore[union-attr]
        if reference:
            for name in self.ctl.reference_layers():
                data = self.canvas.layer(name).data
                cached = self._ref_index.get(name)
                if cached is None or cached[0] != id(data):
                    cached = (id(data), SnapIndex(name, data.geoms, data.fids))
                    self._ref_index[name] = cached
                sources.append(cached[1])
        return Snapper(sources)

    def snapped(self, pos: QPointF, exclude_xy: tuple[float, float] | None = None
                ) -> tuple[float, float, SnapResult | None]:
        x, y = self.canvas.pixel_to_world(pos)
        if not self.ctl.snapping:
            return x, y, None
        hit = self.snapper().snap(x, y, self.tolerance(), exclude_xy=exclude_xy)
        return (hit.x, hit.y, hit) if hit is not None else (x, y, None)

    # ------------------------------------------------------------------ events
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is not self.canvas:
            return False
        t = event.type()
        if t == QEvent.Type.Resize:
            self.overlay.setGeometry(self.canvas.rect())
            return False
        if not self.active:
            return False
        if t == QEvent.Type.MouseMove:
            self._move(event)  # type: ignore[arg-type]
            return False  # the canvas still reports the cursor position
        if t == QEvent.Type.MouseButtonPress:
            return self._press(event)  # type: ignore[arg-type]
        if t == QEvent.Type.MouseButtonRelease:
            return self._release(event)  # type: ignore[arg-type]
        if t == QEvent.Type.MouseButtonDblClick:
            return self._double(event)  # type: ignore[arg-type]
        if t == QEvent.Type.KeyPress:
            return self._key(event)  # type: ignore[arg-type]
        return False

    def _move(self, ev: QMouseEvent) -> None:
        pos = ev.position()
        if self.drag is not None:
            _, _, x0, y0 = self.drag
            x, y, self.snap = self.snapped(pos, exclude_xy=(x0, y0))
        else:
            x, y, self.snap = self.snapped(pos)
        self.cursor = (x, y)
        if self.tool == "vertex" and self.drag is None:
            self.hover = self._vertex_at(pos)
        self.overlay.update()

    def _press(self, ev: QMouseEvent) -> bool:
        button = ev.button()
        if button == Qt.MouseButton.RightButton:
            if self.tool in ("add", "reshape", "split"):
                self.finish()
            return True
        if button != Qt.MouseButton.LeftButton:
            return False  # middle-button pan stays with the canvas
        self.canvas.setFocus()
        if self.tool == "vertex":
            hit = self._vertex_at(ev.position())
            if hit is not None:
                self.drag = (hit.fid, hit.vertex, hit.x, hit.y)
                self.cursor = (hit.x, hit.y)
            return True
        x, y, self.snap = self.snapped(ev.position())
        if not self.points or self.points[-1] != (x, y):
            self.points.append((x, y))
        self.overlay.update()
        return True

    def _release(self, ev: QMouseEvent) -> bool:
        if ev.button() != Qt.MouseButton.LeftButton:
            return ev.button() == Qt.MouseButton.RightButton
        if self.tool == "vertex" and self.drag is not None:
            fid, ref, x0, y0 = self.drag
            self.drag = None
            x, y, _ = self.snapped(ev.position(), exclude_xy=(x0, y0))
            if (x, y) != (x0, y0):
                self.ctl.move_vertex(fid, ref, (x, y))
            self.hover = None
            self.overlay.update()
        return True

    def _double(self, ev: QMouseEvent) -> bool:
        if ev.button() != Qt.MouseButton.LeftButton:
            return False
        if self.tool in ("add", "reshape", "split"):
            # a double click normally follows the press that placed this point; add it if
            # it did not (QTest sends the double click alone)
            x, y, _ = self.snapped(ev.position())
            if not self.points or self.points[-1] != (x, y):
                self.points.append((x, y))
            self.finish()
        elif self.tool == "vertex":
            x, y = self.canvas.pixel_to_world(ev.position())
            tol = self.tolerance()
            best = None
            for fid in self.ctl.session.buffer.candidates((x - tol, y - tol, x + tol, y + tol)):
                g = self.ctl.session.feature(fid).geometry
                seg = nearest_segment(g, x, y)
                if seg is not None and seg[2] <= tol and (best is None or seg[2] < best[3]):
                    best = (fid, seg[0], seg[1], seg[2])
            if best is not None:
                self.ctl.add_vertex(best[0], best[1], best[2])
        return True

    def _key(self, ev: QKeyEvent) -> bool:
        key = ev.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.tool != "vertex":
            self.finish()
            return True
        if key == Qt.Key.Key_Escape:
            self.cancel()
            return True
        if key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            if self.tool == "vertex" and self.hover is not None:
                hit, self.hover = self.hover, None
                self.ctl.delete_vertex(hit.fid, hit.vertex)
                return True
            if self.points:
                self.points.pop()
                self.overlay.update()
                return True
        return False

    def _vertex_at(self, pos: QPointF) -> SnapResult | None:
        """The vertex of the edited layer under the cursor (within the snapping distance)."""
        x, y = self.canvas.pixel_to_world(pos)
        sources = [self.ctl.session.snapper().sources[0]]  # type: ignore[union-attr]
        return Snapper(sources, segments=False).snap(x, y, self.tolerance())

    def finish(self) -> None:
        pts, self.points = self.points, []
        self.overlay.update()
        if self.tool == "add":
            if len(pts) >= 3:
                self.ctl.add_polygon(shapely.Polygon(pts))
            else:
                self.ctl.message("绘制面至少需要 3 个点", "a polygon needs at least 3 points")
        elif self.tool in ("reshape", "split"):
            if len(pts) >= 2:
                line = shapely.LineString(pts)
                (self.ctl.reshape_line if self.tool == "reshape" else self.ctl.split_line)(line)
            else:
                self.ctl.message("线至少需要 2 个点", "a line needs at least 2 points")

    # ------------------------------------------------------------------ painting
    def _px(self, x: float, y: float) -> QPointF:
        return self.canvas.world_to_pixel(x, y)

    def paint(self, p: QPainter) -> None:
        if self.ctl.session is None:
            return
        self._paint_fresh(p)
        if not self.active:
            return
        if self.tool == "vertex":
            self._paint_vertices(p)
        if self.points:
            pts = [self._px(x, y) for x, y in self.points]
            if self.cursor is not None:
                pts.append(self._px(*self.cursor))
            path = QPainterPath(pts[0])
            for q in pts[1:]:
                path.lineTo(q)
            if self.tool == "add" and len(pts) >= 3:
                path.closeSubpath()
                p.fillPath(path, QColor(230, 80, 0, 50))
            pen = QPen(RUBBER, 2)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
            for q in pts[:-1]:
                p.drawRect(QRectF(q.x() - 3, q.y() - 3, 6, 6))
        if self.drag is not None and self.cursor is not None:
            _, _, x0, y0 = self.drag
            pen = QPen(RUBBER, 1.5, Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.drawLine(self._px(x0, y0), self._px(*self.cursor))
        if self.snap is not None:
            c = self._px(self.snap.x, self.snap.y)
            pen = QPen(SNAP, 2)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            if self.snap.kind == "vertex":
                p.drawRect(QRectF(c.x() - 6, c.y() - 6, 12, 12))
            else:
                p.drawLine(QPointF(c.x() - 6, c.y() - 6), QPointF(c.x() + 6, c.y() + 6))
                p.drawLine(QPointF(c.x() - 6, c.y() + 6), QPointF(c.x() + 6, c.y() - 6))

    def _paint_vertices(self, p: QPainter) -> None:
        if self.cursor is None:
            return
        x, y = self.cursor
        s = self.ctl.session
        tol = self.tolerance() * 4
        pen = QPen(VERTEX, 1)
        p.setPen(pen)
        p.setBrush(QColor(255, 255, 255))
        drawn = 0
        for fid in s.buffer.candidates((x - tol, y - tol, x + tol, y + tol)):
            for _, vx, vy in iter_vertices(s.feature(fid).geometry):
                c = self._px(vx, vy)
                p.drawRect(QRectF(c.x() - 3, c.y() - 3, 6, 6))
                drawn += 1
            if drawn > 2000:
                break
        if self.hover is not None:
            c = self._px(self.hover.x, self.hover.y)
            p.setBrush(VERTEX)
            p.drawRect(QRectF(c.x() - 4, c.y() - 4, 8, 8))

    def _paint_fresh(self, p: QPainter) -> None:
        fresh = self.ctl.fresh_geometries()
        if not fresh:
            return
        pen = QPen(FRESH, 2)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for g in fresh[:MAX_FRESH]:
            for poly in getattr(g, "geoms", [g]):
                for ring in [poly.exterior, *poly.interiors]:
                    pts = [self._px(x, y) for x, y in ring.coords]
                    path = QPainterPath(pts[0])
                    for q in pts[1:]:
                        path.lineTo(q)
                    p.drawPath(path)
