"""Comparison mode: the two source plans of a conflict side by side.

Two :class:`~multiplan.gui.map_canvas.canvas.MapCanvas` widgets, plan A on the left and plan
B on the right, each drawing its layer in the layer's own classification colours (the
window's loaded drawing data and style are reused, nothing is read twice). Panning or zooming
either canvas moves the other to the same centre and scale. The conflict piece is outlined on
both (the canvas's highlight, drawn without re-rendering).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..map_canvas.canvas import MapCanvas
from ..styles import CONFLICTS_LAYER


def _given(v: Any) -> bool:
    return v is not None and bool(pd.notna(v))


class ComparisonView(QWidget):
    """Plan A | plan B at the place of the selected item."""

    synced = Signal()

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.setObjectName("review_comparison")
        self.canvas_a = MapCanvas(self)
        self.canvas_b = MapCanvas(self)
        self.title_a = QLabel()
        self.title_b = QLabel()
        for t in (self.title_a, self.title_b):
            t.setAlignment(Qt.AlignmentFlag.AlignCenter)
            t.setStyleSheet("font-weight: bold; padding: 2px;")
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 2, 2, 2)
        row.setSpacing(4)
        for title, canvas in ((self.title_a, self.canvas_a), (self.title_b, self.canvas_b)):
            col = QVBoxLayout()
            col.setSpacing(1)
            col.addWidget(title)
            col.addWidget(canvas, 1)
            row.addLayout(col, 1)
        self._syncing = False
        self.canvas_a.viewChanged.connect(lambda: self._sync(self.canvas_a, self.canvas_b))
        self.canvas_b.viewChanged.connect(lambda: self._sync(self.canvas_b, self.canvas_a))
        self.layers: tuple[str | None, str | None] = (None, None)
        self.item: Any = None
        self._pending: tuple[Any, tuple[float, float, float, float] | None] | None = None
        self.show_hint()

    def canvases(self) -> tuple[MapCanvas, MapCanvas]:
        return self.canvas_a, self.canvas_b

    def shutdown(self) -> None:
        self.canvas_a.shutdown()
        self.canvas_b.shutdown()

    def show_hint(self) -> None:
        self.title_a.setText(self.tr("规划 A"))
        self.title_b.setText(self.tr("规划 B"))
        for c in self.canvases():
            c.clear()
            c.set_hint(self.tr("在审查列表中选择一个图斑"))

    # ------------------------------------------------------------------ sync
    def _sync(self, src: MapCanvas, dst: MapCanvas) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            cx, cy = src.center()
            dst.set_center(cx, cy, src.units_per_pixel())
        finally:
            self._syncing = False
        self.synced.emit()

    # ------------------------------------------------------------------ content
    def show_item(self, item: Any, bounds: tuple[float, float, float, float] | None) -> None:
        """Show layer_a / layer_b of ``item`` (a row of the item frame) at ``bounds``."""
        self.item = item
        a, b = item.get("layer_a"), item.get("layer_b")
        win = self.window
        names = [n for n in (a, b) if n and n in win.records]
        if not names:
            self.show_hint()
            return
        self.title_a.setText(self.tr("A：{0}").format(win.layer_title(a) if a else "—"))
        self.title_b.setText(self.tr("B：{0}").format(win.layer_title(b) if b else "—"))
        self._pending = (item, bounds)
        wanted = names + ([CONFLICTS_LAYER] if CONFLICTS_LAYER in win.records else [])
        missing = [n for n in wanted if n not in win.loaded]
        if missing:
            for c in self.canvases():
                c.set_hint(self.tr("正在读取图层…"))
            win.request_load(wanted, then=lambda _n: self._fill_if_ready())
        else:
            self._fill_if_ready()

    def _fill_if_ready(self) -> None:
        if self._pending is None:
            return
        item, bounds = self._pending
        win = self.window
        a, b = item.get("layer_a"), item.get("layer_b")
        wanted = [n for n in (a, b) if n and n in win.records]
        if CONFLICTS_LAYER in win.records:
            wanted.append(CONFLICTS_LAYER)
        if any(n not in win.loaded and n not in getattr(win, "_failed", set())
               for n in wanted):
            return  # more to come
        self._pending = None
        self.layers = (a, b)
        for canvas, name, fid in ((self.canvas_a, a, item.get("fid_a")),
                                  (self.canvas_b, b, item.get("fid_b"))):
            self._set_layer(canvas, name)
            self._highlight(canvas, item, name, fid)
        if bounds is not None:
            minx, miny, maxx, maxy = bounds
            pad = max((maxx - minx), (maxy - miny)) * 0.6 + 30.0
            self.canvas_a.zoom_to_extent((minx - pad, miny - pad, maxx + pad, maxy + pad))
            self._sync(self.canvas_a, self.canvas_b)

    def _set_layer(self, canvas: MapCanvas, name: str | None) -> None:
        win = self.window
        keep = {name, CONFLICTS_LAYER}
        for old in canvas.layer_names():
            if old not in keep:
                canvas.remove_layer(old)
        if name is None or name not in win.loaded:
            canvas.set_hint(self.tr("（无图层）"))
            return
        canvas.set_hint("")
        layer = win.loaded[name]
        if not canvas.has_layer(name) or canvas.layer(name).data is not layer.data:
            palette = layer.classes.palette if layer.classes is not None else []
            canvas.add_layer(name, layer.data, layer.style.copy(opacity=1.0), palette,
                             visible=True, settle=0)
        if CONFLICTS_LAYER in win.loaded:
            conf = win.loaded[CONFLICTS_LAYER]
            if not canvas.has_layer(CONFLICTS_LAYER) or \
                    canvas.layer(CONFLICTS_LAYER).data is not conf.data:
                # hidden: only there so the piece can be outlined
                canvas.add_layer(CONFLICTS_LAYER, conf.data, conf.style, [], visible=False)
        canvas.set_order([name])

    @staticmethod
    def _highlight(canvas: MapCanvas, item: Any, name: str | None, fid: Any) -> None:
        reg = item.get("register_fid")
        if _given(reg) and canvas.has_layer(CONFLICTS_LAYER):
            canvas.set_highlight(CONFLICTS_LAYER, [int(reg)])
        elif name and _given(fid) and canvas.has_layer(name):
            canvas.set_highlight(name, [int(fid)])
        else:
            canvas.clear_highlight()
