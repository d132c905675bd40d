"""三区三线 checks: each rule on a hand-made county (areas by hand, checked again with
geopandas and with GDAL's ST_Area on the result layers), and the sample county's seeded
C5/C6 problems found where they were seeded, with their messages and areas.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from multiplan.core import qa
from multiplan.core.classification import unify
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project
from multiplan.core.redlines import RESULT_TABLES

X0, Y0 = 500_000.0, 3_430_000.0
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "changxing"
RL = [c for c in RESULT_TABLES]


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def add_layer(project: Project, name: str, role: str, geoms: list, *, codes=None,
              scheme: str = "ydyh2023", extra: dict | None = None, name_field=None) -> None:
    data = dict(extra or {})
    cf = None
    if codes is not None:
        data["DLBM"] = codes
        cf = "DLBM"
        u = unify(pd.Series(codes, dtype=object), scheme)
        for c in u.columns:
            data[c] = u[c].to_numpy()
    gdf = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=project.epsg))
    rec = LayerRecord(name=name, kind="vector", level="county", role=role, title=name,
                      geometry_type="MultiPolygon", scheme=scheme if codes else None,
                      code_field=cf, name_field=name_field)
    project.write_vector_layer(gdf, rec)


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> tuple[Project, qa.CheckRun]:
    p = Project.create(tmp_path_factory.mktemp("rl") / "p", county="测试县", crs=4549)
    add_layer(p, "行政区", "admin_boundary", [box(0, 0, 1000, 1000)])
    add_layer(p, "红线", "eco_redline", [box(0, 0, 200, 200), box(900, 900, 1100, 1000)],
              extra={"HXMC": ["山地红线", "湖滨红线"]}, name_field="HXMC")
    add_layer(p, "基本农田", "basic_farmland", [box(150, 0, 300, 100), box(250, 50, 350, 150)],
              extra={"JBNTTBBH": ["F1", "F2"]})
    add_layer(p, "开发边界", "urban_boundary", [box(180, 140, 400, 300), box(500, 500, 600, 600)],
              extra={"KFBJLX": ["集中建设区", "弹性发展区"]}, name_field="KFBJLX")
    add_layer(p, "土规", "land_use_plan",
              [box(0, 0, 100, 50), box(200, 0, 260, 100), box(0, 300, 100, 400)],
              codes=["0701", "1001", "0101"])
    # 城规 (GB 50137): H14 maps to candidates that are all construction; E2 does not
    add_layer(p, "城规", "urban_plan", [box(20, 100, 60, 140), box(120, 100, 140, 120)],
              codes=["H14", "E2"], scheme="gb50137_2011")
    add_layer(p, "现状", "current_use",
              [box(0, 500, 100, 600), box(100, 500, 200, 600), box(200, 500, 300, 600),
               box(300, 500, 400, 600)], codes=["0701", "1001", "0702", "0101"],
              extra={"CZCSXM": ["201", "202", "203", "201"]})
    return p, qa.run_checks(p, only=RL)


def layer_areas(project: Project, table: str) -> list[float]:
    """GDAL's ST_Area of every row of a result layer, and the stored area_m2 beside it."""
    df = pyogrio.read_dataframe(project.gpkg, sql=f'SELECT ST_Area(geom) AS a, area_m2 FROM '
                                f'"{table}" ORDER BY area_m2', sql_dialect="SQLITE")
    assert df["a"].to_numpy() == pytest.approx(df["area_m2"].to_numpy())
    return [round(x, 6) for x in df["a"]]


@pytest.mark.parametrize("check, severity, areas", [
    ("rl_urban_eco", "error", [1200.0]),
    ("rl_urban_farmland", "error", [1000.0]),
    ("rl_farmland_eco", "warning", [5000.0]),
    ("rl_self_overlap", "error", [2500.0]),
    ("rl_in_county", "error", [10000.0]),
    ("rl_construction_eco", "error", [1600.0, 5000.0]),
    ("rl_construction_farmland", "error", [500.0, 6000.0]),
])
def test_rules_with_hand_areas(county, check: str, severity: str, areas: list[float]):
    project, run = county
    res = run.result(check)
    assert sorted(res.findings.frame()["area_m2"].round(6)) == areas
    assert set(res.findings.frame()["severity"]) == {severity}
    assert res.summary["area_m2"] == pytest.approx(sum(areas))
    assert res.summary["area_ha"] == pytest.approx(sum(areas) / 1e4)
    assert layer_areas(project, RESULT_TABLES[check]) == areas
    assert res.failed == (severity == "error")


def test_pair_overlap_agrees_with_geopandas(county):
    project, _ = county
    a = pyogrio.read_dataframe(project.gpkg, layer="开发边界")
    b = pyogrio.read_dataframe(project.gpkg, layer="红线")
    o = gpd.overlay(a, b, how="intersection", keep_geom_type=True)
    got = pyogrio.read_dataframe(project.gpkg, layer="mp_rl_urban_eco")
    assert sorted(got.area.round(6)) == sorted(o.area.round(6))


def test_farmland_in_red_line_needs_a_decision_not_blocking(county):
    _project, run = county
    res = run.result("rl_farmland_eco")
    assert res.status == "warn" and not res.blocking
    msg = res.findings.frame()["message_zh"].iloc[0]
    assert msg == ("永久基本农田要素 1（F1）与生态保护红线要素 1（山地红线）重叠 5,000.00 m²："
                   "需决策：将基本农田调出红线并在本县补划，或调整红线")


def test_construction_messages_name_code_and_layer(county):
    _, run = county
    fr = run.result("rl_construction_eco").findings.frame().sort_values("area_m2")
    assert fr["message_zh"].tolist() == [
        ("规划建设用地（图层“城规”要素 1，H14 → 待定（07,08,09,10,11,12,13,14,15,16））位于生态保护红线"
        "（要素 1（山地红线））内 1,600.00 m²：生态保护红线内不得安排建设用地"),
        ("规划建设用地（图层“土规”要素 1，0701）位于生态保护红线（要素 1（山地红线））内 5,000.00 m²："
        "生态保护红线内不得安排建设用地")]
    assert fr["layer"].tolist() == ["城规", "土规"]
    assert fr["layer_other"].tolist() == ["红线", "红线"]
    en = run.result("rl_construction_farmland").findings.frame()["message_en"].tolist()
    assert all("planned construction land (layer 土规" in m for m in en)


def test_ratios_warn_with_hand_numbers(county):
    project, run = county
    ex = run.result("rl_expansion")
    # boundary 220 × 160 + 100 × 100 = 45 200 m²; urban construction 201/202: 20 000 m²
    assert ex.summary["factor"] == pytest.approx(45200 / 20000)
    assert ex.status == "warn" and ex.warnings == 1 and not ex.blocking
    assert ex.findings.frame()["message_zh"].iloc[0] == (
        "城镇开发边界面积 4.52 公顷为现状城镇建设用地 2.00 公顷的 2.260 倍，超过上限 1.3 倍")
    fl = run.result("rl_flexible_share")
    assert fl.summary["share"] == pytest.approx(10000 / 35200)
    assert fl.status == "warn"
    assert layer_areas(project, "mp_rl_flexible_share") == [10000.0]
    assert len(pyogrio.read_dataframe(project.gpkg, layer="mp_rl_expansion")) == 2


def test_limits_are_settings(tmp_path: Path, county):
    project, _ = county
    copy = tmp_path / "copy"
    shutil.copytree(project.folder, copy)
    p = Project.open(copy)
    p.set_settings(expansion_factor_max=2.5, flexible_share_max=0.3)
    run = qa.run_checks(p, only=["rl_expansion", "rl_flexible_share"], write=False)
    assert run.result("rl_expansion").status == "pass"
    assert run.result("rl_flexible_share").status == "pass"


def test_missing_layers_skip_and_clear_old_results(tmp_path: Path):
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    add_layer(p, "行政区", "admin_boundary", [box(0, 0, 1000, 1000)])
    run = qa.run_checks(p, only=RL)
    for cid in ("rl_urban_eco", "rl_construction_eco", "rl_expansion", "rl_flexible_share",
                "rl_self_overlap"):
        assert run.result(cid).status == "skip", cid
        assert run.result(cid).notes
    assert not run.blocking_failures
    # every result layer exists (empty), so an older result can never linger
    for table in RESULT_TABLES.values():
        assert pyogrio.read_info(p.gpkg, layer=table)["features"] == 0


# --------------------------------------------------------------------------- the sample

@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    if not (SAMPLE / "plan.gpkg").is_file():
        pytest.skip("sample project not built")
    dst = tmp_path_factory.mktemp("rl_sample") / "changxing"
    shutil.copytree(SAMPLE, dst)
    p = Project.open(dst)
    seeds = json.loads((SAMPLE / "seeded_conflicts.json").read_text(encoding="utf-8"))
    return p, qa.run_checks(p, only=RL), seeds["conflicts"]


@pytest.mark.parametrize("ctype, check, other", [
    ("C5", "rl_construction_eco", "生态保护红线"),
    ("C6", "rl_construction_farmland", "永久基本农田"),
])
def test_sample_seeded_construction_on_control_lines(sample, ctype, check, other):
    project, run, seeds = sample
    got = pyogrio.read_dataframe(project.gpkg, layer=RESULT_TABLES[check])
    # independent: the seeded polygon against the control line layer, by shapely
    line = shapely.union_all(pyogrio.read_dataframe(project.gpkg, layer=other).geometry.values)
    mine = [s for s in seeds if s["type"] == ctype]
    assert len(mine) == 2
    for s in mine:
        pt = shapely.Point(s["x"], s["y"])
        hit = got[got.contains(pt)]
        assert len(hit) == 1, s["id"]
        row = hit.iloc[0]
        expected = shapely.intersection(shapely.from_wkt(s["wkt"]), line).area
        # the seeded WKT is rounded to millimetres: ≈ 0.1 m² on these perimeters
        assert row["area_m2"] == pytest.approx(expected, abs=0.5), s["id"]
        assert row["layer_a"] == s["layer_a"] and row["layer_b"] == other
        assert row["code_a"] is not None and row["severity"] == "error"
        rule = {"C5": "生态保护红线内不得安排建设用地", "C6": "规划建设用地不得占用永久基本农田"}[ctype]
        assert row["message_zh"].startswith(f"规划建设用地（图层“{s['layer_a']}”")
        assert row["message_zh"].endswith(f"内 {row['area_m2']:,.2f} m²：{rule}")
        assert row["township"] == s["township"]
    assert run.result(check).failed


def test_sample_control_lines_do_not_overlap(sample):
    _, run, _ = sample
    for cid in ("rl_urban_eco", "rl_urban_farmland", "rl_farmland_eco", "rl_self_overlap",
                "rl_in_county"):
        assert run.result(cid).status == "pass", (cid, run.result(cid).findings.frame().head())
    assert sorted(run.blocking_failures) == ["rl_construction_eco", "rl_construction_farmland"]


def test_sample_ratios_match_gdal_sums(sample):
    project, run, _ = sample

    def total(sql: str) -> float:
        return float(pyogrio.read_dataframe(project.gpkg, sql=sql, sql_dialect="SQLITE")
                     ["a"].iloc[0])

    boundary = total('SELECT sum(ST_Area(geom)) AS a FROM "城镇开发边界"')
    # 三大类 建设用地 = 07–16 and 060101 (domain.md §1.1), 城镇村属性码 201/202
    urban = total('SELECT sum(ST_Area(geom)) AS a FROM "现状用地" WHERE mp_status = \'ok\' AND '
                  "((substr(mp_code, 1, 2) BETWEEN '07' AND '16') OR mp_code = '060101') AND "
                  "(CZCSXM LIKE '201%' OR CZCSXM LIKE '202%')")
    assert run.result("rl_expansion").summary["factor"] == pytest.approx(boundary / urban,
                                                                         rel=1e-6)
    flex = total('SELECT sum(ST_Area(geom)) AS a FROM "城镇开发边界" WHERE KFBJLX = \'弹性发展区\'')
    conc = total('SELECT sum(ST_Area(geom)) AS a FROM "城镇开发边界" WHERE KFBJLX = \'集中建设区\'')
    assert run.result("rl_flexible_share").summary["share"] == pytest.approx(flex / conc,
                                                                             rel=1e-6)
