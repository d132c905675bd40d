"""Rendering a map view into a ``QImage`` — in the background render thread, or directly.

:func:`render_layers` draws an ordered list of :class:`LayerSpec` for a :class:`View` into a
new image. It checks ``cancelled()`` between chunks, so a superseded render stops within a
few milliseconds. :class:`RenderWorker` runs renders on one background thread, always
working on the newest request only, and hands finished images to a callback (the canvas
connects it to a queued Qt signal so the image arrives in the UI thread).

When idle after a map render, the worker builds the level-of-detail paths around that view
(:func:`warm_steps`), in steps of a few milliseconds that any new request interrupts.

No Qt widget is touched here: painting into a QImage is allowed off the UI thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QTransform

from .raster import RasterData
from .vector import LINE, POLYGON, VectorData, band_of

BACKGROUND = QColor(255, 255, 255)

#: Below this many pixels of typical feature size, polygon outlines are skipped (at full
#: county extent a parcel is 2–3 px wide and outlines would only darken the fill).
OUTLINE_MIN_PX = 6.0


@dataclass(frozen=True)
class View:
    """What to draw: centre (map units), pixel size (map units per logical pixel), size in
    logical pixels and the device pixel ratio."""

    cx: float
    cy: float
    upp: float
    width: int
    height: int
    dpr: float = 1.0

    @property
    def device_upp(self) -> float:
        return self.upp / self.dpr

    def bounds(self) -> tuple[float, float, float, float]:
        hw, hh = self.width * self.upp / 2, self.height * self.upp / 2
        return self.cx - hw, self.cy - hh, self.cx + hw, self.cy + hh

    def transform(self, origin: tuple[float, float] = (0.0, 0.0)) -> QTransform:
        """Origin-relative map coordinates → device pixels of the image (y flipped)."""
        s = self.dpr / self.upp
        ox, oy = origin
        return QTransform(s, 0, 0, -s, self.width * self.dpr / 2 + (ox - self.cx) * s,
                          self.height * self.dpr / 2 + (self.cy - oy) * s)

    def world_to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Map coordinates → logical pixels."""
        return (self.width / 2 + (x - self.cx) / self.upp,
                self.height / 2 - (y - self.cy) / self.upp)

    def pixel_to_world(self, px: float, py: float) -> tuple[float, float]:
        return (self.cx + (px - self.width / 2) * self.upp,
                self.cy - (py - self.height / 2) * self.upp)


@dataclass
class LayerStyle:
    """How a layer is drawn. ``fill`` None means outline only; class colours (``palette``)
    replace ``fill`` for classified layers."""

    fill: tuple[int, ...] | None = (200, 200, 200)
    pen: tuple[int, ...] = (110, 110, 110)
    pen_width: float = 0.0  # 0 = cosmetic hairline
    dash: bool = False
    hatch: bool = False  # diagonal hatch in the fill colour instead of a solid fill
    opacity: float = 1.0
    antialias: bool = False
    outline_min_px: float = OUTLINE_MIN_PX

    def copy(self, **changes: Any) -> LayerStyle:
        d = dict(self.__dict__)
        d.update(changes)
        return LayerStyle(**d)


@dataclass
class LayerSpec:
    """One layer as the renderer sees it (a snapshot: safe to hand to the render thread)."""

    name: str
    data: VectorData | RasterData
    style: LayerStyle
    palette: list[tuple[int, ...]] = field(default_factory=list)  # RGB(A) per class index
    #: draw these feature positions as the selection instead of the layer (overlay jobs)
    selection: np.ndarray | None = None


class Cancelled(Exception):
    pass


def render_layers(layers: Sequence[LayerSpec], view: View,
                  cancelled: Callable[[], bool] = lambda: False,
                  background: QColor | None = BACKGROUND) -> QImage:
    """Draw ``layers`` (bottom first) for ``view`` into a new ARGB32 image.

    Raises :class:`Cancelled` when ``cancelled()`` turns true between chunks.
    """
    w, h = max(1, round(view.width * view.dpr)), max(1, round(view.height * view.dpr))
    img = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
    img.setDevicePixelRatio(view.dpr)
    img.fill(background if background is not None else Qt.GlobalColor.transparent)
    p = QPainter(img)
    try:
        for spec in layers:
            if cancelled():
                raise Cancelled
            p.save()
            try:
                p.setOpacity(max(0.0, min(1.0, spec.style.opacity)))
                if spec.selection is not None:
                    draw_selection(p, spec.data, spec.selection, view,  # type: ignore[arg-type]
                                   cancelled)
                elif isinstance(spec.data, RasterData):
                    draw_raster(p, spec.data, view)
                else:
                    draw_vector(p, spec, view, cancelled)
            finally:
                p.restore()
    finally:
        p.end()
    return img


def _pen(style: LayerStyle, colour: QColor | None = None) -> QPen:
    pen = QPen(colour if colour is not None else QColor(*style.pen))
    pen.setCosmetic(True)
    pen.setWidthF(style.pen_width or 1.0)
    if style.dash:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _brush(style: LayerStyle, colour: QColor) -> QBrush:
    return QBrush(colour, Qt.BrushStyle.BDiagPattern if style.hatch
                  else Qt.BrushStyle.SolidPattern)


def draw_vector(p: QPainter, spec: LayerSpec, view: View,
                cancelled: Callable[[], bool] = lambda: False) -> None:
    """Draw the chunks of a vector layer that meet the view, one path per (chunk, class)."""
    data: VectorData = spec.data  # type: ignore[assignment]
    st = spec.style
    if not len(data):
        return
    grouped, units = data.draw_units(view.bounds())
    if not len(units):
        return
    dupp = view.device_upp
    band = band_of(dupp)
    p.setTransform(view.transform(data.origin))
    p.setRenderHint(QPainter.RenderHint.Antialiasing, st.antialias)
    colours = [QColor(*c) for c in spec.palette] or [
        QColor(*(st.fill if st.fill is not None and data.kind == POLYGON else st.pen))]
    no_brush = QBrush(Qt.BrushStyle.NoBrush)
    if data.kind == POLYGON:
        outline = st.fill is None or data.typical_size / dupp >= st.outline_min_px
        p.setPen(_pen(st) if outline else Qt.PenStyle.NoPen)
        brushes = [_brush(st, c) for c in colours] if st.fill is not None else [no_brush]
        pens = None
    elif data.kind == LINE:
        pens = [_pen(st, c) for c in colours]
        brushes = [no_brush]
    else:  # points: filled squares
        p.setPen(Qt.PenStyle.NoPen)
        brushes = [QBrush(c) for c in colours]
        pens = None
    last = len(brushes) - 1
    for _unit, cp in data.iter_paths(units, band, grouped):
        if cancelled():
            raise Cancelled
        for cls, path in cp.paths:
            if pens is not None:
                p.setPen(pens[min(cls, len(pens) - 1)])
            p.setBrush(brushes[min(cls, last)])
            p.drawPath(path)


#: Idle-time warming covers the view grown by this fraction of its size on every side.
WARM_MARGIN = 0.5


def warm_steps(layers: Sequence[LayerSpec], view: View) -> Iterator[int]:
    """Build the paths the next move away from ``view`` would need, one batch per ``next()``
    (each a few milliseconds; see :meth:`VectorData.warm`), for the vector layers of
    ``layers``: first a pan (the view grown by ``WARM_MARGIN`` per side, this zoom band),
    then a zoom in (the view, one band finer), then a zoom out (the grown view, one band
    coarser). Yields the number of chunks (or groups) built by each step."""
    x0, y0, x1, y1 = box = view.bounds()
    mx, my = (x1 - x0) * WARM_MARGIN, (y1 - y0) * WARM_MARGIN
    around = (x0 - mx, y0 - my, x1 + mx, y1 + my)
    band = band_of(view.device_upp)
    vectors = [s.data for s in layers
               if s.selection is None and isinstance(s.data, VectorData) and len(s.data)]
    for data in vectors:
        yield from data.warm(box, around, band)
    for data in vectors:
        if not data.draw_units(box)[0]:  # zoomed in far enough to draw by chunks
            yield from data.warm(box, box, band - 1)
    for data in vectors:
        yield from data.warm(around, around, band + 1)


#: Selection overlay look: translucent yellow fill, strong outline (as in desktop GIS).
SELECTION_FILL = QColor(255, 230, 0, 110)
SELECTION_PEN = QColor(230, 120, 0)


def draw_selection(p: QPainter, data: VectorData, positions: np.ndarray, view: View,
                   cancelled: Callable[[], bool] = lambda: False) -> None:
    """Draw the features at ``positions`` (those meeting the view) as the selection."""
    if not len(positions):
        return
    x0, y0, x1, y1 = view.bounds()
    b = data.bounds[positions]
    inside = positions[(b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)]
    if not len(inside):
        return
    p.setTransform(view.transform(data.origin))
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    pen = QPen(SELECTION_PEN)
    pen.setCosmetic(True)
    pen.setWidthF(2.0)
    p.setPen(pen)
    p.setBrush(SELECTION_FILL if data.kind != LINE else Qt.BrushStyle.NoBrush)
    band = band_of(view.device_upp)
    step = 4000
    for i in range(0, len(inside), step):
        if cancelled():
            raise Cancelled
        for _, path in data.subset_paths(inside[i:i + step], band):
            p.drawPath(path)


def draw_raster(p: QPainter, data: RasterData, view: View) -> None:
    """Draw the pyramid level nearest the view's pixel size, cropped to the view."""
    level = data.level_for(view.device_upp)
    if level is None:
        return
    img, (minx, miny, maxx, maxy) = level
    vx0, vy0, vx1, vy1 = view.bounds()
    ix0, iy0 = max(minx, vx0), max(miny, vy0)
    ix1, iy1 = min(maxx, vx1), min(maxy, vy1)
    if ix0 >= ix1 or iy0 >= iy1:
        return
    sx = img.width() / (maxx - minx)
    sy = img.height() / (maxy - miny)
    # source rectangle in image pixels (whole pixels around the visible part)
    sx0 = max(0, int(np.floor((ix0 - minx) * sx)))
    sx1 = min(img.width(), int(np.ceil((ix1 - minx) * sx)))
    sy0 = max(0, int(np.floor((maxy - iy1) * sy)))
    sy1 = min(img.height(), int(np.ceil((maxy - iy0) * sy)))
    if sx1 <= sx0 or sy1 <= sy0:
        return
    wx0, wx1 = minx + sx0 / sx, minx + sx1 / sx
    wy1, wy0 = maxy - sy0 / sy, maxy - sy1 / sy
    px0, py0 = view.world_to_pixel(wx0, wy1)
    px1, py1 = view.world_to_pixel(wx1, wy0)
    p.resetTransform()
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                    view.device_upp > data.pixel_size)
    p.drawImage(QRectF(QPointF(px0, py0), QPointF(px1, py1)), img,
                QRectF(sx0, sy0, sx1 - sx0, sy1 - sy0))


@dataclass
class RenderJob:
    """A render request. ``generation`` orders requests; ``kind`` is ``"map"`` or
    ``"overlay"`` (transparent background)."""

    layers: list[LayerSpec]
    view: View
    generation: int
    kind: str = "map"
    content: int = 0  # the canvas's content generation this job shows
    cancel_event: threading.Event = field(default_factory=threading.Event)
    seconds: float = 0.0


class RenderWorker:
    """One background thread rendering the newest request of each kind.

    ``on_done(job, image)`` is called from the render thread; connect it to a queued Qt
    signal. A new request of a kind cancels the running one of that kind.

    When a map render is done and nothing else is asked for, the thread warms the level-of-
    detail caches around that view (:func:`warm_steps`) one short step at a time. Any new
    request is taken before the next step (so it waits a few milliseconds at most): a map
    request ends the warming, an overlay request pauses it. ``warm`` False turns this off.
    """

    def __init__(self, on_done: Callable[[RenderJob, QImage], None], warm: bool = True) -> None:
        self._on_done = on_done
        self.warm = warm
        self._cond = threading.Condition()
        self._pending: dict[str, RenderJob] = {}
        self._running: RenderJob | None = None
        self._warming: Iterator[int] | None = None
        self._stop = False
        #: finished warm-ups and warming steps taken (for tests and benchmarks)
        self.warm_runs = 0
        self.warm_step_count = 0
        self._thread = threading.Thread(target=self._loop, name="multiplan-render",
                                        daemon=True)
        self._thread.start()

    def submit(self, job: RenderJob) -> None:
        with self._cond:
            old = self._pending.get(job.kind)
            if old is not None:
                old.cancel_event.set()
            running = self._running
            if running is not None and running.kind == job.kind:
                running.cancel_event.set()
            self._pending[job.kind] = job
            self._cond.notify()

    def busy(self) -> bool:
        """Rendering, or about to, or warming caches."""
        with self._cond:
            return (bool(self._pending) or self._running is not None
                    or self._warming is not None)

    def warming(self) -> bool:
        with self._cond:
            return self._warming is not None

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            for job in self._pending.values():
                job.cancel_event.set()
            if self._running is not None:
                self._running.cancel_event.set()
            self._cond.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _warm_step(self) -> None:
        """One warming step (called with no request pending)."""
        steps = self._warming
        try:
            next(steps)  # type: ignore[arg-type]
            self.warm_step_count += 1
            return
        except StopIteration:
            self.warm_runs += 1
        except Exception:
            import logging

            logging.getLogger(__name__).exception("cache warming failed")
        with self._cond:
            if self._warming is steps:
                self._warming = None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop and self._warming is None:
                    self._cond.wait()
                if self._stop:
                    self._warming = None
                    return
                if not self._pending:
                    job = None
                else:
                    # overlays first: they are small and the user is waiting for them
                    kind = "overlay" if "overlay" in self._pending else next(iter(self._pending))
                    job = self._pending.pop(kind)
                    self._running = job
                    if kind == "map":
                        self._warming = None  # a new view: warming around the old one ends
                    # (an overlay only pauses it: it resumes when the thread is idle again)
            if job is None:
                self._warm_step()
                continue
            try:
                t0 = time.perf_counter()
                bg = BACKGROUND if job.kind == "map" else None
                image = render_layers(job.layers, job.view, job.cancel_event.is_set, bg)
                job.seconds = time.perf_counter() - t0
            except Cancelled:
                image = None
            except Exception:
                import logging

                logging.getLogger(__name__).exception("render failed")
                image = None
            with self._cond:
                self._running = None
                if (image is not None and job.kind == "map" and self.warm
                        and "map" not in self._pending and not self._stop):
                    self._warming = warm_steps(job.layers, job.view)
            if image is not None and not job.cancel_event.is_set() and not self._stop:
                self._on_done(job, image)
