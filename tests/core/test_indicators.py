"""Binding indicators and 耕地占补平衡: the definition table's schema check, targets entered
with units or imported from CSV (UTF-8 and GBK, errors naming the row), plan values and
surplus/deficit on a hand-made county (hand areas), the balance by area and by quality
grade (hand areas, geopandas), and the sample county's values against GDAL's ST_Area sums.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from multiplan.core import indicators as ind
from multiplan.core import qa
from multiplan.core.classification import unify
from multiplan.core.errors import StandardsError
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

X0, Y0 = 500_000.0, 3_430_000.0
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "changxing"


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def add_layer(project: Project, name: str, role: str, geoms: list, codes=None,
              extra: dict | None = None) -> None:
    data = dict(extra or {})
    if codes is not None:
        data["DLBM"] = codes
        u = unify(pd.Series(codes, dtype=object), "ydyh2023")
        for c in u.columns:
            data[c] = u[c].to_numpy()
    gdf = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=project.epsg))
    rec = LayerRecord(name=name, kind="vector", level="county", role=role, title=name,
                      geometry_type="MultiPolygon", scheme="ydyh2023" if codes else None,
                      code_field="DLBM" if codes else None)
    project.write_vector_layer(gdf, rec, replace=project.has_layer(name))


# --------------------------------------------------------------------------- the table

def test_table_loads_with_five_indicators():
    t = ind.load_indicator_table()
    assert t.version_id == "indicators/1.0"
    assert [i["zh"] for i in t.indicators] == ["耕地保有量", "永久基本农田保护面积", "生态保护红线面积",
                                               "城乡建设用地规模", "开发强度"]
    assert t.indicator("开发强度")["id"] == "development_intensity"
    assert t.indicator("Cultivated Land to keep")["id"] == "cultivated_land"
    assert t.indicator("nope") is None


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["indicators"][0].update(direction="up"), "direction"),
    (lambda d: d["indicators"][0]["measure"].update(kind="formula"), "measure.kind"),
    (lambda d: d["indicators"][0]["measure"].update(expr="1+1"), "measure 的键"),
    (lambda d: d["indicators"][1]["measure"].update(role="nope"), "图层用途"),
    (lambda d: d["indicators"][0]["measure"].update(prefixes=["1"]), "prefixes"),
    (lambda d: d["units"].update(亩=-1), "units"),
    (lambda d: d["indicators"].append(copy.deepcopy(d["indicators"][0])), "重复"),
    (lambda d: d["farmland_balance"].update(grade_better="best"), "grade_better"),
])
def test_table_schema_check(tmp_path: Path, mutate, fragment: str):
    data = json.loads(Path(ind.load_indicator_table().path).read_text(encoding="utf-8"))
    mutate(data)
    f = tmp_path / "ind.json"
    f.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(StandardsError) as exc:
        ind.load_indicator_table(f)
    assert fragment in exc.value.zh


# --------------------------------------------------------------------------- hand county

@pytest.fixture
def county(tmp_path: Path) -> Project:
    """100 ha county: plan 50 ha 耕地, 20 ha 住宅, 10 ha 公路, 20 ha 林地; 40 ha farmland;
    10 ha red line."""
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    add_layer(p, "行政区", "admin_boundary", [box(0, 0, 1000, 1000)])
    add_layer(p, "规划", "land_use_plan", [box(0, 0, 500, 1000), box(500, 0, 700, 1000),
                                         box(700, 0, 800, 1000), box(800, 0, 1000, 1000)],
              codes=["0101", "0701", "1202", "0301"])
    add_layer(p, "基本农田", "basic_farmland", [box(0, 0, 400, 1000)])
    add_layer(p, "红线", "eco_redline", [box(800, 0, 1000, 500)])
    return p


def test_targets_with_units(county: Project):
    stored = ind.set_targets(county, {"耕地保有量": (825, "亩"), "eco_redline": ("0.09", "km²"),
                                      "开发强度": ("25", "%"), "basic_farmland": 40,
                                      "城乡建设用地规模": (250000, "平方米")})
    assert stored == pytest.approx({"cultivated_land": 55.0, "eco_redline": 9.0,
                                    "development_intensity": 0.25, "basic_farmland": 40.0,
                                    "urban_rural_construction": 25.0})
    assert county.setting("indicator_targets") == stored
    with pytest.raises(ind.TargetError, match="单位"):
        ind.set_targets(county, {"开发强度": (25, "公顷")})
    with pytest.raises(ind.TargetError, match="未知的指标"):
        ind.set_targets(county, {"建设用地总规模X": 1})


def test_indicators_surplus_and_deficit(county: Project):
    ind.set_targets(county, {"cultivated_land": 55, "basic_farmland": 40, "eco_redline": 9,
                             "urban_rural_construction": 25, "development_intensity": 0.25})
    res = qa.run_checks(county, only=["indicators"]).result("indicators")
    rows = {r["indicator"]: r for r in res.summary["rows"]}
    assert {k: v["plan_value"] for k, v in rows.items()} == pytest.approx({
        "cultivated_land": 50.0, "basic_farmland": 40.0, "eco_redline": 10.0,
        "urban_rural_construction": 20.0, "development_intensity": 0.30})
    assert {k: v["surplus"] for k, v in rows.items()} == pytest.approx({
        "cultivated_land": -5.0, "basic_farmland": 0.0, "eco_redline": 1.0,
        "urban_rural_construction": 5.0, "development_intensity": -0.05})
    assert {k: v["status"] for k, v in rows.items()} == {
        "cultivated_land": "deficit", "basic_farmland": "ok", "eco_redline": "ok",
        "urban_rural_construction": "ok", "development_intensity": "deficit"}
    msgs = sorted(res.findings.frame()["message_zh"])
    assert msgs == ["开发强度：规划 30.00%，超过下达指标 25.00%，超出 5.00%",
                    "耕地保有量：规划 50.00 公顷，低于下达指标 55.00 公顷，缺口 5.00 公顷"]
    assert res.failed and res.blocking
    # stored as an attribute table
    stored = pyogrio.read_dataframe(county.gpkg, layer=ind.RESULTS_TABLE)
    assert stored.set_index("indicator")["plan_value"]["eco_redline"] == pytest.approx(10.0)


def test_no_targets_is_skipped_with_plan_values(county: Project):
    res = qa.run_checks(county, only=["indicators"], write=False).result("indicators")
    assert res.status == "skip" and not res.failed
    assert res.summary["rows"][0]["plan_value"] == pytest.approx(50.0)


def test_targets_from_csv(county: Project, tmp_path: Path):
    utf = tmp_path / "t.csv"
    utf.write_text("指标,目标值,单位\n耕地保有量,750,亩\n生态保护红线面积,10,公顷\n开发强度,31,%\n",
                   encoding="utf-8-sig")
    got = ind.import_targets_csv(county, utf)
    assert got == pytest.approx({"cultivated_land": 50.0, "eco_redline": 10.0,
                                 "development_intensity": 0.31})
    gbk = tmp_path / "g.csv"
    gbk.write_bytes("indicator,target\n永久基本农田保护面积,41\n".encode("gbk"))
    assert ind.parse_targets_csv(gbk) == {"basic_farmland": 41.0}
    res = qa.run_checks(county, only=["indicators"], write=False).result("indicators")
    assert [r["status"] for r in res.summary["rows"]] == ["ok", "no_target", "ok", "no_target",
                                                         "ok"]
    bad = tmp_path / "b.csv"
    bad.write_text("指标,目标值\n耕地保有量,1\n城市人口,5\n", encoding="utf-8")
    with pytest.raises(ind.TargetError) as exc:
        ind.parse_targets_csv(bad)
    assert "b.csv 第 3 行" in exc.value.zh and "城市人口" in exc.value.zh
    bad.write_text("指标,目标值\n耕地保有量,很多\n", encoding="utf-8")
    with pytest.raises(ind.TargetError, match="不是数字"):
        ind.parse_targets_csv(bad)
    bad.write_text("名称,数\n耕地保有量,1\n", encoding="utf-8")
    with pytest.raises(ind.TargetError, match="两列"):
        ind.parse_targets_csv(bad)


# --------------------------------------------------------------------------- 耕地占补平衡

def balance_project(tmp_path: Path, q2_grade: float = 2.0, with_added: bool = True
                    ) -> Project:
    p = Project.create(tmp_path / "b", county="测试县", crs=4549)
    add_layer(p, "行政区", "admin_boundary", [box(0, 0, 1000, 1000)])
    add_layer(p, "现状", "current_use",
              [box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 0, 300, 100),
               box(300, 0, 400, 100)], codes=["0101", "0103", "0301", "0702"],
              extra={"ZLDJ": [3.0, 6.0, None, None]})
    plan = [box(0, 0, 150, 50)]
    codes, grades = ["0701"], [None]
    if with_added:
        plan += [box(200, 0, 300, 100), box(300, 0, 400, 50)]
        codes += ["0102", "0101"]
        grades += [q2_grade, 8.0]
    add_layer(p, "规划", "land_use_plan", plan, codes=codes, extra={"ZLDJ": grades})
    return p


def test_balance_by_area_and_quality(tmp_path: Path):
    p = balance_project(tmp_path)
    res = qa.run_checks(p, only=["farmland_balance"]).result("farmland_balance")
    s = res.summary
    assert (s["occupied_ha"], s["added_ha"]) == pytest.approx((0.75, 1.5))
    assert s["balanced_by_area"] and s["balanced_by_quality"]
    assert res.status == "pass"
    by_grade = pd.DataFrame(s["by_grade"]).set_index("grade")
    assert by_grade.loc[3.0, "occupied_ha"] == pytest.approx(0.5)
    assert by_grade.loc[6.0, "occupied_ha"] == pytest.approx(0.25)
    assert by_grade.loc[2.0, "added_ha"] == pytest.approx(1.0)
    # the pieces are stored; GDAL measures the same areas
    df = pyogrio.read_dataframe(p.gpkg, sql="SELECT kind, sum(ST_Area(geom)) AS a FROM "
                                "mp_farmland_balance GROUP BY kind", sql_dialect="SQLITE")
    assert dict(zip(df["kind"], df["a"], strict=True)) == pytest.approx({"占用": 7500.0,
                                                                          "补充": 15000.0})
    # independent: geopandas overlay of cultivated 现状 with planned construction
    cur = pyogrio.read_dataframe(p.gpkg, layer="现状")
    plan = pyogrio.read_dataframe(p.gpkg, layer="规划")
    occ = gpd.overlay(cur[cur["mp_code"].str.startswith("01")],
                      plan[plan["mp_code"].str[:2].between("07", "16")], how="intersection")
    assert occ.area.sum() == pytest.approx(s["occupied_ha"] * 1e4)


def test_quality_not_balanced(tmp_path: Path):
    p = balance_project(tmp_path, q2_grade=7.0)
    res = qa.run_checks(p, only=["farmland_balance"], write=False).result("farmland_balance")
    assert res.summary["balanced_by_area"] and res.summary["balanced_by_quality"] is False
    assert res.findings.frame()["message_zh"].tolist() == [
        "耕地占补质量不平衡（占优补优）：3 等及更优的补充耕地 0.00 公顷少于占用的 0.50 公顷"]
    assert res.failed


def test_area_not_balanced(tmp_path: Path):
    p = balance_project(tmp_path, with_added=False)
    res = qa.run_checks(p, only=["farmland_balance"], write=False).result("farmland_balance")
    assert res.findings.frame()["message_zh"].tolist() == [
        "耕地占补不平衡：规划占用耕地 0.75 公顷，补充耕地 0.00 公顷，缺口 0.75 公顷",
        "耕地占补质量不平衡（占优补优）：3 等及更优的补充耕地 0.00 公顷少于占用的 0.50 公顷"]
    assert res.summary["net_ha"] == pytest.approx(-0.75)


# --------------------------------------------------------------------------- the sample

def test_sample_indicator_values_match_gdal(tmp_path: Path):
    if not (SAMPLE / "plan.gpkg").is_file():
        pytest.skip("sample project not built")
    dst = tmp_path / "changxing"
    shutil.copytree(SAMPLE, dst)
    p = Project.open(dst)
    run = qa.run_checks(p, only=["indicators", "farmland_balance"], write=False)
    rows = {r["indicator"]: r["plan_value"] for r in run.result("indicators").summary["rows"]}

    def total(sql: str) -> float:
        return float(pyogrio.read_dataframe(p.gpkg, sql=sql, sql_dialect="SQLITE")["a"].iloc[0])

    assert rows["basic_farmland"] * 1e4 == pytest.approx(
        total('SELECT sum(ST_Area(geom)) AS a FROM "永久基本农田"'), rel=1e-9)
    assert rows["eco_redline"] * 1e4 == pytest.approx(
        total('SELECT sum(ST_Area(geom)) AS a FROM "生态保护红线"'), rel=1e-9)
    assert rows["cultivated_land"] * 1e4 == pytest.approx(total(
        "SELECT sum(ST_Area(geom)) AS a FROM \"土地利用规划\" WHERE mp_status = 'ok' "
        "AND mp_code LIKE '01%'"), rel=1e-9)
    constr = total("SELECT sum(ST_Area(geom)) AS a FROM \"土地利用规划\" WHERE mp_status = 'ok' "
                   "AND ((substr(mp_code, 1, 2) BETWEEN '07' AND '16') OR mp_code = '060101')")
    county = total('SELECT sum(ST_Area(geom)) AS a FROM "行政区"')
    assert rows["development_intensity"] == pytest.approx(constr / county, rel=1e-9)
    bal = run.result("farmland_balance").summary
    assert bal["occupied_ha"] > 0 and bal["added_ha"] > 0
    assert bal["balanced_by_area"] == (bal["added_ha"] >= bal["occupied_ha"])
