"""Identify: what is under the cursor, across the visible layers.

For each feature hit: the layer, the feature id, the code and name in the unified 2023
classification and in the source scheme (with the source field names), the planar area in
the project CRS and the ellipsoidal area on the CRS's ellipsoid (CGCS2000; pyproj ``Geod``),
each labelled as such, and the control lines (三区三线) and registered conflicts (差异图斑)
that touch it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from multiplan.core.layers import LayerRecord

from .styles import CONFLICTS_LAYER

KEY_ROLE = Qt.ItemDataRole.UserRole  # the key of a row (e.g. "unified_code")
VALUE_ROLE = Qt.ItemDataRole.UserRole + 1  # its raw value
M2_PER_MU = 10000.0 / 15.0


@dataclass
class Feature:
    layer: str
    title: str
    fid: int
    geometry: Any
    record: LayerRecord | None = None
    unified_code: str | None = None
    unified_name: str | None = None
    status: str | None = None
    source_code: str | None = None
    source_name: str | None = None
    code_field: str | None = None
    name_field: str | None = None
    planar_area_m2: float | None = None
    ellipsoidal_area_m2: float | None = None
    length_m: float | None = None
    control_lines: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


class Areas:
    """Planar and ellipsoidal measures in a projected CRS."""

    def __init__(self, crs: CRS) -> None:
        self.crs = crs
        self.geod = crs.get_geod()
        self._to_geog = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)

    def ellipsoidal_area(self, geom: Any) -> float:
        def tr(xy: np.ndarray) -> np.ndarray:
            lon, lat = self._to_geog.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([lon, lat])

        area, _ = self.geod.geometry_area_perimeter(shapely.transform(geom, tr))
        return abs(float(area))

    def ellipsoidal_length(self, geom: Any) -> float:
        def tr(xy: np.ndarray) -> np.ndarray:
            lon, lat = self._to_geog.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([lon, lat])

        return float(self.geod.geometry_length(shapely.transform(geom, tr)))


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    s = str(v).strip()
    return s or None


def describe(layer: str, title: str, rec: LayerRecord | None, fid: int, geom: Any,
             attrs: pd.Series | None, areas: Areas) -> Feature:
    """The identify record of one feature (without control lines and conflicts)."""
    f = Feature(layer, title, int(fid), geom, rec)
    row = attrs.to_dict() if attrs is not None else {}
    f.attributes = row
    f.unified_code = _text(row.get("mp_code"))
    f.unified_name = _text(row.get("mp_name"))
    f.status = _text(row.get("mp_status"))
    if rec is not None:
        f.code_field, f.name_field = rec.code_field, rec.name_field
        if rec.code_field:
            f.source_code = _text(row.get(rec.code_field))
        if rec.name_field:
            f.source_name = _text(row.get(rec.name_field))
    if layer == CONFLICTS_LAYER:
        f.unified_code = _text(row.get("proposed_code"))
        f.unified_name = _text(row.get("proposed_name"))
    gtype = shapely.get_type_id(geom)
    if gtype in (3, 6):
        f.planar_area_m2 = float(shapely.area(geom))
        f.ellipsoidal_area_m2 = areas.ellipsoidal_area(geom)
    elif gtype in (1, 2, 5):
        f.length_m = float(shapely.length(geom))
    return f


def conflicts_of(gpkg: Path, layer: str, fid: int, limit: int = 50) -> list[dict[str, Any]]:
    """Registered conflict pieces (差异图斑) of a feature, biggest first; '一致' left out."""
    try:
        conn = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return []
    with contextlib.closing(conn):
        conn.row_factory = sqlite3.Row
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                        (CONFLICTS_LAYER,)).fetchone() is None:
            return []
        rows = conn.execute(
            f'SELECT conflict_id, conflict_type, type_name, severity, layer_a, fid_a, layer_b, '
            f'fid_b, area_m2, sliver FROM "{CONFLICTS_LAYER}" WHERE ((layer_a = ? AND fid_a = ?)'
            f' OR (layer_b = ? AND fid_b = ?)) AND severity <> \'一致\' '
            f'ORDER BY area_m2 DESC LIMIT ?', (layer, fid, layer, fid, limit)).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["other_layer"] = d["layer_b"] if d["layer_a"] == layer else d["layer_a"]
        out.append(d)
    return out


def control_lines_touching(geom: Any, layers: list[tuple[str, str, LayerRecord, Any, Any]]
                           ) -> list[dict[str, Any]]:
    """Control-line features meeting ``geom``: ``layers`` holds (name, title, record,
    VectorData, attributes) of the loaded control-line layers."""
    out = []
    polygonal = shapely.get_type_id(geom) in (3, 6)
    for name, title, rec, data, attrs in layers:
        hits = data.query(geom, "intersects")
        for pos in hits.tolist():
            other = data.geoms[pos]
            overlap = float(shapely.area(shapely.intersection(geom, other))) if polygonal \
                else 0.0
            label = None
            if rec.name_field and attrs is not None and rec.name_field in attrs.columns:
                label = _text(attrs.iloc[pos][rec.name_field])
            out.append({"layer": name, "title": title, "fid": int(data.fids[pos]),
                        "label": label, "overlap_m2": overlap})
    return out


def area_text(m2: float) -> str:
    """``m2`` in square metres, 公顷 (hectares) and 亩 (mu), in the interface language."""
    return QCoreApplication.translate("identify", "{0} ㎡（{1} 公顷 · {2} 亩）").format(
        f"{m2:,.2f}", f"{m2 / 1e4:,.4f}", f"{m2 / M2_PER_MU:,.2f}")


class IdentifyPanel(QTreeWidget):
    """Identify results: one top-level item per feature, a row per fact."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels([self.tr("项目"), self.tr("值")])
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.header().setStretchLastSection(True)
        self.header().resizeSection(0, 190)
        self.setAlternatingRowColors(True)
        self.features: list[Feature] = []
        self.crs_label = ""

    def show_features(self, features: list[Feature], crs_label: str) -> None:
        self.clear()
        self.features = features
        self.crs_label = crs_label
        if not features:
            QTreeWidgetItem(self, [self.tr("此处没有要素"), ""])
            return
        for f in features:
            top = QTreeWidgetItem(self, [f.title, f"FID {f.fid}"])
            top.setData(0, KEY_ROLE, "feature")
            top.setData(1, VALUE_ROLE, f.fid)
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            self._row(top, "layer", self.tr("图层"), f"{f.title}（{f.layer}）", f.layer)
            if f.unified_code or f.unified_name:
                self._row(top, "unified_code", self.tr("统一分类代码（用地用海 2023）"),
                          f.unified_code or "", f.unified_code)
                self._row(top, "unified_name", self.tr("统一分类名称"), f.unified_name or "",
                          f.unified_name)
            if f.status and f.status not in ("ok", "exact"):
                self._row(top, "status", self.tr("分类转换状态"), f.status, f.status)
            if f.code_field:
                self._row(top, "source_code",
                          self.tr("原分类代码（字段 {0}）").format(f.code_field),
                          f.source_code or "", f.source_code)
            if f.name_field:
                self._row(top, "source_name",
                          self.tr("原分类名称（字段 {0}）").format(f.name_field),
                          f.source_name or "", f.source_name)
            if f.planar_area_m2 is not None:
                self._row(top, "planar_area",
                          self.tr("平面面积（{0} 投影平面）").format(crs_label),
                          area_text(f.planar_area_m2), f.planar_area_m2)
            if f.ellipsoidal_area_m2 is not None:
                self._row(top, "ellipsoidal_area", self.tr("椭球面积（CGCS2000 椭球面）"),
                          area_text(f.ellipsoidal_area_m2), f.ellipsoidal_area_m2)
            if f.length_m is not None:
                self._row(top, "length", self.tr("平面长度（{0}）").format(crs_label),
                          f"{f.length_m:,.2f} m", f.length_m)
            lines = QTreeWidgetItem(top, [self.tr("相交的控制线（三区三线）"),
                                          str(len(f.control_lines)) if f.control_lines
                                          else self.tr("无")])
            lines.setData(0, KEY_ROLE, "control_lines")
            lines.setData(1, VALUE_ROLE, len(f.control_lines))
            for c in f.control_lines:
                detail = (self.tr("重叠 {0}").format(area_text(c["overlap_m2"]))
                          if c["overlap_m2"] > 0 else self.tr("相接"))
                item = QTreeWidgetItem(lines, [f"{c['title']} · FID {c['fid']}"
                                               + (f" · {c['label']}" if c["label"] else ""),
                                               detail])
                item.setData(0, KEY_ROLE, "control_line")
                item.setData(1, VALUE_ROLE, c)
            conf = QTreeWidgetItem(top, [self.tr("差异图斑（冲突登记）"),
                                         str(len(f.conflicts)) if f.conflicts
                                         else self.tr("无")])
            conf.setData(0, KEY_ROLE, "conflicts")
            conf.setData(1, VALUE_ROLE, len(f.conflicts))
            for c in f.conflicts:
                sliver = self.tr("（碎片）") if c.get("sliver") else ""
                item = QTreeWidgetItem(conf, [
                    f"{c['conflict_id']}",
                    (f"{c['conflict_type']} {c['type_name']} · {c['severity']}{sliver} · "
                    f"{c['other_layer']} · {c['area_m2']:,.1f} ㎡")])
                item.setData(0, KEY_ROLE, "conflict")
                item.setData(1, VALUE_ROLE, c)
            attrs = QTreeWidgetItem(top, [self.tr("全部属性"), str(len(f.attributes))])
            attrs.setData(0, KEY_ROLE, "attributes")
            for k, v in f.attributes.items():
                item = QTreeWidgetItem(attrs, [str(k), _text(v) or ""])
                item.setData(0, KEY_ROLE, f"attr:{k}")
                item.setData(1, VALUE_ROLE, _text(v))
            top.setExpanded(True)
            lines.setExpanded(bool(f.control_lines))
            conf.setExpanded(bool(f.conflicts))

    def _row(self, parent: QTreeWidgetItem, key: str, label: str, text: str,
             value: Any) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, [label, text])
        item.setData(0, KEY_ROLE, key)
        item.setData(1, VALUE_ROLE, value)
        item.setToolTip(1, text)
        return item

    def item(self, feature: int, key: str) -> QTreeWidgetItem | None:
        """The row ``key`` of the ``feature``-th result (for tests and copy)."""
        top = self.topLevelItem(feature)
        if top is None:
            return None
        stack = [top.child(i) for i in range(top.childCount())]
        while stack:
            it = stack.pop(0)
            if it.data(0, KEY_ROLE) == key:
                return it
            stack.extend(it.child(i) for i in range(it.childCount()))
        return None
