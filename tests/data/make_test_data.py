"""(Re)generate every input file under tests/data/hostile/ and tests/data/good/.

    .venv/bin/python tests/data/make_test_data.py            # rewrite tests/data/{hostile,good}
    .venv/bin/python tests/data/make_test_data.py --out DIR  # write DIR/{hostile,good} instead

The output is deterministic: every coordinate is written literally here (round numbers in
each file's own CRS), GeoJSON is written as text, DBF header dates are pinned, GeoPackage
timestamps are pinned (OGR_CURRENT_DATE) and the files vacuumed, zip members carry a fixed
date, and "random" bytes come from a seeded generator. Running the script twice gives
byte-identical files with the same GDAL version.

All data sit near 长兴县 (about 119.9°E, 31.0°N): CGCS2000 3° Gauss-Krüger zone 40,
central meridian 120°E, i.e. EPSG:4549 without the zone prefix (x ≈ 490 000) and
EPSG:4528 with it (x ≈ 40 490 000).

The catalogue below (CATALOGUE) says what each hostile file is and what importing it must
give; tests/core/test_import_hostile.py asserts exactly that. It is also written to
hostile/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import struct
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
from shapely.geometry import LineString, Polygon, box

HERE = Path(__file__).resolve().parent

#: Pinned timestamp for GDAL-written GeoPackages.
FIXED_DATE = "2024-01-01T00:00:00.000Z"
#: Pinned DBF "last update" date (years since 1900, month, day).
DBF_DATE = (124, 1, 1)
ZIP_DATE = (2024, 1, 1, 0, 0, 0)

# Unprefixed GK zone 40 (EPSG:4549) origin of the test parcels, metres.
GK_X0, GK_Y0 = 490_000.0, 3_430_000.0
# The same place in lon/lat (CGCS2000), degrees.
LON0, LAT0 = 119.90, 31.00
# Square parcel sizes.
GK_STEP = 100.0
DEG_STEP = 0.001

#: Codes (用地用海 2023) and names used for the parcels; Chinese text in every attribute table.
CODES = ["0101", "0103", "0301", "0701", "1201", "0201"]
NAMES = ["水田", "旱地", "乔木林地", "城镇住宅用地", "铁路用地", "果园"]
OWNERS = ["张家村", "李家村", "王家村", "雉城街道", "煤山镇", "泗安镇"]

CATALOGUE: dict[str, str] = {
    "self_intersecting.shp": "EPSG:4549, 3 parcels; feature 1's ring crosses itself "
                             "→ imported, repaired == [1], 3 features, all valid",
    "bowtie.geojson": "CRS84, 3 parcels; feature 1 is a bow-tie → imported, repaired == [1], "
                      "feature 1 becomes 2 triangles",
    "empty.gpkg": "one layer with 0 features → refused file.empty",
    "null_geometries.geojson": "6 features: 1 and 3 have null geometry, 4 an empty polygon "
                               "→ imported 3, dropped_null == [1, 3], dropped_empty == [4]",
    "all_null.geojson": "every geometry is null → refused geom.all_empty",
    "points_in_polygon_role.geojson": "polygon, point, point, polygon → refused "
                                      "geom.wrong_type naming feature 1 for a polygon role; "
                                      "imported as role 'reference'",
    "no_prj_lonlat.shp": "lon/lat coordinates, no .prj → refused crs.missing naming "
                         "EPSG:4490; imported with assume_crs='detected' or 4490; "
                         "assume_crs=4549 refused crs.assumption_wrong",
    "no_prj_gk.shp": "EPSG:4549 coordinates, no .prj → refused crs.missing naming EPSG:4549; "
                     "imported with assume_crs='detected'; 4528 refused",
    "gk_prefixed_as_4549.shp": "x ≈ 40 490 000 (zone prefix 40) but .prj says EPSG:4549 "
                               "→ refused crs.mismatch naming EPSG:4528; imported with "
                               "assume_crs='detected' (x − 40 000 000)",
    "gk_unprefixed_as_4528.shp": "x ≈ 490 000 but .prj says prefixed EPSG:4528 → refused "
                                 "crs.mismatch naming EPSG:4549",
    "lonlat_as_4549.shp": "lon/lat values but .prj says EPSG:4549 → refused crs.mismatch "
                          "naming EPSG:4490",
    "outside_china.geojson": "CRS84 coordinates near (0°, 0°) → refused crs.mismatch "
                             "(outside China)",
    "gbk_no_cpg.shp": "GBK attributes, no .cpg, DBF language byte 0 → imported, encoding GBK "
                      "detected from the bytes, Chinese text intact",
    "gbk_cpg.shp": "GBK attributes, .cpg '936' → imported, encoding GBK from the .cpg",
    "gbk_ldid.shp": "GBK attributes, no .cpg, DBF language byte 0x4D → encoding GBK from the "
                    "DBF language driver id",
    "gbk_cpg_says_utf8.shp": ".cpg says UTF-8 but the DBF holds GBK → refused "
                             "encoding.mismatch naming feature 0 and GBK; imported with "
                             "encoding='GBK'",
    "truncated.shp": "6 parcels, .shp cut in the middle of record 3 → refused shp.truncated, "
                     "feature 3",
    "truncated_shx.shp": "6 parcels, .shx index cut after 3 entries → refused shp.truncated "
                         "naming .shx and feature 3",
    "truncated_dbf.shp": "6 parcels, .dbf cut in the middle of record 3 → refused "
                         "shp.truncated naming .dbf and feature 3",
    "missing_dbf.shp": ".shp + .shx + .prj, no .dbf → refused shp.missing_part",
    "corrupt.gpkg": "4096 random bytes → refused file.unreadable",
    "truncated.gpkg": "a valid GeoPackage cut to half its size → refused file.unreadable",
    "two_layers.gpkg": "layers parcels and parcels_old → refused gpkg.multiple_layers "
                       "without a layer; gpkg.no_such_layer for a wrong name; imported with "
                       "layer='parcels_old'",
    "unknown_codes.geojson": "DLBM has 9999 and XX (not 用地用海 2023) on features 2 and 4 → "
                             "imported 5, unknown_codes == {'9999': 1, 'XX': 1}; field OLDBM "
                             "has no valid code at all → refused codes.none_valid",
    "missing_code_field.geojson": "has DLMC but no DLBM → refused field.missing with "
                                  "code_field='DLBM'",
    "z_coords.geojson": "3 PolygonZ parcels → imported, z_dropped == 3, written 2D",
    "mixed_geometry_types.geojson": "Polygon, MultiPolygon, GeometryCollection(Polygon, "
                                    "LineString, Point) → imported 3 MultiPolygons, "
                                    "parts_dropped == [2]",
    "degenerate.geojson": "a square and a zero-area polygon → imported 1, repaired == [1], "
                          "dropped_collapsed == [1]",
    "duplicate_fid_field.shp": "an integer attribute named 'fid' with repeated values → "
                               "imported 3, the attribute kept as fid_src (field.renamed)",
    "clashing_field_names.geojson": "attributes geom, FID, DLBM and dlbm → imported, "
                                    "renamed geom_src, FID_src, dlbm_2 (field.renamed)",
    "zip_traversal.zip": "members ../../evil.* → refused zip.unsafe_member, nothing extracted",
    "zip_absolute.zip": "members /tmp/multiplan_evil/evil.* → refused zip.unsafe_member",
    "zip_backslash.zip": "members ..\\..\\evil.* (Windows separators) → refused "
                         "zip.unsafe_member",
    "two_shapefiles.zip": "a/village_a.shp and b/village_b.shp → refused zip.multiple_layers; "
                          "layer='nope' refused zip.no_such_layer; imported with "
                          "layer='village_b'",
    "same_stem_shapefiles.zip": "2020/DLTB.shp and 2023/DLTB.shp → layer='DLTB' refused "
                                "zip.multiple_layers; imported with layer='2023/DLTB'",
    "corrupt.zip": "2048 random bytes named .zip → refused zip.corrupt",
    "raster_no_crs.tif": "10 × 10 GeoTIFF on a lon/lat grid with no CRS → refused "
                         "crs.missing naming EPSG:4490; imported with assume_crs='detected'",
    "corrupt.tif": "a TIFF signature then random bytes → refused file.unreadable",
}


# ---------------------------------------------------------------------- geometry helpers
def gk_square(i: int, j: int = 0, x0: float = GK_X0, y0: float = GK_Y0) -> Polygon:
    x, y = x0 + i * GK_STEP, y0 + j * GK_STEP
    return box(x, y, x + GK_STEP, y + GK_STEP)


def deg_square(i: int, j: int = 0) -> Polygon:
    x, y = round(LON0 + i * DEG_STEP, 6), round(LAT0 + j * DEG_STEP, 6)
    return box(x, y, round(x + DEG_STEP, 6), round(y + DEG_STEP, 6))


def ring(poly: Polygon) -> list[list[float]]:
    return [[float(x), float(y)] for x, y in poly.exterior.coords]


def parcels_frame(geoms: list, crs: int | None, n: int | None = None) -> gpd.GeoDataFrame:
    n = len(geoms) if n is None else n
    return gpd.GeoDataFrame({"DLBM": CODES[:n], "DLMC": NAMES[:n], "QSDWMC": OWNERS[:n]},
                            geometry=geoms[:n], crs=crs)


def grid_gk(n: int = 6, x0: float = GK_X0, y0: float = GK_Y0) -> list[Polygon]:
    return [gk_square(k % 3, k // 3, x0, y0) for k in range(n)]


def grid_deg(n: int = 6) -> list[Polygon]:
    return [deg_square(k % 3, k // 3) for k in range(n)]


# ---------------------------------------------------------------------- writers
def write_geojson(path: Path, features: list[dict], crs_name: str | None = None) -> None:
    """Hand-written GeoJSON: ``features`` are (properties, geometry-dict-or-None) dicts."""
    doc: dict = {"type": "FeatureCollection", "name": path.stem}
    if crs_name:
        doc["crs"] = {"type": "name", "properties": {"name": crs_name}}
    doc["features"] = [{"type": "Feature", "properties": f["properties"],
                        "geometry": f["geometry"]} for f in features]
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def poly_geojson(poly: Polygon, z: float | None = None) -> dict:
    coords = ring(poly)
    if z is not None:
        coords = [[x, y, z] for x, y in coords]
    return {"type": "Polygon", "coordinates": [coords]}


def pin_dbf_date(dbf: Path) -> None:
    data = bytearray(dbf.read_bytes())
    data[1:4] = bytes(DBF_DATE)
    dbf.write_bytes(bytes(data))


def set_dbf_ldid(dbf: Path, ldid: int) -> None:
    data = bytearray(dbf.read_bytes())
    data[29] = ldid
    dbf.write_bytes(bytes(data))


def write_shp(path: Path, gdf: gpd.GeoDataFrame, encoding: str = "UTF-8",
              cpg: str | None = "keep") -> None:
    """Write a shapefile with GDAL; pin the DBF date; set the .cpg as asked:
    ``"keep"`` (GDAL's), ``None`` (delete it) or a literal content."""
    for old in path.parent.glob(path.stem + ".*"):
        old.unlink()
    with warnings.catch_warnings():  # "'crs' was not provided" is the point of some files
        warnings.simplefilter("ignore", UserWarning)
        pyogrio.write_dataframe(gdf, path, driver="ESRI Shapefile", encoding=encoding)
    pin_dbf_date(path.with_suffix(".dbf"))
    cpg_path = path.with_suffix(".cpg")
    if cpg is None:
        cpg_path.unlink(missing_ok=True)
    elif cpg != "keep":
        cpg_path.write_text(cpg, encoding="ascii")


def finish_gpkg(path: Path) -> None:
    """Make a GDAL-written GeoPackage small and deterministic."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE gpkg_contents SET last_change = ?", (FIXED_DATE,))
        conn.commit()
        conn.execute("PRAGMA page_size = 512")
        conn.execute("VACUUM")
    finally:
        conn.close()


def write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame],
               geometry_type: str | None = None) -> None:
    path.unlink(missing_ok=True)
    for name, gdf in layers.items():
        kwargs = {"geometry_type": geometry_type} if geometry_type else {}
        pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG",
                                dataset_options={"VERSION": "1.3"},
                                layer_options={"SPATIAL_INDEX": "NO"}, **kwargs)
    finish_gpkg(path)


def write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    path.unlink(missing_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def shp_parts(path: Path) -> list[tuple[str, bytes]]:
    """(suffix, bytes) of a shapefile's component files, in a fixed order."""
    out = []
    for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        p = path.with_suffix(suffix)
        if p.exists():
            out.append((suffix, p.read_bytes()))
    return out


# ---------------------------------------------------------------------- hostile files
def make_hostile(out: Path, scratch: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)

    # self-intersecting ring: two edges of a notch cross the bottom edge
    crossing = Polygon([(GK_X0 + 100, GK_Y0), (GK_X0 + 200, GK_Y0), (GK_X0 + 200, GK_Y0 + 100),
                        (GK_X0 + 160, GK_Y0 + 100), (GK_X0 + 160, GK_Y0 - 30),
                        (GK_X0 + 140, GK_Y0 - 30), (GK_X0 + 140, GK_Y0 + 100),
                        (GK_X0 + 100, GK_Y0 + 100)])
    write_shp(out / "self_intersecting.shp",
              parcels_frame([gk_square(0), crossing, gk_square(2)], 4549))

    # bow-tie in lon/lat
    x0, y0, x1, y1 = deg_square(1).bounds
    bowtie = {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y1], [x1, y0], [x0, y1],
                                                  [x0, y0]]]}
    write_geojson(out / "bowtie.geojson", [
        {"properties": {"DLBM": "0101", "DLMC": "水田"}, "geometry": poly_geojson(deg_square(0))},
        {"properties": {"DLBM": "0103", "DLMC": "旱地"}, "geometry": bowtie},
        {"properties": {"DLBM": "0301", "DLMC": "乔木林地"},
         "geometry": poly_geojson(deg_square(2))},
    ])

    # empty layer
    write_gpkg(out / "empty.gpkg",
               {"parcels": gpd.GeoDataFrame({"DLBM": np.array([], dtype=object)},
                                            geometry=[], crs=4549)},
               geometry_type="MultiPolygon")

    # null and empty geometries
    feats = []
    for k in range(6):
        geom = poly_geojson(deg_square(k % 3, k // 3))
        if k in (1, 3):
            geom = None
        elif k == 4:
            geom = {"type": "Polygon", "coordinates": []}
        feats.append({"properties": {"DLBM": CODES[k], "DLMC": NAMES[k]}, "geometry": geom})
    write_geojson(out / "null_geometries.geojson", feats)
    write_geojson(out / "all_null.geojson", [
        {"properties": {"DLBM": "0101"}, "geometry": None},
        {"properties": {"DLBM": "0103"}, "geometry": None},
    ])

    # points where parcels are expected
    c = deg_square(1).centroid
    d = deg_square(2).centroid
    write_geojson(out / "points_in_polygon_role.geojson", [
        {"properties": {"DLBM": "0101"}, "geometry": poly_geojson(deg_square(0))},
        {"properties": {"DLBM": "0103"},
         "geometry": {"type": "Point", "coordinates": [round(c.x, 6), round(c.y, 6)]}},
        {"properties": {"DLBM": "0301"},
         "geometry": {"type": "Point", "coordinates": [round(d.x, 6), round(d.y, 6)]}},
        {"properties": {"DLBM": "0701"}, "geometry": poly_geojson(deg_square(0, 1))},
    ])

    # CRS: missing .prj, wrong .prj
    write_shp(out / "no_prj_lonlat.shp", parcels_frame(grid_deg(3), None))
    write_shp(out / "no_prj_gk.shp", parcels_frame(grid_gk(3), None))
    write_shp(out / "gk_prefixed_as_4549.shp",
              parcels_frame(grid_gk(3, x0=40_000_000 + GK_X0), 4549))
    write_shp(out / "gk_unprefixed_as_4528.shp", parcels_frame(grid_gk(3), 4528))
    write_shp(out / "lonlat_as_4549.shp",
              parcels_frame(grid_deg(3), None))
    # a .prj for EPSG:4549 taken from a GDAL-written file, on lon/lat coordinates
    (out / "lonlat_as_4549.prj").write_bytes((out / "gk_prefixed_as_4549.prj").read_bytes())
    write_geojson(out / "outside_china.geojson", [
        {"properties": {"DLBM": "0101"},
         "geometry": {"type": "Polygon", "coordinates": [[[0.001, 0.001], [0.002, 0.001],
                                                          [0.002, 0.002], [0.001, 0.002],
                                                          [0.001, 0.001]]]}},
    ])

    # encodings
    gdf = parcels_frame(grid_gk(3), 4549)
    write_shp(out / "gbk_no_cpg.shp", gdf, encoding="GBK", cpg=None)
    set_dbf_ldid(out / "gbk_no_cpg.dbf", 0)
    write_shp(out / "gbk_cpg.shp", gdf, encoding="GBK", cpg="936")
    set_dbf_ldid(out / "gbk_cpg.dbf", 0)
    write_shp(out / "gbk_ldid.shp", gdf, encoding="GBK", cpg=None)
    set_dbf_ldid(out / "gbk_ldid.dbf", 0x4D)
    write_shp(out / "gbk_cpg_says_utf8.shp", gdf, encoding="GBK", cpg="UTF-8")
    set_dbf_ldid(out / "gbk_cpg_says_utf8.dbf", 0)

    # truncated .shp: cut in the middle of record 3 (offsets from the .shx index)
    write_shp(out / "truncated.shp", parcels_frame(grid_gk(6), 4549))
    shx = (out / "truncated.shx").read_bytes()[100:]
    off, length = struct.unpack(">ii", shx[3 * 8:3 * 8 + 8])
    cut = off * 2 + 8 + length  # header of record 3 plus half of its content
    shp = out / "truncated.shp"
    shp.write_bytes(shp.read_bytes()[:cut])

    # truncated index (.shx) and truncated attribute table (.dbf), both after 3 of 6 features
    write_shp(out / "truncated_shx.shp", parcels_frame(grid_gk(6), 4549))
    shx_path = out / "truncated_shx.shx"
    shx_path.write_bytes(shx_path.read_bytes()[:100 + 8 * 3])
    write_shp(out / "truncated_dbf.shp", parcels_frame(grid_gk(6), 4549))
    dbf_path = out / "truncated_dbf.dbf"
    dbf_bytes = dbf_path.read_bytes()
    header_len, rec_len = struct.unpack("<HH", dbf_bytes[8:12])
    dbf_path.write_bytes(dbf_bytes[:header_len + 3 * rec_len + rec_len // 2])

    # shapefile without its .dbf
    write_shp(out / "missing_dbf.shp", parcels_frame(grid_gk(3), 4549))
    (out / "missing_dbf.dbf").unlink()
    (out / "missing_dbf.cpg").unlink(missing_ok=True)

    # corrupt / truncated GeoPackages
    rng = random.Random(20240101)
    (out / "corrupt.gpkg").write_bytes(rng.randbytes(4096))
    full = scratch / "full.gpkg"
    write_gpkg(full, {"parcels": parcels_frame(grid_gk(6), 4549)})
    data = full.read_bytes()
    (out / "truncated.gpkg").write_bytes(data[:len(data) // 2])

    # two layers in one GeoPackage
    old = parcels_frame(grid_gk(6, y0=GK_Y0 + 1000), 4549)
    write_gpkg(out / "two_layers.gpkg",
               {"parcels": parcels_frame(grid_gk(6), 4549), "parcels_old": old})

    # classification codes
    codes = ["0101", "0103", "9999", "0301", "XX"]
    write_geojson(out / "unknown_codes.geojson", [
        {"properties": {"DLBM": code, "OLDBM": f"Z{k}", "DLMC": NAMES[k]},
         "geometry": poly_geojson(deg_square(k % 3, k // 3))}
        for k, code in enumerate(codes)])
    write_geojson(out / "missing_code_field.geojson", [
        {"properties": {"DLMC": NAMES[k], "QSDWMC": OWNERS[k]},
         "geometry": poly_geojson(deg_square(k))} for k in range(3)])

    # Z coordinates
    write_geojson(out / "z_coords.geojson", [
        {"properties": {"DLBM": CODES[k]}, "geometry": poly_geojson(deg_square(k), z=12.5 + k)}
        for k in range(3)])

    # mixed geometry types
    a, b = deg_square(1), deg_square(1, 2)  # two parts that do not touch
    line = LineString([deg_square(2).exterior.coords[0], deg_square(2).exterior.coords[2]])
    write_geojson(out / "mixed_geometry_types.geojson", [
        {"properties": {"DLBM": "0101"}, "geometry": poly_geojson(deg_square(0))},
        {"properties": {"DLBM": "0103"},
         "geometry": {"type": "MultiPolygon", "coordinates": [[ring(a)], [ring(b)]]}},
        {"properties": {"DLBM": "0301"},
         "geometry": {"type": "GeometryCollection", "geometries": [
             poly_geojson(deg_square(2)),
             {"type": "LineString", "coordinates": [list(p) for p in line.coords]},
             {"type": "Point", "coordinates": [round(LON0 + 0.0035, 6), round(LAT0 + 0.0005, 6)]},
         ]}},
    ])

    # zero-area polygon (all vertices on one line)
    x0, y0, x1, _ = deg_square(1).bounds
    write_geojson(out / "degenerate.geojson", [
        {"properties": {"DLBM": "0101"}, "geometry": poly_geojson(deg_square(0))},
        {"properties": {"DLBM": "0103"},
         "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [round((x0 + x1) / 2, 6), y0],
                                                          [x1, y0], [x0, y0]]]}},
    ])

    # an attribute called "fid" (as QGIS leaves when a GeoPackage is saved as a shapefile),
    # with repeated values (the file was merged from two sources)
    fid_gdf = parcels_frame(grid_gk(3), 4549)
    fid_gdf.insert(0, "fid", np.array([1, 2, 1], dtype=np.int64))
    write_shp(out / "duplicate_fid_field.shp", fid_gdf)

    # attribute names that clash with the GeoPackage geometry column, the FID, or by case
    write_geojson(out / "clashing_field_names.geojson", [
        {"properties": {"geom": f"g{k}", "FID": 7, "DLBM": CODES[k], "dlbm": CODES[k + 1]},
         "geometry": poly_geojson(deg_square(k))} for k in range(2)])

    # zips
    village = scratch / "village.shp"
    write_shp(village, parcels_frame(grid_gk(3), 4549))
    parts = shp_parts(village)
    write_zip(out / "zip_traversal.zip", [(f"../../evil{s}", d) for s, d in parts])
    write_zip(out / "zip_absolute.zip", [(f"/tmp/multiplan_evil/evil{s}", d) for s, d in parts])
    write_zip(out / "zip_backslash.zip", [(f"..\\..\\evil{s}", d) for s, d in parts])
    vb = scratch / "village_b.shp"
    write_shp(vb, parcels_frame(grid_gk(3, y0=GK_Y0 + 500), 4549))
    write_zip(out / "two_shapefiles.zip",
              [(f"a/village_a{s}", d) for s, d in parts]
              + [(f"b/village_b{s}", d) for s, d in shp_parts(vb)])
    write_zip(out / "same_stem_shapefiles.zip",
              [(f"2020/DLTB{s}", d) for s, d in parts]
              + [(f"2023/DLTB{s}", d) for s, d in shp_parts(vb)])
    (out / "corrupt.zip").write_bytes(random.Random(7).randbytes(2048))

    # rasters: no CRS at all (lon/lat values), and random bytes named .tif
    import rasterio
    from rasterio.transform import from_origin

    grid = np.arange(100, dtype="float32").reshape(10, 10)
    with warnings.catch_warnings():  # "Dataset has no geotransform/CRS" is the point
        warnings.simplefilter("ignore")
        with rasterio.open(out / "raster_no_crs.tif", "w", driver="GTiff", height=10,
                           width=10, count=1, dtype="float32",
                           transform=from_origin(LON0, LAT0 + 0.01, DEG_STEP, DEG_STEP)) as dst:
            dst.write(grid, 1)
    (out / "corrupt.tif").write_bytes(b"II*\x00" + random.Random(3).randbytes(1020))

    lines = ["# Hostile inputs", "",
             ("Generated by `tests/data/make_test_data.py`; asserted by "
              "`tests/core/test_import_hostile.py`. Project: EPSG:4549, 测试县."), "",
             "| file | what it is → the outcome asserted |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in CATALOGUE.items()]
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------- good files
def make_good(out: Path, scratch: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    import rasterio
    from rasterio.transform import from_origin

    # GeoPackage with two layers, both CGCS2000 lon/lat
    roads = gpd.GeoDataFrame(
        {"NAME": ["长兴大道", "太湖路"]},
        geometry=[LineString([(LON0, LAT0), (LON0 + 0.003, LAT0 + 0.002)]),
                  LineString([(LON0, LAT0 + 0.002), (LON0 + 0.003, LAT0)])], crs=4490)
    write_gpkg(out / "two_layers_4490.gpkg",
               {"parcels": parcels_frame(grid_deg(6), 4490), "roads": roads})

    # plain shapefile, prefixed zone 40 (a legitimate EPSG:4528 file), UTF-8 with .cpg
    write_shp(out / "parcels_4528.shp",
              parcels_frame(grid_gk(6, x0=40_000_000 + GK_X0), 4528))

    # zipped shapefile in lon/lat, inside a folder of the zip
    inner = scratch / "parcels_zip_4490.shp"
    write_shp(inner, parcels_frame(grid_deg(6), 4490))
    write_zip(out / "parcels_shp_4490.zip",
              [(f"县级现状/parcels_zip_4490{s}", d) for s, d in shp_parts(inner)])

    # GeoJSON (RFC 7946: CRS84)
    write_geojson(out / "parcels_crs84.geojson", [
        {"properties": {"DLBM": CODES[k], "DLMC": NAMES[k], "QSDWMC": OWNERS[k]},
         "geometry": poly_geojson(g)} for k, g in enumerate(grid_deg(6))])

    # FlatGeobuf in the neighbouring zone (CM 117°E, EPSG:4548): x0/y0 are that zone's
    # coordinates of about the same place
    out_fgb = out / "parcels_4548.fgb"
    out_fgb.unlink(missing_ok=True)
    pyogrio.write_dataframe(parcels_frame(grid_gk(6, x0=777_000.0, y0=3_434_600.0), 4548),
                            out_fgb, driver="FlatGeobuf")

    # GeoTIFF in lon/lat: 40 × 40 cells of 0.001°, four quadrants 10/20/30/40, nodata -9999
    data = np.full((40, 40), 10.0, dtype="float32")
    data[:20, 20:] = 20.0
    data[20:, :20] = 30.0
    data[20:, 20:] = 40.0
    data[0, 0] = -9999.0
    profile = {"driver": "GTiff", "height": 40, "width": 40, "count": 1, "dtype": "float32",
               "crs": "EPSG:4490", "nodata": -9999.0,
               "transform": from_origin(LON0 - 0.01, LAT0 + 0.03, DEG_STEP, DEG_STEP)}
    tif = out / "landcover_4490.tif"
    tif.unlink(missing_ok=True)
    with rasterio.open(tif, "w", **profile) as dst:
        dst.write(data, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE,
                        help="folder to write hostile/ and good/ into (default: tests/data)")
    args = parser.parse_args(argv)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_DATE})
    scratch = args.out / ".scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        for sub, maker in (("hostile", make_hostile), ("good", make_good)):
            target = args.out / sub
            shutil.rmtree(target, ignore_errors=True)
            maker(target, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for sub in ("hostile", "good"):
        files = sorted((args.out / sub).iterdir())
        size = sum(f.stat().st_size for f in files)
        print(f"{sub}: {len(files)} files, {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
