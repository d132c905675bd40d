"""三生 marking: classes from codes through the versioned table and project overrides,
statistics by township and county (hand areas, parcels split exactly at township lines),
the column and statistics written to the project, the PNG chart with a CJK font, and the
sample county against an independent SQL computation.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from multiplan.core import qa
from multiplan.core import sansheng as ss
from multiplan.core.classification import sansheng_table_version, unify
from multiplan.core.errors import StandardsError
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

X0, Y0 = 500_000.0, 3_430_000.0
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "changxing"


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def add_layer(project: Project, name: str, role: str, geoms: list, codes=None,
              scheme: str = "ydyh2023", extra: dict | None = None, name_field=None) -> None:
    data = dict(extra or {})
    if codes is not None:
        data["DLBM"] = codes
        u = unify(pd.Series(codes, dtype=object), scheme)
        for c in u.columns:
            data[c] = u[c].to_numpy()
    gdf = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=project.epsg))
    rec = LayerRecord(name=name, kind="vector", level="county", role=role, title=name,
                      geometry_type="MultiPolygon", scheme=scheme if codes else None,
                      code_field="DLBM" if codes else None, name_field=name_field)
    project.write_vector_layer(gdf, rec, replace=project.has_layer(name))


@pytest.fixture
def county(tmp_path: Path) -> Project:
    """Two townships (west 0–500, east 500–1000 m); a plan of five parcels, one crossing the
    township line."""
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    add_layer(p, "行政区", "admin_boundary", [box(0, 0, 1000, 1000)])
    add_layer(p, "乡镇", "township", [box(0, 0, 500, 1000), box(500, 0, 1000, 1000)],
              extra={"XZQMC": ["西镇", "东镇"]}, name_field="XZQMC")
    add_layer(p, "规划", "land_use_plan",
              [box(0, 0, 400, 1000),      # 0101 耕地 → 生产 (40 ha, west)
               box(400, 0, 600, 500),     # 0701 住宅 → 生活 (10 ha: 5 west, 5 east)
               box(400, 500, 600, 1000),  # 1402 防护绿地 → 生态 (longest prefix; 5 + 5)
               box(600, 0, 1000, 1000),   # 0301 林地 → 生态 (40 ha, east)
               ], codes=["0101", "0701", "1402", "0301"])
    return p


def test_classes_from_codes_and_overrides(county: Project):
    ctx = qa.CheckContext(county)
    lay = ctx.layer("规划")
    assert ss.classify_layer(lay).tolist() == ["生产", "生活", "生态", "生态"]
    over = {"03": "混合", "14": "生活"}
    # 1402 keeps its own (longer) default prefix over an override of 14
    assert ss.classify_layer(lay, over).tolist() == ["生产", "生活", "生态", "混合"]
    assert sansheng_table_version(over).startswith("sansheng-default/1.0+override-")


def test_pending_codes_take_the_class_their_candidates_agree_on(tmp_path: Path):
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    # GB 50137: H14 → candidates 07–16 (生活/生产 disagree) → 未定; R → 07 生活
    add_layer(p, "城规", "urban_plan", [box(0, 0, 10, 10), box(10, 0, 20, 10)],
              codes=["H14", "R"], scheme="gb50137_2011")
    lay = qa.CheckContext(p).layer("城规")
    assert ss.classify_layer(lay).tolist() == [ss.UNCLASSIFIED, "生活"]


def test_statistics_by_township_and_county(county: Project, tmp_path: Path):
    png = tmp_path / "chart.png"
    res = ss.mark_sansheng(county, chart=png)
    assert res.layer == "规划" and res.version == "sansheng-default/1.0"
    cty = res.county.set_index("class")
    assert cty.loc[["生产", "生活", "生态"], "area_ha"].tolist() == pytest.approx([40, 10, 50])
    assert cty.loc[["生产", "生活", "生态"], "share"].tolist() == pytest.approx([40, 10, 50])
    tw = res.townships.set_index(["township", "class"])
    # the crossing parcels are split exactly at the township line
    assert tw.loc[("西镇", "生产"), "area_ha"] == pytest.approx(40)
    assert tw.loc[("西镇", "生活"), "area_ha"] == pytest.approx(5)
    assert tw.loc[("西镇", "生态"), "area_ha"] == pytest.approx(5)
    assert tw.loc[("东镇", "生态"), "area_ha"] == pytest.approx(45)
    assert tw.loc[("西镇", "生产"), "share"] == pytest.approx(80)
    assert tw.loc[("东镇", "生活"), "share"] == pytest.approx(10)
    wide = res.wide().set_index("乡镇")
    assert wide.loc["全县", "合计（公顷）"] == pytest.approx(100)
    assert "混合（公顷）" not in wide.columns  # a class absent everywhere is left out
    # written: the column in the layer and the statistics table
    col = pyogrio.read_dataframe(county.gpkg, layer="规划", columns=[ss.COLUMN])
    assert col[ss.COLUMN].tolist() == ["生产", "生活", "生态", "生态"]
    stats = pyogrio.read_dataframe(county.gpkg, layer=ss.STATS_TABLE)
    assert set(stats["township"]) == {"西镇", "东镇", "全县"}
    assert (stats["version"] == "sansheng-default/1.0").all()
    # the chart: a PNG drawn with a CJK font when one is installed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    if ss.cjk_font() is None:
        pytest.skip("no CJK font installed")
    assert res.font in ss.CJK_FAMILIES


def test_overrides_are_stored_and_versioned(county: Project):
    version = ss.set_overrides(county, {"09": "生活", "0301": "混合"})
    assert "+override-" in version
    assert county.setting("sansheng_overrides") == {"09": "生活", "0301": "混合"}
    res = ss.mark_sansheng(county, write=False)
    assert res.version == version
    assert res.county.set_index("class").loc["混合", "area_ha"] == pytest.approx(40)
    with pytest.raises(StandardsError):
        ss.set_overrides(county, {"03": "生物"})
    with pytest.raises(StandardsError):
        ss.set_overrides(county, {"x1": "生产"})


def test_check_writes_column_and_warns_on_unclassified(county: Project):
    add_layer(county, "规划", "land_use_plan", [box(0, 0, 500, 1000), box(500, 0, 1000, 1000)],
              codes=["0101", "9999"])
    run = qa.run_checks(county, only=["sansheng"])
    res = run.result("sansheng")
    assert res.status == "warn" and res.summary["unclassified"] == 1
    assert res.findings.frame()["message_zh"].iloc[0] == \
        "图层“规划”有 1 个图斑（50.00 公顷）无法判定三生类别（代码缺失、未知或待定）"
    col = pyogrio.read_dataframe(county.gpkg, layer="规划", columns=[ss.COLUMN])
    assert col[ss.COLUMN].tolist() == ["生产", ss.UNCLASSIFIED]
    assert "sansheng" in res.charts


def test_sample_shares_match_sql(tmp_path: Path):
    if not (SAMPLE / "plan.gpkg").is_file():
        pytest.skip("sample project not built")
    dst = tmp_path / "changxing"
    shutil.copytree(SAMPLE, dst)
    p = Project.open(dst)
    res = ss.mark_sansheng(p, write=False)
    assert res.layer == "土地利用规划"
    # independent: area per 2023 code by GDAL, classed with the packaged table's prefixes
    table = json.loads(resources.files("multiplan").joinpath(
        "resources", "standards", "ydyh2023.json").read_text(encoding="utf-8"))["sansheng"]
    prefixes = table["prefixes"]
    df = pyogrio.read_dataframe(p.gpkg, sql="SELECT mp_code AS c, sum(ST_Area(geom)) AS a "
                                'FROM "土地利用规划" WHERE mp_status = \'ok\' GROUP BY mp_code',
                                sql_dialect="SQLITE")

    def cls(code: str) -> str:
        best = max((k for k in prefixes if code.startswith(k)), key=len)
        return prefixes[best]

    expected = df.assign(k=df["c"].map(cls)).groupby("k")["a"].sum() / 1e4
    got = res.county.set_index("class")["area_ha"]
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=1e-9)
    # townships add up to the county (the plan tiles the 乡镇界)
    tw = res.townships.groupby("class")["area_ha"].sum()
    assert tw.reindex(got.index, fill_value=0).to_numpy() == pytest.approx(got.to_numpy(),
                                                                           rel=1e-6)
    assert len(set(res.townships["township"])) == 15
