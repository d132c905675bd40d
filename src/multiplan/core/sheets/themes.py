"""What each standard sheet shows: its layers read from the project, their styles and their
legend classes.

A sheet is a list of :class:`DrawLayer` (vector) and :class:`RasterLayer` items. Each carries
its legend items (:class:`LegendItem`: code, name, style); ``thematic`` layers are the sheet's
subject and their classes *present in the mapped extent* make the legend (and
``SheetResult.legend``); reference layers (county and township lines, water, roads, the
county seat) follow in a second legend group.

Colours: 用地用海 classes from ``resources/standards/ydyh2023.json`` (the official
《市级国土空间总体规划制图规范（试行）》附录B colours); everything else from
``resources/sheets/styles.json`` (provisional where no official symbology was found — see
that file's ``source``).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from ..errors import MultiplanError
from ..layers import CONTROL_LINE_ROLES, ROLES, LayerRecord
from ..project import Project

STYLES_FILE = "styles.json"


class SheetError(MultiplanError):
    """A map sheet cannot be made (missing data, bad option)."""

    exit_code = 2


@dataclass(frozen=True)
class Style:
    """How a class is drawn. Colours are RGB 0–255; widths and sizes in mm on paper."""

    kind: str = "polygon"  # polygon | line | point | raster
    face: tuple[int, int, int] | None = None
    edge: tuple[int, int, int] | None = None
    lw_mm: float = 0.0
    alpha: float = 1.0
    hatch: str | None = None
    dash: str | None = None  # None | "dashed" | "dashdot" | "dotted"
    size_mm: float = 2.0  # point symbols

    @classmethod
    def from_json(cls, d: dict[str, Any], kind: str | None = None) -> Style:
        return cls(kind=d.get("kind", kind or "polygon"),
                   face=tuple(d["face"]) if d.get("face") else None,  # type: ignore[arg-type]
                   edge=tuple(d["edge"]) if d.get("edge") else None,  # type: ignore[arg-type]
                   lw_mm=float(d.get("lw_mm", 0.0)), alpha=float(d.get("alpha", 1.0)),
                   hatch=d.get("hatch"), dash=d.get("dash"),
                   size_mm=float(d.get("size_mm", 2.0)))


@dataclass
class LegendItem:
    code: str
    name: str
    style: Style


@dataclass
class DrawLayer:
    """A vector layer on the map: geometries, a class index per geometry into ``items``."""

    name: str
    kind: str  # polygon | line | point
    geoms: np.ndarray
    cls: np.ndarray
    items: list[LegendItem]
    zorder: float
    thematic: bool = False
    coverage: bool = False  # the features tile (no overlaps): simplify as a coverage

    def subset(self, mask: np.ndarray) -> DrawLayer:
        return DrawLayer(self.name, self.kind, self.geoms[mask], self.cls[mask], self.items,
                         self.zorder, self.thematic, self.coverage)


@dataclass
class RasterLayer:
    """A classified raster (双评价 results): class code → legend item; 0 is no data."""

    name: str
    path: Path
    items: dict[int, LegendItem]
    zorder: float = 2.0
    thematic: bool = True


@dataclass
class SheetData:
    layers: list[DrawLayer | RasterLayer]
    county: Any  # shapely geometry of the county, or None
    county_name: str
    sources: list[str] = field(default_factory=list)  # layer names drawn
    notes: list[str] = field(default_factory=list)

    def bounds(self) -> tuple[float, float, float, float]:
        """The county's bounds, else the thematic layers' bounds."""
        if self.county is not None and not shapely.is_empty(self.county):
            return tuple(shapely.bounds(self.county).tolist())  # type: ignore[return-value]
        boxes = []
        for lay in self.layers:
            if not lay.thematic:
                continue
            if isinstance(lay, RasterLayer):
                import rasterio

                with rasterio.open(lay.path) as ds:
                    b = ds.bounds
                boxes.append((b.left, b.bottom, b.right, b.top))
            elif len(lay.geoms):
                boxes.append(tuple(shapely.total_bounds(lay.geoms).tolist()))
        if not boxes:
            raise SheetError("sheet.no_extent", "图上没有任何数据，无法确定制图范围",
                             "nothing to map: no county boundary and no data")
        a = np.asarray(boxes)
        return (a[:, 0].min(), a[:, 1].min(), a[:, 2].max(), a[:, 3].max())


_STYLES: dict[str, Any] | None = None


def styles() -> dict[str, Any]:
    global _STYLES
    if _STYLES is None:
        text = resources.files("multiplan").joinpath("resources", "sheets", STYLES_FILE).read_text(
            encoding="utf-8")
        _STYLES = json.loads(text)
    return _STYLES


def styles_version() -> str:
    s = styles()
    return f"{s['id']}/{s['version']}"


# --------------------------------------------------------------------------- reading

def _vector(records: list[LayerRecord], roles: tuple[str, ...], polygon: bool | None = None
            ) -> list[LayerRecord]:
    out = []
    for r in records:
        if r.kind != "vector" or r.role not in roles:
            continue
        gt = r.geometry_type or ""
        if polygon is True and not gt.endswith("Polygon"):
            continue
        if polygon is False and gt.endswith("Polygon"):
            continue
        out.append(r)
    return out


def _geoms(project: Project, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    gdf = project.read_layer(name, columns=columns or [])
    g = np.asarray(gdf.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
    gdf = gdf[ok]
    return gdf


def plan_layer_name(project: Project, records: list[LayerRecord] | None = None) -> str | None:
    """The layer that stands for "the plan": setting ``plan_layer``, else the first
    国土空间规划 layer, else the first 土地利用规划 layer (as the checks choose it)."""
    records = records if records is not None else project.layers()
    names = {r.name for r in records if r.kind == "vector"}
    name = project.setting("plan_layer")
    if name and name in names:
        return str(name)
    for role in ("spatial_plan", "land_use_plan"):
        got = [r.name for r in _vector(records, (role,), polygon=True)]
        if got:
            return got[0]
    return None


def county_geometry(project: Project, records: list[LayerRecord]) -> Any:
    recs = _vector(records, ("admin_boundary",), polygon=True)
    if not recs:
        return None
    gdf = _geoms(project, recs[0].name)
    if not len(gdf):
        return None
    return shapely.union_all(np.asarray(gdf.geometry.values, dtype=object))


def _single(name: str, kind: str, geoms: np.ndarray, item: LegendItem, zorder: float,
            thematic: bool = False) -> DrawLayer:
    return DrawLayer(name, kind, geoms, np.zeros(len(geoms), dtype=np.int32), [item], zorder,
                     thematic)


def reference_layers(project: Project, records: list[LayerRecord], county: Any
                     ) -> tuple[list[DrawLayer], list[str]]:
    """County and township lines, water areas, rivers/railways/roads, the county seat."""
    st = styles()["reference"]
    out: list[DrawLayer] = []
    used: list[str] = []

    def item(key: str) -> LegendItem:
        return LegendItem(key, st[key]["name"], Style.from_json(st[key]))

    for rec in _vector(records, ("water",), polygon=True):
        gdf = _geoms(project, rec.name)
        if len(gdf):
            out.append(_single(rec.name, "polygon", np.asarray(gdf.geometry.values, dtype=object),
                               item("water"), 1.0))
            used.append(rec.name)
    for rec in _vector(records, ("water",), polygon=False):
        if not (rec.geometry_type or "").endswith("LineString"):
            continue
        cols = ["LX"] if _has_column(project, rec.name, "LX") else []
        gdf = _geoms(project, rec.name, cols)
        if not len(gdf):
            continue
        kinds = (gdf["LX"].astype("string").fillna("").to_numpy(dtype=object) if cols
                 else np.full(len(gdf), "河流", dtype=object))
        keys = np.asarray(["railway" if "铁路" in k else "road" if ("公路" in k or "道路" in k)
                           else "river" for k in kinds], dtype=object)
        items = [item("river"), item("railway"), item("road")]
        idx = np.asarray([{"river": 0, "railway": 1, "road": 2}[k] for k in keys], np.int32)
        out.append(DrawLayer(rec.name, "line", np.asarray(gdf.geometry.values, dtype=object), idx,
                             items, 6.0))
        used.append(rec.name)
    tw = _vector(records, ("township",), polygon=True)
    if tw:
        gdf = _geoms(project, tw[0].name)
        if len(gdf):
            g = shapely.boundary(np.asarray(gdf.geometry.values, dtype=object))
            out.append(_single(tw[0].name, "line", g, item("township"), 7.0))
            used.append(tw[0].name)
    if county is not None:
        cb = _vector(records, ("admin_boundary",), polygon=True)[0].name
        out.append(_single(cb, "line", np.asarray([shapely.boundary(county)], dtype=object),
                           item("county"), 8.0))
        used.append(cb)
    for rec in records:
        if rec.kind == "vector" and rec.role == "reference" and \
                (rec.geometry_type or "").endswith("Point") and "驻地" in rec.name:
            gdf = _geoms(project, rec.name)
            if len(gdf):
                out.append(_single(rec.name, "point",
                                   np.asarray(gdf.geometry.values, dtype=object),
                                   item("seat"), 9.0))
                used.append(rec.name)
    return out, used


def _has_column(project: Project, layer: str, column: str) -> bool:
    with contextlib.closing(project.connect()) as conn:
        cols = {r[1] for r in conn.execute(f'PRAGMA table_info("{layer}")')}
    return column in cols


# --------------------------------------------------------------------------- themes

def _plan_layer_data(project: Project) -> Any:
    from ..qa import CheckContext

    ctx = CheckContext(project)
    name = plan_layer_name(project, ctx.records)
    if name is None:
        raise SheetError("sheet.no_plan_layer",
                         "项目中没有规划图层（国土空间规划或土地利用规划），无法制作此图",
                         "the project has no plan layer (国土空间规划 or 土地利用规划) for this "
                         "sheet")
    lay = ctx.layer(name)
    ok = ~(shapely.is_missing(lay.geoms) | shapely.is_empty(lay.geoms))
    return lay, ok


def landuse_theme(project: Project) -> tuple[list[DrawLayer | RasterLayer], list[str]]:
    """The plan layer by 用地用海 2023 code (pending mappings: 待定; no code: 未分类)."""
    from ..classification import load_scheme

    lay, ok = _plan_layer_data(project)
    code, _status, cands = lay.unified()
    st = styles()["landuse"]
    scheme = load_scheme("ydyh2023")
    keys = np.asarray([c if c is not None else ("~pending" if cs else "~none")
                       for c, cs in zip(code.tolist(), cands.tolist(), strict=True)],
                      dtype=object)[ok]
    uniq, inv = np.unique(keys.astype(str), return_inverse=True)
    edge = tuple(st["edge"])
    items = []
    for k in uniq:
        if k == "~pending":
            items.append(LegendItem("待定", "待定（跨类映射，需人工确定）",
                                    Style(face=tuple(st["pending"]), edge=edge,
                                          lw_mm=st["lw_mm"], hatch=st["pending_hatch"])))
        elif k == "~none":
            items.append(LegendItem("无", "未分类", Style(face=tuple(st["none"]), edge=edge,
                                                        lw_mm=st["lw_mm"])))
        else:
            items.append(LegendItem(str(k), scheme.name(k) or str(k),
                                    Style(face=scheme.colour(k)[:3], edge=edge,
                                          lw_mm=st["lw_mm"])))
    layer = DrawLayer(lay.name, "polygon", lay.geoms[ok], inv.astype(np.int32), items, 3.0,
                      thematic=True, coverage=True)
    return [layer], [lay.name]


def sansheng_theme(project: Project) -> tuple[list[DrawLayer | RasterLayer], list[str]]:
    """The plan layer by 三生 class (the project's 三生 table and overrides)."""
    from ..classification import sansheng_table_version
    from ..sansheng import class_order, classify_layer

    lay, ok = _plan_layer_data(project)
    overrides = project.setting("sansheng_overrides") or None
    classes = np.asarray(classify_layer(lay, overrides), dtype=object)[ok]
    colours = styles()["sansheng"]
    order = class_order()
    present = [c for c in order if c in set(classes.tolist())]
    pos = {c: i for i, c in enumerate(present)}
    idx = np.asarray([pos[c] for c in classes], dtype=np.int32)
    items = [LegendItem(c, c + ("空间" if c in ("生产", "生活", "生态") else ""),
                        Style(face=tuple(colours.get(c, (176, 176, 176))), edge=(160, 160, 160),
                              lw_mm=0.04)) for c in present]
    layer = DrawLayer(lay.name, "polygon", lay.geoms[ok], idx, items, 3.0, thematic=True,
                      coverage=True)
    return [layer], [f"{lay.name}（三生对照表 {sansheng_table_version(overrides)}）"]


def controls_theme(project: Project) -> tuple[list[DrawLayer | RasterLayer], list[str]]:
    """三区三线: 生态保护红线, 永久基本农田, 城镇开发边界 (each control-line layer)."""
    st = styles()["controls"]
    out: list[DrawLayer | RasterLayer] = []
    used = []
    z = {"basic_farmland": 3.0, "eco_redline": 3.2, "urban_boundary": 3.4}
    for role in CONTROL_LINE_ROLES:
        for rec in _vector(project.layers(), (role,), polygon=True):
            gdf = _geoms(project, rec.name)
            if not len(gdf):
                continue
            it = LegendItem(role, ROLES[role][0], Style.from_json(st[role]))
            out.append(_single(rec.name, "polygon", np.asarray(gdf.geometry.values, dtype=object),
                               it, z[role], thematic=True))
            used.append(rec.name)
    if not out:
        raise SheetError("sheet.no_control_lines",
                         "项目中没有三区三线图层（生态保护红线、永久基本农田、城镇开发边界），无法制作此图",
                         "the project has no control-line layer (生态保护红线, 永久基本农田, "
                         "城镇开发边界) for this sheet")
    return out, used


CONFLICTS_TABLE = "mp_conflicts"


def conflicts_theme(project: Project) -> tuple[list[DrawLayer | RasterLayer], list[str]]:
    """差异图斑 of the register: pieces that are not slivers, of severity 冲突 or 警告, by
    conflict type."""
    import pyogrio

    st = styles()["conflicts"]
    sev = st["severities"]
    with contextlib.closing(project.connect()) as conn:
        have = conn.execute("SELECT 1 FROM gpkg_geometry_columns WHERE table_name = ?",
                            (CONFLICTS_TABLE,)).fetchone()
    if not have:
        raise SheetError("sheet.no_conflicts",
                         "项目还没有差异图斑登记表（请先运行冲突检测：multiplan conflicts）",
                         "the project has no conflict register yet (run conflict detection "
                         "first: multiplan conflicts)")
    where = ("coalesce(sliver, 0) = 0 AND severity IN ("
             + ", ".join("'" + s.replace("'", "''") + "'" for s in sev) + ")")
    gdf = pyogrio.read_dataframe(project.gpkg, layer=CONFLICTS_TABLE,
                                 columns=["conflict_type", "type_name", "severity"],
                                 where=where, use_arrow=True)
    g = np.asarray(gdf.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
    gdf = gdf[ok]
    g = g[ok]
    types = gdf["conflict_type"].astype("string").fillna("?").to_numpy(dtype=object)
    names = dict(zip(types.tolist(),
                     gdf["type_name"].astype("string").fillna("").tolist(), strict=True))
    uniq, inv = np.unique(types.astype(str), return_inverse=True)
    fb = st["fallback"]
    items = []
    for i, t in enumerate(uniq):
        colour = st["types"].get(t, fb[i % len(fb)])
        items.append(LegendItem(str(t), f"{t} {names.get(t) or ''}".strip(),
                                Style(face=tuple(colour), edge=tuple(st["edge"]),
                                      lw_mm=st["lw_mm"])))
    layer = DrawLayer("差异图斑", "polygon", g, inv.astype(np.int32), items, 4.0, thematic=True)
    return [layer], [f"差异图斑登记表（{CONFLICTS_TABLE}，{'、'.join(sev)}，不含碎片）"]


#: sheet key → assessment output key
ASSESSMENT_RESULTS = {"assessment_ecology": "eco_importance",
                      "assessment_agriculture": "agri_suitability",
                      "assessment_urban": "urban_suitability"}


def assessment_record(project: Project, out_key: str) -> LayerRecord | None:
    from ..assessment.run import OUTPUT_SPECS

    want = OUTPUT_SPECS[out_key].layer
    for rec in project.layers():
        if rec.kind == "raster" and rec.name == want and rec.raster_path and \
                (project.folder / rec.raster_path).is_file():
            return rec
    return None


def assessment_theme(project: Project, out_key: str
                     ) -> tuple[list[DrawLayer | RasterLayer], list[str]]:
    from ..assessment.run import OUTPUT_SPECS, colours

    spec = OUTPUT_SPECS[out_key]
    rec = assessment_record(project, out_key)
    if rec is None:
        raise SheetError("sheet.no_assessment",
                         f"项目中没有双评价结果“{spec.zh}”（请先运行双评价：multiplan assess）",
                         f"the project has no 双评价 result '{spec.en}' (run the assessment "
                         f"first: multiplan assess)")
    labels = {int(k): str(v) for k, v in (rec.report.get("classes") or {}).items()}
    cols = colours(spec.legend)
    items = {c: LegendItem(str(c), labels.get(c, str(c)),
                           Style(kind="raster", face=tuple(cols.get(c, (200, 200, 200, 255))[:3])))
             for c in sorted(set(labels) | set(cols))}
    run = (rec.report or {}).get("run_id", "")
    return ([RasterLayer(rec.name, project.folder / rec.raster_path, items)],
            [f"{rec.name}（运行 {str(run)[:8]}，参数 {rec.report.get('params', '')}）"])
