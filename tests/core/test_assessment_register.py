"""The 双评价 plan-check entries (A1–A4) live in the conflict register (issue 5 item 6):
counts and areas against the run's own list and an independent geopandas area, pair
detection and re-checks leave them alone, a rerun replaces them, the readers and exports
handle them, and the GeoPackage stays valid."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from test_assessment_support import EPSG, X0, Y0, copy_project, shared_small_project

from multiplan.core import conflicts as cf
from multiplan.core.assessment import list_findings, read_findings, run_assessment
from multiplan.core.errors import MultiplanError
from multiplan.core.layers import LayerRecord


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    base = shared_small_project(tmp_path_factory)
    project = copy_project(base, tmp_path_factory.mktemp("reg") / "p")
    run = run_assessment(project, block_size=128)
    return project, run


def as_rows(reg: pd.DataFrame) -> pd.DataFrame:
    return reg[reg["conflict_id"].str.startswith("AS-")]


def gpkg_valid(project) -> None:
    res = subprocess.run([sys.executable, "-m", "osgeo_utils.samples.validate_gpkg",
                          str(project.gpkg)], check=False, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def rtree_matches(project) -> None:
    """Every register row has its R-tree entry and the R-tree nothing else."""
    with sqlite3.connect(project.gpkg) as conn:
        fids = {r[0] for r in conn.execute('SELECT fid FROM "mp_conflicts"')}
        ids = {r[0] for r in conn.execute('SELECT id FROM "rtree_mp_conflicts_geom"')}
        count = conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE "
                             "table_name = 'mp_conflicts'").fetchone()[0]
    assert fids == ids and count == len(fids)


def test_findings_are_register_entries(ran) -> None:
    project, run = ran
    reg = cf.read_register(project)
    a = as_rows(reg)
    assert len(run.findings) >= 2 and len(a) == len(run.findings) == len(reg)
    assert set(a["conflict_type"]) <= {"A1", "A2", "A3", "A4"}
    want = {f["conflict_id"]: f for f in run.findings}
    assert set(a["conflict_id"]) == set(want)
    for r in a.itertuples():
        f = want[r.conflict_id]
        assert (r.conflict_type, r.severity, r.layer_a, r.fid_a, r.layer_b) == (
            f["conflict_type"], f["severity"], f["layer_a"], f["fid_a"], f["layer_b"])
        assert r.area_m2 == pytest.approx(f["area_m2"]) and r.run_id == run.run_id
        assert r.rule_id == r.conflict_type and r.resolution == "待定" and r.pending == 1
        assert r.sliver == 0 and r.fid_b == 0 and r.layer_b.startswith("双评价_")
    # an independent area: geopandas on the stored geometries (planar, project CRS)
    back = pyogrio.read_dataframe(project.gpkg, layer="mp_conflicts")
    assert back.crs.to_epsg() == EPSG
    geo = back.set_index("conflict_id").geometry.area
    assert geo[a["conflict_id"]].to_numpy() == pytest.approx(a["area_m2"].to_numpy(), rel=1e-9)
    by_type = a.groupby("conflict_type")["area_m2"].sum()
    for t, area in by_type.items():
        assert area == pytest.approx(sum(f["area_m2"] for f in run.findings
                                         if f["conflict_type"] == t))
    # the readers
    s = cf.register_summary(reg)
    assert {t: v["count"] for t, v in s["by_type"].items()} == run.summary()["findings_by_type"]
    heads = a[a["severity"].isin(["冲突", "警告"])]
    assert s["conflicts"] == len(heads)
    assert s["conflict_area_ha"] == pytest.approx(heads["area_m2"].sum() / 1e4, abs=1e-4)
    assert s["pending"] == len(a)
    piv = cf.pivot_tables(reg)
    for p in piv.values():
        assert p.loc["合计", "合计"] == pytest.approx(a["area_ha"].sum(), rel=1e-12)
    assert "A2 规划建设用地位于生态保护极重要区" in piv["by_type_severity"].index
    assert {f["conflict_id"] for f in list_findings(project)} == set(want)
    assert len(read_findings(project)) == len(want)
    rtree_matches(project)
    gpkg_valid(project)


def test_export_carries_the_assessment_messages(ran, tmp_path: Path) -> None:
    project, _ = ran
    paths = cf.export_register(project, tmp_path / "out")
    csv = pd.read_csv(paths["csv"], encoding="utf-8-sig")
    a2 = csv[csv["conflict_type"] == "A2"]
    assert len(a2) and (a2["message_zh"] == "规划建设用地位于生态保护极重要区").all()
    assert (a2["message_en"].str.contains("ecologically very important")).all()
    rules = pd.read_excel(paths["xlsx"], sheet_name="规则")
    present = {t for t in csv["conflict_type"] if t.startswith("A")}
    assert present and present <= set(rules["rule_id"])  # the rules of the rows present


def test_pair_detection_and_rerun(ran, tmp_path: Path) -> None:
    src, _ = ran
    project = copy_project(src.folder, tmp_path / "p")
    before = as_rows(cf.read_register(project)).set_index("conflict_id")
    # six 城规 parcels on the plan's construction parcel: the pair writes more rows than
    # stay, so the register is rewritten by GDAL and swapped in, carrying the AS rows over
    boxes = [shapely.box(X0 + 4300 + 150 * i, Y0 + 1800, X0 + 4400 + 150 * i, Y0 + 1900)
             for i in range(6)]
    urban = gpd.GeoDataFrame({"DLBM": ["0701"] * 6}, geometry=boxes, crs=project.epsg)
    project.write_vector_layer(urban, LayerRecord(
        name="城规", kind="vector", level="county", role="urban_plan", title="城规",
        geometry_type="MultiPolygon"))
    swap = cf.detect_conflicts(project, "国土空间规划", "城规")
    assert len(swap.register) == 6 > len(before)
    # then the in-place route (more rows stay than the pair writes)
    pair = cf.detect_conflicts(project, "国土空间规划", "永久基本农田")
    assert len(pair.register)
    reg = cf.read_register(project)
    after = as_rows(reg).set_index("conflict_id")
    assert len(reg) == len(before) + len(pair.register) + 6
    pd.testing.assert_series_equal(after["area_m2"], before["area_m2"])
    assert (after["fid_b"] == 0).all() and (after["pending"] == 1).all()
    # a pair without rows, and a re-check of the edited plan features
    cf.detect_conflicts(project, "国土空间规划", "现状用地")
    cf.recheck(project, "国土空间规划", changed=[1, 2])
    assert set(as_rows(cf.read_register(project))["conflict_id"]) == set(before.index)
    rtree_matches(project)
    n_pairs = len(cf.read_register(project)) - len(before)
    # an assessment rerun replaces its rows (same stable ids) and keeps the pair rows
    run2 = run_assessment(project, block_size=64)
    reg2 = cf.read_register(project)
    a2 = as_rows(reg2)
    assert len(a2) == len(run2.findings) == len(before) and a2["conflict_id"].is_unique
    assert set(a2["conflict_id"]) == set(before.index)
    assert (a2["run_id"] == run2.run_id).all()
    assert len(reg2) - len(a2) == n_pairs
    assert cf.read_register(project, "国土空间规划", "永久基本农田")["conflict_id"].str.startswith(
        "CF-").all()
    rtree_matches(project)
    gpkg_valid(project)


def test_entry_point_checks_its_input(ran, tmp_path: Path) -> None:
    src, _ = ran
    project = copy_project(src.folder, tmp_path / "p")
    frame = gpd.GeoDataFrame(
        {"conflict_id": ["XT-1"], "conflict_type": ["T1"], "severity": ["警告"],
         "layer_a": ["国土空间规划"], "fid_a": [1], "layer_b": ["外部"], "area_m2": [100.0]},
        geometry=[shapely.box(0, 0, 10, 10)], crs=f"EPSG:{EPSG}")
    with pytest.raises(MultiplanError):
        cf.replace_external_entries(project, "CF", frame, rule_version="x", run_id="r")
    with pytest.raises(MultiplanError):
        cf.replace_external_entries(project, "YY", frame, rule_version="x", run_id="r")
    with pytest.raises(MultiplanError):
        cf.replace_external_entries(project, "XT", frame.assign(severity="严重"),
                                    rule_version="x", run_id="r")
    n0 = len(cf.read_register(project))
    out = cf.replace_external_entries(project, "XT", frame, rule_version="x", run_id="r")
    assert out == {"removed": 0, "inserted": 1}
    assert len(cf.read_register(project)) == n0 + 1
    assert len(cf.read_register(project, source="AS")) == n0  # the other source untouched
    assert cf.replace_external_entries(project, "XT", frame.iloc[:0], rule_version="x",
                                       run_id="r") == {"removed": 1, "inserted": 0}
    assert len(cf.read_register(project)) == n0
    rtree_matches(project)
    gpkg_valid(project)
