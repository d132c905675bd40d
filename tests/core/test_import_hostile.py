"""Hostile inputs (tests/data/hostile/, made by tests/data/make_test_data.py).

Each test states the exact outcome of ``import_layer`` on a fresh project (EPSG:4549):
either a repaired layer with its counts, written valid, or an ``ImportRefused`` with the
expected code, the file, the feature at fault, Chinese and English texts that name the
problem — and the project unchanged (same state, same bytes, still a valid GeoPackage).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import shapely
from osgeo_utils.samples import validate_gpkg as _validator
from pyproj import Transformer

from multiplan.core.errors import ImportRefused
from multiplan.core.io import ImportReport, import_layer
from multiplan.core.project import Project

DATA = Path(__file__).resolve().parents[1] / "data"
HOSTILE = DATA / "hostile"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_test_data", DATA / "make_test_data.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


GEN = _load_generator()


# ---------------------------------------------------------------------- helpers
def validate_gpkg(path: Path) -> None:
    """GDAL's own GeoPackage validator (PyPI gdal-utils) — the code behind
    ``python -m osgeo_utils.samples.validate_gpkg``, called in-process (≈10 ms instead of
    ≈150 ms per call; tests/core/test_project.py runs it as a separate process)."""
    errors = _validator.check(str(path), abort_at_first_error=False, warning_msg=False)
    assert errors == [], errors


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "p", county="测试县", crs=4549)


def refused(project: Project, path: Path, code: str, **kwargs: Any) -> ImportRefused:
    """Import ``path`` expecting a refusal with ``code``; check the project is unchanged."""
    before = project.snapshot_state()
    before_bytes = file_sha(project.gpkg)
    with pytest.raises(ImportRefused) as info:
        import_layer(project, path, **kwargs)
    err = info.value
    assert err.code == code, (err.code, err.en)
    assert err.path == str(path)
    assert err.zh and err.en and err.zh != err.en
    assert project.snapshot_state() == before
    assert file_sha(project.gpkg) == before_bytes
    assert not list(project.folder.glob("*-journal")) and not list(project.folder.glob("*-wal"))
    validate_gpkg(project.gpkg)
    return err


def says(err: ImportRefused | dict, zh: list[str], en: list[str]) -> None:
    """Both texts mention the problem (key words; English case-insensitive)."""
    text_zh = err.zh if isinstance(err, ImportRefused) else err["zh"]
    text_en = err.en if isinstance(err, ImportRefused) else err["en"]
    for word in zh:
        assert word in text_zh, (word, text_zh)
    for word in en:
        assert word.lower() in text_en.lower(), (word, text_en)


def message(report: ImportReport, code: str) -> dict:
    found = [m for m in report.messages if m["code"] == code]
    assert found, (code, [m["code"] for m in report.messages])
    return found[0]


def written(project: Project, report: ImportReport) -> Any:
    """Read the imported layer back and check what every import must give."""
    gdf = project.read_layer(report.name)
    assert len(gdf) == report.feature_count
    assert project.layer(report.name).feature_count == report.feature_count
    assert gdf.crs.to_epsg() == 4549
    geoms = gdf.geometry.values
    assert shapely.is_valid(geoms).all()
    assert not shapely.has_z(geoms).any()
    validate_gpkg(project.gpkg)
    return gdf


def raw(path: Path, **kwargs: Any) -> Any:
    """The source as GDAL reads it, without any multiplan processing."""
    return pyogrio.read_dataframe(path, fid_as_index=True, **kwargs)


# ---------------------------------------------------------------------- the data itself
def test_every_hostile_file_is_catalogued_and_small() -> None:
    inputs = {p.name for p in HOSTILE.iterdir()
              if p.suffix in {".shp", ".geojson", ".gpkg", ".zip", ".tif"}}
    assert inputs == set(GEN.CATALOGUE)
    assert len(inputs) >= 12
    for p in HOSTILE.iterdir():
        assert p.stat().st_size < 32 * 1024, p
    readme = (HOSTILE / "README.md").read_text(encoding="utf-8")
    for name in GEN.CATALOGUE:
        assert f"`{name}`" in readme


# ---------------------------------------------------------------------- geometry
def test_self_intersecting_parcel_is_repaired(project: Project) -> None:
    path = HOSTILE / "self_intersecting.shp"
    src = raw(path)
    assert list(shapely.is_valid(src.geometry.values)) == [True, False, True]
    report = import_layer(project, path)
    assert report.repaired == [1]
    assert report.source_features == report.feature_count == 3
    assert report.dropped_null == report.dropped_empty == report.dropped_collapsed == []
    says(message(report, "geom.repaired"), ["修复", "1"], ["repaired", "Self-intersection"])
    gdf = written(project, report)
    assert list(gdf.geom_type) == ["MultiPolygon"] * 3
    # the valid neighbours are untouched: 100 m squares
    assert gdf.geometry.iloc[0].area == pytest.approx(10_000.0)
    assert gdf.geometry.iloc[2].area == pytest.approx(10_000.0)
    assert gdf.geometry.iloc[1].area > 0
    assert list(gdf["DLMC"]) == GEN.NAMES[:3]
    assert project.layer(report.name).report["repaired"] == [1]


def test_bowtie_becomes_two_triangles(project: Project) -> None:
    path = HOSTILE / "bowtie.geojson"
    report = import_layer(project, path)
    assert report.repaired == [1]
    assert report.feature_count == 3
    gdf = written(project, report)
    bowtie, square = gdf.geometry.iloc[1], gdf.geometry.iloc[0]
    assert shapely.get_num_geometries(bowtie) == 2
    # the two triangles of a bow-tie over a square cover half of it
    assert bowtie.area == pytest.approx(square.area / 2, rel=0.01)


def test_empty_layer_is_refused(project: Project) -> None:
    path = HOSTILE / "empty.gpkg"
    assert len(raw(path)) == 0
    err = refused(project, path, "file.empty")
    says(err, ["没有任何要素"], ["no features"])
    assert err.feature is None


def test_null_and_empty_geometries_are_dropped(project: Project) -> None:
    path = HOSTILE / "null_geometries.geojson"
    report = import_layer(project, path)
    assert report.source_features == 6
    assert report.dropped_null == [1, 3]
    assert report.dropped_empty == [4]
    assert report.feature_count == 3
    says(message(report, "geom.null"), ["没有几何", "1, 3"], ["no geometry", "1, 3"])
    says(message(report, "geom.empty"), ["为空", "4"], ["empty geometry", "4"])
    gdf = written(project, report)
    assert list(gdf["DLBM"]) == ["0101", "0301", "0201"]  # source features 0, 2, 5


def test_all_null_geometries_are_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "all_null.geojson", "geom.all_empty")
    says(err, ["为空或缺失"], ["empty or missing"])


def test_points_in_a_polygon_role_are_refused(project: Project) -> None:
    path = HOSTILE / "points_in_polygon_role.geojson"
    err = refused(project, path, "geom.wrong_type", role="current_use")
    assert err.feature == 1
    says(err, ["面要素", "点", "1, 2"], ["polygons", "Point", "1, 2"])


def test_points_are_fine_where_any_geometry_is(project: Project) -> None:
    report = import_layer(project, HOSTILE / "points_in_polygon_role.geojson",
                          role="reference")
    gdf = written(project, report)
    assert len(gdf) == 4
    assert sorted(set(gdf.geom_type)) == ["Point", "Polygon"]


def test_z_coordinates_are_dropped(project: Project) -> None:
    path = HOSTILE / "z_coords.geojson"
    assert shapely.has_z(raw(path).geometry.values).all()
    report = import_layer(project, path)
    assert report.z_dropped == 3
    assert report.feature_count == 3
    says(message(report, "geom.z_dropped"), ["Z"], ["Z/M", "dropped"])
    written(project, report)


def test_mixed_geometry_types_are_normalised(project: Project) -> None:
    path = HOSTILE / "mixed_geometry_types.geojson"
    assert list(raw(path).geom_type) == ["Polygon", "MultiPolygon", "GeometryCollection"]
    report = import_layer(project, path)
    assert report.feature_count == 3
    assert report.parts_dropped == [2]
    assert report.repaired == []
    assert report.promoted_to_multi == 1
    says(message(report, "geom.parts_dropped"), ["非面部分", "2"], ["non-polygon parts", "2"])
    gdf = written(project, report)
    assert list(gdf.geom_type) == ["MultiPolygon"] * 3
    assert list(shapely.get_num_geometries(gdf.geometry.values)) == [1, 2, 1]


def test_zero_area_polygon_is_dropped_after_repair(project: Project) -> None:
    report = import_layer(project, HOSTILE / "degenerate.geojson")
    assert report.repaired == [1]
    assert report.dropped_collapsed == [1]
    assert report.feature_count == 1
    says(message(report, "geom.collapsed"), ["没有面积", "1"], ["no area", "1"])
    written(project, report)


# ---------------------------------------------------------------------- CRS
def test_missing_prj_lonlat_is_refused_naming_4490(project: Project) -> None:
    path = HOSTILE / "no_prj_lonlat.shp"
    assert not path.with_suffix(".prj").exists()
    err = refused(project, path, "crs.missing")
    says(err, ["坐标系", ".prj", "经纬度", "EPSG:4490"], ["no CRS", ".prj", "EPSG:4490"])
    assert err.to_dict()["extra"]["likely_crs"] == "EPSG:4490"


@pytest.mark.parametrize("assume", ["detected", 4490, "EPSG:4490"])
def test_missing_prj_lonlat_imports_when_confirmed(project: Project, assume: Any) -> None:
    path = HOSTILE / "no_prj_lonlat.shp"
    report = import_layer(project, path, assume_crs=assume)
    assert report.crs_assumed is True
    assert report.source_crs.startswith("EPSG:4490 ")
    says(message(report, "crs.assumed"), ["假定", "EPSG:4490"], ["assumed", "EPSG:4490"])
    assert "EPSG:4490" in report.crs_note
    rec = project.layer(report.name)
    assert rec.crs_assumed is True and rec.source_crs.startswith("EPSG:4490")
    gdf = written(project, report)
    src = shapely.get_coordinates(raw(path).geometry.values)
    x, y = Transformer.from_crs(4490, 4549, always_xy=True).transform(src[:, 0], src[:, 1])
    np.testing.assert_allclose(shapely.get_coordinates(gdf.geometry.values),
                               np.column_stack([x, y]), atol=1e-4)


def test_missing_prj_lonlat_wrong_assumption_is_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "no_prj_lonlat.shp", "crs.assumption_wrong",
                  assume_crs=4549)
    says(err, ["EPSG:4549", "不符", "EPSG:4490"], ["EPSG:4549", "does not fit", "EPSG:4490"])


def test_missing_prj_gk_is_refused_naming_the_project_zone(project: Project) -> None:
    path = HOSTILE / "no_prj_gk.shp"
    err = refused(project, path, "crs.missing")
    says(err, ["缺少 .prj", "不含带号", "EPSG:4549"], ["no CRS", "without zone prefix",
                                                   "EPSG:4549"])
    report = import_layer(project, path, assume_crs="detected")
    assert report.crs_assumed and report.source_crs.startswith("EPSG:4549 ")
    gdf = written(project, report)
    np.testing.assert_array_equal(shapely.get_coordinates(gdf.geometry.values),
                                  shapely.get_coordinates(raw(path).geometry.values))


def test_missing_prj_gk_wrong_assumption_is_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "no_prj_gk.shp", "crs.assumption_wrong", assume_crs=4528)
    says(err, ["EPSG:4528", "EPSG:4549"], ["EPSG:4528", "EPSG:4549", "no prefix"])


def test_prefixed_coordinates_labelled_unprefixed_are_refused(project: Project) -> None:
    path = HOSTILE / "gk_prefixed_as_4549.shp"
    src = raw(path)
    assert src.crs.to_epsg() == 4549
    assert 40_000_000 < src.total_bounds[0] < 41_000_000
    err = refused(project, path, "crs.mismatch")
    says(err, ["EPSG:4549", "带号 40", "EPSG:4528"], ["EPSG:4549", "zone prefix", "EPSG:4528"])
    assert err.to_dict()["extra"]["likely_crs"] == "EPSG:4528"


def test_prefixed_coordinates_import_when_confirmed(project: Project) -> None:
    path = HOSTILE / "gk_prefixed_as_4549.shp"
    report = import_layer(project, path, assume_crs="detected")
    assert report.crs_assumed and report.source_crs.startswith("EPSG:4528 ")
    says(message(report, "crs.assumed"), ["EPSG:4549", "EPSG:4528"],
         ["EPSG:4549", "EPSG:4528", "confirmed"])
    gdf = written(project, report)
    src = shapely.get_coordinates(raw(path).geometry.values)
    x, y = Transformer.from_crs(4528, 4549, always_xy=True).transform(src[:, 0], src[:, 1])
    got = shapely.get_coordinates(gdf.geometry.values)
    np.testing.assert_allclose(got, np.column_stack([x, y]), atol=1e-4)
    # same central meridian: only the false easting differs
    np.testing.assert_allclose(got, src - [40_000_000.0, 0.0], atol=1e-4)


def test_unprefixed_coordinates_labelled_prefixed_are_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "gk_unprefixed_as_4528.shp", "crs.mismatch")
    says(err, ["EPSG:4528", "500000", "EPSG:4549"], ["EPSG:4528", "500 000", "EPSG:4549"])
    assert err.to_dict()["extra"]["likely_crs"] == "EPSG:4549"


def test_a_wrong_zone_that_still_fits_china_is_imported_with_a_warning(
        project: Project) -> None:
    # Unprefixed coordinates carry no zone: "confirmed" as CM 108°E (EPSG:4545) they still
    # lie in China, so only the distance to the layers already in the project shows it.
    path = HOSTILE / "no_prj_gk.shp"
    first = import_layer(project, path, assume_crs="detected", name="right")
    assert "extent.far" not in [m["code"] for m in first.messages]
    report = import_layer(project, path, assume_crs=4545, name="wrong")
    says(message(report, "extent.far"), ["50 公里", "坐标系"], ["50 km", "check its CRS"])
    assert report.source_crs.startswith("EPSG:4545 ") and report.crs_assumed


def test_a_second_import_under_the_same_name_is_refused(project: Project) -> None:
    path = HOSTILE / "bowtie.geojson"
    import_layer(project, path)
    err = refused(project, path, "layer.exists")
    says(err, ["已有图层 bowtie"], ["already has a layer bowtie"])
    err = refused(project, HOSTILE / "degenerate.geojson", "layer.exists", name="BowTie")
    says(err, ["BowTie"], ["BowTie"])  # SQLite table names ignore case
    report = import_layer(project, HOSTILE / "degenerate.geojson", name="bowtie",
                          replace=True)
    assert len(written(project, report)) == 1
    assert [r.name for r in project.layers()] == ["bowtie"]


def test_lonlat_labelled_gk_is_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "lonlat_as_4549.shp", "crs.mismatch")
    says(err, ["经纬度", "EPSG:4490"], ["longitude/latitude", "EPSG:4490"])


def test_data_outside_china_is_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "outside_china.geojson", "crs.mismatch")
    says(err, ["中国范围之外"], ["outside China"])
    # confirming the declared CRS does not make it fit
    err = refused(project, HOSTILE / "outside_china.geojson", "crs.assumption_wrong",
                  assume_crs=4326)
    says(err, ["中国范围之外"], ["outside China"])


# ---------------------------------------------------------------------- encodings
def _ldid(path: Path) -> int:
    return path.with_suffix(".dbf").read_bytes()[29]


def test_gbk_without_cpg_is_detected(project: Project) -> None:
    path = HOSTILE / "gbk_no_cpg.shp"
    assert not path.with_suffix(".cpg").exists() and _ldid(path) == 0
    dbf = path.with_suffix(".dbf").read_bytes()
    assert "水田".encode("gbk") in dbf and "水田".encode() not in dbf
    report = import_layer(project, path)
    assert report.encoding == "GBK"
    assert report.encoding_source == "detected"
    says(message(report, "encoding.used"), ["GBK", "按内容检测"], ["GBK", "detected"])
    gdf = written(project, report)
    assert list(gdf["DLMC"]) == GEN.NAMES[:3]
    assert list(gdf["QSDWMC"]) == GEN.OWNERS[:3]
    assert project.layer(report.name).encoding == "GBK"


def test_gbk_with_cpg(project: Project) -> None:
    path = HOSTILE / "gbk_cpg.shp"
    assert path.with_suffix(".cpg").read_text() == "936"
    report = import_layer(project, path)
    assert (report.encoding, report.encoding_source) == ("GBK", "cpg")
    gdf = written(project, report)
    assert list(gdf["DLMC"]) == GEN.NAMES[:3]
    assert list(gdf["QSDWMC"]) == GEN.OWNERS[:3]


def test_gbk_from_dbf_language_byte(project: Project) -> None:
    path = HOSTILE / "gbk_ldid.shp"
    assert not path.with_suffix(".cpg").exists() and _ldid(path) == 0x4D
    report = import_layer(project, path)
    assert (report.encoding, report.encoding_source) == ("GBK", "dbf_ldid")
    assert list(written(project, report)["DLMC"]) == GEN.NAMES[:3]


def test_cpg_that_lies_is_refused_then_imported_with_the_right_encoding(
        project: Project) -> None:
    path = HOSTILE / "gbk_cpg_says_utf8.shp"
    err = refused(project, path, "encoding.mismatch")
    assert err.feature == 0
    says(err, ["UTF-8", ".cpg", "GBK", "第 0 号要素"], ["UTF-8", "cpg", "GBK", "feature 0"])
    report = import_layer(project, path, encoding="GBK")
    assert (report.encoding, report.encoding_source) == ("GBK", "user")
    assert list(written(project, report)["QSDWMC"]) == GEN.OWNERS[:3]


# ---------------------------------------------------------------------- damaged files
def test_truncated_shapefile_is_refused_naming_the_feature(project: Project) -> None:
    path = HOSTILE / "truncated.shp"
    header = path.read_bytes()[:100]
    declared = struct.unpack(">i", header[24:28])[0] * 2
    assert path.stat().st_size < declared
    err = refused(project, path, "shp.truncated")
    assert err.feature == 3
    says(err, ["截断", str(declared), "第 3 号要素"], ["truncated", str(declared), "feature 3"])


@pytest.mark.parametrize("name, part", [("truncated_shx.shp", ".shx"),
                                        ("truncated_dbf.shp", ".dbf")])
def test_truncated_index_or_attributes_are_refused(project: Project, name: str,
                                                  part: str) -> None:
    err = refused(project, HOSTILE / name, "shp.truncated")
    assert err.feature == 3
    assert err.to_dict()["extra"]["part"] == part
    says(err, [part, "截断", "第 3 号要素"], [part, "truncated", "feature 3"])


def test_shapefile_without_dbf_is_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "missing_dbf.shp", "shp.missing_part")
    says(err, ["缺少", ".dbf"], ["no .dbf"])


@pytest.mark.parametrize("name", ["corrupt.gpkg", "truncated.gpkg"])
def test_damaged_geopackage_is_refused(project: Project, name: str) -> None:
    err = refused(project, HOSTILE / name, "file.unreadable")
    says(err, ["无法读取", "损坏"], ["cannot be read", "damaged"])


def test_corrupt_zip_is_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "corrupt.zip", "zip.corrupt")
    says(err, ["压缩包", "损坏"], ["zip", "corrupt"])


# ---------------------------------------------------------------------- choosing a layer
def test_geopackage_with_two_layers_needs_a_choice(project: Project) -> None:
    path = HOSTILE / "two_layers.gpkg"
    err = refused(project, path, "gpkg.multiple_layers")
    says(err, ["多个图层", "parcels", "parcels_old"], ["several layers", "parcels_old"])
    assert err.to_dict()["extra"]["layers"] == ["parcels", "parcels_old"]
    err = refused(project, path, "gpkg.no_such_layer", layer="nope")
    says(err, ["nope"], ["no layer nope", "parcels_old"])
    report = import_layer(project, path, layer="parcels_old")
    assert report.name == "parcels_old" and report.source_layer == "parcels_old"
    gdf = written(project, report)
    assert len(gdf) == 6
    assert gdf.total_bounds[1] == pytest.approx(GEN.GK_Y0 + 1000)


def test_zip_with_two_shapefiles_needs_a_choice(project: Project) -> None:
    path = HOSTILE / "two_shapefiles.zip"
    err = refused(project, path, "zip.multiple_layers")
    says(err, ["多个图层", "village_a", "village_b"], ["several layers", "village_b"])
    err = refused(project, path, "zip.no_such_layer", layer="nope")
    says(err, ["没有图层 nope", "village_a"], ["no layer nope", "village_b"])
    report = import_layer(project, path, layer="village_b")
    gdf = written(project, report)
    assert len(gdf) == 3
    assert gdf.total_bounds[1] == pytest.approx(GEN.GK_Y0 + 500)


@pytest.mark.parametrize("name", ["bowtie.geojson", "gbk_cpg.shp"])
def test_a_layer_name_not_in_a_single_layer_file_is_refused(project: Project,
                                                            name: str) -> None:
    err = refused(project, HOSTILE / name, "file.no_such_layer", layer="roads")
    says(err, ["没有图层 roads", Path(name).stem], ["no layer roads", Path(name).stem])


def test_zip_with_same_named_shapefiles_in_two_folders(project: Project) -> None:
    path = HOSTILE / "same_stem_shapefiles.zip"
    err = refused(project, path, "zip.multiple_layers", layer="DLTB")
    says(err, ["2020/DLTB.shp", "2023/DLTB.shp", "路径"], ["2023/DLTB.shp", "path in the zip"])
    report = import_layer(project, path, layer="2023/DLTB")
    assert report.name == "2023_DLTB"
    assert written(project, report).total_bounds[1] == pytest.approx(GEN.GK_Y0 + 500)


def test_a_layer_name_not_in_a_zip_is_not_ignored(project: Project) -> None:
    # a zip with one shapefile: asking for another layer must not import that one
    err = refused(project, DATA / "good" / "parcels_shp_4490.zip", "zip.no_such_layer",
                  layer="roads")
    says(err, ["roads", "parcels_zip_4490.shp"], ["no layer roads"])


@pytest.mark.parametrize("name, member", [
    ("zip_traversal.zip", "../../evil.shp"),
    ("zip_absolute.zip", "/tmp/multiplan_evil/evil.shp"),
    ("zip_backslash.zip", "..\\..\\evil.shp"),
])
def test_zip_with_unsafe_member_is_refused_and_nothing_extracted(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        name: str, member: str) -> None:
    # run from deep inside tmp_path and from a copy inside tmp_path, so that even a naive
    # extraction could only land inside tmp_path — where we then look for it
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    zpath = work / name
    shutil.copy(HOSTILE / name, zpath)
    monkeypatch.chdir(work)
    assert not Path("/tmp/multiplan_evil").exists()
    err = refused(project, zpath, "zip.unsafe_member")
    assert err.feature == member
    says(err, ["不安全的路径", member, "拒绝"], ["unsafe member path", member, "refused"])
    assert not list(tmp_path.rglob("evil*"))
    assert not Path("/tmp/multiplan_evil").exists()
    assert not list(HOSTILE.glob("evil*")) and not list(DATA.glob("evil*"))


# ---------------------------------------------------------------------- fields and codes
def test_unknown_codes_are_imported_and_flagged(project: Project) -> None:
    path = HOSTILE / "unknown_codes.geojson"
    report = import_layer(project, path, scheme="ydyh2023", code_field="DLBM")
    assert report.feature_count == 5
    assert report.unknown_codes == {"9999": 1, "XX": 1}
    assert report.unknown_code_features == [2, 4]
    assert report.scheme == "ydyh2023" and report.code_field == "DLBM"
    says(message(report, "codes.unknown"), ["9999", "XX", "unknown"],
         ["9999", "XX", "not in", "flagged unknown"])
    gdf = written(project, report)
    assert list(gdf["mp_status"] == "unknown") == [False, False, True, False, True]
    assert list(gdf["mp_code"].iloc[[0, 1, 3]]) == ["0101", "0103", "0301"]
    rec = project.layer(report.name)
    assert (rec.scheme, rec.code_field) == ("ydyh2023", "DLBM")
    assert rec.report["unknown_codes"] == {"9999": 1, "XX": 1}


def test_a_field_with_no_valid_code_is_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "unknown_codes.geojson", "codes.none_valid",
                  scheme="ydyh2023", code_field="OLDBM")
    says(err, ["OLDBM", "没有一个代码"], ["OLDBM", "no value"])


def test_missing_code_field_is_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "missing_code_field.geojson", "field.missing",
                  scheme="ydyh2023", code_field="DLBM")
    says(err, ["DLBM", "DLMC", "QSDWMC"], ["no code field DLBM", "DLMC", "QSDWMC"])


def test_fid_attribute_with_repeated_values_is_kept_under_another_name(
        project: Project) -> None:
    path = HOSTILE / "duplicate_fid_field.shp"
    assert list(raw(path)["fid"]) == [1, 2, 1]
    report = import_layer(project, path)
    says(message(report, "field.renamed"), ["fid → fid_src"], ["fid → fid_src"])
    gdf = written(project, report)
    assert list(gdf.index) == [1, 2, 3]
    assert list(gdf["fid_src"]) == [1, 2, 1]
    assert not any(t.startswith("mp_tmp_") for t in project.snapshot_state()["tables"])


def test_clashing_field_names_are_renamed(project: Project) -> None:
    report = import_layer(project, HOSTILE / "clashing_field_names.geojson",
                          code_field="DLBM", scheme="ydyh2023")
    gdf = written(project, report)
    assert list(gdf["geom_src"]) == ["g0", "g1"]
    assert list(gdf["FID_src"]) == [7, 7]
    assert list(gdf["DLBM"]) == ["0101", "0103"]
    assert list(gdf["dlbm_2"]) == ["0103", "0301"]
    assert project.layer(report.name).code_field == "DLBM"


# ---------------------------------------------------------------------- rasters
def test_raster_without_crs_is_refused_then_imported_when_confirmed(project: Project) -> None:
    path = HOSTILE / "raster_no_crs.tif"
    err = refused(project, path, "crs.missing")
    says(err, ["栅格没有坐标系", "EPSG:4490"], ["raster has no CRS", "EPSG:4490"])
    assert err.to_dict()["extra"]["likely_crs"] == "EPSG:4490"
    err = refused(project, path, "crs.assumption_wrong", assume_crs=4549)
    says(err, ["EPSG:4549", "经纬度"], ["EPSG:4549", "longitude/latitude", "EPSG:4490"])
    assert project.snapshot_state()["rasters"] == []
    report = import_layer(project, path, assume_crs="detected")
    assert report.crs_assumed and report.source_crs.startswith("EPSG:4490 ")
    says(message(report, "crs.assumed"), ["假定", "EPSG:4490"], ["assumed", "EPSG:4490"])
    assert project.layer("raster_no_crs").crs_assumed is True
    assert project.raster_path("raster_no_crs").is_file()
    validate_gpkg(project.gpkg)


def test_corrupt_raster_is_refused(project: Project) -> None:
    err = refused(project, HOSTILE / "corrupt.tif", "file.unreadable")
    says(err, ["栅格", "损坏"], ["raster cannot be read", "damaged"])
