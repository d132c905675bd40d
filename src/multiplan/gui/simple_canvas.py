"""A minimal QPainter map canvas: draws vector layers, pans and zooms.

Geometry goes from shapely to Qt without a per-point Python loop: coordinates come out of
``shapely.get_coordinates`` as one numpy array, are written into a buffer laid out as Qt's
``QDataStream`` serialisation of a ``QPainterPath`` (element count, then type/x/y per element,
then the current-subpath start and the fill rule), and Qt reads the path back in C++.
Geometries are simplified to the pixel size first, and each layer is drawn as one path per
fill colour (platform notes: this is several times faster than a path per feature).

This is the minimal canvas of issue 2; the real map canvas (gui/map_canvas/) comes later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from PySide6.QtCore import QByteArray, QDataStream, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

BACKGROUND = QColor(255, 255, 255)

# One element of a serialised QPainterPath: qint32 type, double x, double y (big-endian).
_ELEMENT = np.dtype([("type", ">i4"), ("x", ">f8"), ("y", ">f8")])
_MOVE_TO, _LINE_TO = 0, 1

# shapely type ids
_POINTS = (0, 4)
_LINES = (1, 2, 5)
_POLYGONS = (3, 6)

#: Below this many pixels of typical feature size, outlines are skipped (they would only
#: darken the fill; see platform notes on outlines at full county extent).
OUTLINE_MIN_PX = 6.0


def path_from_parts(coords: np.ndarray, part: np.ndarray,
                    fill_rule: Qt.FillRule = Qt.FillRule.OddEvenFill) -> QPainterPath:
    """Build one QPainterPath from an (n, 2) coordinate array.

    ``part`` (length n) labels the ring or line each coordinate belongs to; a new subpath
    starts wherever the label changes. Rings from shapely repeat their first point, so they
    close themselves.
    """
    path = QPainterPath()
    n = len(coords)
    if n == 0:
        return path
    rec = np.empty(n, dtype=_ELEMENT)
    rec["x"] = coords[:, 0]
    rec["y"] = coords[:, 1]
    rec["type"] = _LINE_TO
    starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]])
    rec["type"][starts] = _MOVE_TO
    head = np.array([n], dtype=">i4").tobytes()
    tail = np.array([starts[-1], int(fill_rule.value)], dtype=">i4").tobytes()
    stream = QDataStream(QByteArray(head + rec.tobytes() + tail))
    stream >> path
    if stream.status() != QDataStream.Status.Ok:
        raise ValueError("QPainterPath could not be read from the coordinate buffer")
    return path


def geometry_paths(geoms: np.ndarray, origin: tuple[float, float]) -> tuple[
        QPainterPath, QPainterPath, np.ndarray]:
    """Split geometries into (polygon path, line path, point coordinates).

    Coordinates are made relative to ``origin`` so that Qt's transforms work on small
    numbers. Multi-part geometries and collections are flattened.
    """
    parts = shapely.get_parts(geoms)
    parts = parts[~shapely.is_empty(parts)]
    types = shapely.get_type_id(parts)
    while np.any(types == 7):  # nested collections
        parts = np.concatenate([parts[types != 7], shapely.get_parts(parts[types == 7])])
        types = shapely.get_type_id(parts)
    ox, oy = origin
    offset = np.array([ox, oy])

    polys = parts[np.isin(types, _POLYGONS)]
    rings = shapely.get_rings(polys)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    poly_path = path_from_parts(coords - offset, idx)

    lines = parts[np.isin(types, _LINES)]
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    line_path = path_from_parts(coords - offset, idx)

    points = shapely.get_coordinates(parts[np.isin(types, _POINTS)]) - offset
    return poly_path, line_path, points


@dataclass
class LayerStyle:
    """How a layer is drawn. ``fill`` None means outline only."""

    fill: tuple[int, ...] | None = (200, 200, 200, 170)
    pen: tuple[int, int, int] = (110, 110, 110)
    pen_width: float = 0.0  # 0 = cosmetic hairline
    dash: bool = False
    hatch: bool = False  # diagonal hatch in the fill colour instead of a solid fill
    z: int = 10  # draw order: lower first


@dataclass
class CanvasLayer:
    name: str
    geoms: np.ndarray  # shapely geometries in map units
    style: LayerStyle
    colours: np.ndarray | None = None  # (n, 3) uint8 per feature fill colour, or None
    visible: bool = True
    order: int = 0
    typical_size: float = 0.0  # median sqrt(area) or length in map units
    _cache: dict[float, list[tuple[QColor | None, QPainterPath, QPainterPath, np.ndarray]]] = \
        field(default_factory=dict, repr=False)


class SimpleCanvas(QWidget):
    """Draws visible vector layers into a cached image; the wheel zooms, a drag pans."""

    cursorMoved = Signal(float, float)  # map coordinates under the mouse
    cursorLeft = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 150)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.hint = ""
        self._layers: dict[str, CanvasLayer] = {}
        self._extent: tuple[float, float, float, float] | None = None
        self._origin = (0.0, 0.0)
        self._center = (0.0, 0.0)  # view centre, map units
        self._upp = 1.0  # map units per pixel
        self._pending_view: tuple[float, float, float, float] | None = None
        self._image: QImage | None = None
        self._drag_start: QPointF | None = None
        self._drag_offset = QPointF(0, 0)
        #: for tests and diagnostics: how many times the map was rendered, and what was drawn
        self.render_count = 0
        self.drawn_layers: list[str] = []

    # ------------------------------------------------------------------ layers
    def clear(self) -> None:
        self._layers.clear()
        self._extent = None
        self._invalidate()

    def set_hint(self, text: str) -> None:
        self.hint = text
        self._invalidate()

    def add_layer(self, name: str, geoms: np.ndarray, style: LayerStyle,
                  colours: np.ndarray | None = None, visible: bool = True) -> None:
        geoms = np.asarray(geoms, dtype=object)
        keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        geoms = geoms[keep]
        if colours is not None:
            colours = np.asarray(colours, dtype=np.uint8)[keep]
        areas = shapely.area(geoms)
        sizes = np.where(areas > 0, np.sqrt(areas), shapely.length(geoms))
        self._layers[name] = CanvasLayer(
            name, geoms, style, colours, visible, order=len(self._layers),
            typical_size=float(np.median(sizes)) if len(sizes) else 0.0)
        if self._extent is None and len(geoms):
            self._set_origin(shapely.total_bounds(geoms))
        self._invalidate()

    def layer_bounds(self, name: str) -> tuple[float, float, float, float] | None:
        geoms = self._layers[name].geoms
        return tuple(shapely.total_bounds(geoms)) if len(geoms) else None  # type: ignore

    def layer_names(self) -> list[str]:
        return list(self._layers)

    def is_layer_visible(self, name: str) -> bool:
        return self._layers[name].visible

    def set_layer_visible(self, name: str, visible: bool) -> None:
        layer = self._layers.get(name)
        if layer is not None and layer.visible != visible:
            layer.visible = visible
            self._invalidate()

    # ------------------------------------------------------------------ view
    def _set_origin(self, bounds: tuple[float, float, float, float] | np.ndarray) -> None:
        """Paths are stored relative to an origin near the data (small numbers for Qt);
        moving it drops the cached paths."""
        minx, miny, maxx, maxy = (float(v) for v in bounds)
        if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
            return
        origin = ((minx + maxx) / 2, (miny + maxy) / 2)
        if origin != self._origin:
            self._origin = origin
            for layer in self._layers.values():
                layer._cache.clear()

    def set_full_extent(self, bounds: tuple[float, float, float, float] | None) -> None:
        """Set the extent that "zoom to full extent" shows, and show it."""
        if bounds is None:
            return
        self._extent = tuple(float(v) for v in bounds)  # type: ignore[assignment]
        self._set_origin(self._extent)
        self.zoom_to_extent()

    def zoom_to_extent(self, bounds: tuple[float, float, float, float] | None = None) -> None:
        """Fit ``bounds`` (default: the full extent) into the widget with a small margin."""
        bounds = bounds if bounds is not None else self._extent
        if bounds is None:
            return
        minx, miny, maxx, maxy = (float(v) for v in bounds)
        w, h = max(self.width(), 1), max(self.height(), 1)
        span_x, span_y = max(maxx - minx, 1e-9), max(maxy - miny, 1e-9)
        self._upp = max(span_x / (w * 0.94), span_y / (h * 0.94))
        self._center = ((minx + maxx) / 2, (miny + maxy) / 2)
        # before the widget is shown its size is not final: fit again at the first render
        self._pending_view = None if self.isVisible() else (minx, miny, maxx, maxy)
        self._invalidate()

    def full_extent(self) -> tuple[float, float, float, float] | None:
        return self._extent

    def units_per_pixel(self) -> float:
        return self._upp

    def world_to_pixel(self, x: float, y: float) -> QPointF:
        cx, cy = self._center
        return QPointF(self.width() / 2 + (x - cx) / self._upp,
                       self.height() / 2 - (y - cy) / self._upp)

    def pixel_to_world(self, p: QPointF) -> tuple[float, float]:
        cx, cy = self._center
        return (cx + (p.x() - self.width() / 2) * self._upp,
                cy - (p.y() - self.height() / 2) * self._upp)

    def view_bounds(self) -> tuple[float, float, float, float]:
        x0, y1 = self.pixel_to_world(QPointF(0, 0))
        x1, y0 = self.pixel_to_world(QPointF(self.width(), self.height()))
        return x0, y0, x1, y1

    # ------------------------------------------------------------------ rendering
    def _invalidate(self) -> None:
        self._image = None
        self.update()

    def _transform(self) -> QTransform:
        """Origin-relative map coordinates → widget pixels (y up → y down)."""
        s = 1.0 / self._upp
        cx, cy = self._center
        ox, oy = self._origin
        return QTransform(s, 0, 0, -s, self.width() / 2 + (ox - cx) * s,
                          self.height() / 2 + (cy - oy) * s)

    def _layer_paths(self, layer: CanvasLayer, tolerance: float):
        """Paths for the whole layer at this simplification tolerance, one per fill colour."""
        cached = layer._cache.get(tolerance)
        if cached is not None:
            return cached
        geoms = shapely.simplify(layer.geoms, tolerance, preserve_topology=False)
        groups: list[tuple[QColor | None, np.ndarray]] = []
        if layer.colours is not None and len(geoms):
            key = (layer.colours[:, 0].astype(np.uint32) << 16
                   | layer.colours[:, 1].astype(np.uint32) << 8 | layer.colours[:, 2])
            uniq, inverse = np.unique(key, return_inverse=True)
            for i, k in enumerate(uniq):
                groups.append((QColor(int(k) >> 16, (int(k) >> 8) & 255, int(k) & 255),
                               geoms[inverse == i]))
        else:
            groups.append((None, geoms))
        out = [(colour, *geometry_paths(g, self._origin)) for colour, g in groups]
        if len(layer._cache) > 8:
            layer._cache.clear()
        layer._cache[tolerance] = out
        return out

    def render_image(self) -> QImage:
        """Render the visible layers at the widget's size into a new image."""
        if self._pending_view is not None and self.isVisible():
            self.zoom_to_extent(self._pending_view)
        dpr = self.devicePixelRatioF()
        img = QImage(max(1, int(self.width() * dpr)), max(1, int(self.height() * dpr)),
                     QImage.Format.Format_ARGB32_Premultiplied)
        img.setDevicePixelRatio(dpr)
        img.fill(BACKGROUND)
        p = QPainter(img)
        self.drawn_layers = []
        try:
            visible = sorted((lyr for lyr in self._layers.values() if lyr.visible),
                             key=lambda lyr: (lyr.style.z, lyr.order))
            if not self._layers and self.hint:
                self._draw_hint(p)
            # simplification tolerance: the pixel size rounded down to a power of two, so
            # small zoom steps reuse the cached paths
            tol = 2.0 ** math.floor(math.log2(max(self._upp, 1e-9)))
            p.setTransform(self._transform())
            for layer in visible:
                self._draw_layer(p, layer, tol)
                self.drawn_layers.append(layer.name)
        finally:
            p.end()
        self.render_count += 1
        return img

    def _draw_layer(self, p: QPainter, layer: CanvasLayer, tol: float) -> None:
        st = layer.style
        outline = st.fill is None or (layer.typical_size / self._upp >= OUTLINE_MIN_PX)
        pen = QPen(QColor(*st.pen))
        pen.setCosmetic(True)
        pen.setWidthF(st.pen_width or 1.0)
        if st.dash:
            pen.setStyle(Qt.PenStyle.DashLine)
        for colour, poly_path, line_path, points in self._layer_paths(layer, tol):
            if not poly_path.isEmpty():
                fill = colour if colour is not None else (
                    QColor(*st.fill) if st.fill is not None else None)
                p.setPen(pen if outline else Qt.PenStyle.NoPen)
                if fill is None:
                    p.setBrush(Qt.BrushStyle.NoBrush)
                elif st.hatch:
                    p.setBrush(QBrush(fill, Qt.BrushStyle.BDiagPattern))
                else:
                    p.setBrush(fill)
                p.drawPath(poly_path)
            if not line_path.isEmpty():
                lpen = QPen(pen)
                if colour is not None:
                    lpen.setColor(colour)
                p.setPen(lpen)
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawPath(line_path)
            if len(points):
                ppen = QPen(colour if colour is not None else QColor(*st.pen))
                ppen.setCosmetic(True)
                ppen.setWidthF(5.0)
                ppen.setCapStyle(Qt.PenCapStyle.RoundCap)
                p.setPen(ppen)
                for x, y in points:  # point layers are small; a path per point is not needed
                    p.drawPoint(QPointF(float(x), float(y)))

    def _draw_hint(self, p: QPainter) -> None:
        p.save()
        p.setPen(QColor(120, 120, 120))
        font = p.font()
        font.setPointSizeF(max(font.pointSizeF(), 9) * 1.6)
        p.setFont(font)
        p.drawText(QRectF(0, 0, self.width(), self.height()),
                   Qt.AlignmentFlag.AlignCenter, self.hint)
        p.restore()

    # ------------------------------------------------------------------ Qt events
    def paintEvent(self, event: QPaintEvent) -> None:
        if self._image is None or self._image.deviceIndependentSize().toSize() != self.size():
            self._image = self.render_image()
        p = QPainter(self)
        if not self._drag_offset.isNull():
            p.fillRect(self.rect(), BACKGROUND)
        p.drawImage(self._drag_offset, self._image)
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._invalidate()  # the view keeps its centre and scale
        super().resizeEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if not steps or not self._layers:
            return
        pos = event.position()
        wx, wy = self.pixel_to_world(pos)
        factor = 0.8 ** steps
        self._upp *= factor
        # keep the point under the cursor where it is
        self._center = (wx - (pos.x() - self.width() / 2) * self._upp,
                        wy + (pos.y() - self.height() / 2) * self._upp)
        self._invalidate()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._layers:
            self._drag_start = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag_start is not None:
            self._drag_offset = pos - self._drag_start
            self.update()
        if self._layers:
            self.cursorMoved.emit(*self.pixel_to_world(pos))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag_start is not None and event.button() == Qt.MouseButton.LeftButton:
            d = event.position() - self._drag_start
            cx, cy = self._center
            self._center = (cx - d.x() * self._upp, cy + d.y() * self._upp)
            self._drag_start = None
            self._drag_offset = QPointF(0, 0)
            self.unsetCursor()
            self._invalidate()

    def leaveEvent(self, event) -> None:
        self.cursorLeft.emit()
        super().leaveEvent(event)
