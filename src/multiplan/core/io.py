"""Reading source plans into a project: formats, encodings, geometry repair, CRS discipline.

Supported vector sources: GeoPackage (any layer), Shapefile (plain or zipped), GeoJSON,
FlatGeobuf. Rasters: GeoTIFF. Every import either succeeds with a :class:`ImportReport`
that states what was repaired, dropped, assumed and detected, or raises
:class:`~multiplan.core.errors.ImportRefused` naming the file, the feature and the problem
in Chinese and English — and in that case the project is unchanged.
"""

from __future__ import annotations

import hashlib
import re
import struct
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from . import crs as crsmod
from .errors import ImportRefused, Message, MultiplanError
from .layers import ROLES, LayerRecord, level_key, role_key
from .project import RASTER_DIR, Project
from .tasks import Task, ensure_task

VECTOR_SUFFIXES = {".gpkg", ".shp", ".zip", ".geojson", ".json", ".fgb"}
RASTER_SUFFIXES = {".tif", ".tiff"}

#: How many example feature ids a report lists per problem.
MAX_LISTED = 20

# DBF "language driver id" (byte 29) values that mean a Chinese code page.
_LDID_CHINESE = {0x4D: "GBK", 0x7A: "GBK"}
_ENCODING_ALIASES = {
    "936": "GBK", "cp936": "GBK", "gbk": "GBK", "gb2312": "GBK", "gb18030": "GB18030",
    "utf-8": "UTF-8", "utf8": "UTF-8", "65001": "UTF-8",
    "ansi_1252": "CP1252", "1252": "CP1252", "iso-8859-1": "ISO-8859-1",
    "88591": "ISO-8859-1",
}


@dataclass
class ImportReport:
    """What an import did. Stored in the layer registry as JSON."""

    name: str
    path: str
    kind: str = "vector"
    sha256: str = ""
    source_layer: str | None = None
    source_features: int = 0
    feature_count: int = 0
    geometry_type: str | None = None
    source_crs: str | None = None
    project_crs: str | None = None
    crs_assumed: bool = False
    crs_note: str | None = None
    encoding: str | None = None
    encoding_source: str | None = None  # "cpg" | "dbf_ldid" | "detected" | "user" | "format"
    dropped_null: list[Any] = field(default_factory=list)
    dropped_empty: list[Any] = field(default_factory=list)
    dropped_collapsed: list[Any] = field(default_factory=list)
    repaired: list[Any] = field(default_factory=list)
    parts_dropped: list[Any] = field(default_factory=list)
    z_dropped: int = 0
    promoted_to_multi: int = 0
    scheme: str | None = None
    scheme_detected: bool = False
    code_field: str | None = None
    unknown_codes: dict[str, int] = field(default_factory=dict)
    unknown_code_features: list[Any] = field(default_factory=list)
    pending_features: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, msg: Message) -> None:
        self.messages.append(msg.to_dict())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("dropped_null", "dropped_empty", "dropped_collapsed", "repaired",
                  "parts_dropped", "unknown_code_features"):
            d[k] = [_jsonable(v) for v in d[k]]
        return d

    def summary(self, lang: str = "zh") -> list[str]:
        zh = lang.startswith("zh")
        lines = [
            (f"图层 {self.name}：导入 {self.feature_count} 个要素（源文件 {self.source_features} 个）"
             if zh else f"layer {self.name}: {self.feature_count} features imported "
             f"({self.source_features} in the source)"),
            (f"坐标系：{self.source_crs} → {self.project_crs}" if zh
             else f"CRS: {self.source_crs} → {self.project_crs}"),
        ]
        if self.encoding:
            lines.append(f"编码：{self.encoding}（来源：{self.encoding_source}）" if zh
                          else f"encoding: {self.encoding} (from {self.encoding_source})")
        for m in self.messages:
            lines.append(m["zh"] if zh else m["en"])
        return lines


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _refuse(code: str, zh: str, en: str, path: Path | str, feature: Any = None,
            **extra: Any) -> ImportRefused:
    return ImportRefused(code, zh, en, path=path, feature=feature, **extra)


def _listed(ids: Any) -> str:
    ids = list(ids)
    text = ", ".join(str(_jsonable(i)) for i in ids[:MAX_LISTED])
    return text + (" …" if len(ids) > MAX_LISTED else "")


# ---------------------------------------------------------------------- hashing
def sha256_of(path: Path) -> str:
    """SHA-256 of a file; of a shapefile, over its component files in name order."""
    h = hashlib.sha256()
    files = [path]
    if path.suffix.lower() == ".shp":
        files = sorted(p for p in path.parent.glob(path.stem + ".*")
                       if p.suffix.lower() in {".shp", ".shx", ".dbf", ".prj", ".cpg"})
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------- zip
def safe_zip_members(path: Path) -> list[zipfile.ZipInfo]:
    """List a zip's members, refusing any absolute or parent-escaping path."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse("zip.corrupt", "压缩包已损坏，无法打开", f"the zip file is corrupt ({exc})",
                      path) from None
    with zf:
        members = zf.infolist()
    for m in members:
        name = m.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise _refuse("zip.unsafe_member",
                          f"压缩包内含有不安全的路径 “{m.filename}”（可能写到目标文件夹之外），已拒绝整个文件",
                          f"the zip holds an unsafe member path '{m.filename}' (it could write "
                          f"outside the target folder); the whole file was refused",
                          path, feature=m.filename)
    return members


def _extract_zipped_vector(path: Path, layer: str | None, workdir: Path) -> Path:
    members = safe_zip_members(path)
    vectors = [m for m in members if not m.is_dir()
               and PurePosixPath(m.filename.replace("\\", "/")).suffix.lower()
               in (VECTOR_SUFFIXES - {".zip"})]
    shps = [m for m in vectors if m.filename.lower().endswith(".shp")]
    candidates = shps or vectors
    if layer:
        wanted = layer.replace("\\", "/")

        def names_of(m: zipfile.ZipInfo) -> set[str]:
            p = PurePosixPath(m.filename.replace("\\", "/"))
            return {p.stem, str(p.with_suffix("")), str(p)}

        matched = [m for m in candidates if wanted in names_of(m)]
        # inside a single zipped GeoPackage, ``layer`` names a layer of that GeoPackage
        single_gpkg = len(candidates) == 1 and candidates[0].filename.lower().endswith(".gpkg")
        if not matched and candidates and not single_gpkg:
            names = [m.filename for m in candidates]
            raise _refuse("zip.no_such_layer",
                          f"压缩包内没有图层 {layer}；有：{', '.join(names)}",
                          f"the zip holds no layer {layer}; it has {', '.join(names)}",
                          path, layers=names)
        candidates = matched or candidates
    if not candidates:
        raise _refuse("zip.no_layer", "压缩包内没有可读取的矢量数据（.shp/.gpkg/.geojson/.fgb）",
                      "the zip holds no readable vector data (.shp/.gpkg/.geojson/.fgb)", path)
    if len(candidates) > 1:
        names = [m.filename for m in candidates]
        raise _refuse("zip.multiple_layers",
                      f"压缩包内有多个图层：{', '.join(names)}；请用 --layer 指定一个（名称或压缩包内路径）",
                      f"the zip holds several layers: {', '.join(names)}; choose one with --layer "
                      f"(its name or its path in the zip)",
                      path, layers=names)
    chosen = candidates[0]
    stem = PurePosixPath(chosen.filename.replace("\\", "/")).with_suffix("")
    with zipfile.ZipFile(path) as zf:
        for m in members:
            p = PurePosixPath(m.filename.replace("\\", "/"))
            if m.is_dir() or p.with_suffix("") != stem:
                continue
            target = workdir / p.name  # flattened: never a directory component
            with zf.open(m) as src, open(target, "wb") as dst:
                dst.write(src.read())
    return workdir / PurePosixPath(chosen.filename.replace("\\", "/")).name


# ---------------------------------------------------------------------- shapefile checks
def _sidecar(path: Path, suffix: str) -> Path | None:
    for cand in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if cand.exists():
            return cand
    return None


def check_shapefile(path: Path) -> None:
    """Refuse a shapefile with missing parts or a truncated .shp/.shx/.dbf."""
    for suffix in (".shx", ".dbf"):
        if _sidecar(path, suffix) is None:
            raise _refuse("shp.missing_part", f"Shapefile 缺少 {suffix} 文件",
                          f"the shapefile has no {suffix} file", path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or struct.unpack(">i", header[0:4])[0] != 9994:
        raise _refuse("shp.corrupt", "Shapefile 文件头无效（不是 .shp 文件或已损坏）",
                      "the .shp header is invalid (not a shapefile or damaged)", path)
    declared = struct.unpack(">i", header[24:28])[0] * 2
    if size < declared:
        # find the first record that lies past the end, via the .shx index
        feature = None
        shx = _sidecar(path, ".shx")
        if shx is not None:
            data = shx.read_bytes()[100:]
            for i in range(len(data) // 8):
                off, length = struct.unpack(">ii", data[i * 8:i * 8 + 8])
                if off * 2 + 8 + length * 2 > size:
                    feature = i
                    break
        raise _refuse("shp.truncated",
                      f"Shapefile 被截断：文件头声明 {declared} 字节，实际只有 {size} 字节"
                      + (f"，从第 {feature} 号要素起数据缺失" if feature is not None else ""),
                      f"the shapefile is truncated: the header declares {declared} bytes but "
                      f"the file has {size}"
                      + (f"; data is missing from feature {feature} on" if feature is not None
                         else ""), path, feature=feature)
    _check_sidecar_lengths(path)


def _check_sidecar_lengths(path: Path) -> None:
    """Refuse a truncated .shx (index) or .dbf (attributes), naming the first feature whose
    entry is missing — GDAL only says 'failed to read'."""
    shx = _sidecar(path, ".shx")
    dbf = _sidecar(path, ".dbf")
    checks = []
    if shx is not None:
        head = shx.read_bytes()[:100]
        if len(head) == 100:
            declared = struct.unpack(">i", head[24:28])[0] * 2
            checks.append((".shx", declared, shx.stat().st_size,
                           lambda size: max(0, (size - 100) // 8)))
    if dbf is not None:
        head = dbf.read_bytes()[:32]
        if len(head) == 32:
            nrec = struct.unpack("<I", head[4:8])[0]
            header_len, rec_len = struct.unpack("<HH", head[8:12])
            declared = header_len + nrec * rec_len
            checks.append((".dbf", declared, dbf.stat().st_size,
                           lambda size, h=header_len, r=rec_len: max(0, (size - h) // max(r, 1))))
    for suffix, declared, size, first_missing in checks:
        if size < declared:
            feature = first_missing(size)
            raise _refuse("shp.truncated",
                          f"Shapefile 的 {suffix} 文件被截断：应有 {declared} 字节，实际只有 {size} "
                          f"字节，从第 {feature} 号要素起缺失",
                          f"the shapefile's {suffix} file is truncated: {declared} bytes "
                          f"expected, {size} found; entries are missing from feature {feature} "
                          f"on", path, feature=feature, part=suffix)


def _normalise_encoding(raw: str) -> str:
    """A .cpg value or user text as a codec name: '936' / 'ANSI 936' → GBK, '1252' → CP1252."""
    key = raw.strip().lower()
    m = re.fullmatch(r"(?:ansi[ _]?)?(\d+)", key)
    if m:
        return _ENCODING_ALIASES.get(m.group(1), f"CP{m.group(1)}")
    return _ENCODING_ALIASES.get(key, raw.strip().upper() or "UTF-8")


def _dbf_texts(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """(field-name bytes, record bytes without the deletion flag) of a DBF file."""
    if len(data) < 32:
        return [], []
    nrec = struct.unpack("<I", data[4:8])[0]
    header_len, rec_len = struct.unpack("<HH", data[8:12])
    names = []
    for off in range(32, max(32, header_len - 1), 32):
        desc = data[off:off + 32]
        if not desc or desc[0] == 0x0D:
            break
        names.append(desc[:11].split(b"\0", 1)[0])
    records = []
    if rec_len > 0:
        for i in range(nrec):
            rec = data[header_len + i * rec_len:header_len + (i + 1) * rec_len]
            if not rec:
                break
            records.append(rec[1:])
    return names, records


def _encoding_of_bytes(body: bytes) -> str:
    """Valid UTF-8 → UTF-8, else GBK, else GB18030, else ISO-8859-1."""
    for enc, name in (("utf-8", "UTF-8"), ("gbk", "GBK"), ("gb18030", "GB18030")):
        try:
            body.decode(enc)
            return name
        except UnicodeDecodeError:
            pass
    return "ISO-8859-1"


def detect_dbf_encoding(path: Path) -> tuple[str, str]:
    """Encoding of a shapefile's attribute table: (encoding, how it was found).

    Order: the ``.cpg`` file; the DBF language-driver byte; then the bytes of the field
    names and records (valid UTF-8 → UTF-8, else GBK, else GB18030, else ISO-8859-1).
    """
    cpg = _sidecar(path, ".cpg")
    if cpg is not None:
        return _normalise_encoding(cpg.read_text(errors="replace")), "cpg"
    dbf = _sidecar(path, ".dbf")
    if dbf is None:
        return "UTF-8", "detected"
    data = dbf.read_bytes()
    if len(data) > 32 and data[29] in _LDID_CHINESE:
        return _LDID_CHINESE[data[29]], "dbf_ldid"
    names, records = _dbf_texts(data)
    return _encoding_of_bytes(b"".join(names + records)), "detected"


def check_dbf_encoding(shp: Path, encoding: str, source: str | None,
                       display_path: Path) -> None:
    """Refuse when the attribute table cannot be decoded with ``encoding`` (a .cpg, a
    language byte or a user choice that does not match the bytes), naming the feature."""
    import codecs

    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise _refuse("encoding.unknown", f"无法识别的属性表编码 {encoding}（依据：{_enc_src_zh(source)}）",
                      f"unknown attribute table encoding {encoding} (from {source})",
                      display_path) from None
    dbf = _sidecar(shp, ".dbf")
    if dbf is None:
        return
    names, records = _dbf_texts(dbf.read_bytes())
    bad_field, bad_feature = None, None
    for name in names:
        try:
            name.decode(codec)
        except UnicodeDecodeError:
            bad_field = name
            break
    if bad_field is None:
        for i, rec in enumerate(records):
            try:
                rec.decode(codec)
            except UnicodeDecodeError:
                bad_feature = i
                break
    if bad_field is None and bad_feature is None:
        return
    likely = _encoding_of_bytes(b"".join(names + records))
    where_zh = (f"第 {bad_feature} 号要素" if bad_feature is not None else "字段名")
    where_en = (f"feature {bad_feature}" if bad_feature is not None else "a field name")
    raise _refuse("encoding.mismatch",
                  f"属性表编码与内容不符：按 {encoding}（依据：{_enc_src_zh(source)}）无法解码"
                  f"{where_zh}的文字；内容看起来是 {likely} 编码，确认后可用 --encoding {likely} 导入",
                  f"the attribute table does not match its encoding: {where_en} cannot be "
                  f"decoded as {encoding} (from {source}); the bytes look like {likely} — "
                  f"confirm with --encoding {likely} to import", display_path,
                  feature=bad_feature, likely_encoding=likely)


# ---------------------------------------------------------------------- reading
def list_layers(path: str | Path) -> list[str]:
    path = Path(path)
    try:
        return [str(row[0]) for row in pyogrio.list_layers(path)]
    except Exception as exc:  # noqa: BLE001
        raise _refuse("file.unreadable", "无法读取文件（已损坏或格式不受支持）",
                      f"the file cannot be read (damaged or unsupported): {exc}", path) from None


def _read_vector(path: Path, layer: str | None, encoding: str | None,
                 display_path: Path) -> gpd.GeoDataFrame:
    suffix = path.suffix.lower()
    if suffix == ".gpkg":
        names = list_layers(path)
        # multiplan's own metadata tables are not importable layers
        names = [n for n in names if not n.startswith(("mp_", "gpkg_", "rtree_"))]
        if layer is None:
            if not names:
                raise _refuse("file.empty", "GeoPackage 中没有图层", "the GeoPackage holds no layer",
                              display_path)
            if len(names) > 1:
                raise _refuse("gpkg.multiple_layers",
                              f"GeoPackage 中有多个图层：{', '.join(names)}；请指定一个（--layer）",
                              f"the GeoPackage holds several layers: {', '.join(names)}; "
                              f"choose one (--layer)", display_path, layers=names)
            layer = names[0]
        elif layer not in names:
            raise _refuse("gpkg.no_such_layer", f"GeoPackage 中没有图层 {layer}",
                          f"the GeoPackage has no layer {layer}; it has {', '.join(names)}",
                          display_path)
    elif layer is not None:
        names = list_layers(path)
        if layer not in names:
            raise _refuse("file.no_such_layer",
                          f"文件中没有图层 {layer}；有：{', '.join(names)}",
                          f"the file has no layer {layer}; it has {', '.join(names)}",
                          display_path, layers=names)
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer, encoding=encoding, fid_as_index=True,
                                     on_invalid="fix")
    except MultiplanError:
        raise
    except Exception as exc:  # noqa: BLE001 — GDAL/sqlite/decoding errors of all kinds
        raise _refuse("file.unreadable", "无法读取文件（已损坏或格式不受支持）",
                      f"the file cannot be read (damaged or unsupported): {exc}",
                      display_path) from None
    if not isinstance(gdf, gpd.GeoDataFrame) or "geometry" not in gdf:
        raise _refuse("file.no_geometry", "该图层没有几何字段（是纯属性表）",
                      "the layer has no geometry column (it is an attribute table)", display_path)
    return gdf


# ---------------------------------------------------------------------- geometry
_POLY = {"Polygon", "MultiPolygon"}


def _polygon_parts_as_multi(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduce each geometry to a MultiPolygon of its polygonal parts.

    Returns (multipolygons, n_nonpolygon_parts_removed_per_feature). Features with no
    polygonal part become None.
    """
    n = len(geoms)
    idx = np.arange(n)
    parts = geoms
    removed = np.zeros(n, dtype=np.int64)
    # flatten collections / multi-geometries until only simple parts remain
    for _ in range(4):
        tid = shapely.get_type_id(parts)
        multi = np.isin(tid, [4, 5, 6, 7])
        if not multi.any():
            break
        sub, sub_idx = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        idx = np.concatenate([idx[~multi], idx[multi][sub_idx]])
    tid = shapely.get_type_id(parts)
    is_poly = (tid == 3) & ~shapely.is_empty(parts)
    np.add.at(removed, idx[~is_poly & ~shapely.is_empty(parts)], 1)
    parts, idx = parts[is_poly], idx[is_poly]
    out = np.full(n, None, dtype=object)
    if len(parts):
        order = np.argsort(idx, kind="stable")
        parts, idx = parts[order], idx[order]
        uniq, inverse = np.unique(idx, return_inverse=True)
        out[uniq] = shapely.multipolygons(parts, indices=inverse)
    return out, removed


def normalise_geometries(gdf: gpd.GeoDataFrame, family: str, report: ImportReport,
                         path: Path) -> gpd.GeoDataFrame:
    """Drop null/empty, drop Z/M, repair invalid, normalise types. Mutates ``report``."""
    geoms = gdf.geometry.values.to_numpy() if hasattr(gdf.geometry.values, "to_numpy") \
        else np.asarray(gdf.geometry.values)
    geoms = np.asarray(geoms, dtype=object)
    fids = gdf.index.to_numpy()

    null = pd.isna(geoms) | np.array([g is None for g in geoms])
    if null.any():
        report.dropped_null = fids[null].tolist()
        report.add(Message("geom.null", f"{null.sum()} 个要素没有几何（已跳过）：要素 {_listed(fids[null])}",
                           f"{null.sum()} features have no geometry (skipped): features "
                           f"{_listed(fids[null])}", str(path)))
    empty = ~null & shapely.is_empty(np.where(null, shapely.Point(), geoms))
    if empty.any():
        report.dropped_empty = fids[empty].tolist()
        report.add(Message("geom.empty", f"{empty.sum()} 个要素的几何为空（已跳过）：要素 {_listed(fids[empty])}",
                           f"{empty.sum()} features have empty geometry (skipped): features "
                           f"{_listed(fids[empty])}", str(path)))
    keep = ~(null | empty)
    if not keep.any():
        raise _refuse("geom.all_empty", "所有要素的几何都为空或缺失，无可导入内容",
                      "every feature's geometry is empty or missing; nothing to import", path)
    gdf = gdf.loc[keep].copy()
    geoms, fids = geoms[keep], fids[keep]

    has_z = shapely.has_z(geoms)
    has_m = shapely.has_m(geoms) if hasattr(shapely, "has_m") else np.zeros(len(geoms), bool)
    zm = has_z | has_m
    if zm.any():
        geoms = shapely.force_2d(geoms)
        report.z_dropped = int(zm.sum())
        report.add(Message("geom.z_dropped", f"{zm.sum()} 个要素带有 Z/M 值，已去除（仅保留平面坐标）",
                           f"{zm.sum()} features had Z/M values; dropped (2D kept)", str(path)))

    types = shapely.get_type_id(geoms)
    if family == "polygon":
        # a point or line can never become a parcel: refuse, naming the first such feature
        simple_non_poly = np.isin(types, [0, 1, 2, 4, 5])
        if simple_non_poly.any():
            bad = fids[simple_non_poly]
            names = sorted({shapely.get_type_id(g) for g in geoms[simple_non_poly]})
            tnames = {0: "点", 1: "线", 2: "线环", 4: "多点", 5: "多线"}
            tnames_en = {0: "Point", 1: "LineString", 2: "LinearRing", 4: "MultiPoint",
                         5: "MultiLineString"}
            raise _refuse("geom.wrong_type",
                          f"该图层用途要求面要素，但有 {simple_non_poly.sum()} 个要素是"
                          f"{'/'.join(tnames[t] for t in names)}（要素 {_listed(bad)}）",
                          f"this layer's role needs polygons, but {simple_non_poly.sum()} "
                          f"features are {'/'.join(tnames_en[t] for t in names)} "
                          f"(features {_listed(bad)})", path, feature=_jsonable(bad[0]))

        invalid = ~shapely.is_valid(geoms)
        if invalid.any():
            reasons = shapely.is_valid_reason(geoms[invalid][:MAX_LISTED])
            fixed = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
            geoms = geoms.copy()
            geoms[invalid] = fixed
            report.repaired = fids[invalid].tolist()
            detail = "; ".join(f"{_jsonable(f)}: {r}" for f, r in
                               zip(fids[invalid][:5], reasons[:5], strict=False))
            report.add(Message("geom.repaired",
                               f"修复了 {invalid.sum()} 个无效几何（make_valid）：要素 {_listed(fids[invalid])}",
                               f"repaired {invalid.sum()} invalid geometries (make_valid): "
                               f"features {_listed(fids[invalid])} — {detail}", str(path)))
        was_poly = types == 3
        multi, removed = _polygon_parts_as_multi(geoms)
        collapsed = np.array([g is None for g in multi])
        if collapsed.any():
            report.dropped_collapsed = fids[collapsed].tolist()
            report.add(Message("geom.collapsed",
                               f"{collapsed.sum()} 个要素修复后没有面积（退化为线或点），已跳过：要素 "
                               f"{_listed(fids[collapsed])}",
                               f"{collapsed.sum()} features have no area after repair "
                               f"(collapsed to lines/points), skipped: features "
                               f"{_listed(fids[collapsed])}", str(path)))
        if (removed > 0).any():
            pd_ids = fids[(removed > 0) & ~collapsed]
            report.parts_dropped = pd_ids.tolist()
            if len(pd_ids):
                report.add(Message("geom.parts_dropped",
                                   f"{len(pd_ids)} 个要素含有非面部分（线/点），已去除：要素 {_listed(pd_ids)}",
                                   f"{len(pd_ids)} features had non-polygon parts (lines/points), "
                                   f"removed: features {_listed(pd_ids)}", str(path)))
        report.promoted_to_multi = int((was_poly & ~collapsed).sum())
        gdf = gdf.loc[~collapsed].copy()
        gdf = gdf.set_geometry(gpd.GeoSeries(multi[~collapsed], index=gdf.index, crs=gdf.crs))
        report.geometry_type = "MultiPolygon"
    else:
        gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
        kinds = set(gdf.geom_type.unique())
        if kinds <= {"Polygon", "MultiPolygon"}:
            report.geometry_type = "MultiPolygon"
        elif kinds <= {"LineString", "MultiLineString"}:
            report.geometry_type = "MultiLineString"
        elif kinds <= {"Point", "MultiPoint"}:
            report.geometry_type = "MultiPoint"
        else:
            report.geometry_type = "Unknown"
        if report.geometry_type != "Unknown":
            gdf = gdf.set_geometry(_promote_multi(gdf.geometry))
    return gdf


def _promote_multi(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    arr = np.asarray(geoms.values, dtype=object)
    t = shapely.get_type_id(arr)
    out = arr.copy()
    for single, maker in ((0, shapely.multipoints), (1, shapely.multilinestrings),
                          (3, shapely.multipolygons)):
        sel = t == single
        if sel.any():
            out[sel] = [maker([g]) for g in arr[sel]]
    return gpd.GeoSeries(out, index=geoms.index, crs=geoms.crs)


# ---------------------------------------------------------------------- CRS
def resolve_source_crs(gdf: gpd.GeoDataFrame, path: Path, project: Project,
                       assume_crs: str | int | None, report: ImportReport) -> CRS:
    """Decide the source CRS, refusing when it is missing or contradicts the coordinates.

    ``assume_crs`` is the user's confirmation: an EPSG code / CRS string to use, or
    ``"detected"`` to accept the CRS the coordinates suggest.
    """
    bounds = tuple(float(v) for v in gdf.total_bounds)
    declared = CRS(gdf.crs) if gdf.crs is not None else None
    return resolve_crs(declared, bounds, path, project, assume_crs, report)


def resolve_crs(declared: CRS | None, bounds: tuple[float, float, float, float], path: Path,
                project: Project, assume_crs: str | int | None, report: ImportReport, *,
                raster: bool = False) -> CRS:
    """The checks of :func:`resolve_source_crs` on a declared CRS (or None) and the data's
    bounds; shared by vector and raster imports."""
    if declared is None:
        guess = crsmod.guess_from_bounds(bounds, project.epsg)
        if assume_crs is None:
            likely = f"EPSG:{guess.epsg}" if guess.epsg else "无法推断 / cannot tell"
            raise _refuse("crs.missing",
                          ("栅格没有坐标系信息" if raster else "文件没有坐标系信息（缺少 .prj）")
                          + f"。{guess.zh}。确认后可用 --assume-crs {guess.epsg or 'EPSG代码'} 导入",
                          ("the raster has no CRS" if raster else "the file has no CRS (no .prj)")
                          + f". {guess.en}. Confirm with --assume-crs {guess.epsg or 'EPSG'} "
                          f"to import", path, likely_crs=likely)
        chosen = _assumed(assume_crs, guess, path)
        problem = crsmod.declared_crs_problem(chosen, bounds, project.epsg)
        if problem is not None:
            raise _refuse("crs.assumption_wrong",
                          f"指定的坐标系 {crsmod.crs_label(chosen)} 与坐标不符：{problem.zh}",
                          f"the assumed CRS {crsmod.crs_label(chosen)} does not fit the "
                          f"coordinates: {problem.en}", path)
        _note_assumed(report, f"源文件无坐标系，按用户确认假定为 {crsmod.crs_label(chosen)}",
                      f"no CRS in the source; assumed {crsmod.crs_label(chosen)} as "
                      f"confirmed by the user", path)
        return chosen
    problem = crsmod.declared_crs_problem(declared, bounds, project.epsg)
    if problem is None:
        return declared
    if assume_crs is None:
        raise _refuse("crs.mismatch",
                      f"{'栅格' if raster else '文件'}声明的坐标系 {crsmod.crs_label(declared)} "
                      f"与坐标值不符：{problem.zh}。确认后可用 --assume-crs "
                      f"{problem.epsg or 'EPSG代码'} 导入",
                      f"the {'raster' if raster else 'file'}'s declared CRS "
                      f"{crsmod.crs_label(declared)} does not fit its coordinates: "
                      f"{problem.en}. Confirm with --assume-crs {problem.epsg or 'EPSG'} to "
                      f"import", path,
                      likely_crs=f"EPSG:{problem.epsg}" if problem.epsg else None)
    chosen = _assumed(assume_crs, problem, path)
    again = crsmod.declared_crs_problem(chosen, bounds, project.epsg)
    if again is not None:
        raise _refuse("crs.assumption_wrong",
                      f"指定的坐标系 {crsmod.crs_label(chosen)} 与坐标不符：{again.zh}",
                      f"the assumed CRS {crsmod.crs_label(chosen)} does not fit the "
                      f"coordinates: {again.en}", path)
    _note_assumed(report, f"源文件声明 {crsmod.crs_label(declared)} 与坐标不符，按用户确认改用 "
                  f"{crsmod.crs_label(chosen)}",
                  f"declared {crsmod.crs_label(declared)} did not fit; "
                  f"{crsmod.crs_label(chosen)} used as confirmed by the user", path)
    return chosen


def _note_assumed(report: ImportReport, zh: str, en: str, path: Path) -> None:
    # CRS names contain " / " (e.g. "CGCS2000 / 3-degree Gauss-Kruger CM 120E"), so the two
    # texts are kept apart rather than split out of one string.
    report.crs_assumed = True
    report.crs_note = f"{zh} / {en}"
    report.add(Message("crs.assumed", zh, en, str(path)))


def _assumed(assume_crs: str | int, guess: crsmod.CrsGuess, path: Path) -> CRS:
    if isinstance(assume_crs, str) and assume_crs.lower() in ("detected", "auto"):
        if guess.epsg is None:
            raise _refuse("crs.undetectable", f"无法从坐标推断坐标系：{guess.zh}",
                          f"the CRS cannot be inferred from the coordinates: {guess.en}", path)
        return CRS.from_epsg(guess.epsg)
    try:
        return crsmod.to_crs(assume_crs)
    except Exception:  # noqa: BLE001
        raise _refuse("crs.invalid", f"无法识别指定的坐标系 {assume_crs}",
                      f"unrecognised CRS {assume_crs}", path) from None


# ---------------------------------------------------------------------- classification
def apply_classification(gdf: gpd.GeoDataFrame, scheme: str | None, code_field: str | None,
                         report: ImportReport, path: Path) -> tuple[gpd.GeoDataFrame, str | None]:
    """Check the code field against its scheme and add unified 2023 columns
    (mp_code, mp_name, mp_status, mp_candidates)."""
    if code_field is None:
        return gdf, scheme
    from . import classification as cls

    if code_field not in gdf.columns:
        raise _refuse("field.missing",
                      f"找不到地类代码字段 {code_field}；图层字段有：{', '.join(map(str, gdf.columns[:-1]))}",
                      f"no code field {code_field}; the layer's fields are: "
                      f"{', '.join(map(str, gdf.columns[:-1]))}", path)
    codes = gdf[code_field]
    available = [s["id"] if isinstance(s, dict) else getattr(s, "id", s)
                 for s in cls.available_schemes()]
    if scheme is None:
        best, best_valid = None, -1
        for sid in available:
            sch = cls.load_scheme(sid)
            valid = sum(bool(sch.is_valid(c)) for c in pd.unique(codes.dropna()))
            if valid > best_valid:
                best, best_valid = sid, valid
        scheme = best
        report.scheme_detected = True
        report.add(Message("scheme.detected", f"根据代码值判断分类标准为 {scheme}",
                           f"classification scheme detected from the codes: {scheme}", str(path)))
    elif scheme not in available:
        raise _refuse("scheme.unknown", f"未知的分类标准 {scheme}；可用：{', '.join(available)}",
                      f"unknown classification scheme {scheme}; available: "
                      f"{', '.join(available)}", path)
    sch = cls.load_scheme(scheme)
    unified = cls.unify(codes, scheme)
    unified.index = gdf.index
    unknown = unified["mp_status"] == "unknown"
    if unknown.all():
        sample = ", ".join(map(str, pd.unique(codes.astype(str))[:10]))
        raise _refuse("codes.none_valid",
                      f"字段 {code_field} 中没有一个代码属于 {sch.title}（例如 {sample}）；"
                      f"请检查字段或分类标准",
                      f"no value of field {code_field} is a {sch.title} code (e.g. {sample}); "
                      f"check the field or the scheme", path)
    if unknown.any():
        counts = codes[unknown].astype(str).value_counts()
        report.unknown_codes = {str(k): int(v) for k, v in counts.items()}
        report.unknown_code_features = gdf.index[unknown].tolist()
        listing = ", ".join(f"{k}（{v}）" for k, v in list(report.unknown_codes.items())[:10])
        listing_en = ", ".join(f"{k} ({v})" for k, v in list(report.unknown_codes.items())[:10])
        report.add(Message("codes.unknown",
                           f"{int(unknown.sum())} 个要素的代码不在 {sch.title} 中：{listing}；"
                           f"要素 {_listed(gdf.index[unknown])}（已导入，标记为 unknown）",
                           f"{int(unknown.sum())} features carry codes not in {sch.title}: "
                           f"{listing_en}; features {_listed(gdf.index[unknown])} (imported, "
                           f"flagged unknown)", str(path)))
    pending = unified["mp_status"] == "待定"
    report.pending_features = int(pending.sum())
    if pending.any():
        report.add(Message("codes.pending",
                           f"{int(pending.sum())} 个要素的代码在转换到用地用海分类时需人工确定（待定）",
                           f"{int(pending.sum())} features need a human decision when mapped to "
                           f"the 2023 classification (pending)", str(path)))
    for col in unified.columns:
        gdf[col] = unified[col]
    report.scheme = scheme
    report.code_field = code_field
    return gdf, scheme


# ---------------------------------------------------------------------- field names
#: Column names the project's GeoPackage layers use themselves (FID and geometry).
_RESERVED_FIELDS = {"fid", "geom"}


def safe_field_names(gdf: gpd.GeoDataFrame, report: ImportReport,
                     path: Path) -> tuple[gpd.GeoDataFrame, dict[str, str]]:
    """Rename attributes GeoPackage cannot hold as they are: names equal to the layer's FID
    or geometry column (``fid``, ``geom``; e.g. a shapefile saved from a GeoPackage by QGIS
    keeps ``fid``) and names equal to another one but for case (SQLite columns are
    case-insensitive). Returns the frame and {old: new}."""
    geom_col = gdf.geometry.name
    taken = {str(c).lower() for c in gdf.columns if c != geom_col} | _RESERVED_FIELDS
    seen: set[str] = set()
    renamed: dict[str, str] = {}
    for col in gdf.columns:
        if col == geom_col:
            continue
        low = str(col).lower()
        if low in _RESERVED_FIELDS or low in seen:
            base = f"{col}_src" if low in _RESERVED_FIELDS else str(col)
            new, k = base, 2
            while new.lower() in taken:
                new, k = f"{base}_{k}", k + 1
            taken.add(new.lower())
            renamed[col] = new
            seen.add(new.lower())
        else:
            seen.add(low)
    if renamed:
        gdf = gdf.rename(columns=renamed)
        listing = ", ".join(f"{k} → {v}" for k, v in renamed.items())
        report.add(Message("field.renamed",
                           f"以下字段与项目图层的保留字段（fid/geom）或其他字段（不区分大小写）重名，"
                           f"已改名：{listing}",
                           f"these fields clash with the layer's own columns (fid/geom) or with "
                           f"another field (case-insensitive) and were renamed: {listing}",
                           str(path)))
    return gdf, renamed


# ---------------------------------------------------------------------- public API
def _safe_layer_name(name: str) -> str:
    name = re.sub(r"[\s/\\:\"'`]+", "_", name.strip())
    if not name or name.lower().startswith(("mp_", "gpkg_", "rtree_", "sqlite_")):
        name = "layer_" + name
    return name


def import_layer(project: Project, path: str | Path, *, name: str | None = None,
                 level: str = "county", role: str = "current_use", layer: str | None = None,
                 scheme: str | None = None, code_field: str | None = None,
                 name_field: str | None = None, encoding: str | None = None,
                 assume_crs: str | int | None = None, title: str | None = None,
                 synthetic: bool = False, replace: bool = False,
                 task: Task | None = None) -> ImportReport:
    """Import a vector source into ``project``. See the module docstring."""
    t0 = time.perf_counter()
    task = ensure_task(task)
    path = Path(path)
    # review mode: refuse before any work (a raster would be written into rasters/ first)
    project.refuse_in_review(f"import:{path.name}", f"导入 {path.name}", f"importing {path.name}")
    try:
        role = role_key(role)
        level = level_key(level)
    except KeyError as exc:
        raise _refuse("layer.bad_role", f"未知的图层用途或级别：{exc.args[0]}",
                      f"unknown layer role or level: {exc.args[0]}", path) from None
    if not path.exists():
        raise _refuse("file.not_found", "文件不存在", "file not found", path)
    suffix = path.suffix.lower()
    if suffix in RASTER_SUFFIXES:
        return import_raster(project, path, name=name, level=level, role=role,
                             assume_crs=assume_crs, synthetic=synthetic, replace=replace,
                             task=task)
    if suffix not in VECTOR_SUFFIXES:
        raise _refuse("file.unsupported", f"不支持的文件类型 {suffix}",
                      f"unsupported file type {suffix} (use GPKG, SHP, zipped SHP, GeoJSON, "
                      f"FlatGeobuf or GeoTIFF)", path)
    name = _safe_layer_name(name or (layer if layer else path.stem))
    if project.has_layer(name) and not replace:
        raise _refuse("layer.exists", f"项目中已有图层 {name}；请换一个名称或选择替换",
                      f"the project already has a layer {name}; choose another name or replace",
                      path)
    report = ImportReport(name=name, path=str(path), sha256=sha256_of(path),
                          project_crs=crsmod.crs_label(project.crs))
    task.progress(0.02, f"读取 {path.name}")
    with tempfile.TemporaryDirectory(prefix="multiplan-import-") as tmp:
        read_path = path
        if suffix == ".zip":
            read_path = _extract_zipped_vector(path, layer, Path(tmp))
            # a zipped GeoPackage holds layers; in a zip of single-layer files ``layer``
            # chose the member
            layer_for_read = layer if read_path.suffix.lower() == ".gpkg" else None
        else:
            layer_for_read = layer
        if read_path.suffix.lower() == ".shp":
            check_shapefile(read_path)
            if encoding:
                report.encoding, report.encoding_source = encoding, "user"
            else:
                report.encoding, report.encoding_source = detect_dbf_encoding(read_path)
            check_dbf_encoding(read_path, report.encoding, report.encoding_source, path)
            if report.encoding_source in ("detected", "dbf_ldid", "user") and \
                    report.encoding not in ("UTF-8",):
                report.add(Message("encoding.used",
                                   f"属性表编码：{report.encoding}（依据：{_enc_src_zh(report.encoding_source)}）",
                                   f"attribute table encoding: {report.encoding} (from "
                                   f"{report.encoding_source})", str(path)))
        else:
            report.encoding, report.encoding_source = (encoding or "UTF-8"), \
                ("user" if encoding else "format")
        gdf = _read_vector(read_path, layer_for_read,
                           report.encoding if read_path.suffix.lower() == ".shp" else encoding,
                           path)
    report.source_layer = layer
    report.source_features = len(gdf)
    if len(gdf) == 0:
        raise _refuse("file.empty", "图层中没有任何要素", "the layer holds no features", path)
    task.progress(0.35, "检查几何")
    family = ROLES[role][1]
    gdf = normalise_geometries(gdf, family, report, path)
    task.progress(0.55, "检查坐标系")
    src_crs = resolve_source_crs(gdf, path, project, assume_crs, report)
    report.source_crs = crsmod.crs_label(src_crs)
    gdf = gdf.set_crs(src_crs, allow_override=True)
    if CRS(src_crs) != project.crs:
        gdf = gdf.to_crs(project.crs)
        report.add(Message("crs.reprojected",
                           f"已从 {report.source_crs} 转换到项目坐标系 {report.project_crs}",
                           f"reprojected from {report.source_crs} to the project CRS "
                           f"{report.project_crs}", str(path)))
    bounds = gdf.total_bounds
    if not np.all(np.isfinite(bounds)):
        raise _refuse("crs.transform_failed", "坐标转换失败（出现无穷大坐标）",
                      "the coordinate transformation failed (non-finite coordinates)", path)
    _check_extent(project, bounds, report, path)
    task.progress(0.65, "检查地类代码")
    gdf, scheme = apply_classification(gdf, scheme, code_field, report, path)
    task.progress(0.75, "写入项目")
    gdf, renamed = safe_field_names(gdf, report, path)
    code_field = renamed.get(code_field, code_field) if code_field else None
    name_field = renamed.get(name_field, name_field) if name_field else None
    scheme_version = None
    if scheme:
        from . import classification as cls
        scheme_version = cls.load_scheme(scheme).version
    report.feature_count = len(gdf)
    report.seconds = round(time.perf_counter() - t0, 3)
    record = LayerRecord(
        name=name, kind="vector", level=level, role=role, title=title or name,
        geometry_type=report.geometry_type, source_path=str(path.resolve()),
        source_sha256=report.sha256, source_crs=report.source_crs,
        crs_assumed=report.crs_assumed, encoding=report.encoding, scheme=scheme,
        scheme_version=scheme_version, code_field=code_field, name_field=name_field,
        synthetic=synthetic, report=report.to_dict())
    gdf.index.name = None
    project.write_vector_layer(gdf.reset_index(drop=True), record, replace=replace)
    task.progress(1.0, "完成")
    return report


def _enc_src_zh(src: str | None) -> str:
    return {"cpg": ".cpg 文件", "dbf_ldid": "DBF 语言驱动标志", "detected": "按内容检测",
            "user": "用户指定", "format": "格式规定"}.get(src or "", src or "")


def _check_extent(project: Project, bounds: np.ndarray, report: ImportReport,
                  path: Path) -> None:
    ext = project.extent()
    if ext is None:
        return
    margin = 50_000.0
    minx, miny, maxx, maxy = ext
    if bounds[2] < minx - margin or bounds[0] > maxx + margin or \
            bounds[3] < miny - margin or bounds[1] > maxy + margin:
        report.add(Message("extent.far",
                           "警告：该图层与项目已有图层相距超过 50 公里，请确认坐标系是否正确",
                           "warning: this layer lies more than 50 km from the project's other "
                           "layers; check its CRS", str(path)))


def import_raster(project: Project, path: str | Path, *, name: str | None = None,
                  level: str = "county", role: str = "assessment_factor",
                  assume_crs: str | int | None = None, resampling: str = "bilinear",
                  cell_size: float | None = None, synthetic: bool = False,
                  replace: bool = False, task: Task | None = None) -> ImportReport:
    """Import a GeoTIFF: reprojected into the project CRS and stored under ``rasters/``
    as a tiled, DEFLATE-compressed GeoTIFF."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioError
    from rasterio.warp import calculate_default_transform, reproject

    project.refuse_in_review(f"import:{Path(path).name}", f"导入 {Path(path).name}",
                             f"importing {Path(path).name}")
    task = ensure_task(task)
    path = Path(path)
    if not path.exists():
        raise _refuse("file.not_found", "文件不存在", "file not found", path)
    name = _safe_layer_name(name or path.stem)
    if project.has_layer(name) and not replace:
        raise _refuse("layer.exists", f"项目中已有图层 {name}", f"the project already has a "
                      f"layer {name}", path)
    report = ImportReport(name=name, path=str(path), kind="raster", sha256=sha256_of(path),
                          project_crs=crsmod.crs_label(project.crs))
    try:
        src = rasterio.open(path)
    except (RasterioError, OSError) as exc:
        raise _refuse("file.unreadable", "无法读取栅格文件（已损坏或格式不受支持）",
                      f"the raster cannot be read (damaged or unsupported): {exc}",
                      path) from None
    with src:
        bounds = tuple(src.bounds)
        # the same checks as for vectors: a confirmed assumption must fit the coordinates too
        src_crs = resolve_crs(CRS(src.crs) if src.crs is not None else None, bounds, path,
                              project, assume_crs, report, raster=True)
        report.source_crs = crsmod.crs_label(src_crs)
        dst_crs = project.crs
        kwargs = {"resolution": cell_size} if cell_size else {}
        transform, width, height = calculate_default_transform(
            src_crs, dst_crs, src.width, src.height, *src.bounds, **kwargs)
        profile = src.profile.copy()
        nodata = src.nodata
        profile.update(driver="GTiff", crs=dst_crs, transform=transform, width=width,
                       height=height, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate", nodata=nodata)
        rel = f"{RASTER_DIR}/{name}.tif"
        out = project.folder / rel
        tmp_out = out.with_suffix(".tmp.tif")
        method = Resampling[resampling]
        try:
            with rasterio.open(tmp_out, "w", **profile) as dst:
                # keep the source's metadata (provenance, units, a synthetic-data flag …)
                dst.update_tags(**src.tags())
                for b in range(1, src.count + 1):
                    task.progress(0.1 + 0.8 * (b - 1) / src.count, f"重投影波段 {b}")
                    reproject(rasterio.band(src, b), rasterio.band(dst, b), src_crs=src_crs,
                              dst_crs=dst_crs, resampling=method, src_nodata=nodata,
                              dst_nodata=nodata)
                    if src.descriptions[b - 1]:
                        dst.set_band_description(b, src.descriptions[b - 1])
        except Exception:
            tmp_out.unlink(missing_ok=True)
            raise
    tmp_out.replace(out)
    report.feature_count = 0
    report.geometry_type = None
    report.add(Message("raster.stored", f"栅格已重投影到 {report.project_crs}，保存为 {rel}",
                       f"raster reprojected to {report.project_crs} and stored as {rel}",
                       str(path)))
    record = LayerRecord(name=name, kind="raster", level=level_key(level), role=role_key(role),
                         title=name, source_path=str(path.resolve()),
                         source_sha256=report.sha256, source_crs=report.source_crs,
                         crs_assumed=report.crs_assumed, raster_path=rel, synthetic=synthetic,
                         report=report.to_dict())
    project.register_raster(record)
    task.progress(1.0, "完成")
    return report
