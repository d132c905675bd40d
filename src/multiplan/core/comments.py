"""Public comments (公众意见) received while the draft plan is under public notice (公示中).

Import (:func:`import_comments`) reads a CSV file, UTF-8 (with or without BOM) or GBK/GB18030
(detected: no declaration needed), comma-separated (tab or semicolon when the header has no
comma), one comment a row, with the text and ONE location:

* ``x``, ``y`` (also ``X``/``Y``, 横坐标/纵坐标): a point in the project CRS (metres);
* ``lon``, ``lat`` (also ``lng``, ``longitude``/``latitude``, 经度/纬度): degrees in CGCS2000
  (EPSG:4490), reprojected to the project CRS;
* ``layer`` + ``fid`` (also 图层 + 要素号/图斑号/parcel_id): a parcel of a project layer; the
  comment is pinned at a point inside the parcel.

Text: ``text`` / ``comment`` / 意见 / 内容 / 意见内容. Optional: ``author`` (姓名, 提出人),
``date`` (日期), ``id`` (编号, kept as ``source_id``).

The whole file is refused (nothing stored) if any row is bad; the error names every bad row
(its line in the file) and the problem: no text, no location, coordinates that are not
numbers or lie outside the county (1 km margin around the project's layers), lon/lat out of
range, an unknown layer or a parcel id the layer does not have. Import is allowed only while
the workflow state is 公示中.

Each comment is linked to the conflict-register rows (``mp_conflicts``, :mod:`.conflicts`)
its point falls in, or — for a parcel — the rows that name that parcel or overlap it;
their ids are stored comma-separated in ``conflict_ids``.

Storage: ``mp_public_comments``, a GeoPackage POINT feature table in the project CRS
(QGIS shows it; the desktop app can pin it on the map), ids ``PC-0001`` … kept across
imports. Each import is audited (``comments.import``).
"""
from __future__ import annotations

import contextlib
import io
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import ImportRefused
from .workflow import STATE_EN, WorkflowError, _latest, current_state, plan_version

COMMENTS_TABLE = "mp_public_comments"
NOTICE_STATE = "公示中"
EXTENT_MARGIN_M = 1000.0
_MAX_LISTED = 20

ALIASES: dict[str, tuple[str, ...]] = {
    "text": ("text", "comment", "意见", "内容", "意见内容", "comments"),
    "x": ("x", "横坐标", "x坐标"),
    "y": ("y", "纵坐标", "y坐标"),
    "lon": ("lon", "lng", "long", "longitude", "经度"),
    "lat": ("lat", "latitude", "纬度"),
    "layer": ("layer", "图层", "layer_name"),
    "fid": ("fid", "parcel_id", "parcel_fid", "要素号", "图斑号", "图斑编号"),
    "author": ("author", "name", "姓名", "提出人"),
    "date": ("date", "日期"),
    "source_id": ("id", "编号", "序号"),
}

COLUMNS = ["comment_id", "text", "author", "comment_date", "source_id", "location_kind",
           "x", "y", "lon", "lat", "layer", "parcel_fid", "conflict_ids", "n_conflicts",
           "source_file", "source_line", "imported_at", "plan_version", "actor"]
_TEXT_COLUMNS = ("comment_id", "text", "author", "comment_date", "source_id", "location_kind",
                 "layer", "conflict_ids", "source_file", "imported_at", "actor")


class CommentError(ImportRefused):
    """A comment file refused; the project is unchanged."""


def decode_csv(raw: bytes, path: Path | str) -> tuple[str, str]:
    """(text, encoding): UTF-8 (BOM optional) first, else GB18030 (a superset of GBK)."""
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc), ("utf-8" if enc == "utf-8-sig" else "gbk")
        except UnicodeDecodeError:
            continue
    raise CommentError("comments.encoding", "意见文件既不是 UTF-8 也不是 GBK 编码，无法读取",
                       "the comment file is neither UTF-8 nor GBK encoded", path=path)


def _delimiter(text: str) -> str:
    """Comma, unless the header line has none but tabs (or semicolons) — as some
    spreadsheet exports write."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    if "\t" in header:
        return "\t"
    return ";" if ";" in header else ","


def _read_rows(text: str, path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The rows as strings, and the file line each row starts on (quoted fields may span
    lines). A row with more or fewer fields than the header is refused by line."""
    import csv

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise CommentError("comments.empty", "意见文件为空", "the comment file is empty",
                               path=path)
        rows, lines, bad = [], [], []
        last = reader.line_num
        for rec in reader:
            start, last = last + 1, reader.line_num
            if not any(v.strip() for v in rec):
                continue  # blank line
            if len(rec) != len(header):
                bad.append({"line": start, "zh": f"有 {len(rec)} 个字段，表头有 {len(header)} 个",
                            "en": f"{len(rec)} fields, the header has {len(header)}"})
                continue
            rows.append(rec)
            lines.append(start)
    except csv.Error as exc:
        raise CommentError("comments.bad_csv", f"意见文件不是有效的 CSV（第 {reader.line_num} 行）："
                           f"{exc}", f"the comment file is not valid CSV (line "
                           f"{reader.line_num}): {exc}", path=path) from None
    if bad:
        _refuse(bad, path)
    header = [h.strip() for h in header]
    return pd.DataFrame(rows, columns=header, dtype=object), lines


def _refuse(problems: list[dict[str, Any]], path: Path) -> None:
    problems.sort(key=lambda p: p["line"])
    shown = problems[:_MAX_LISTED]
    more = len(problems) - len(shown)
    zh = "；".join(f"第 {p['line']} 行：{p['zh']}" for p in shown)
    en = "; ".join(f"line {p['line']}: {p['en']}" for p in shown)
    if more:
        zh += f"；另有 {more} 处"
        en += f"; and {more} more"
    raise CommentError("comments.bad_rows", f"意见文件有 {len(problems)} 处错误，未导入：{zh}",
                       f"the comment file has {len(problems)} problem(s); nothing was "
                       f"imported: {en}", path=path, problems=problems)


def _columns(df: pd.DataFrame, path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for col in df.columns:
        key = str(col).strip().lower()
        for name, aliases in ALIASES.items():
            if key in aliases and name not in found:
                found[name] = col
    if "text" not in found:
        raise CommentError("comments.no_text_column",
                           "意见文件缺少意见内容列（text / 意见 / 内容）",
                           "the comment file has no text column (text / 意见 / 内容)",
                           path=path, columns=[str(c) for c in df.columns])
    has_xy = "x" in found and "y" in found
    has_ll = "lon" in found and "lat" in found
    has_parcel = "layer" in found and "fid" in found
    if not (has_xy or has_ll or has_parcel):
        raise CommentError("comments.no_location_columns",
                           "意见文件缺少位置列：须有 x、y（项目坐标），或 lon、lat（经纬度），"
                           "或 layer、fid（图斑）",
                           "the comment file has no location columns: x, y (project CRS), "
                           "lon, lat (degrees) or layer, fid (a parcel)", path=path,
                           columns=[str(c) for c in df.columns])
    return found


def _num(v: Any) -> float | None:
    s = "" if v is None else str(v).strip()
    if not s:
        return None
    try:
        f = float(s)
    except ValueError:
        return math.nan
    return f


def import_comments(project: Any, path: str | Path, *, actor: str | None = None,
                    now: datetime | None = None) -> gpd.GeoDataFrame:
    """Import the comments of a CSV file (all or nothing); returns the new rows."""
    from pyproj import Transformer

    from .conflicts import read_register

    path = Path(path)
    state = current_state(project)
    if state != NOTICE_STATE:
        raise WorkflowError("comments.not_in_notice",
                            f"只能在“公示中”导入公众意见（当前状态：{state}）",
                            "public comments can only be imported during public notice "
                            f"(state now: {STATE_EN[state]})", path=path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CommentError("comments.unreadable", f"无法读取意见文件：{exc.strerror}",
                           f"cannot read the comment file: {exc.strerror}", path=path) from None
    text, encoding = decode_csv(raw, path)
    df, lines = _read_rows(text, path)
    cols = _columns(df, path)
    if not len(df):
        raise CommentError("comments.empty", "意见文件中没有意见", "the comment file has no rows",
                           path=path)
    extent = project.extent()
    box = None
    if extent is not None:
        m = EXTENT_MARGIN_M
        box = (extent[0] - m, extent[1] - m, extent[2] + m, extent[3] + m)
    to_project = Transformer.from_crs(4490, project.epsg, always_xy=True)
    problems: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    parcels: dict[str, set[int]] = {}

    def get(row: pd.Series, key: str) -> str:
        return str(row[cols[key]]).strip() if key in cols else ""

    for k, row in df.iterrows():
        line = lines[int(k)]  # the row's first line in the file (the header is line 1)
        rec: dict[str, Any] = {"source_line": line, "text": get(row, "text"),
                               "author": get(row, "author") or None,
                               "comment_date": get(row, "date") or None,
                               "source_id": get(row, "source_id") or None,
                               "x": None, "y": None, "lon": None, "lat": None,
                               "layer": None, "parcel_fid": None}

        def bad(zh: str, en: str, line: int = line) -> None:
            problems.append({"line": line, "zh": zh, "en": en})

        if not rec["text"]:
            bad("意见内容为空", "the comment text is empty")
            continue
        x, y = _num(get(row, "x")), _num(get(row, "y"))
        lon, lat = _num(get(row, "lon")), _num(get(row, "lat"))
        layer, fid = get(row, "layer"), get(row, "fid")
        if x is not None or y is not None:
            if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
                bad(f"坐标无效：x={get(row, 'x')!r}, y={get(row, 'y')!r}（须为项目坐标系中的数值）",
                    f"invalid coordinates x={get(row, 'x')!r}, y={get(row, 'y')!r} (numbers "
                    "in the project CRS expected)")
                continue
            if abs(x) <= 180 and abs(y) <= 90:
                bad(f"坐标 ({x}, {y}) 像是经纬度；经纬度请填在 lon、lat 列",
                    f"coordinates ({x}, {y}) look like degrees; put them in lon, lat")
                continue
            if box and not (box[0] <= x <= box[2] and box[1] <= y <= box[3]):
                bad(f"坐标 ({x}, {y}) 不在本县范围内（项目坐标系 EPSG:{project.epsg}）",
                    f"coordinates ({x}, {y}) lie outside the county (project CRS "
                    f"EPSG:{project.epsg})")
                continue
            rec.update(location_kind="xy", x=x, y=y)
        elif lon is not None or lat is not None:
            if lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
                bad(f"经纬度无效：lon={get(row, 'lon')!r}, lat={get(row, 'lat')!r}",
                    f"invalid lon/lat: lon={get(row, 'lon')!r}, lat={get(row, 'lat')!r}")
                continue
            if not (73 <= lon <= 136 and 3 <= lat <= 54):
                bad(f"经纬度 ({lon}, {lat}) 超出中国范围（经度 73–136°，纬度 3–54°；是否填反？）",
                    f"lon/lat ({lon}, {lat}) outside China (lon 73–136°, lat 3–54°; swapped?)")
                continue
            px, py = to_project.transform(lon, lat)
            if box and not (box[0] <= px <= box[2] and box[1] <= py <= box[3]):
                bad(f"经纬度 ({lon}, {lat}) 不在本县范围内",
                    f"lon/lat ({lon}, {lat}) lie outside the county")
                continue
            rec.update(location_kind="lonlat", x=float(px), y=float(py), lon=lon, lat=lat)
        elif layer or fid:
            if not layer or not fid:
                bad("图斑位置须同时填写图层（layer）与要素号（fid）",
                    "a parcel location needs both layer and fid")
                continue
            try:
                fid_i = int(float(fid))
                if float(fid) != fid_i:
                    raise ValueError
            except ValueError:
                bad(f"要素号 {fid!r} 不是整数", f"parcel id {fid!r} is not an integer")
                continue
            if not project.has_layer(layer) or project.layer(layer).kind != "vector":
                bad(f"项目中没有矢量图层 {layer!r}", f"the project has no vector layer {layer!r}")
                continue
            rec.update(location_kind="parcel", layer=layer, parcel_fid=fid_i)
            parcels.setdefault(layer, set()).add(fid_i)
        else:
            bad("没有位置：须填写 x、y，或 lon、lat，或 layer、fid",
                "no location: give x, y or lon, lat or layer, fid")
            continue
        records.append(rec)

    parcel_geoms: dict[tuple[str, int], Any] = {}
    for layer, fids in parcels.items():
        gdf = project.read_layer(layer, columns=[])
        have = set(gdf.index.tolist())
        for r in records:
            if r["layer"] == layer and r["parcel_fid"] not in have:
                problems.append({"line": r["source_line"],
                                 "zh": f"图层 {layer} 中没有要素号 {r['parcel_fid']} 的图斑",
                                 "en": f"layer {layer} has no parcel with fid "
                                       f"{r['parcel_fid']}"})
        for f in fids & have:
            parcel_geoms[(layer, f)] = gdf.geometry.loc[f]
    if problems:
        _refuse(problems, path)

    register = read_register(project)
    reg_geoms = np.asarray(register.geometry.values, dtype=object) if len(register) else None
    tree = shapely.STRtree(reg_geoms) if reg_geoms is not None else None
    points = []
    for r in records:
        if r["location_kind"] == "parcel":
            g = parcel_geoms[(r["layer"], r["parcel_fid"])]
            pt = shapely.point_on_surface(g)
            r["x"], r["y"] = float(pt.x), float(pt.y)
            ids: set[str] = set()
            if len(register):
                ref = (((register["layer_a"] == r["layer"]) & (register["fid_a"] == r["parcel_fid"]))
                       | ((register["layer_b"] == r["layer"])
                          & (register["fid_b"] == r["parcel_fid"])))
                ids |= set(register.loc[ref, "conflict_id"].astype(str))
                for i in tree.query(g, predicate="intersects"):
                    if not shapely.touches(g, reg_geoms[i]):
                        ids.add(str(register["conflict_id"].iloc[i]))
        else:
            pt = shapely.Point(r["x"], r["y"])
            ids = set()
            if tree is not None:
                ids = {str(register["conflict_id"].iloc[i])
                       for i in tree.query(pt, predicate="intersects")}
        r["conflict_ids"] = ",".join(sorted(ids))
        r["n_conflicts"] = len(ids)
        points.append(pt)

    now = now or datetime.now(UTC)
    stamp = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC).isoformat(
        timespec="seconds")
    old = read_comments(project)
    start = 0
    if len(old):
        nums = old["comment_id"].astype(str).str.extract(r"PC-(\d+)")[0].dropna().astype(int)
        start = int(nums.max()) if len(nums) else len(old)
    version = plan_version(project)
    for k, r in enumerate(records, start=1):
        r["comment_id"] = f"PC-{start + k:04d}"
        r["source_file"] = path.name
        r["imported_at"] = stamp
        r["plan_version"] = version
        r["actor"] = actor
    new = gpd.GeoDataFrame(pd.DataFrame(records)[COLUMNS],
                           geometry=gpd.GeoSeries(points, crs=project.epsg))
    new = _typed(new)
    frame = new if not len(old) else gpd.GeoDataFrame(
        pd.concat([_typed(old[[*COLUMNS, "geometry"]]), new], ignore_index=True),
        geometry="geometry", crs=project.epsg)
    from .qa import _write_feature_table

    with project.transaction() as conn:
        latest = _latest(conn)
        if (latest["state"] if latest else "编制中") != NOTICE_STATE:
            raise WorkflowError("comments.not_in_notice", "公示已结束，未导入公众意见",
                                "the public notice ended meanwhile; nothing imported")
        _write_feature_table(conn, COMMENTS_TABLE, frame, "POINT", project.epsg,
                             "multiplan public comments (公众意见)")
        project._audit(conn, "comments.import", COMMENTS_TABLE,
                       {"file": str(path), "encoding": encoding, "rows": len(new),
                        "ids": [new["comment_id"].iloc[0], new["comment_id"].iloc[-1]],
                        "linked": int((new["n_conflicts"] > 0).sum()),
                        "plan_version": version}, actor=actor)
    return new


def _typed(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = frame.copy()
    for c in ("x", "y", "lon", "lat"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    for c in ("parcel_fid",):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
    for c in ("n_conflicts", "source_line", "plan_version"):
        out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0).astype("int64")
    for c in _TEXT_COLUMNS:
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def read_comments(project: Any) -> gpd.GeoDataFrame:
    """The stored comments (empty frame with the columns when there are none)."""
    import pyogrio

    with contextlib.closing(project.connect()) as conn:
        have = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                            (COMMENTS_TABLE,)).fetchone() is not None
    if not have:
        return gpd.GeoDataFrame({c: [] for c in COLUMNS},
                                geometry=gpd.GeoSeries([], crs=project.epsg))
    gdf = pyogrio.read_dataframe(project.gpkg, layer=COMMENTS_TABLE, use_arrow=True)
    if gdf.crs is None:
        gdf = gdf.set_crs(project.epsg)
    for c in _TEXT_COLUMNS:
        if c in gdf.columns:
            gdf[c] = gdf[c].astype(object).where(gdf[c].notna(), None)
    return gdf.sort_values("comment_id", kind="stable").reset_index(drop=True)


def comments_for_conflict(project: Any, conflict_id: str) -> gpd.GeoDataFrame:
    """The comments linked to one conflict-register row."""
    c = read_comments(project)
    if not len(c):
        return c
    hit = c["conflict_ids"].fillna("").astype(str).map(
        lambda s: conflict_id in s.split(","))
    return c[hit].reset_index(drop=True)
