"""The map canvas widget.

The UI thread only blits: layers are rendered by a :class:`RenderWorker` thread into an image
per view. Panning and zooming move and scale the last image at once; a new render is
requested when the gesture settles and replaces the image when it is ready; while the user
pauses, the same thread builds the level-of-detail paths around the view, so the next pan or
small move draws from cache (a new request waits for one short step at most). The selection is
drawn by the same thread into a separate transparent overlay image, so selecting never
re-renders the layers; a highlight (a few features, e.g. the identified one) is painted
directly by the UI thread.

Navigation follows desktop GIS habits: mouse wheel zooms about the cursor, a drag with the pan
tool, the middle button or space + left button pans, ``+``/``-`` and the arrow keys zoom and
pan. The identify tool emits :attr:`MapCanvas.identifyRequested`; the select tool selects by
click (Ctrl adds/toggles) or by dragging a rectangle, on the active layer.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QApplication, QWidget

from .raster import RasterData
from .render import (
    BACKGROUND,
    LayerSpec,
    LayerStyle,
    RenderJob,
    RenderWorker,
    View,
    render_layers,
)
from .vector import LINE, POINT, VectorData, band_of, freeze_long_lived, thaw

#: Wheel zoom factor per notch (120 units of angle delta).
WHEEL_FACTOR = 0.8
#: Milliseconds to wait after the last wheel step / resize before rendering.
SETTLE_MS = 120
#: Milliseconds to wait after a layer was added (layers arrive in bursts while loading).
ADD_SETTLE_MS = 40
#: Pixels the mouse may move for a press-release to still count as a click.
CLICK_SLOP = 4
#: Identify and click-select tolerance for lines and points, in pixels.
PICK_PX = 4.0
HIGHLIGHT_PEN = QColor(220, 0, 0)

_live_workers: weakref.WeakSet[RenderWorker] = weakref.WeakSet()


def stop_all_render_threads() -> None:
    """Stop every canvas's render thread (connected to QApplication.aboutToQuit)."""
    for worker in list(_live_workers):
        worker.stop()


@dataclass
class CanvasLayer:
    name: str
    data: VectorData | RasterData
    style: LayerStyle
    palette: list[tuple[int, ...]] = field(default_factory=list)
    visible: bool = True
    selection: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def is_vector(self) -> bool:
        return isinstance(self.data, VectorData)

    def spec(self) -> LayerSpec:
        return LayerSpec(self.name, self.data, self.style.copy(), list(self.palette))


class _Bridge(QObject):
    """Carries finished renders from the render thread to the UI thread (queued)."""

    rendered = Signal(object, object)


class MapCanvas(QWidget):
    cursorMoved = Signal(float, float)  # map coordinates under the mouse
    cursorLeft = Signal()
    viewChanged = Signal()  # centre or scale changed
    renderFinished = Signal(float)  # seconds the render took
    identifyRequested = Signal(float, float)
    selectionChanged = Signal(str)  # layer name
    toolChanged = Signal(str)

    TOOLS = ("pan", "identify", "select")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 150)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.hint = ""
        self._layers: dict[str, CanvasLayer] = {}
        self._order: list[str] = []  # bottom → top
        self._extent: tuple[float, float, float, float] | None = None
        self._center = (0.0, 0.0)
        self._upp = 1.0
        self._pending_extent: tuple[float, float, float, float] | None = None
        self._pending_margin = 0.03
        self._content = 0  # bumps on any change of what the layers look like
        self._generation = 0
        self._map: tuple[RenderJob, QImage] | None = None
        self._overlay: tuple[RenderJob, QImage] | None = None
        self._overlay_content = 0
        self._highlight: list[tuple[tuple[float, float], QPainterPath, int]] = []
        self._highlight_src: tuple[str, np.ndarray] | None = None
        self.tool = "pan"
        self.active_layer: str | None = None
        self._space = False
        self._pan_from: tuple[QPointF, tuple[float, float]] | None = None
        self._press: QPointF | None = None
        self._band_rect: QRectF | None = None
        self.last_render_seconds = 0.0
        self.render_count = 0
        self._bridge = _Bridge()
        self._bridge.rendered.connect(self._on_rendered, Qt.ConnectionType.QueuedConnection)
        self._worker = RenderWorker(self._bridge.rendered.emit)
        _live_workers.add(self._worker)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._worker.stop)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._request_render)

    # ------------------------------------------------------------------ lifecycle
    def shutdown(self) -> None:
        """Stop the render thread (the window calls this when it closes)."""
        self._timer.stop()
        self._worker.stop()

    # ------------------------------------------------------------------ layers
    def clear(self) -> None:
        self._layers.clear()
        self._order.clear()
        self._extent = None
        self._highlight.clear()
        self._highlight_src = None
        self._overlay = None
        thaw()  # what add_layer froze may be garbage now
        self._changed(0)

    def set_hint(self, text: str) -> None:
        self.hint = text
        self.update()

    def add_layer(self, name: str, data: VectorData | RasterData, style: LayerStyle,
                  palette: Sequence[tuple[int, ...]] | None = None, visible: bool = True,
                  settle: int = ADD_SETTLE_MS) -> None:
        """Add (or replace) a layer; it is drawn on top of the others until reordered.
        The render waits ``settle`` ms for more layers to arrive."""
        self._layers[name] = CanvasLayer(name, data, style, list(palette or []), visible)
        if isinstance(data, VectorData):
            freeze_long_lived()  # its geometries: out of the GC's full passes (GIL stalls)
        if name in self._order:
            self._order.remove(name)
        self._order.append(name)
        if self._extent is None:
            b = self.layer_bounds(name)
            if b is not None:
                self._extent = b
        if visible:  # several layers often arrive together: render them in one go
            self._changed(settle)

    def remove_layer(self, name: str) -> None:
        if self._layers.pop(name, None) is not None:
            self._order.remove(name)
            if self._highlight_src and self._highlight_src[0] == name:
                self.clear_highlight()
            self._changed()
            self._request_overlay()

    def layer_names(self) -> list[str]:
        """Layer names in draw order, bottom first."""
        return list(self._order)

    def layer(self, name: str) -> CanvasLayer:
        return self._layers[name]

    def has_layer(self, name: str) -> bool:
        return name in self._layers

    def layer_bounds(self, name: str) -> tuple[float, float, float, float] | None:
        layer = self._layers.get(name)
        return layer.data.total_bounds() if layer is not None else None

    def is_layer_visible(self, name: str) -> bool:
        return self._layers[name].visible

    def set_layer_visible(self, name: str, visible: bool) -> None:
        layer = self._layers.get(name)
        if layer is not None and layer.visible != visible:
            layer.visible = visible
            self._changed()
            if len(layer.selection):
                self._request_overlay()

    def set_layer_style(self, name: str, style: LayerStyle,
                        palette: Sequence[tuple[int, ...]] | None = None) -> None:
        layer = self._layers.get(name)
        if layer is not None:
            layer.style = style
            if palette is not None:
                layer.palette = list(palette)
            self._changed()

    def set_order(self, names_bottom_first: Iterable[str], settle: int = 0) -> None:
        """Draw order: the given names bottom first; layers not named keep their place
        below them."""
        wanted = [n for n in names_bottom_first if n in self._layers]
        rest = [n for n in self._order if n not in wanted]
        order = rest + wanted
        if order != self._order:
            self._order = order
            self._changed(settle)

    def visible_layers(self) -> list[str]:
        return [n for n in self._order if self._layers[n].visible]

    @property
    def drawn_layers(self) -> list[str]:
        """Layers in the image on screen, bottom first (for tests and diagnostics)."""
        return [s.name for s in self._map[0].layers] if self._map else []

    # ------------------------------------------------------------------ view
    def view(self) -> View:
        return View(self._center[0], self._center[1], self._upp, max(self.width(), 1),
                    max(self.height(), 1), self.devicePixelRatioF())

    def set_full_extent(self, bounds: tuple[float, float, float, float] | None,
                        zoom: bool = True) -> None:
        if bounds is None:
            return
        self._extent = tuple(float(v) for v in bounds)  # type: ignore[assignment]
        if zoom:
            self.zoom_to_extent()

    def full_extent(self) -> tuple[float, float, float, float] | None:
        return self._extent

    def zoom_to_extent(self, bounds: tuple[float, float, float, float] | None = None,
                       margin: float = 0.03) -> None:
        """Fit ``bounds`` (default: the full extent) into the widget with a small margin."""
        bounds = bounds if bounds is not None else self._extent
        if bounds is None:
            return
        minx, miny, maxx, maxy = (float(v) for v in bounds)
        if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
            return
        w, h = max(self.width(), 1), max(self.height(), 1)
        span_x, span_y = max(maxx - minx, 1e-6), max(maxy - miny, 1e-6)
        f = 1.0 - 2 * margin
        self._upp = max(span_x / (w * f), span_y / (h * f))
        self._center = ((minx + maxx) / 2, (miny + maxy) / 2)
        # until the first render the widget's size may still change (window shown, docks
        # laid out): fit again on resize until then
        self._pending_extent = (minx, miny, maxx, maxy)
        self._pending_margin = margin
        self._view_changed(0)

    def set_center(self, x: float, y: float, upp: float | None = None) -> None:
        self._center = (float(x), float(y))
        if upp is not None:
            self._upp = float(upp)
        self._pending_extent = None
        self._view_changed(0)

    def zoom_by(self, factor: float, anchor: QPointF | None = None,
                delay: int = SETTLE_MS) -> None:
        """Scale the pixel size by ``factor`` (< 1 zooms in), keeping ``anchor`` (widget
        pixels, default the centre) fixed."""
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        wx, wy = self.pixel_to_world(anchor)
        self._upp = min(max(self._upp * factor, 1e-4), 1e7)
        self._center = (wx - (anchor.x() - self.width() / 2) * self._upp,
                        wy + (anchor.y() - self.height() / 2) * self._upp)
        self._pending_extent = None
        self._view_changed(delay)

    def pan_by(self, dx_px: float, dy_px: float, delay: int = 0) -> None:
        """Move the map content by (dx, dy) pixels (the view moves the other way)."""
        cx, cy = self._center
        self._center = (cx - dx_px * self._upp, cy + dy_px * self._upp)
        self._pending_extent = None
        self._view_changed(delay)

    def units_per_pixel(self) -> float:
        return self._upp

    def center(self) -> tuple[float, float]:
        return self._center

    def scale_denominator(self) -> float:
        """The N of 1:N on this screen (map units are metres in the project CRS)."""
        metres_per_px = 0.0254 / max(self.logicalDpiX(), 1)
        return self._upp / metres_per_px

    def set_scale(self, denominator: float) -> None:
        if denominator > 0:
            metres_per_px = 0.0254 / max(self.logicalDpiX(), 1)
            self._upp = denominator * metres_per_px
            self._pending_extent = None
            self._view_changed(0)

    def world_to_pixel(self, x: float, y: float) -> QPointF:
        cx, cy = self._center
        return QPointF(self.width() / 2 + (x - cx) / self._upp,
                       self.height() / 2 - (y - cy) / self._upp)

    def pixel_to_world(self, p: QPointF) -> tuple[float, float]:
        cx, cy = self._center
        return (cx + (p.x() - self.width() / 2) * self._upp,
                cy - (p.y() - self.height() / 2) * self._upp)

    def view_bounds(self) -> tuple[float, float, float, float]:
        return self.view().bounds()

    # ------------------------------------------------------------------ rendering
    def _changed(self, delay: int = 0) -> None:
        self._content += 1
        if self._timer.isActive():  # keep a pending render's (shorter) wait
            delay = min(delay, self._timer.remainingTime())
        self._schedule(delay)

    def _view_changed(self, delay: int) -> None:
        self.viewChanged.emit()
        self._schedule(delay)
        if self._highlight_src is not None:
            self._rebuild_highlight()

    def _schedule(self, delay: int) -> None:
        self.update()
        self._timer.start(max(0, delay))

    def _specs(self) -> list[LayerSpec]:
        return [self._layers[n].spec() for n in self._order if self._layers[n].visible]

    def _request_render(self) -> None:
        if not self.isVisible():
            return  # showEvent renders
        self._generation += 1
        view = self.view()
        self._worker.submit(RenderJob(self._specs(), view, self._generation, "map",
                                      self._content))
        self._request_overlay(view)

    def _request_overlay(self, view: View | None = None) -> None:
        specs = []
        for n in self._order:
            layer = self._layers[n]
            if layer.visible and layer.is_vector and len(layer.selection):
                spec = layer.spec()
                spec.selection = layer.selection
                specs.append(spec)
        self._overlay_content += 1
        if not specs:
            self._overlay = None
            self.update()
            return
        self._generation += 1
        self._worker.submit(RenderJob(specs, view or self.view(), self._generation, "overlay",
                                      self._overlay_content))

    def _on_rendered(self, job: RenderJob, image: QImage) -> None:
        current = self._map if job.kind == "map" else self._overlay
        if current is not None and current[0].generation > job.generation:
            return
        if job.kind == "map":
            self._map = (job, image)
            self._pending_extent = None
            self.last_render_seconds = job.seconds
            self.render_count += 1
            self.renderFinished.emit(job.seconds)
        else:
            if job.content != self._overlay_content:
                return  # a newer selection is on its way (or none is left)
            self._overlay = (job, image)
        self.update()

    def is_current(self) -> bool:
        """True when the image on screen shows the current layers, view and selection."""
        if self._timer.isActive() or self._map is None:
            return False
        job = self._map[0]
        if job.content != self._content or job.view != self.view():
            return False
        has_selection = any(len(lyr.selection) and lyr.visible and lyr.is_vector
                            for lyr in self._layers.values())
        if has_selection:
            if self._overlay is None:
                return False
            ojob = self._overlay[0]
            return ojob.content == self._overlay_content and ojob.view == self.view()
        return True

    def refresh(self) -> None:
        """Render again now (e.g. after the window was resized programmatically)."""
        self._schedule(0)

    def render_image(self, view: View | None = None,
                     background: QColor | None = BACKGROUND) -> QImage:
        """Render the visible layers synchronously (for export and benchmarks)."""
        return render_layers(self._specs(), view or self.view(), background=background)

    # ------------------------------------------------------------------ selection
    def selected_fids(self, name: str) -> np.ndarray:
        layer = self._layers.get(name)
        if layer is None or not layer.is_vector or not len(layer.selection):
            return np.empty(0, dtype=np.int64)
        return np.sort(layer.data.fids[layer.selection])  # type: ignore[union-attr]

    def set_selection(self, name: str, fids: Iterable[int] | np.ndarray,
                      emit: bool = True) -> None:
        layer = self._layers.get(name)
        if layer is None or not layer.is_vector:
            return
        data: VectorData = layer.data  # type: ignore[assignment]
        pos = data.positions_of(np.fromiter(fids, dtype=np.int64)
                                if not isinstance(fids, np.ndarray) else fids)
        self._set_positions(name, np.unique(pos), emit)

    def _set_positions(self, name: str, positions: np.ndarray, emit: bool = True) -> None:
        layer = self._layers[name]
        if np.array_equal(layer.selection, positions):
            return
        layer.selection = positions
        self._request_overlay()
        if emit:
            self.selectionChanged.emit(name)

    def clear_selection(self, name: str | None = None) -> None:
        for n in [name] if name else list(self._layers):
            if n in self._layers and len(self._layers[n].selection):
                self._set_positions(n, np.empty(0, dtype=np.int64))

    def selection_bounds(self, name: str) -> tuple[float, float, float, float] | None:
        layer = self._layers.get(name)
        if layer is None or not layer.is_vector or not len(layer.selection):
            return None
        b = layer.data.bounds[layer.selection]  # type: ignore[union-attr]
        return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
                float(b[:, 3].max()))

    def zoom_to_selection(self, name: str) -> bool:
        b = self.selection_bounds(name)
        if b is None:
            return False
        # a single point or tiny feature: keep a sensible minimum view of ~100 m
        minx, miny, maxx, maxy = b
        pad = max(50.0 - (maxx - minx) / 2, 50.0 - (maxy - miny) / 2, 0.0)
        self.zoom_to_extent((minx - pad, miny - pad, maxx + pad, maxy + pad), margin=0.1)
        return True

    def features_at(self, x: float, y: float, name: str) -> np.ndarray:
        """Positions of the features of layer ``name`` under the map point (x, y)."""
        layer = self._layers.get(name)
        if layer is None or not layer.is_vector:
            return np.empty(0, dtype=np.int64)
        data: VectorData = layer.data  # type: ignore[assignment]
        pt = shapely.Point(x, y)
        if data.kind in (LINE, POINT):
            return data.query(pt, "dwithin", distance=PICK_PX * self._upp)
        return data.query(pt, "intersects")

    def _select_target(self, x: float | None = None, y: float | None = None) -> str | None:
        if self.active_layer in self._layers and self._layers[self.active_layer].is_vector:
            return self.active_layer
        for n in reversed(self._order):  # topmost visible vector layer with a hit
            layer = self._layers[n]
            if layer.visible and layer.is_vector and (
                    x is None or len(self.features_at(x, y, n))):  # type: ignore[arg-type]
                return n
        return None

    def select_at(self, x: float, y: float, add: bool = False) -> None:
        name = self._select_target(x, y)
        if name is None:
            return
        hits = self.features_at(x, y, name)[-1:]  # the topmost feature only
        current = self._layers[name].selection
        if add:
            new = np.setxor1d(current, hits) if len(hits) else current
        else:
            new = hits
        self._set_positions(name, np.unique(new))

    def select_box(self, box: tuple[float, float, float, float], add: bool = False) -> None:
        name = self._select_target()
        if name is None:
            return
        data: VectorData = self._layers[name].data  # type: ignore[assignment]
        hits = data.query(shapely.box(*box), "intersects")
        current = self._layers[name].selection
        new = np.union1d(current, hits) if add else hits
        self._set_positions(name, np.unique(new))

    # ------------------------------------------------------------------ highlight
    def set_highlight(self, name: str, fids: Sequence[int] | np.ndarray) -> None:
        """Outline these features of ``name`` (drawn by the UI thread; keep it small)."""
        layer = self._layers.get(name)
        if layer is None or not layer.is_vector:
            return
        pos = layer.data.positions_of(np.asarray(fids, dtype=np.int64))  # type: ignore[union-attr]
        self._highlight_src = (name, pos[:200])
        self._rebuild_highlight()

    def clear_highlight(self) -> None:
        self._highlight_src = None
        self._highlight = []
        self.update()

    def _rebuild_highlight(self) -> None:
        if self._highlight_src is None:
            return
        name, pos = self._highlight_src
        layer = self._layers.get(name)
        if layer is None:
            self._highlight = []
            return
        data: VectorData = layer.data  # type: ignore[assignment]
        band = band_of(self._upp / max(self.devicePixelRatioF(), 1e-9))
        self._highlight = [(data.origin, path, 0) for _, path in data.subset_paths(pos, band)]
        self.update()

    # ------------------------------------------------------------------ painting
    def _image_rect(self, view: View) -> QRectF:
        """Where an image rendered for ``view`` goes in the current view (logical px)."""
        s = view.upp / self._upp
        x0 = view.cx - view.width * view.upp / 2
        y1 = view.cy + view.height * view.upp / 2
        tl = self.world_to_pixel(x0, y1)
        return QRectF(tl.x(), tl.y(), view.width * s, view.height * s)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        if self._map is not None:
            job, img = self._map
            p.drawImage(self._image_rect(job.view), img)
        if self._overlay is not None:
            job, img = self._overlay
            p.drawImage(self._image_rect(job.view), img)
        if self._highlight:
            s = 1.0 / self._upp
            cx, cy = self._center
            pen = QPen(HIGHLIGHT_PEN)
            pen.setCosmetic(True)
            pen.setWidthF(2.5)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            for (ox, oy), path, _ in self._highlight:
                p.save()
                p.translate(self.width() / 2 + (ox - cx) * s, self.height() / 2 + (cy - oy) * s)
                p.scale(s, -s)
                p.drawPath(path)
                p.restore()
        if self._band_rect is not None:
            p.setPen(QPen(QColor(0, 90, 200), 1, Qt.PenStyle.DashLine))
            p.setBrush(QColor(0, 90, 200, 40))
            p.drawRect(self._band_rect)
        if not self._layers and self.hint:
            p.setPen(QColor(120, 120, 120))
            font = p.font()
            font.setPointSizeF(max(font.pointSizeF(), 9) * 1.6)
            p.setFont(font)
            p.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, self.hint)
        p.end()

    # ------------------------------------------------------------------ Qt events
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._pending_extent is not None:
            self.zoom_to_extent(self._pending_extent, margin=self._pending_margin)
        self._schedule(SETTLE_MS if self._map is not None else 0)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._pending_extent is not None:
            self.zoom_to_extent(self._pending_extent, margin=self._pending_margin)
        self._schedule(0)

    def set_tool(self, tool: str) -> None:
        if tool not in self.TOOLS:
            raise ValueError(tool)
        if tool != self.tool:
            self.tool = tool
            self._set_cursor()
            self.toolChanged.emit(tool)

    def _set_cursor(self) -> None:
        if self._pan_from is not None:
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif self._space or self.tool == "pan":
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        elif self.tool == "identify":
            self.setCursor(Qt.CursorShape.WhatsThisCursor)
        else:
            self.setCursor(Qt.CursorShape.CrossCursor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if not steps or not self._layers:
            return
        self.zoom_by(WHEEL_FACTOR ** steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        button = event.button()
        pan = (button == Qt.MouseButton.MiddleButton
               or (button == Qt.MouseButton.LeftButton and (self._space or self.tool == "pan")))
        if pan and self._layers:
            self._pan_from = (pos, self._center)
            self._set_cursor()
        elif button == Qt.MouseButton.LeftButton:
            self._press = pos
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_from is not None:
            start, (cx, cy) = self._pan_from
            d = pos - start
            self._center = (cx - d.x() * self._upp, cy + d.y() * self._upp)
            self._pending_extent = None
            self.viewChanged.emit()
            self.update()  # the last image moves at once; render when released
        elif (self._press is not None and self.tool == "select"
              and (pos - self._press).manhattanLength() > CLICK_SLOP):
            self._band_rect = QRectF(self._press, pos).normalized()
            self.update()
        if self._layers:
            self.cursorMoved.emit(*self.pixel_to_world(pos))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_from is not None and event.button() in (Qt.MouseButton.LeftButton,
                                                              Qt.MouseButton.MiddleButton):
            self._pan_from = None
            self._set_cursor()
            if self._highlight_src is not None:
                self._rebuild_highlight()
            self._schedule(0)
            return
        if self._press is None or event.button() != Qt.MouseButton.LeftButton:
            return
        press, self._press = self._press, None
        add = bool(event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                        | Qt.KeyboardModifier.ShiftModifier))
        if self._band_rect is not None:
            r, self._band_rect = self._band_rect, None
            x0, y1 = self.pixel_to_world(r.topLeft())
            x1, y0 = self.pixel_to_world(r.bottomRight())
            self.select_box((x0, y0, x1, y1), add)
            self.update()
            return
        if (pos - press).manhattanLength() > CLICK_SLOP:
            return
        x, y = self.pixel_to_world(pos)
        if self.tool == "identify":
            self.identifyRequested.emit(x, y)
        elif self.tool == "select":
            self.select_at(x, y, add)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self._set_cursor()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(0.5, delay=0)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(2.0, delay=0)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down):
            dx = {Qt.Key.Key_Left: 1, Qt.Key.Key_Right: -1}.get(key, 0) * self.width() / 4
            dy = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1}.get(key, 0) * self.height() / 4
            self.pan_by(dx, dy, delay=SETTLE_MS)
        elif key == Qt.Key.Key_Escape:
            self._band_rect = None
            self._press = None
            self.update()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._set_cursor()
        else:
            super().keyReleaseEvent(event)

    def leaveEvent(self, event) -> None:
        self.cursorLeft.emit()
        super().leaveEvent(event)
