"""The whole pipeline on the small synthetic project: outputs, hand checks, invariance to
block size and threads, cancel, the run record, the gate, plan check, 承载规模."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import rasterio
from test_assessment_support import EPSG, X0, Y0, copy_project, gdf, shared_small_project

from multiplan.core.assessment import (
    assessment_gate,
    assessment_is_current,
    latest_run,
    list_findings,
    read_findings,
    run_assessment,
    set_project_overrides,
)
from multiplan.core.assessment.run import OUTPUT_SPECS
from multiplan.core.tasks import Cancelled, CancelToken, Task


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return shared_small_project(tmp_path_factory)


@pytest.fixture(scope="module")
def ran(base: Path, tmp_path_factory):
    project = copy_project(base, tmp_path_factory.mktemp("ran") / "p")
    fracs: list[float] = []
    run = run_assessment(project, block_size=64, task=Task(lambda f, m: fracs.append(f)))
    return project, run, fracs


def read(project, run, key: str) -> np.ndarray:
    with rasterio.open(project.folder / run.outputs[key]["path"]) as ds:
        return ds.read(1)


def cell(run, x: float, y: float) -> tuple[int, int]:
    t = run.grid.transform
    return int((t.f - y) // run.grid.cell), int((x - t.c) // run.grid.cell)


# ------------------------------------------------------------------ outputs
def test_outputs_are_tiled_compressed_cogs_registered_as_results(ran) -> None:
    project, run, fracs = ran
    assert fracs[-1] == 1.0 and fracs == sorted(fracs)
    expected = {"slope", "relief", "agri_land", "urban_land", "precip_grade", "modulus_grade",
                "thi_grade", "eco_level", "eco_importance", "agri_grade", "urban_grade",
                "agri_suitability", "urban_suitability"}
    assert set(run.outputs) == expected  # no evaporation / total modulus / seat inputs
    for key, o in run.outputs.items():
        path = project.folder / o["path"]
        assert o["path"].startswith("rasters/assessment/")
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == EPSG and ds.res == (30.0, 30.0)
            assert ds.profile["tiled"] and ds.compression.name == "deflate"
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert ds.tags()["SYNTHETIC"] == "yes"
        rec = project.layer(OUTPUT_SPECS[key].layer)
        assert rec.role == "assessment_result" and rec.kind == "raster" and rec.synthetic
        assert project.raster_path(rec.name) == path


def test_grid_is_the_county_box_aligned_to_the_dem(ran) -> None:
    _, run, _ = ran
    g = run.grid
    assert g.cell == 30.0 and g.epsg == EPSG
    assert g.bounds[0] <= X0 and g.bounds[1] <= Y0
    assert (g.transform.c - (X0 - 900)) % 30 == 0  # DEM corner alignment


def test_hand_checks(ran) -> None:
    project, run, _ = ran
    slope = read(project, run, "slope")
    # the west is a 5 % plane: atan(0.05) = 2.862°
    r, c = cell(run, X0 + 2000, Y0 + 1500)
    assert slope[r, c] == pytest.approx(2.862, abs=0.01)
    agri_land, urban_land = read(project, run, "agri_land"), read(project, run, "urban_land")
    assert agri_land[r, c] == 2 and urban_land[r, c] == 1  # 2–6° / ≤ 3°
    # silt 85 % in the south-west square → agriculture land grade 5
    rs, cs = cell(run, X0 + 450, Y0 + 450)
    assert agri_land[rs, cs] == 5
    mod = read(project, run, "modulus_grade")
    assert mod[r, c] == 1 and mod[cell(run, X0 + 5500, Y0 + 500)] == 3
    assert read(project, run, "precip_grade")[r, c] == 1  # 1300 mm
    # the hill top (water conservation grade 1, a 1.1 km² patch) is 极重要, so agriculture
    # and urban are not evaluated there (class 4)
    rh, ch = cell(run, X0 + 4800, Y0 + 2200)
    assert read(project, run, "eco_importance")[rh, ch] == 1
    assert read(project, run, "agri_suitability")[rh, ch] == 4
    assert read(project, run, "urban_suitability")[rh, ch] == 4
    # outside the county (the cut north-west corner) everything is 0
    ro, co = cell(run, X0 + 200, Y0 + 4400)
    assert read(project, run, "agri_suitability")[ro, co] == 0
    assert np.isnan(slope[ro, co])


def test_statistics_add_up(ran) -> None:
    project, run, _ = ran
    st = run.stats_township
    suit = read(project, run, "agri_suitability")
    counted = st[st["result"] == "agri_suitability"].groupby("code")["cells"].sum()
    for code in (1, 2, 3, 4):
        assert counted.get(code, 0) == int((suit == code).sum())
    assert set(st["unit"]) <= {"西镇", "东镇", "（乡镇界外）"}
    z = run.stats_zone
    assert set(z["zone"]) == {"农田保护区", "城镇发展区"}
    total_z = z[z["result"] == "eco_importance"]["cells"].sum()
    assert total_z == int((read(project, run, "eco_importance") > 0).sum())


# ------------------------------------------------------------------ engine invariance
@pytest.mark.parametrize("block_size, workers", [(512, 2), (37, 1)])
def test_results_do_not_depend_on_blocks_or_threads(ran, base, tmp_path, block_size,
                                                    workers) -> None:
    project, run, _ = ran
    other = copy_project(base, tmp_path / "p")
    run2 = run_assessment(other, block_size=block_size, workers=workers)
    for key in run.outputs:
        a, b = read(project, run, key), read(other, run2, key)
        assert np.array_equal(a, b, equal_nan=True), key


def test_cancel_leaves_the_project_unchanged(base, tmp_path) -> None:
    project = copy_project(base, tmp_path / "p")
    before = project.snapshot_state()
    token = CancelToken()
    calls = []

    def progress(f: float, m: str) -> None:
        calls.append(f)
        if f > 0.2:
            token.cancel()

    with pytest.raises(Cancelled):
        run_assessment(project, block_size=32, task=Task(progress, token))
    assert project.snapshot_state() == before
    assert not list((project.folder / "rasters").glob(".assess-*"))
    assert not assessment_is_current(project)


# ------------------------------------------------------------------ record and gate
def test_run_record(ran) -> None:
    project, run, _ = ran
    rec = latest_run(project)
    assert rec["run_id"] == run.run_id and rec["status"] == "complete"
    assert rec["rule_file"]["version_id"] == "assessment_2019/1.0"
    assert rec["cell_size_m"] == 30.0 and rec["params"]["kind"] == "assessment_parameters"
    names = set(rec["inputs"])
    assert {"行政区", "乡镇界", "DEM", "用水总量控制指标模数", "土壤粉砂含量", "月平均气温",
            "水源涵养重要性", "国土空间规划", "永久基本农田", "规划分区", "现状用地"} <= names
    for v in rec["inputs"].values():
        assert len(v["sha256"]) == 64
    assert set(rec["outputs"]) == set(run.outputs)
    with sqlite3.connect(project.gpkg) as conn:
        row = conn.execute("SELECT data_type FROM gpkg_contents WHERE table_name = "
                           "'mp_assessment_runs'").fetchone()
    assert row == ("attributes",)
    assert any(a["action"] == "assessment.run" for a in project.audit_log())


@pytest.fixture()
def fresh(ran, tmp_path):
    project, _, _ = ran
    p = copy_project(project.folder, tmp_path / "p")
    assert assessment_is_current(p)
    return p


def test_gate_true_after_a_run_and_says_why(fresh) -> None:
    g = assessment_gate(fresh)
    assert g.current and g.code == "assessment.current" and bool(g)


def test_gate_false_after_a_parameter_change(fresh) -> None:
    set_project_overrides(fresh, {"modifiers": {"relief": {"breaks": [100, 250]}}})
    g = assessment_gate(fresh)
    assert not g.current and g.code == "assessment.params_changed" and "modifiers" in g.changed
    set_project_overrides(fresh, {"modifiers": {"relief": {"breaks": [100, 200]}}})
    assert assessment_is_current(fresh)  # back to the recorded parameters


def test_gate_false_after_a_cell_size_change(fresh) -> None:
    fresh.set_settings(assessment_cell_size_m=60.0)
    assert assessment_gate(fresh).code == "assessment.cell_changed"


def test_gate_false_after_a_vector_input_edit(fresh, tmp_path) -> None:
    import shapely

    from multiplan.core.io import import_layer

    src = tmp_path / "mod.gpkg"
    gdf([{"modulus_m3_km2": 250000.0}],
        [shapely.box(X0 - 500, Y0 - 500, X0 + 6500, Y0 + 5000)]).to_file(src)
    import_layer(fresh, src, name="用水总量控制指标模数", role="assessment_factor",
                 synthetic=True, replace=True)
    g = assessment_gate(fresh)
    assert g.code == "assessment.inputs_changed" and g.changed == ["用水总量控制指标模数"]
    assert "已修改" in g.zh


def test_gate_false_after_a_raster_input_change(fresh) -> None:
    path = fresh.raster_path("DEM")
    with rasterio.open(path, "r+") as ds:
        a = ds.read(1)
        a[5, 5] += 1.0
        ds.write(a, 1)
    g = assessment_gate(fresh)
    assert g.code == "assessment.inputs_changed" and g.changed == ["DEM"]


def test_gate_false_when_a_factor_is_added_or_removed(fresh, tmp_path) -> None:
    import shapely

    from multiplan.core.io import import_layer

    src = tmp_path / "surge.gpkg"
    gdf([{"level": 3}], [shapely.box(X0, Y0, X0 + 1000, Y0 + 1000)]).to_file(src)
    import_layer(fresh, src, name="风暴潮灾害危险性", role="assessment_factor", synthetic=True)
    g = assessment_gate(fresh)
    assert g.code == "assessment.inputs_changed" and "新增" in g.zh
    fresh.remove_layer("风暴潮灾害危险性")
    assert assessment_is_current(fresh)
    fresh.remove_layer("土壤粉砂含量")
    g = assessment_gate(fresh)
    assert g.code == "assessment.inputs_changed" and g.changed == ["土壤粉砂含量"]


def test_gate_ignores_layers_the_assessment_does_not_read(fresh, tmp_path) -> None:
    import shapely

    from multiplan.core.io import import_layer

    src = tmp_path / "ref.gpkg"
    gdf([{"name": "x"}], [shapely.box(X0, Y0, X0 + 100, Y0 + 100)]).to_file(src)
    import_layer(fresh, src, name="参考", role="reference")
    assert assessment_is_current(fresh)  # content hashes, not the whole plan.gpkg


def test_gate_false_when_an_output_is_touched(fresh) -> None:
    rec = latest_run(fresh)
    path = fresh.folder / rec["outputs"]["urban_suitability"]["path"]
    with open(path, "ab") as f:  # any change of the bytes
        f.write(b"\0")
    assert assessment_gate(fresh).code == "assessment.outputs_changed"
    path.unlink()
    assert assessment_gate(fresh).code == "assessment.outputs_changed"


def test_gate_false_before_any_run(base, tmp_path) -> None:
    p = copy_project(base, tmp_path / "p")
    g = assessment_gate(p)
    assert not g.current and g.code == "assessment.never_run"


# ------------------------------------------------------------------ plan check
def test_plan_check_findings(ran) -> None:
    project, run, _ = ran
    types = {(f["conflict_type"], f["layer_a"], f["fid_a"]) for f in run.findings}
    # the 0701 parcel on the hill: partly 极重要 (A2) and partly unsuitable (A1)
    assert ("A2", "国土空间规划", 1) in types and ("A1", "国土空间规划", 1) in types
    a2 = next(f for f in run.findings if f["conflict_type"] == "A2")
    assert a2["severity"] == "冲突" and a2["code_a"] == "0701"
    assert a2["layer_b"] == "双评价_生态保护重要性" and a2["name_b"] == "极重要"
    assert a2["area_m2"] % 900 == 0 and 0 < a2["share"] <= 1
    assert a2["township"] == "东镇" and a2["conflict_id"].startswith("AS-A2-")
    stored = list_findings(project)
    assert {(f["conflict_type"], f["layer_a"], f["fid_a"]) for f in stored} == types
    assert all(f["run_id"] == run.run_id for f in stored)
    # the geometry is the offending cells inside the feature: same area as counted
    gdf = read_findings(project)
    assert gdf.crs.to_epsg() == EPSG
    for _, row in gdf.iterrows():
        assert row.geometry.geom_type == "MultiPolygon"
        assert row.geometry.area == pytest.approx(row["area_m2"], rel=1e-9)
    with sqlite3.connect(project.gpkg) as conn:  # rows of the conflict register now
        assert conn.execute("SELECT data_type FROM gpkg_contents WHERE table_name = "
                            "'mp_conflicts'").fetchone() == ("features",)
        assert conn.execute("SELECT count(*) FROM gpkg_contents WHERE table_name = "
                            "'mp_assessment_findings'").fetchone()[0] == 0
        assert not conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE "
                                "'mp_tmp%'").fetchone()[0]


def test_basic_farmland_on_unsuitable_land(ran, base, tmp_path) -> None:
    """The basic-farmland parcel sits on the 85 %-silt square (land grade 5). With the S4
    compactness correction the square patch (2/π ≈ 0.64) is raised one grade to 一般适宜,
    so only without that correction is it 不适宜 and flagged A3."""
    assert not any(f["conflict_type"] == "A3" for f in ran[1].findings)
    p = copy_project(base, tmp_path / "p")
    set_project_overrides(p, {"concentration": {"agriculture": {"method": "none"}}})
    run = run_assessment(p, block_size=128)
    a3 = [f for f in run.findings if f["conflict_type"] == "A3"]
    assert len(a3) == 1 and a3[0]["layer_a"] == "永久基本农田"
    assert a3[0]["area_m2"] == pytest.approx(600 * 600, rel=0.1)


def test_two_class_scheme(base, tmp_path) -> None:
    p = copy_project(base, tmp_path / "p")
    set_project_overrides(p, {"classes": {"scheme": "two"}})
    run = run_assessment(p, block_size=128)
    with rasterio.open(p.folder / run.outputs["agri_suitability"]["path"]) as ds:
        codes = set(np.unique(ds.read(1)).tolist())
    assert codes <= {0, 1, 3, 4} and 3 in codes
    assert set(run.stats_township[run.stats_township["result"] == "agri_suitability"]
               ["class"]) <= {"适宜区", "不适宜区", "生态保护极重要区（不评价）"}


# ------------------------------------------------------------------ 承载规模
def test_carrying_scale_by_hand(base, tmp_path) -> None:
    p = copy_project(base, tmp_path / "p")
    set_project_overrides(p, {"capacity": {
        "water_by_sector_m3": {"agriculture": 3.0e6, "urban": 2.0e6},
        "irrigation_quota_m3_per_mu": 400.0, "urban_water_m3_per_capita": 100.0,
        "urban_land_m2_per_capita": 100.0, "current_population": {"西镇": 25000, "东镇": 1000},
        "water_split": "area"}})
    run = run_assessment(p, block_size=128)
    cap = run.capacity["current"]
    assert cap["computed"]
    rows = {r["unit"]: r for r in cap["rows"]}
    st = run.stats_township
    ha = 30 * 30 / 1e4
    for town in ("西镇", "东镇"):
        r = rows[town]
        s = st[(st["unit"] == town) & (st["result"] == "agri_suitability")]
        cells = int(s["cells"].sum())
        share = cells / int(st[st["result"] == "agri_suitability"]["cells"].sum())
        farm = int(s[s["code"].isin([1, 2])]["cells"].sum())
        assert r["farmland_land_limited_ha"] == pytest.approx(farm * ha)
        assert r["water_agriculture_m3"] == pytest.approx(3.0e6 * share)
        assert r["farmland_water_limited_ha"] == pytest.approx(3.0e6 * share / 400 / 15)
        assert r["farmland_carrying_ha"] == pytest.approx(
            min(farm * ha, 3.0e6 * share / 400 / 15))
        assert r["population_carrying"] == pytest.approx(2.0e6 * share / 100)
        assert r["urban_water_limited_ha"] == pytest.approx(2.0e6 * share / 100 * 100 / 1e4)
    assert rows["西镇"]["farmland_current_ha"] == pytest.approx(100.0)  # the 1 km² 0101 parcel
    assert rows["东镇"]["urban_current_ha"] == pytest.approx(25.0)  # 0701; 0703 excluded
    assert rows["西镇"]["population_overload"] is True
    assert rows["东镇"]["population_overload"] is False
    total = rows["全县"]
    assert total["water_agriculture_m3"] == pytest.approx(3.0e6)
    json.dumps(run.capacity)  # plain Python values only


def test_notes_name_missing_factors_but_not_unchosen_alternatives(ran) -> None:
    codes = {n["code"] for n in ran[1].notes}
    assert "factor.missing.storm_surge" in codes and "factor.missing.county_seat" in codes
    assert "factor.missing.evaporation" not in codes  # only the aridity indicator needs it
    assert "factor.missing.water_total_modulus" not in codes


def test_carrying_scale_without_parameters_says_what_is_missing(ran) -> None:
    _, run, _ = ran
    cap = run.capacity["current"]
    assert not cap["computed"]
    assert "irrigation_quota_m3_per_mu" in cap["missing"]
    assert any(n["code"] == "capacity.parameters_missing" for n in run.notes)


def test_uncovered_cells_are_reported_and_left_ungraded(base, tmp_path) -> None:
    import shapely

    from multiplan.core.io import import_layer

    p = copy_project(base, tmp_path / "p")
    src = tmp_path / "mod.gpkg"  # the water-quota zones now stop at x = X0 + 4500
    gdf([{"modulus_m3_km2": 260000.0}],
        [shapely.box(X0 - 500, Y0 - 500, X0 + 4500, Y0 + 5000)]).to_file(src)
    import_layer(p, src, name="用水总量控制指标模数", role="assessment_factor", synthetic=True,
                 replace=True)
    run = run_assessment(p, block_size=128)
    note = next(n for n in run.notes if n["code"] == "coverage.water_modulus")
    assert "未覆盖县域" in note["zh"]
    with rasterio.open(p.folder / run.outputs["urban_suitability"]["path"]) as ds:
        suit = ds.read(1)
    r, c = cell(run, X0 + 5500, Y0 + 500)
    assert suit[r, c] == 0  # inside the county, but no water grade → no suitability
