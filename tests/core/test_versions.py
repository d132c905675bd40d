"""Published means frozen: the snapshot taken on reaching 已公布, its verification against
tampering, the new version started by an edit, and version comparison against a hand-built
change (areas from shapely on the hand geometries)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from test_assessment_support import X0, Y0
from test_qa import add_layer
from test_workflow import _halves, copy_of, shared_gated_base, to_published

from multiplan.core import versions, workflow
from multiplan.core.project import Project
from multiplan.core.versions import VersionError, compare_versions, verify_snapshot

PLAN = "国土空间规划"


@pytest.fixture(scope="module")
def published_base(tmp_path_factory) -> Path:
    p = copy_of(shared_gated_base(tmp_path_factory), tmp_path_factory.mktemp("ver") / "p")
    to_published(p)
    return p.folder


@pytest.fixture
def project(published_base: Path, tmp_path: Path) -> Project:
    dst = tmp_path / "p"
    shutil.copytree(published_base, dst)
    return Project.open(dst)


def _unlock(path: Path) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def test_snapshot_copy_is_read_only_and_holds_every_table(project: Project):
    [rec] = versions.list_versions(project)
    assert rec["version"] == 1 and rec["path"] == "versions/v1.gpkg"
    snap = project.folder / rec["path"]
    assert not (snap.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    with sqlite3.connect(f"file:{snap}?mode=ro", uri=True) as c:
        contents = {r[0] for r in c.execute("SELECT table_name FROM gpkg_contents")}
        counts = {t: c.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                  for t in contents}
    expected = {t for t in contents if not versions.excluded(t)}
    tables = {k for k in rec["tables"] if not k.startswith("raster:")}
    assert tables == expected
    assert {"mp_conflicts", "mp_qa_runs", "mp_settings", "mp_layers", PLAN} <= tables
    for t in tables:
        assert rec["tables"][t]["rows"] == counts[t], t
    rasters = {k for k in rec["tables"] if k.startswith("raster:")}
    assert "raster:DEM" in rasters
    # the copy's plan layer equals the live one (GDAL read of both)
    a = pyogrio.read_dataframe(snap, layer=PLAN, fid_as_index=True)
    b = pyogrio.read_dataframe(project.gpkg, layer=PLAN, fid_as_index=True)
    assert a.index.tolist() == b.index.tolist()
    assert a.geometry.geom_equals_exact(b.geometry, 0).all()
    # the version row is audited with the same content hash
    snaps = [r for r in project.audit_log() if r["action"] == "versions.snapshot"]
    assert len(snaps) == 1 and rec["content_sha256"] in snaps[0]["detail"]


def test_verify_passes_then_detects_tampering_in_the_copy(project: Project):
    chk = verify_snapshot(project, 1)
    assert chk.ok and chk.file_ok and chk.live_checked and chk.problems == []
    snap = project.folder / "versions" / "v1.gpkg"
    _unlock(snap)
    with sqlite3.connect(snap) as c:
        c.execute("UPDATE mp_layers SET title = '改过' WHERE name = ?", (PLAN,))
    chk = verify_snapshot(project, 1)
    assert not chk.ok and not chk.file_ok
    changed = {(p["where"], p["table"]) for p in chk.problems if p["problem"] == "changed"}
    assert changed == {("snapshot", "mp_layers")}


def test_verify_detects_a_row_deleted_behind_the_projects_back(project: Project):
    with sqlite3.connect(project.gpkg) as c:  # bypasses every guard
        c.execute('DELETE FROM "mp_conflicts" WHERE fid = (SELECT max(fid) FROM mp_conflicts)')
    chk = verify_snapshot(project, 1)
    assert not chk.ok and chk.file_ok
    [p] = chk.problems
    assert (p["where"], p["table"], p["problem"]) == ("live", "mp_conflicts", "changed")
    assert p["rows"][0] == p["rows"][1] + 1


def test_hash_ignores_physical_order_and_header_but_not_values(tmp_path: Path):
    def make(path: Path, rows: list[tuple[int, str, float]]) -> None:
        with sqlite3.connect(path) as c:
            c.execute("CREATE TABLE gpkg_contents (table_name TEXT, data_type TEXT)")
            c.execute("CREATE TABLE gpkg_geometry_columns (table_name TEXT, column_name TEXT)")
            c.execute("INSERT INTO gpkg_contents VALUES ('t', 'attributes')")
            c.execute("CREATE TABLE t (fid INTEGER PRIMARY KEY, a TEXT, b REAL)")
            c.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    rows = [(1, "甲", 1.0), (2, "乙", 2.5), (3, None, 3.0)]
    make(tmp_path / "a.gpkg", rows)
    make(tmp_path / "b.gpkg", list(reversed(rows)))
    make(tmp_path / "c.gpkg", [(1, "甲", 1.0), (2, "乙", 2.5), (3, "", 3.0)])
    make(tmp_path / "d.gpkg", [(1, "甲", 1.0), (2, "乙", 2.5), (3, None, 3)])
    h = {k: versions.content_hashes(tmp_path / f"{k}.gpkg")["t"]["sha256"] for k in "abcd"}
    assert h["a"] == h["b"]
    assert h["a"] != h["c"]  # NULL is not ''
    assert h["a"] == h["d"]  # REAL column stores 3 as 3.0
    # geometry: the GeoPackage envelope is not content, the WKB is
    wkb = shapely.to_wkb(shapely.box(0, 0, 1, 1), byte_order=1)
    bare = b"GP\x00\x01" + (4549).to_bytes(4, "little") + wkb
    env = b"GP\x00\x03" + (4549).to_bytes(4, "little") + b"\x00" * 32 + wkb
    assert versions.gpkg_blob_wkb(bare) == versions.gpkg_blob_wkb(env) == wkb


def test_analyses_do_not_rewrite_a_published_plans_results(project: Project):
    from multiplan.core import conflicts, qa
    from multiplan.core.errors import ProjectError

    before = versions.content_hashes(project.gpkg)
    for call in (lambda: qa.run_checks(project), lambda: conflicts.detect_all(project)):
        with pytest.raises(ProjectError) as exc:
            call()
        assert exc.value.code == "project.published"
        assert "已公布" in exc.value.zh and "version 2" in exc.value.en
    assert versions.content_hashes(project.gpkg) == before
    assert verify_snapshot(project, 1).ok
    # computing without storing is still allowed
    assert conflicts.detect_all(project, write=False)


def test_non_plan_settings_after_publication_keep_the_published_version(project: Project):
    # the 审图号 is typically entered after publication, and the window saves its map view
    project.set_settings(export_review_no="浙S(2026)7号", gui_view={"cx": 1.0, "cy": 2.0})
    assert workflow.current_state(project) == "已公布" and workflow.plan_version(project) == 1
    chk = verify_snapshot(project, 1)
    assert chk.ok and chk.live_checked and chk.problems == []
    # a plan setting still starts a new version
    project.set_settings(sliver_max_area_m2=500.0)
    assert workflow.current_state(project) == "编制中" and workflow.plan_version(project) == 2


def test_edit_after_publication_starts_version_2_and_snapshot_stays(project: Project):
    west, east = _halves()
    cut = shapely.box(X0 + 2000, Y0 - 100, X0 + 3100, Y0 + 5000)
    new_west = west.difference(cut)
    extra = shapely.box(X0 + 2500, Y0 + 100, X0 + 2900, Y0 + 600)  # inside the cut
    # fid 1 shrinks, fid 2 changes class only, fid 3 is new
    add_layer(project, PLAN, "spatial_plan", [new_west, east, extra],
              codes=["0101", "0702", "0701"], names=["水田", "农村宅基地", "城镇住宅用地"],
              extra={"fid": [1, 2, 3]})
    assert workflow.current_state(project) == "编制中" and workflow.plan_version(project) == 2
    new_versions = [r for r in project.audit_log() if r["action"] == "workflow.new_version"]
    assert len(new_versions) == 1 and PLAN in new_versions[0]["target"]
    chk = verify_snapshot(project, 1)
    assert chk.ok and not chk.live_checked
    df = compare_versions(project, PLAN, 1, "current")
    got = {r.fid: r for r in df.itertuples()}
    assert set(got) == {1, 2, 3}
    assert got[1].change == "changed" and got[1].geometry_changed
    assert got[1].area_delta_m2 == pytest.approx(new_west.area - west.area, abs=1e-3)
    assert got[2].change == "changed" and not got[2].geometry_changed
    assert "DLBM" in got[2].attributes_changed.split(",") and got[2].area_delta_m2 == 0
    assert got[3].change == "added" and got[3].change_zh == "新增"
    assert got[3].area_new_m2 == pytest.approx(extra.area) and got[3].area_new_ha == \
        pytest.approx(extra.area / 10_000)
    s = df.attrs["summary"]
    assert s["added"]["count"] == 1 and s["changed"]["count"] == 2 and s["removed"]["count"] == 0
    assert s["area_delta_m2"] == pytest.approx(new_west.area + east.area + extra.area
                                               - west.area - east.area, abs=1e-2)


def test_removed_parcels_and_unknown_versions(project: Project):
    west, east = _halves()
    add_layer(project, PLAN, "spatial_plan", [east], codes=["0701"], names=["城镇住宅用地"],
              extra={"fid": [2]})
    df = compare_versions(project, PLAN, 1)
    assert df["change"].tolist() == ["removed", "changed"] and df["fid"].tolist() == [1, 2]
    # fid 2 kept its geometry and codes; only the 三生 column the 质检 run had added is gone
    assert not df["geometry_changed"].iloc[1] and df["attributes_changed"].iloc[1] == \
        "mp_sansheng"
    assert df["area_old_m2"].iloc[0] == pytest.approx(west.area, rel=1e-9)
    assert df["area_delta_ha"].iloc[0] == pytest.approx(-west.area / 10_000, rel=1e-9)
    with pytest.raises(VersionError):
        compare_versions(project, PLAN, 2)
    with pytest.raises(VersionError):
        compare_versions(project, "没有的图层", 1)
    # an unchanged layer compares empty
    assert len(compare_versions(project, "永久基本农田", 1)) == 0


def test_second_publication_cannot_overwrite_a_snapshot(project: Project):
    with project.transaction() as conn, pytest.raises(VersionError):
        versions.create_snapshot(project, conn, 1)
    assert verify_snapshot(project, 1).ok


def test_snapshot_layers_readable_by_geopandas(project: Project):
    gdf = gpd.read_file(project.folder / "versions" / "v1.gpkg", layer=PLAN)
    assert len(gdf) == 2 and set(gdf["DLBM"]) == {"0101", "0701"}
