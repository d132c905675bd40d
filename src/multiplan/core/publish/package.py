"""The data package of an export: one GeoPackage 1.3 with the published layers, styled for
QGIS (issue 9 part 6).

Layers (table names after the observed 县级国土空间总体规划数据库 layer codes where one is
known — GHYDYH, STBHHX, YJJBNT, CZKFBJ, XZQ, domain.md §8.2 — and descriptive codes
otherwise): GHYDYH 规划用地用海 (the plan layer, by unified 2023 class), STBHHX / YJJBNT /
CZKFBJ (the control lines), XZQ 行政区, SSKJ 三生空间 (the plan parcels by 三生 class), CYTB
差异图斑 (the register without slivers) and GZYJ 公众意见 (public comments, points). A layer
the project lacks is left out and said so.

Styles follow the QGIS convention for GeoPackages: a ``layer_styles`` attribute table
(f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, styleQML,
styleSLD, useAsDefault, description, owner, ui, update_time) whose default row QGIS applies
when it opens the layer, and the same QML as ``<layer>.qml`` beside the GeoPackage (QGIS
loads a same-named .qml for file layers; for a GeoPackage the user can load it by hand).
The QML is a ``renderer-v2`` of type ``categorizedSymbol`` (or ``singleSymbol``) with
``SimpleFill`` symbol layers and ``<prop k= v=>`` properties, the form QGIS 3.x reads.
Land-use classes use the official colours (《市级国土空间总体规划制图规范（试行）》附录B via
``ydyh2023.json``) and Chinese labels; the 三区三线 symbology was not found in any source
(domain.md §3.3) and follows the provisional practice the desktop app uses.

For the public version the geometry is generalised (``shapely.simplify`` with topology
preserved, tolerance in metres) and internal fields (feature ids of the source layers, raw
source codes) are dropped.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from ..project import GPKG_VERSION, Project
from ..tasks import Task, ensure_task

__all__ = ["PackageLayer", "qml_categorized", "qml_single", "write_package"]

PACKAGE_NAME = "规划数据包.gpkg"

#: Severity colours of the register (the same values as the desktop app's canvas).
SEVERITY_COLOURS = {"冲突": (220, 30, 30), "警告": (245, 140, 20), "提示": (250, 220, 60),
                    "一致": (190, 190, 190)}
#: Provisional control-line symbology (domain.md §3.3: the official one was not found).
CONTROL_STYLES = {
    "eco_redline": ("STBHHX", "生态保护红线", {"fill": (220, 20, 20, 40), "outline": (220, 20, 20),
                                               "width": 0.6}),
    "basic_farmland": ("YJJBNT", "永久基本农田", {"fill": (230, 180, 0, 255),
                                                 "outline": (215, 170, 0), "width": 0.26,
                                                 "style": "b_diagonal"}),
    "urban_boundary": ("CZKFBJ", "城镇开发边界", {"fill": (150, 40, 200, 0),
                                                 "outline": (150, 40, 200), "width": 0.6,
                                                 "outline_style": "dash"}),
    "admin_boundary": ("XZQ", "行政区", {"fill": (255, 255, 255, 0), "outline": (40, 40, 40),
                                          "width": 0.8}),
}


@dataclass
class PackageLayer:
    table: str
    title: str
    features: int
    source: list[str]
    style: str  # "categorized:<attr>" or "single"
    classes: list[str] = field(default_factory=list)
    geometry_type: str = "MultiPolygon"


# --------------------------------------------------------------------------- QML

def _rgba(c: tuple[int, ...]) -> str:
    r, g, b = c[:3]
    a = c[3] if len(c) > 3 else 255
    return f"{r},{g},{b},{a}"


def _fill_symbol(name: str, fill: tuple[int, ...], outline: tuple[int, ...], width: float,
                 style: str = "solid", outline_style: str = "solid") -> str:
    props = {"color": _rgba(fill), "outline_color": _rgba(outline),
             "outline_width": f"{width:g}", "outline_width_unit": "MM", "style": style,
             "outline_style": outline_style, "joinstyle": "bevel"}
    body = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (f'<symbol type="fill" name={quoteattr(name)} alpha="1" clip_to_extent="1" '
            f'force_rhr="0"><layer class="SimpleFill" pass="0" locked="0" enabled="1">'
            f'{body}</layer></symbol>')


def _wrap(renderer: str) -> str:
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            '<qgis version="3.22.0" styleCategories="Symbology">\n'
            f"{renderer}\n</qgis>\n")


def qml_categorized(attr: str, categories: list[tuple[str, str, tuple[int, ...]]], *,
                    outline: tuple[int, ...] = (110, 110, 110), width: float = 0.1) -> str:
    """A categorized renderer on ``attr``: one (value, label, fill colour) per category."""
    cats = "".join(f'<category value={quoteattr(str(v))} label={quoteattr(lab)} '
                   f'symbol="{i}" render="true" type="string"/>'
                   for i, (v, lab, _) in enumerate(categories))
    syms = "".join(_fill_symbol(str(i), col, outline, width)
                   for i, (_, _, col) in enumerate(categories))
    return _wrap(f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(attr)} '
                 'symbollevels="0" forceraster="0" enableorderby="0">'
                 f"<categories>{cats}</categories><symbols>{syms}</symbols></renderer-v2>")


def qml_single(fill: tuple[int, ...], outline: tuple[int, ...], width: float, *,
               style: str = "solid", outline_style: str = "solid") -> str:
    sym = _fill_symbol("0", fill, outline, width, style, outline_style)
    return _wrap('<renderer-v2 type="singleSymbol" symbollevels="0" forceraster="0" '
                 f'enableorderby="0"><symbols>{sym}</symbols></renderer-v2>')


def qml_marker(fill: tuple[int, ...], outline: tuple[int, ...], size: float = 2.4) -> str:
    """A single-symbol renderer of point features (a ``SimpleMarker`` circle)."""
    props = {"name": "circle", "color": _rgba(fill), "outline_color": _rgba(outline),
             "outline_width": "0.3", "outline_width_unit": "MM", "size": f"{size:g}",
             "size_unit": "MM"}
    body = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    sym = ('<symbol type="marker" name="0" alpha="1" clip_to_extent="1" force_rhr="0">'
           f'<layer class="SimpleMarker" pass="0" locked="0" enabled="1">{body}</layer>'
           "</symbol>")
    return _wrap('<renderer-v2 type="singleSymbol" symbollevels="0" forceraster="0" '
                 f'enableorderby="0"><symbols>{sym}</symbols></renderer-v2>')


def _hex(c: str) -> tuple[int, int, int]:
    c = c.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


# --------------------------------------------------------------------------- layers

def _generalise(geoms: np.ndarray, tol: float | None) -> np.ndarray:
    if not tol:
        return geoms
    out = shapely.simplify(geoms, tol, preserve_topology=True)
    out = shapely.make_valid(out)
    # keep polygons only (make_valid may add lines or points at pinched spots)
    parts = shapely.get_parts(out, return_index=True)
    keep = shapely.get_type_id(parts[0]) == 3
    res = np.full(len(geoms), None, dtype=object)
    if keep.any():  # regroup the polygon parts per feature (vectorised; gaps stay None)
        shapely.multipolygons(parts[0][keep], indices=parts[1][keep], out=res)
    return res


def _frame(data: dict[str, Any], geoms: np.ndarray, epsg: int, tol: float | None
           ) -> gpd.GeoDataFrame:
    g = _generalise(np.asarray(geoms, dtype=object), tol)
    gdf = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(g, crs=epsg))
    ok = ~(gdf.geometry.isna() | gdf.geometry.is_empty)
    gdf = gdf.loc[ok].reset_index(drop=True)
    gdf.geometry = gdf.geometry.apply(lambda x: x if x.geom_type == "MultiPolygon"
                                      else shapely.multipolygons([x]))
    return gdf


def _plan_layer(ctx: Any, tol: float | None, public: bool
                ) -> tuple[gpd.GeoDataFrame, PackageLayer, str] | None:
    from ..classification import load_scheme
    from ..sansheng import classify_layer

    name = ctx.plan_layer()
    if name is None:
        return None
    lay = ctx.layer(name)
    code, status, _ = lay.unified()
    scheme = load_scheme("ydyh2023")
    names = [scheme.get(c).name if c else ("待定" if s == "待定" else "未分类")
             for c, s in zip(code, status, strict=True)]
    data: dict[str, Any] = {
        "YDYHFLDM": [c or "" for c in code], "YDYHFLMC": names,
        "YJLDM": [c[:2] if c else "" for c in code],
        "SSKJ": classify_layer(lay, ctx.setting("sansheng_overrides") or None),
        "MJ_HA": np.round(lay.area / 1e4, 6)}
    if not public:
        data["SRC_FID"] = lay.fids
        src = lay.record.code_field
        if src and src in lay.frame.columns:
            data["SRC_CODE"] = lay.frame[src].astype(str).to_numpy()
    gdf = _frame(data, lay.geoms, ctx.project.epsg, tol)
    present = sorted({c for c in gdf["YDYHFLDM"] if c})
    cats = [(c, f"{c} {scheme.get(c).name}", scheme.colour(c)) for c in present]
    if (gdf["YDYHFLDM"] == "").any():
        cats.append(("", "待定/未分类", scheme.fallback_colour))
    qml = qml_categorized("YDYHFLDM", cats)
    return gdf, PackageLayer("GHYDYH", "规划用地用海", len(gdf), [name],
                             "categorized:YDYHFLDM", [c[1] for c in cats]), qml


def _sansheng_layer(plan: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, PackageLayer, str]:
    from ..sansheng import COLOURS, class_order

    gdf = plan[["SSKJ", "YDYHFLDM", "MJ_HA", "geometry"]].copy()
    present = [c for c in class_order() if (gdf["SSKJ"] == c).any()]
    cats = [(c, c, _hex(COLOURS[c])) for c in present]
    return gdf, PackageLayer("SSKJ", "三生空间", len(gdf), ["GHYDYH"], "categorized:SSKJ",
                             present), qml_categorized("SSKJ", cats, width=0.05)


def _role_layer(ctx: Any, role: str, tol: float | None
                ) -> tuple[gpd.GeoDataFrame, PackageLayer, str] | None:
    table, title, st = CONTROL_STYLES[role]
    names = ctx.layers_of_role(role)
    if not names:
        return None
    frames = []
    for n in names:
        lay = ctx.layer(n)
        label = (lay.frame[lay.record.name_field].astype(str).to_numpy()
                 if lay.record.name_field and lay.record.name_field in lay.frame.columns
                 else np.full(len(lay), title, dtype=object))
        frames.append(_frame({"MC": label, "LX": title, "MJ_HA": np.round(lay.area / 1e4, 6)},
                             lay.geoms, ctx.project.epsg, tol))
    gdf = pd.concat(frames, ignore_index=True)
    gdf = gpd.GeoDataFrame(gdf, geometry="geometry", crs=ctx.project.epsg)
    qml = qml_single(st["fill"], st["outline"], st["width"], style=st.get("style", "solid"),
                     outline_style=st.get("outline_style", "solid"))
    return gdf, PackageLayer(table, title, len(gdf), names, "single"), qml


def _conflict_layer(project: Project, tol: float | None, public: bool
                    ) -> tuple[gpd.GeoDataFrame, PackageLayer, str] | None:
    from ..conflicts import read_register

    reg = read_register(project)
    if not len(reg):
        return None
    reg = reg.loc[~reg["sliver"].astype(bool)].reset_index(drop=True)
    cols = ["conflict_id", "conflict_type", "type_name", "severity", "pending", "layer_a",
            "layer_b", "code_a", "name_a", "code_b", "name_b", "proposed_code", "area_ha",
            "township", "rule_id", "rule_version"]
    if not public:
        cols += ["fid_a", "fid_b"]
    data = {c: reg[c].to_numpy() for c in cols if c in reg.columns}
    gdf = _frame(data, reg.geometry.to_numpy(), project.epsg, tol)
    present = [s for s in SEVERITY_COLOURS if (gdf["severity"] == s).any()]
    cats = [(s, s, SEVERITY_COLOURS[s]) for s in present]
    return gdf, PackageLayer("CYTB", "差异图斑", len(gdf), ["mp_conflicts"],
                             "categorized:severity", present), \
        qml_categorized("severity", cats, outline=(120, 0, 0), width=0.15)


def _comments_layer(project: Project, public: bool
                    ) -> tuple[gpd.GeoDataFrame, PackageLayer, str] | None:
    """公众意见 (:func:`multiplan.core.comments.read_comments`) as points; the public edition
    leaves out the names of the people who commented and the import bookkeeping."""
    from ..comments import read_comments

    c = read_comments(project)
    if not len(c):
        return None
    cols = ["comment_id", "text", "comment_date", "conflict_ids", "n_conflicts",
            "plan_version"]
    if not public:
        cols += ["author", "source_id", "location_kind", "layer", "parcel_fid",
                 "source_file", "source_line", "imported_at"]
    data = {k: c[k].to_numpy() for k in cols if k in c.columns}
    gdf = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(c.geometry.values, crs=project.epsg))
    return gdf, PackageLayer("GZYJ", "公众意见", len(gdf), ["mp_public_comments"], "single",
                             geometry_type="Point"), qml_marker((30, 110, 220, 255),
                                                                (255, 255, 255, 255))


# --------------------------------------------------------------------------- writing

def _gpkg_time(when: str) -> str:
    """GeoPackage DATETIME text (ISO 8601, UTC, milliseconds, 'Z')."""
    from datetime import UTC, datetime

    t = datetime.fromisoformat(when) if when else datetime.now(UTC)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


_STYLES_DDL = (
    'CREATE TABLE IF NOT EXISTS "layer_styles" ('
    '"id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "f_table_catalog" TEXT(256), '
    '"f_table_schema" TEXT(256), "f_table_name" TEXT(256), "f_geometry_column" TEXT(256), '
    '"styleName" TEXT(30), "styleQML" TEXT, "styleSLD" TEXT, "useAsDefault" BOOLEAN, '
    '"description" TEXT, "owner" TEXT(30), "ui" TEXT(30), "update_time" DATETIME)')


def write_package(project: Project, path: str | Path, *, public: bool,
                  generalise_m: float | None = None, when: str = "",
                  task: Task | None = None) -> tuple[list[PackageLayer], list[str]]:
    """Write the GeoPackage at ``path`` (must not exist) and its ``.qml`` files beside it.
    Returns the layers written and notes (layers left out and why)."""
    from ..qa import CheckContext

    task = ensure_task(task)
    path = Path(path)
    ctx = CheckContext(project, task=task)
    tol = generalise_m if public else None
    items: list[tuple[gpd.GeoDataFrame, PackageLayer, str]] = []
    notes: list[str] = []
    task.progress(0.05, "规划用地用海 / plan land use")
    plan = _plan_layer(ctx, tol, public)
    if plan is None:
        notes.append("项目无规划图层，未输出 GHYDYH、SSKJ / no plan layer: GHYDYH and SSKJ "
                     "left out")
    else:
        items.append(plan)
    task.progress(0.3, "控制线 / control lines")
    for role in ("eco_redline", "basic_farmland", "urban_boundary", "admin_boundary"):
        got = _role_layer(ctx, role, tol)
        if got is None:
            t, title, _ = CONTROL_STYLES[role]
            notes.append(f"项目无{title}图层，未输出 {t} / no {role} layer: {t} left out")
        else:
            items.append(got)
    if plan is not None:
        items.append(_sansheng_layer(plan[0]))
    task.progress(0.5, "差异图斑 / conflicts")
    cf = _conflict_layer(project, tol, public)
    if cf is None:
        notes.append("差异图斑登记表为空，未输出 CYTB / the conflict register is empty: CYTB "
                     "left out")
    else:
        items.append(cf)
    com = _comments_layer(project, public)
    if com is None:
        notes.append("公众意见：项目中没有公众意见，未输出 GZYJ / public comments: the project "
                     "holds none, GZYJ left out")
    else:
        items.append(com)
    first = True
    layers = []
    for i, (gdf, info, qml) in enumerate(items):
        task.progress(0.55 + 0.4 * i / max(len(items), 1), info.title)
        kwargs: dict[str, Any] = {}
        if first:
            kwargs["dataset_options"] = {"VERSION": GPKG_VERSION}
        pyogrio.write_dataframe(gdf, path, layer=info.table, driver="GPKG",
                                geometry_type=info.geometry_type,
                                promote_to_multi=info.geometry_type.startswith("Multi"),
                                layer_options={"SPATIAL_INDEX": "YES", "IDENTIFIER": info.title,
                                               "DESCRIPTION": info.title, "FID": "fid"},
                                **kwargs)
        first = False
        (path.parent / f"{info.table}.qml").write_text(qml, encoding="utf-8")
        layers.append((info, qml))
    if not layers:
        return [], notes
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(_STYLES_DDL)
        conn.execute("INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, "
                     "description, last_change) VALUES ('layer_styles', 'attributes', "
                     "'layer_styles', 'QGIS layer styles', "
                     "strftime('%Y-%m-%dT%H:%M:%fZ','now'))")
        geom = dict(conn.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        for info, qml in layers:
            conn.execute(
                'INSERT INTO "layer_styles" ("f_table_catalog", "f_table_schema", '
                '"f_table_name", "f_geometry_column", "styleName", "styleQML", "styleSLD", '
                '"useAsDefault", "description", "owner", "ui", "update_time") '
                "VALUES ('', '', ?, ?, ?, ?, '', 1, ?, 'multiplan', NULL, ?)",
                (info.table, geom.get(info.table, "geom"), info.title, qml, f"multiplan {info.title}", _gpkg_time(when)))
    task.progress(1.0, "")
    return [info for info, _ in layers], notes
