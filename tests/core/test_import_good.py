"""Good inputs (tests/data/good/, made by tests/data/make_test_data.py).

Every format is imported into a fresh EPSG:4549 project; coordinates are checked against
an independent pyproj computation on the source as GDAL reads it, and the registry row
against hashlib, the file itself and what the caller asked for.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from osgeo_utils.samples import validate_gpkg as _validator
from pyproj import Transformer

from multiplan.core.io import ImportReport, import_layer
from multiplan.core.project import Project

DATA = Path(__file__).resolve().parents[1] / "data"
GOOD = DATA / "good"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_test_data", DATA / "make_test_data.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


GEN = _load_generator()


def validate_gpkg(path: Path) -> None:
    """GDAL's own GeoPackage validator (PyPI gdal-utils) — the code behind
    ``python -m osgeo_utils.samples.validate_gpkg``, called in-process (≈10 ms instead of
    ≈150 ms per call; tests/core/test_project.py runs it as a separate process)."""
    errors = _validator.check(str(path), abort_at_first_error=False, warning_msg=False)
    assert errors == [], errors


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "p", county="测试县", crs=4549)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sha256_shapefile(path: Path) -> str:
    """The component files of a shapefile, concatenated in name order."""
    h = hashlib.sha256()
    for part in sorted(path.parent.glob(path.stem + ".*")):
        h.update(part.read_bytes())
    return h.hexdigest()


def expected(source: str | Path, src_epsg: int, **read: Any) -> tuple[np.ndarray, Any]:
    """Source vertices as GDAL reads them, projected to EPSG:4549 by pyproj directly, and
    the source attributes in GDAL's reading order."""
    gdf = pyogrio.read_dataframe(source, **read)
    xy = shapely.get_coordinates(gdf.geometry.values)
    x, y = Transformer.from_crs(src_epsg, 4549, always_xy=True).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y]), gdf.drop(columns="geometry")


def check_layer(project: Project, report: ImportReport,
                source: tuple[np.ndarray, Any]) -> Any:
    xy, attrs = source
    gdf = project.read_layer(report.name)
    assert gdf.crs.to_epsg() == 4549
    assert len(gdf) == report.feature_count == 6
    assert shapely.is_valid(gdf.geometry.values).all()
    np.testing.assert_allclose(shapely.get_coordinates(gdf.geometry.values), xy,
                               rtol=0, atol=1e-4)
    for col in ("DLBM", "DLMC", "QSDWMC"):
        assert list(gdf[col]) == list(attrs[col])
    # (a FlatGeobuf with a spatial index hands its features out in index order)
    assert sorted(zip(gdf["DLBM"], gdf["DLMC"], gdf["QSDWMC"], strict=True)) == \
        sorted(zip(GEN.CODES, GEN.NAMES, GEN.OWNERS, strict=True))
    return gdf


def gpkg_layer_srs(gpkg: Path, table: str) -> int:
    """The layer's SRS id from gpkg_geometry_columns, read with sqlite3 (not multiplan)."""
    with sqlite3.connect(gpkg) as conn:
        return conn.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = ?",
                            (table,)).fetchone()[0]


# ---------------------------------------------------------------------- formats
def test_geopackage_choose_one_of_two_layers(project: Project) -> None:
    path = GOOD / "two_layers_4490.gpkg"
    assert sorted(pyogrio.list_layers(path)[:, 0]) == ["parcels", "roads"]
    report = import_layer(project, path, layer="parcels", level="provincial",
                          role="land_use_plan", scheme="ydyh2023", code_field="DLBM",
                          name_field="DLMC", title="省级下达用地")
    assert report.name == "parcels" and report.source_layer == "parcels"
    gdf = check_layer(project, report, expected(path, 4490, layer="parcels"))
    assert list(gdf["mp_code"]) == list(gdf["DLBM"]) and (gdf["mp_status"] == "ok").all()
    rec = project.layer("parcels")
    assert (rec.kind, rec.level, rec.role, rec.title) == ("vector", "provincial",
                                                          "land_use_plan", "省级下达用地")
    assert rec.source_path == str(path.resolve())
    assert rec.source_sha256 == sha256_file(path)
    assert rec.source_crs.startswith("EPSG:4490 ")
    assert rec.crs_assumed is False
    assert (rec.encoding, rec.scheme, rec.code_field, rec.name_field) == \
        ("UTF-8", "ydyh2023", "DLBM", "DLMC")
    from multiplan.core.classification import load_scheme
    assert rec.scheme_version == load_scheme("ydyh2023").version
    assert rec.geometry_type == "MultiPolygon" and rec.feature_count == 6
    assert gpkg_layer_srs(project.gpkg, "parcels") == 4549
    # the other layer of the same file, lines, where any geometry is allowed
    roads = import_layer(project, path, layer="roads", role="reference")
    assert roads.geometry_type == "MultiLineString" and roads.feature_count == 2
    np.testing.assert_allclose(
        shapely.get_coordinates(project.read_layer("roads").geometry.values),
        expected(path, 4490, layer="roads")[0], atol=1e-4)
    validate_gpkg(project.gpkg)


def test_plain_shapefile(project: Project) -> None:
    path = GOOD / "parcels_4528.shp"
    report = import_layer(project, path, level="county", role="current_use")
    assert (report.encoding, report.encoding_source) == ("UTF-8", "cpg")
    assert report.source_crs.startswith("EPSG:4528 ")
    check_layer(project, report, expected(path, 4528))
    rec = project.layer("parcels_4528")
    assert (rec.level, rec.role) == ("county", "current_use")
    assert rec.source_path == str(path.resolve())
    assert rec.source_sha256 == sha256_shapefile(path)
    assert rec.source_crs.startswith("EPSG:4528 ")
    assert rec.encoding == "UTF-8"
    assert rec.scheme is None and rec.code_field is None
    validate_gpkg(project.gpkg)


def test_zipped_shapefile(project: Project) -> None:
    path = GOOD / "parcels_shp_4490.zip"
    inner = f"/vsizip/{path}/县级现状/parcels_zip_4490.shp"
    report = import_layer(project, path, role="现状", level="县级")  # Chinese labels work too
    assert report.name == "parcels_shp_4490"
    assert (report.encoding, report.encoding_source) == ("UTF-8", "cpg")
    check_layer(project, report, expected(inner, 4490))
    rec = project.layer(report.name)
    assert (rec.level, rec.role) == ("county", "current_use")
    assert rec.source_path == str(path.resolve())
    assert rec.source_sha256 == sha256_file(path)
    assert rec.source_crs.startswith("EPSG:4490 ")
    validate_gpkg(project.gpkg)


def test_geojson(project: Project) -> None:
    path = GOOD / "parcels_crs84.geojson"
    report = import_layer(project, path, name="现状地类", scheme="ydyh2023",
                          code_field="DLBM")
    assert report.name == "现状地类"
    assert (report.encoding, report.encoding_source) == ("UTF-8", "format")
    assert report.source_crs.startswith("EPSG:4326 ")
    check_layer(project, report, expected(path, 4326))
    rec = project.layer("现状地类")
    assert rec.source_sha256 == sha256_file(path)
    assert (rec.scheme, rec.code_field) == ("ydyh2023", "DLBM")
    validate_gpkg(project.gpkg)


def test_flatgeobuf_from_the_neighbouring_zone(project: Project) -> None:
    path = GOOD / "parcels_4548.fgb"
    report = import_layer(project, path, role="urban_plan", level="city")
    assert report.source_crs.startswith("EPSG:4548 ")
    gdf = check_layer(project, report, expected(path, 4548))
    # 117°E-zone coordinates of this place land in the 120°E zone near x = 490 000
    assert 489_000 < gdf.total_bounds[0] < 491_000
    rec = project.layer(report.name)
    assert (rec.level, rec.role, rec.source_sha256) == ("city", "urban_plan",
                                                         sha256_file(path))
    validate_gpkg(project.gpkg)


def test_geotiff_is_reprojected_into_rasters(project: Project) -> None:
    path = GOOD / "landcover_4490.tif"
    report = import_layer(project, path, role="assessment_factor")
    assert report.kind == "raster"
    assert report.source_crs.startswith("EPSG:4490 ")
    rec = project.layer("landcover_4490")
    assert rec.kind == "raster" and rec.raster_path == "rasters/landcover_4490.tif"
    assert rec.source_sha256 == sha256_file(path)
    assert rec.source_path == str(path.resolve())
    stored = project.raster_path("landcover_4490")
    assert stored == project.folder / "rasters" / "landcover_4490.tif" and stored.is_file()
    assert project.snapshot_state()["rasters"] == ["landcover_4490.tif"]
    to_gk = Transformer.from_crs(4490, 4549, always_xy=True)
    lon0, lat0 = GEN.LON0, GEN.LAT0
    # quadrant centres of the source grid and their values
    points = {(lon0, lat0 + 0.02): 10.0, (lon0 + 0.02, lat0 + 0.02): 20.0,
              (lon0, lat0): 30.0, (lon0 + 0.02, lat0): 40.0}
    with rasterio.open(path) as src:
        assert [v[0] for v in src.sample(list(points))] == list(points.values())
    with rasterio.open(stored) as dst:
        assert dst.crs.to_epsg() == 4549
        assert dst.nodata == -9999.0
        xy = [to_gk.transform(lon, lat) for lon, lat in points]
        assert [float(v[0]) for v in dst.sample(xy)] == list(points.values())
        # the stored grid covers the source extent, projected
        left, bottom, right, top = dst.bounds
        x0, y0 = to_gk.transform(lon0 - 0.01, lat0 - 0.01)
        x1, y1 = to_gk.transform(lon0 + 0.03, lat0 + 0.03)
        assert left <= x0 + 100 and right >= x1 - 100 and bottom <= y0 + 100
        assert top >= y1 - 100
    validate_gpkg(project.gpkg)


# ---------------------------------------------------------------------- together
def test_mixed_crs_imports_end_in_the_project_crs(project: Project) -> None:
    a = import_layer(project, GOOD / "two_layers_4490.gpkg", layer="parcels")
    b = import_layer(project, GOOD / "parcels_4528.shp")
    assert a.source_crs.startswith("EPSG:4490 ") and b.source_crs.startswith("EPSG:4528 ")
    for rep in (a, b):
        assert gpkg_layer_srs(project.gpkg, rep.name) == 4549
        assert pyogrio.read_info(project.gpkg, layer=rep.name)["crs"] == "EPSG:4549"
        assert project.read_layer(rep.name).crs.to_epsg() == 4549
    # the second layer lies where the first is: no 'far away' warning
    assert "extent.far" not in [m["code"] for m in b.messages]
    ca = project.read_layer(a.name).geometry.union_all().centroid
    cb = project.read_layer(b.name).geometry.union_all().centroid
    assert ca.distance(cb) < 2_000
    assert [r.source_crs[:9] for r in project.layers()] == ["EPSG:4490", "EPSG:4528"]
    ext = project.extent()
    assert ext is not None and 480_000 < ext[0] < ext[2] < 500_000
    validate_gpkg(project.gpkg)


def test_import_report_contents(project: Project) -> None:
    path = GOOD / "parcels_crs84.geojson"
    report = import_layer(project, path, scheme="ydyh2023", code_field="DLBM")
    d = report.to_dict()
    assert d["name"] == "parcels_crs84" and d["path"] == str(path)
    assert d["kind"] == "vector" and d["sha256"] == sha256_file(path)
    assert d["source_features"] == d["feature_count"] == 6
    assert d["geometry_type"] == "MultiPolygon" and d["promoted_to_multi"] == 6
    assert d["project_crs"].startswith("EPSG:4549 ")
    assert d["crs_assumed"] is False and d["crs_note"] is None
    assert d["repaired"] == d["dropped_null"] == d["dropped_empty"] == []
    assert d["unknown_codes"] == {} and d["scheme"] == "ydyh2023"
    assert d["seconds"] > 0
    codes = [m["code"] for m in d["messages"]]
    assert codes == ["crs.reprojected"]
    json.dumps(d, ensure_ascii=False)  # storable as is
    zh, en = report.summary("zh"), report.summary("en")
    assert "导入 6 个要素" in zh[0] and "6 features imported" in en[0]
    assert "EPSG:4326" in zh[1] and "EPSG:4549" in en[1]
    assert any("UTF-8" in line for line in zh)
    # the registry keeps the same report
    stored = project.layer(report.name).report
    assert stored == json.loads(json.dumps(d, ensure_ascii=False))
    audit = project.audit_log()[-1]
    assert (audit["action"], audit["target"]) == ("layer.add", "parcels_crs84")
    assert json.loads(audit["detail"])["sha256"] == d["sha256"]


def test_the_project_opens_in_plain_gdal_after_imports(project: Project) -> None:
    import_layer(project, GOOD / "parcels_4528.shp")
    import_layer(project, GOOD / "parcels_4548.fgb")
    names = ["parcels_4528", "parcels_4548"]
    ogrinfo = shutil.which("ogrinfo") or ("/usr/bin/ogrinfo"
                                          if Path("/usr/bin/ogrinfo").exists() else None)
    if ogrinfo:
        out = subprocess.run([ogrinfo, "-so", "-ro", str(project.gpkg)], check=False,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        for n in names:
            assert f": {n} (Multi Polygon)" in out.stdout
    listed = dict(pyogrio.list_layers(project.gpkg))
    for n in names:
        assert listed[n] == "MultiPolygon"
        assert pyogrio.read_info(project.gpkg, layer=n)["features"] == 6
    validate_gpkg(project.gpkg)
