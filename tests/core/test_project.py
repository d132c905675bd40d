"""The project container: plan.gpkg as an ordinary GeoPackage 1.3, settings, schema
versions and migration, transactions, layer writes and removals, and bad folders."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import MultiPolygon, box

from multiplan.core.errors import ProjectError
from multiplan.core.io import import_layer
from multiplan.core.layers import LayerRecord
from multiplan.core.project import SCHEMA_VERSION, Project

DATA = Path(__file__).resolve().parents[1] / "data"
V1_PROJECT = DATA / "projects" / "schema_v1"
GOOD = DATA / "good"


def validate_gpkg(path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "osgeo_utils.samples.validate_gpkg",
                           str(path)], check=False, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_only(gpkg: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True))


def tables(gpkg: Path) -> set[str]:
    with read_only(gpkg) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def columns(gpkg: Path, table: str) -> list[str]:
    with read_only(gpkg) as conn:
        return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "p", county="测试县", crs=4549, admin_code="330522")


def squares(n: int, crs: int = 4549) -> gpd.GeoDataFrame:
    geoms = [MultiPolygon([box(490_000 + 100 * k, 3_430_000, 490_100 + 100 * k, 3_430_100)])
             for k in range(n)]
    return gpd.GeoDataFrame({"DLBM": ["0101"] * n, "n": list(range(n))}, geometry=geoms,
                            crs=crs)


def record(name: str) -> LayerRecord:
    return LayerRecord(name=name, kind="vector", level="county", role="current_use",
                       geometry_type="MultiPolygon", source_path="/src/x.gpkg")


# ---------------------------------------------------------------------- create / open
def test_create_open_round_trip(project: Project) -> None:
    folder = project.folder
    assert (folder / "plan.gpkg").is_file()
    assert (folder / "rasters").is_dir() and (folder / "exports").is_dir()
    for opened in (Project.open(folder), Project.open(folder / "plan.gpkg")):
        assert opened.folder == folder
        assert opened.county == "测试县"
        assert opened.epsg == 4549 and opened.crs.to_epsg() == 4549
        s = opened.settings
        assert s["admin_code"] == "330522"
        assert s["crs_convention"] == "unprefixed" and s["central_meridian"] == 120
        assert len(s["project_id"]) == 32
        assert s["area_method"] == "planar"
        assert opened.schema_version == SCHEMA_VERSION
        assert opened.layers() == []
    assert [a["action"] for a in project.audit_log()] == ["project.create"]


@pytest.mark.parametrize("kwargs, epsg, convention", [
    ({"central_longitude": 119.9}, 4549, "unprefixed"),
    ({"central_longitude": 119.9, "prefixed": True}, 4528, "prefixed"),
    ({"central_longitude": 110.4}, 4546, "unprefixed"),  # 湛江: CM 111°E
    ({"crs": "EPSG:4525"}, 4525, "prefixed"),
])
def test_create_chooses_the_zone(tmp_path: Path, kwargs: dict, epsg: int,
                                 convention: str) -> None:
    p = Project.create(tmp_path / "p", county="县", **kwargs)
    assert p.epsg == epsg and p.setting("crs_convention") == convention


@pytest.mark.parametrize("kwargs, code", [
    ({}, "project.crs_missing"),
    ({"crs": 4326}, "project.crs_not_gk3"),
    ({"crs": 4498}, "project.crs_not_gk3"),  # a 6° zone
    ({"crs": "not a crs"}, "project.crs_invalid"),
])
def test_create_refuses_a_bad_crs(tmp_path: Path, kwargs: dict, code: str) -> None:
    with pytest.raises(ProjectError) as info:
        Project.create(tmp_path / "p", county="县", **kwargs)
    assert info.value.code == code
    assert info.value.zh and info.value.en
    assert not (tmp_path / "p" / "plan.gpkg").exists()


def test_create_refuses_a_non_empty_folder_unless_told(project: Project) -> None:
    with pytest.raises(ProjectError) as info:
        Project.create(project.folder, county="别的县", crs=4549)
    assert info.value.code == "project.exists"
    assert Project.open(project.folder).county == "测试县"
    again = Project.create(project.folder, county="别的县", crs=4549, overwrite=True)
    assert again.county == "别的县"


def test_overwrite_never_deletes_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    folder = tmp_path / "my_documents"
    folder.mkdir()
    (folder / "规划说明.docx").write_bytes(b"precious")
    with pytest.raises(ProjectError) as info:
        Project.create(folder, county="县", crs=4549, overwrite=True)
    assert info.value.code == "project.overwrite_refused"
    assert (folder / "规划说明.docx").read_bytes() == b"precious"


def test_settings_persist_and_are_audited(project: Project) -> None:
    project.set_settings(sliver_max_area_m2=500.0, county="长兴县",
                         note={"审批": "已通过", "n": [1, 2]})
    reopened = Project.open(project.folder)
    assert reopened.setting("sliver_max_area_m2") == 500.0
    assert reopened.county == "长兴县"
    assert reopened.setting("note") == {"审批": "已通过", "n": [1, 2]}
    assert reopened.setting("missing", "dflt") == "dflt"
    with sqlite3.connect(project.gpkg) as conn:  # stored as JSON text, Chinese unescaped
        raw = dict(conn.execute('SELECT "key", "value" FROM mp_settings').fetchall())
    assert raw["county"] == '"长兴县"'
    last = project.audit_log()[-1]
    assert last["action"] == "settings.update"
    assert json.loads(last["detail"])["county"] == "长兴县"


# ---------------------------------------------------------------------- GeoPackage
def test_plan_gpkg_is_geopackage_1_3(project: Project) -> None:
    header = project.gpkg.read_bytes()[:100]
    assert header[:16] == b"SQLite format 3\x00"
    assert header[68:72] == b"GPKG"  # application_id
    assert struct.unpack(">I", header[60:64])[0] == 10300  # user_version
    with sqlite3.connect(project.gpkg) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 10300
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        kinds = dict(conn.execute("SELECT table_name, data_type FROM gpkg_contents"))
    for t in ("mp_schema", "mp_settings", "mp_layers", "mp_audit"):
        assert kinds[t] == "attributes"
    validate_gpkg(project.gpkg)


def test_plan_gpkg_stays_valid_after_imports(project: Project) -> None:
    import_layer(project, GOOD / "parcels_4528.shp")
    import_layer(project, GOOD / "two_layers_4490.gpkg", layer="roads", role="reference")
    import_layer(project, GOOD / "landcover_4490.tif")
    validate_gpkg(project.gpkg)
    with sqlite3.connect(project.gpkg) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 10300
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    names = {"parcels_4528", "roads"}
    ogrinfo = Path("/usr/bin/ogrinfo")
    if ogrinfo.exists():
        out = subprocess.run([str(ogrinfo), "-so", "-ro", str(project.gpkg)], check=False,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        listed = {line.split(":")[1].split("(")[0].strip()
                  for line in out.stdout.splitlines() if line[:1].isdigit()}
    else:
        listed = {str(n) for n in pyogrio.list_layers(project.gpkg)[:, 0]}
    assert names <= listed
    assert {"mp_settings", "mp_layers", "mp_audit"} <= listed
    assert not any(n.startswith("mp_tmp_") for n in listed)


# ---------------------------------------------------------------------- schema versions
def test_a_newer_schema_is_refused_and_the_file_left_alone(project: Project,
                                                           tmp_path: Path) -> None:
    copy = tmp_path / "newer"
    shutil.copytree(project.folder, copy)
    with sqlite3.connect(copy / "plan.gpkg") as conn:
        conn.execute('UPDATE "mp_schema" SET "version" = 99')
    before = sha(copy / "plan.gpkg")
    with pytest.raises(ProjectError) as info:
        Project.open(copy)
    err = info.value
    assert err.code == "project.schema_newer"
    assert err.path == str(copy / "plan.gpkg")
    assert "99" in err.zh and "较新" in err.zh and "未作任何修改" in err.zh
    assert "99" in err.en and "newer" in err.en and "not modified" in err.en
    assert sha(copy / "plan.gpkg") == before
    assert sorted(p.name for p in copy.iterdir()) == ["exports", "plan.gpkg", "rasters"]


def test_an_invalid_schema_version_is_refused(project: Project) -> None:
    with sqlite3.connect(project.gpkg) as conn:
        conn.execute('UPDATE "mp_schema" SET "version" = 0')
    with pytest.raises(ProjectError) as info:
        Project.open(project.folder)
    assert info.value.code == "project.schema_invalid"


def test_the_v1_fixture_is_a_v1_project() -> None:
    gpkg = V1_PROJECT / "plan.gpkg"
    with read_only(gpkg) as conn:
        assert conn.execute('SELECT "version" FROM mp_schema').fetchall() == [(1,)]
    assert "mp_audit" not in tables(gpkg)
    cols = columns(gpkg, "mp_layers")
    for missing in ("scheme_version", "name_field", "raster_path", "synthetic"):
        assert missing not in cols
    assert {"name", "source_sha256", "scheme", "code_field", "report"} <= set(cols)


def test_a_v1_project_is_migrated(tmp_path: Path) -> None:
    folder = tmp_path / "v1"
    shutil.copytree(V1_PROJECT, folder)
    fixture_hash = sha(V1_PROJECT / "plan.gpkg")
    with sqlite3.connect(folder / "plan.gpkg") as conn:
        old_row = dict(zip(columns(folder / "plan.gpkg", "mp_layers"),
                           conn.execute("SELECT * FROM mp_layers").fetchone(), strict=True))
        old_settings = dict(conn.execute('SELECT "key", "value" FROM mp_settings'))

    project = Project.open(folder)

    assert project.schema_version == 3 == SCHEMA_VERSION
    gpkg = folder / "plan.gpkg"
    cols = columns(gpkg, "mp_layers")
    for new in ("scheme_version", "name_field", "raster_path", "synthetic"):
        assert new in cols
    assert {"mp_audit", "mp_audit_head"} <= tables(gpkg)
    assert {"seq", "prev_hash", "hash"} <= set(columns(gpkg, "mp_audit"))
    audit = project.audit_log()
    # 1 → 2 creates the (unchained) audit table, 2 → 3 starts the chain on it
    assert [a["action"] for a in audit] == ["audit.chain_start", "project.migrate"]
    assert json.loads(audit[0]["detail"])["entries_hashed"] == 0
    assert json.loads(audit[1]["detail"]) == {"from": 1, "to": 3}
    assert [a["seq"] for a in audit] == [1, 2]
    assert project.verify_audit().ok
    # the old layer and its registry data survive
    rec = project.layer("parcels")
    for key in ("kind", "level", "role", "title", "geometry_type", "feature_count",
                "source_path", "source_sha256", "source_crs", "encoding", "scheme",
                "code_field", "imported_at"):
        assert getattr(rec, key) == old_row[key], key
    assert rec.report == json.loads(old_row["report"])
    assert rec.synthetic is False and rec.name_field is None and rec.raster_path is None
    gdf = project.read_layer("parcels")
    assert list(gdf["DLMC"]) == ["水田", "果园", "乔木林地"]
    assert gdf.crs.to_epsg() == 4549 and list(gdf.index) == [1, 2, 3]
    assert project.county == "长兴县" and project.epsg == 4549
    with sqlite3.connect(gpkg) as conn:
        assert dict(conn.execute('SELECT "key", "value" FROM mp_settings')) == old_settings
    validate_gpkg(gpkg)
    # opening again does not migrate twice; the migrated project takes new layers
    again = Project.open(folder)
    assert [a["action"] for a in again.audit_log()] == ["audit.chain_start",
                                                         "project.migrate"]
    import_layer(again, GOOD / "parcels_4528.shp", name_field="DLMC")
    assert again.layer("parcels_4528").name_field == "DLMC"
    validate_gpkg(gpkg)
    assert sha(V1_PROJECT / "plan.gpkg") == fixture_hash  # the fixture itself untouched


# ---------------------------------------------------------------------- transactions
def test_an_error_inside_a_transaction_changes_nothing(project: Project) -> None:
    before = project.snapshot_state()
    before_settings = project.settings
    with pytest.raises(RuntimeError), project.transaction() as conn:
        conn.execute('INSERT INTO "mp_settings" ("key", "value") VALUES (?, ?)',
                     ("half", '"written"'))
        conn.execute('UPDATE "mp_settings" SET "value" = ? WHERE "key" = ?',
                     ('"改了"', "county"))
        conn.execute('INSERT INTO "mp_audit" ("time", "action") VALUES (?, ?)',
                     ("t", "half.done"))
        raise RuntimeError("crash in the middle")
    assert project.snapshot_state() == before
    assert project.settings == before_settings
    assert Project.open(project.folder).county == "测试县"


def test_a_committed_transaction_is_visible(project: Project) -> None:
    with project.transaction() as conn:
        conn.execute('INSERT INTO "mp_settings" ("key", "value") VALUES (?, ?)',
                     ("reviewer", '"李工"'))
    assert Project.open(project.folder).setting("reviewer") == "李工"


# ---------------------------------------------------------------------- layers
def test_write_vector_layer_and_replace(project: Project) -> None:
    project.write_vector_layer(squares(3), record("parcels"))
    assert project.layer("parcels").feature_count == 3
    with pytest.raises(ProjectError) as info:
        project.write_vector_layer(squares(2), record("parcels"))
    assert info.value.code == "layer.exists"
    assert len(project.read_layer("parcels")) == 3

    project.write_vector_layer(squares(2), record("parcels"), replace=True)
    gdf = project.read_layer("parcels")
    assert len(gdf) == 2 and list(gdf["n"]) == [0, 1]
    assert [r.name for r in project.layers()] == ["parcels"]
    assert project.layer("parcels").feature_count == 2
    assert [a["action"] for a in project.audit_log()][-2:] == ["layer.add", "layer.replace"]
    # the spatial index follows the renamed table: a bbox read finds exactly one square
    hit = project.read_layer("parcels", bbox=(490_120, 3_430_010, 490_180, 3_430_090))
    assert list(hit["n"]) == [1]
    with sqlite3.connect(project.gpkg) as conn:
        assert conn.execute('SELECT count(*) FROM "rtree_parcels_geom"').fetchone()[0] == 2
        assert conn.execute("SELECT feature_count FROM gpkg_ogr_contents "
                            "WHERE table_name = 'parcels'").fetchone()[0] == 2
    assert not [t for t in tables(project.gpkg) if t.startswith("mp_tmp_")]
    validate_gpkg(project.gpkg)


def test_layer_names_differing_only_in_case_are_one_name(project: Project) -> None:
    # SQLite table names ignore case: "PARCELS" would collide with the table "parcels"
    project.write_vector_layer(squares(3), record("parcels"))
    before = project.snapshot_state()
    assert project.has_layer("PARCELS")
    with pytest.raises(ProjectError) as info:
        project.write_vector_layer(squares(2), record("PARCELS"))
    assert info.value.code == "layer.exists"
    assert project.snapshot_state() == before
    project.write_vector_layer(squares(2), record("PARCELS"), replace=True)
    assert [r.name for r in project.layers()] == ["PARCELS"]
    assert len(project.read_layer("PARCELS")) == 2
    assert {t.lower() for t in tables(project.gpkg)} >= {"parcels", "rtree_parcels_geom"}
    assert "parcels" not in tables(project.gpkg)
    validate_gpkg(project.gpkg)


def test_a_raster_replacing_a_vector_layer_drops_its_table(project: Project) -> None:
    project.write_vector_layer(squares(3), record("dem"))
    import_layer(project, GOOD / "landcover_4490.tif", name="dem", replace=True)
    assert [(r.name, r.kind) for r in project.layers()] == [("dem", "raster")]
    assert "dem" not in tables(project.gpkg)
    assert not [t for t in tables(project.gpkg) if t.startswith("rtree_dem")]
    validate_gpkg(project.gpkg)


def test_write_vector_layer_refuses_another_crs(project: Project) -> None:
    before = project.snapshot_state()
    with pytest.raises(ProjectError) as info:
        project.write_vector_layer(squares(2, crs=4528), record("parcels"))
    assert info.value.code == "layer.crs_mismatch" and "EPSG:4549" in info.value.en
    assert project.snapshot_state() == before


def test_a_failed_write_leaves_no_trace(project: Project) -> None:
    before = project.snapshot_state()
    bad = squares(2)
    bad["geom"] = ["clashes with", "the geometry column"]
    with pytest.raises(ProjectError) as info:
        project.write_vector_layer(bad, record("parcels"))
    assert info.value.code == "layer.write_failed"
    assert "未作修改" in info.value.zh and "not modified" in info.value.en
    assert project.snapshot_state() == before
    validate_gpkg(project.gpkg)


def test_remove_layer(project: Project) -> None:
    project.write_vector_layer(squares(3), record("a"))
    project.write_vector_layer(squares(1), record("b"))
    import_layer(project, GOOD / "landcover_4490.tif", name="dem")
    raster_file = project.raster_path("dem")
    assert raster_file.is_file()

    project.remove_layer("a")
    assert [r.name for r in project.layers()] == ["b", "dem"]
    left = tables(project.gpkg)
    assert "a" not in left and not [t for t in left if t.startswith("rtree_a_")]
    with sqlite3.connect(project.gpkg) as conn:
        for meta in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_ogr_contents"):
            assert conn.execute(f"SELECT count(*) FROM {meta} WHERE table_name = 'a'"
                                ).fetchone()[0] == 0
    assert len(project.read_layer("b")) == 1

    project.remove_layer("dem")
    assert not raster_file.exists()
    assert [r.name for r in project.layers()] == ["b"]
    assert [a["action"] for a in project.audit_log()][-2:] == ["layer.remove", "layer.remove"]
    with pytest.raises(ProjectError) as info:
        project.remove_layer("a")
    assert info.value.code == "layer.not_found"
    validate_gpkg(project.gpkg)


# ---------------------------------------------------------------------- bad folders
def test_opening_a_folder_without_a_project(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        Project.open(tmp_path)
    assert info.value.code == "project.not_found"
    assert "plan.gpkg" in info.value.zh and "not a multiplan project" in info.value.en


def test_opening_a_corrupt_plan_gpkg(tmp_path: Path) -> None:
    (tmp_path / "plan.gpkg").write_bytes(random.Random(1).randbytes(8192))
    with pytest.raises(ProjectError) as info:
        Project.open(tmp_path)
    assert info.value.code == "project.corrupt"
    assert "损坏" in info.value.zh and "corrupt" in info.value.en


def test_opening_a_truncated_plan_gpkg(project: Project) -> None:
    import_layer(project, GOOD / "parcels_4528.shp")
    data = project.gpkg.read_bytes()
    project.gpkg.write_bytes(data[:len(data) // 3])
    with pytest.raises(ProjectError) as info:
        Project.open(project.folder)
    assert info.value.code == "project.corrupt"


def test_opening_a_plain_geopackage(tmp_path: Path) -> None:
    shutil.copy(GOOD / "two_layers_4490.gpkg", tmp_path / "plan.gpkg")
    with pytest.raises(ProjectError) as info:
        Project.open(tmp_path)
    assert info.value.code == "project.not_multiplan"
    assert "mp_schema" in info.value.en
