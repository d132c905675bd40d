"""质检 checklist: every check on small hand-made layers, against hand computations,
geopandas (gaps, overlaps, parts outside the county) and GDAL's ST_Area on the written
GeoPackage; the parameter table's schema check; storage, cancel and progress; and the
sample county (a temporary copy) with its known small problems.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from multiplan.core import qa
from multiplan.core.classification import unify
from multiplan.core.errors import StandardsError
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project
from multiplan.core.tasks import Cancelled, CancelToken, Task

X0, Y0 = 500_000.0, 3_430_000.0  # near 120°E, 31°N in EPSG:4549
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "changxing"


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def add_layer(project: Project, name: str, role: str, geoms: list, *,
              codes: list | None = None, scheme: str = "ydyh2023", names: list | None = None,
              extra: dict | None = None, code_field: str = "DLBM", name_field: str = "DLMC",
              geometry_type: str = "MultiPolygon") -> None:
    """Write a layer the way io.import_layer leaves it (mp_* columns when coded)."""
    data: dict = dict(extra or {})
    cf = nf = None
    if codes is not None:
        data[code_field] = codes
        cf = code_field
        u = unify(pd.Series(codes, dtype=object), scheme)
        for c in u.columns:
            data[c] = u[c].to_numpy()
    if names is not None:
        data[name_field] = names
        nf = name_field
    gdf = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=project.epsg))
    rec = LayerRecord(name=name, kind="vector", level="county", role=role, title=name,
                      geometry_type=geometry_type, scheme=scheme if codes is not None else None,
                      code_field=cf, name_field=nf)
    project.write_vector_layer(gdf, rec, replace=project.has_layer(name))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.create(tmp_path / "p", county="测试县", crs=4549, admin_code="330522")
    add_layer(p, "行政区", "admin_boundary", [box(0, 0, 1000, 1000)])
    return p


def findings(project: Project, check: str) -> gpd.GeoDataFrame:
    return qa.read_errors(project, check)


def st_area(project: Project, table: str, where: str = "1") -> np.ndarray:
    """GDAL's own area of each stored geometry (SQLite dialect)."""
    df = pyogrio.read_dataframe(project.gpkg, sql=f'SELECT ST_Area(geom) AS a FROM "{table}" '
                                f"WHERE {where} ORDER BY fid", sql_dialect="SQLITE")
    return df["a"].to_numpy(dtype=float)


# --------------------------------------------------------------------------- parameter table

def test_packaged_table_loads_with_version_and_every_check_exists():
    params = qa.load_params()
    assert params.version_id == "qa_checks/1.0"
    ids = [c["id"] for c in qa.available_checks()]
    for expected in ("required_layers", "crs", "geometry_valid", "overlaps", "gaps",
                     "outside_county", "fragments", "slivers", "code_domain", "code_name",
                     "unique_ids", "admin_codes", "area_field", "rl_urban_eco", "indicators",
                     "farmland_balance", "sansheng"):
        assert expected in ids
    assert set(ids) == set(qa._implementations())


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d.update(kind="scheme"), "kind"),
    (lambda d: d.update(extra=1), "未知的键"),
    (lambda d: d["checks"].append(dict(d["checks"][0])), "重复"),
    (lambda d: d["checks"][0].update(blocking="yes"), "blocking"),
    (lambda d: d["checks"][0].update(group="nope"), "分组"),
    (lambda d: d["required_layers"][0].update(roles=["no_such_role"]), "图层用途"),
    (lambda d: d["roles"].update(fragments=["no_such_role"]), "roles.fragments"),
    (lambda d: d["fields"].pop("id"), "fields"),
    (lambda d: d["checks"][0].update(expr="__import__('os')"), "键须为"),
])
def test_table_schema_check_names_the_entry(tmp_path: Path, mutate, fragment: str):
    data = json.loads(Path(qa.load_params().path).read_text(encoding="utf-8"))
    mutate(data)
    f = tmp_path / "qa.json"
    f.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(StandardsError) as exc:
        qa.load_params(f)
    assert fragment in exc.value.zh
    assert exc.value.path == str(f)


def test_duplicate_json_keys_are_refused(tmp_path: Path):
    f = tmp_path / "qa.json"
    f.write_text('{"id": "a", "id": "b"}', encoding="utf-8")
    with pytest.raises(StandardsError, match="duplicate key"):
        qa.load_params(f)


def test_unknown_check_is_a_usage_error(project: Project):
    with pytest.raises(qa.QAError) as exc:
        qa.run_checks(project, only=["overlaps", "no_such_check"])
    assert exc.value.exit_code == 2 and "no_such_check" in exc.value.en


# --------------------------------------------------------------------------- overlaps

def _geopandas_overlaps(geoms: list) -> list[tuple[int, int, float]]:
    """Pairwise overlaps by geopandas.overlay of the layer with itself (independent route)."""
    g = gpd.GeoDataFrame({"i": range(len(geoms))}, geometry=geoms, crs=4549)
    o = gpd.overlay(g, g.rename(columns={"i": "j"}), how="intersection", keep_geom_type=True)
    o = o[o["i"] < o["j"]]
    o = o.assign(a=o.area)
    return sorted((int(r.i), int(r.j), round(float(r.a), 6)) for r in o.itertuples()
                  if r.a > 1e-6)


def test_overlaps_agree_with_geopandas_and_gdal(project: Project):
    geoms = [box(0, 0, 100, 100),          # fid 1
             box(90, 0, 200, 50),          # fid 2: overlaps 1 by 10 × 50
             box(200, 0, 300, 100),        # fid 3: touches 2 only
             box(20, 20, 40, 40),          # fid 4: inside 1 (400 m²)
             box(300, 0, 400, 100),        # fid 5: shares an edge with 3
             box(400, 0, 500.5, 0.8)]      # fid 6: overlaps nothing (touches 5 at a corner)
    geoms.append(box(500, 0, 501, 0.5))    # fid 7: overlaps 6 by 0.5 × 0.5 = 0.25 m² (提示)
    add_layer(project, "现状", "current_use", geoms, codes=["0101"] * len(geoms))
    run = qa.run_checks(project, only=["overlaps"])
    res = run.result("overlaps")
    assert res.status == "fail" and res.errors == 2 and res.infos == 1
    got = findings(project, "overlaps").sort_values(["feature_fid", "other_fid"])
    # fids are 1-based positions here
    mine = sorted((int(r.feature_fid) - 1, int(r.other_fid) - 1, round(float(r.area_m2), 6))
                  for r in got.itertuples())
    assert mine == _geopandas_overlaps(geoms)
    assert mine == [(0, 1, 500.0), (0, 3, 400.0), (5, 6, 0.25)]
    # the stored geometry is the overlap piece: GDAL measures the same area
    a = st_area(project, qa.ERRORS_TABLE, "check_id = 'overlaps'")
    assert sorted(np.round(a, 6)) == sorted(r[2] for r in mine)
    msgs = dict(zip(got["area_m2"].round(2), got["message_zh"], strict=True))
    assert msgs[500.0] == "图层“现状”要素 1与要素 2重叠 500.00 m²"
    assert "仅提示" in msgs[0.25] and "below 1 m²" in got.loc[got["area_m2"] < 1,
                                                              "message_en"].iloc[0]


def test_shared_edges_with_float_noise_are_not_overlaps(project: Project):
    # two squares sharing an edge whose coordinates differ by 1e-9 m: GEOS sees interiors
    # meeting, but the piece is far narrower than the XY tolerance
    a = shapely.Polygon([(X0, Y0), (X0 + 100, Y0), (X0 + 100 + 1e-9, Y0 + 100), (X0, Y0 + 100)])
    b = shapely.Polygon([(X0 + 100, Y0), (X0 + 200, Y0), (X0 + 200, Y0 + 100),
                         (X0 + 100, Y0 + 100)])
    add_layer(project, "现状", "current_use", [a, b], codes=["0101", "0101"])
    run = qa.run_checks(project, only=["overlaps"], write=False)
    res = run.result("overlaps")
    assert res.status == "pass"
    # set aside by the hull separation test (their common part is a strip < 0.001 m wide)
    assert res.summary["layers"]["现状"]["separated_pairs"] == 1
    # the exact route agrees: GEOS finds a common piece, and it is noise
    ov = qa.layer_overlaps(np.array([a, b], dtype=object))
    assert len(ov.area) == 0 and ov.separated == 1
    assert shapely.intersection(a, b).area < 1e-6


# --------------------------------------------------------------------------- gaps

def _tiling_with_gaps() -> list:
    """A 1000 × 1000 county tiled by 10 m × 1000 m strips, with holes punched."""
    strips = [box(x, 0, x + 10, 1000) for x in range(0, 1000, 10)]
    holes = [box(203, 400, 233, 420),      # 600 m² gap inside one strip
             box(0, 700, 1000, 701.5),     # a 1.5 m wide gap crossing the whole county
             box(555, 100, 555.5, 101)]    # 0.5 m²: listed as 提示
    cut = shapely.union_all(holes)
    return [shapely.difference(s, cut) for s in strips], holes


def test_gaps_agree_with_geopandas(project: Project):
    parts, holes = _tiling_with_gaps()
    add_layer(project, "现状", "current_use", parts, codes=["0101"] * len(parts))
    run = qa.run_checks(project, only=["gaps"])
    res = run.result("gaps")
    assert res.status == "fail" and res.errors == 2 and res.infos == 1
    got = findings(project, "gaps")
    # independent: county minus the union of the layer, by geopandas
    county = gpd.GeoSeries([box(0, 0, 1000, 1000)], crs=4549)
    layer = gpd.GeoSeries(parts, crs=4549)
    expected = county.difference(layer.union_all()).explode(index_parts=False)
    assert sorted(got["area_m2"].round(4)) == sorted(expected.area.round(4))
    assert sorted(got["area_m2"].round(4)) == [0.5, 600.0, 1500.0]
    # the gap crossing every tile is one piece, not one per tile
    assert res.summary["layers"]["现状"]["gaps"] == 2
    a = st_area(project, qa.ERRORS_TABLE, "check_id = 'gaps'")
    assert sorted(np.round(a, 4)) == [0.5, 600.0, 1500.0]
    big = got.loc[got["area_m2"].idxmax()]
    assert big["message_zh"] == "图层“现状”在县域内有缝隙（无图斑覆盖）1,500.00 m²"
    assert shapely.equals(big["geometry"], holes[1])


def test_gap_hidden_by_an_equal_overlap_is_found(project: Project):
    # a parcel moved 5 m right: a 5 m gap on its left, a 5 m overlap on its right — the
    # areas balance exactly, so only the overlap pieces reveal the tile
    cells = [box(x, 0, x + 100, 1000) for x in range(0, 1000, 100)]
    cells[4] = shapely.affinity.translate(cells[4], 5, 0)
    add_layer(project, "现状", "current_use", cells, codes=["0101"] * len(cells))
    run = qa.run_checks(project, only=["overlaps", "gaps"])
    assert run.result("overlaps").findings.area("error") == pytest.approx(5000.0)
    gaps = findings(project, "gaps")
    assert gaps["area_m2"].round(6).tolist() == [5000.0]


def test_gaps_are_checked_only_for_full_coverage_layers(project: Project):
    add_layer(project, "城规", "urban_plan", [box(0, 0, 10, 10)], codes=["0701"])
    res = qa.run_checks(project, only=["gaps"], write=False).result("gaps")
    assert res.status == "pass" and res.summary["layers"] == {}


# --------------------------------------------------------------------------- outside

def test_outside_county_agrees_with_geopandas(project: Project):
    geoms = [box(-20, 0, 30, 40),      # 20 × 40 = 800 m² outside
             box(100, 100, 200, 200),  # inside
             box(990, 990, 1000.5, 1000.5),  # 0.5 × 10.5 × 2 - 0.25 outside: 10.25 m²
             box(2000, 0, 2010, 10)]   # wholly outside: 100 m²
    add_layer(project, "生态保护红线", "eco_redline", geoms)
    run = qa.run_checks(project, only=["outside_county", "rl_in_county"])
    got = findings(project, "outside_county").sort_values("feature_fid")
    county = box(0, 0, 1000, 1000)
    expected = [shapely.difference(g, county).area for g in geoms]
    assert got["feature_fid"].tolist() == [1, 3, 4]
    assert got["area_m2"].tolist() == pytest.approx([e for e in expected if e > 0])
    assert got["area_m2"].tolist() == pytest.approx([800.0, 10.25, 100.0])
    assert sorted(st_area(project, qa.ERRORS_TABLE, "check_id = 'outside_county'")) == \
        pytest.approx([10.25, 100.0, 800.0])
    # the 三区三线 check reuses the computation and writes its own result layer
    rl = run.result("rl_in_county")
    assert rl.errors == 3 and rl.summary["area_m2"] == pytest.approx(910.25)
    assert sorted(st_area(project, "mp_rl_in_county")) == pytest.approx([10.25, 100.0, 800.0])


# --------------------------------------------------------------------------- geometry

def test_geometry_validity(project: Project):
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])
    dup = shapely.Polygon([(X0 + 20, Y0), (X0 + 30, Y0), (X0 + 30, Y0), (X0 + 30, Y0 + 10),
                           (X0 + 20, Y0 + 10)])
    # a spike: out to (80, 5) and back along nearly the same line
    spike = shapely.Polygon([(X0 + 40, Y0), (X0 + 50, Y0), (X0 + 50, Y0 + 5),
                             (X0 + 80, Y0 + 5.2), (X0 + 50, Y0 + 5.4), (X0 + 50, Y0 + 10),
                             (X0 + 40, Y0 + 10)])
    zero_part = shapely.MultiPolygon([box(100, 0, 110, 10),
                                      shapely.Polygon([(X0 + 120, Y0), (X0 + 130, Y0),
                                                       (X0 + 125, Y0)])])
    good = box(200, 0, 210, 10)
    add_layer(project, "现状", "current_use", [bowtie, dup, spike, zero_part, good, None],
              codes=["0101"] * 6)
    res = qa.run_checks(project, only=["geometry_valid"]).result("geometry_valid")
    got = findings(project, "geometry_valid").sort_values("feature_fid")
    by_fid: dict[int, list] = {}
    for r in got.itertuples():
        by_fid.setdefault(int(r.feature_fid), []).append((r.severity, r.message_zh,
                                                          r.geometry))
    # the bow-tie: self-intersection at GEOS's point (and its two halves cancel to area 0)
    inv = [x for x in by_fid[1] if "自相交" in x[1]]
    assert inv[0][0] == "error"
    assert inv[0][1] == "要素 1几何无效：自相交（Self-intersection[500005 3430005]）"
    assert inv[0][2].equals_exact(shapely.Point(X0 + 5, Y0 + 5), 1e-6)
    assert [x[:2] for x in by_fid[2]] == [("warning", "要素 2有 1 处重复节点（相邻节点距离小于 0.001 m）")]
    assert [x[:2] for x in by_fid[3]] == [("warning", "要素 3有 1 处尖刺（夹角小于 1°）")]
    assert by_fid[3][0][2].equals_exact(shapely.MultiPoint([(X0 + 80, Y0 + 5.2)]), 1e-6)
    # the collapsed part is also invalid (and a 0° spike): each is reported
    assert ("error", "要素 4含有1 个空的或零面积的部分") in [x[:2] for x in by_fid[4]]
    assert [x[:2] for x in by_fid[6]] == [("error", "要素 6没有几何")]
    assert 5 not in by_fid
    assert res.status == "fail"


def test_vertex_problems_on_hand_rings():
    sq = shapely.Polygon([(0, 0), (10, 0), (10, 0.0005), (10, 10), (0, 10)])
    dup, spk = qa.vertex_problems(np.array([sq], dtype=object), xy_tol=0.001, spike_deg=1)
    assert dup == {0: [(10.0, 0.0005)]} and spk == {}
    # a thin triangle with a 5° corner at the origin: a spike only under a 6° threshold
    t = np.tan(np.radians(5))
    thin = np.array([shapely.Polygon([(0, 0), (100, 0), (100, 100 * t)])], dtype=object)
    assert qa.vertex_problems(thin, xy_tol=0.001, spike_deg=1) == ({}, {})
    assert qa.vertex_problems(thin, xy_tol=0.001, spike_deg=6) == ({}, {0: [(0.0, 0.0)]})


# --------------------------------------------------------------------------- fragments, slivers

def test_fragments_by_class_group_and_setting(project: Project):
    # squares of area 150, 350, 450, 550, 650 m² (side = √area)
    def sq(x: float, a: float) -> shapely.Polygon:
        s = a ** 0.5
        return box(x, 0, x + s, s)

    geoms = [sq(0, 150), sq(50, 350), sq(100, 450), sq(150, 550), sq(200, 650), sq(250, 150)]
    codes = ["0701", "0101", "0101", "0301", "0301", None]
    add_layer(project, "现状", "current_use", geoms, codes=codes)
    res = qa.run_checks(project, only=["fragments"]).result("fragments")
    got = findings(project, "fragments").sort_values("feature_fid")
    # 建设用地 < 200, 农用地 < 400, 其他 < 600; 0301 林地 is 农用地 by 三大类; no code: other
    assert got["feature_fid"].tolist() == [1, 2, 6]
    assert got["message_zh"].tolist()[0] == \
        "要素 1面积 150.0 m²，小于建设用地最小上图面积 200 m²"
    assert res.status == "warn" and not res.failed
    project.set_settings(min_fragment_m2={"construction": 100.0, "agricultural": 500.0,
                                          "other": 600.0})
    qa.run_checks(project, only=["fragments"])
    assert findings(project, "fragments")["feature_fid"].tolist() == [2, 3, 6]


def test_slivers_need_thin_shapes(project: Project):
    geoms = [box(0, 0, 200, 2),       # 400 m², mean width 1.98 m, compactness 0.03: sliver
             box(0, 10, 20, 30),      # 20 × 20: small but compact
             box(0, 40, 900, 44)]     # 3600 m² but 4 m wide: sliver by width
    add_layer(project, "现状", "current_use", geoms, codes=["0101"] * 3)
    qa.run_checks(project, only=["slivers"])
    got = findings(project, "slivers").sort_values("feature_fid")
    assert got["feature_fid"].tolist() == [1, 3]
    assert got["value"].round(3).tolist() == [round(2 * 400 / 404, 3), round(2 * 3600 / 1808, 3)]


# --------------------------------------------------------------------------- attributes

def test_code_domain_and_code_name(project: Project):
    geoms = [box(x, 0, x + 10, 10) for x in range(0, 60, 10)]
    codes = ["0101", "9999", None, "0101", "101", "E2"]
    names = ["水田", "水田", "水田", "旱地", "水田", "农林用地"]
    add_layer(project, "现状", "current_use", geoms[:5], codes=codes[:5], names=names[:5])
    add_layer(project, "城规", "urban_plan", geoms[5:], codes=codes[5:], names=names[5:],
              scheme="gb50137_2011")
    run = qa.run_checks(project, only=["code_domain", "code_name"])
    dom = findings(project, "code_domain").sort_values(["layer", "feature_fid"])
    assert [(r.layer, int(r.feature_fid), r.severity) for r in dom.itertuples()] == \
        [("城规", 1, "info"), ("现状", 2, "error"), ("现状", 3, "error")]
    assert "代码 9999 不在分类标准 ydyh2023/1.0 中" in dom["message_zh"].iloc[1]
    assert "为空" in dom["message_zh"].iloc[2]
    assert "待定" in dom["message_zh"].iloc[0]
    nm = findings(project, "code_name")
    assert nm["feature_fid"].tolist() == [4]
    assert nm["message_zh"].iloc[0] == "要素 4的名称“旱地”与代码 0101（水田）不一致"
    assert run.result("code_domain").failed and run.result("code_name").failed


def test_unique_ids_and_admin_codes(project: Project):
    geoms = [box(x, 0, x + 10, 10) for x in range(0, 40, 10)]
    add_layer(project, "现状", "current_use", geoms, codes=["0101"] * 4,
              extra={"BSM": ["A1", "A2", "A1", None],
                     "XZQDM": ["330522001000", "33052", "330599", "330522"]})
    run = qa.run_checks(project, only=["unique_ids", "admin_codes"])
    u = findings(project, "unique_ids").sort_values("feature_fid")
    assert u["feature_fid"].tolist() == [1, 3, 4]
    assert u["message_zh"].tolist()[0] == "要素 1 的 BSM“A1”重复（另见要素 3）"
    assert "为空" in u["message_zh"].tolist()[2]
    a = findings(project, "admin_codes").sort_values("feature_fid")
    assert [(int(r.feature_fid), r.severity) for r in a.itertuples()] == \
        [(2, "error"), (3, "warning")]
    assert run.result("unique_ids").failed and run.result("admin_codes").failed


def test_area_field_with_units(project: Project):
    geoms = [box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 0, 300, 50)]
    add_layer(project, "现状", "current_use", geoms, codes=["0101"] * 3,
              extra={"TBMJ": [10000.0, 10005.0, 5000.04]})
    add_layer(project, "基本农田", "basic_farmland", geoms[:2],
              extra={"MJ": [1.0, 1.2]})  # 公顷
    res = qa.run_checks(project, only=["area_field"]).result("area_field")
    got = findings(project, "area_field").sort_values(["layer", "feature_fid"])
    assert [(r.layer, int(r.feature_fid)) for r in got.itertuples()] == \
        [("基本农田", 2), ("现状", 2)]
    assert res.summary["fields"]["基本农田.MJ"]["unit"] == "公顷"
    assert "相差 5.00 m²" in got["message_zh"].iloc[1]
    assert got["value"].round(3).tolist() == [2000.0, 5.0]


def test_crs_and_required_layers(project: Project):
    add_layer(project, "现状", "current_use", [box(0, 0, 10, 10)], codes=["0101"])
    with sqlite3.connect(project.gpkg) as conn:  # a layer stored in another CRS
        conn.execute("UPDATE gpkg_geometry_columns SET srs_id = 4326 WHERE table_name = '现状'")
    run = qa.run_checks(project, only=["crs", "required_layers"])
    crs = findings(project, "crs")
    assert crs["message_zh"].tolist() == ["图层“现状”的坐标系 EPSG:4326 与项目坐标系 EPSG:4549 不一致"]
    req = findings(project, "required_layers")
    text = "\n".join(req["message_zh"])
    for missing in ("规划用地用海（GHYDYH）", "生态保护红线（STBHHX）", "永久基本农田（YJJBNT）",
                    "城镇开发边界（CZKFBJ）"):
        assert f"缺少必备图层：{missing}" in text
    assert "图层“现状”缺少必备字段：BSM" in text
    assert set(req.loc[req["message_zh"].str.contains("规划分区"), "severity"]) == {"warning"}
    assert run.result("required_layers").failed


# --------------------------------------------------------------------------- storage, tasks

def test_only_replaces_its_own_rows_and_runs_table(project: Project):
    add_layer(project, "现状", "current_use", [box(0, 0, 100, 100), box(50, 0, 150, 100),
                                                 box(0, 0, 10, 1)], codes=["0101"] * 3)
    qa.run_checks(project, only=["overlaps", "fragments"])
    before = qa.read_errors(project)
    assert set(before["check_id"]) == {"overlaps", "fragments"}
    project.set_settings(min_fragment_m2={"construction": 1.0, "agricultural": 1.0,
                                          "other": 1.0})
    qa.run_checks(project, only=["fragments"])
    after = qa.read_errors(project)
    assert set(after["check_id"]) == {"overlaps"}  # the fragment finding is gone
    assert len(after) == len(before[before["check_id"] == "overlaps"])
    runs = {r["check_id"]: r for r in qa.read_runs(project)}
    assert runs["fragments"]["status"] == "pass" and runs["overlaps"]["status"] == "fail"
    assert runs["overlaps"]["versions"]["qa_checks"] == "qa_checks/1.0"
    assert project.audit_log()[-1]["action"] == "qa.run"


def test_written_geopackage_passes_gdal_validator(project: Project):
    add_layer(project, "现状", "current_use", [box(0, 0, 100, 100), box(50, 0, 150, 100)],
              codes=["0101"] * 2)
    qa.run_checks(project)
    validator = pytest.importorskip("osgeo_utils.samples.validate_gpkg")
    assert validator.check(str(project.gpkg), abort_at_first_error=False,
                           warning_msg=False) == []
    info = pyogrio.read_info(project.gpkg, layer=qa.ERRORS_TABLE)
    assert info["geometry_type"] == "Unknown" and info["features"] > 0


def test_cancel_writes_nothing_and_progress_is_monotone(project: Project):
    add_layer(project, "现状", "current_use", _tiling_with_gaps()[0], codes=["0101"] * 100)
    seen: list[float] = []
    qa.run_checks(project, only=["overlaps", "gaps", "fragments"],
                  task=Task(lambda f, m: seen.append(f)))
    assert seen == sorted(seen) and seen[-1] == 1.0
    project2_state = project.snapshot_state()
    token = CancelToken()

    def cancel_at(f: float, m: str) -> None:
        if f > 0.2:
            token.cancel()

    with pytest.raises(Cancelled):
        qa.run_checks(project, task=Task(cancel_at, token))
    assert project.snapshot_state() == project2_state


def test_a_broken_check_is_reported_not_raised(project: Project, monkeypatch):
    def boom(ctx, res):
        raise RuntimeError("kaputt")

    monkeypatch.setitem(qa._QA_CHECKS, "slivers", boom)
    run = qa.run_checks(project, only=["slivers", "crs"], write=False)
    assert run.result("slivers").status == "error"
    assert "kaputt" in run.result("slivers").notes[0]["en"]
    assert run.result("crs").status == "pass"
    assert run.passed  # slivers is not blocking


# --------------------------------------------------------------------------- the sample county

@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    if not (SAMPLE / "plan.gpkg").is_file():
        pytest.skip("sample project not built")
    dst = tmp_path_factory.mktemp("sample") / "changxing"
    shutil.copytree(SAMPLE, dst)
    project = Project.open(dst)
    only = [c["id"] for c in qa.available_checks() if c["group"] == "qa"]
    return project, qa.run_checks(project, only=only)


def test_sample_quality_checklist(sample_run):
    _project, run = sample_run
    status = {r.id: r.status for r in run.results}
    assert all(s != "error" for s in status.values()), status
    # the sample is clean where it was built clean
    for cid in ("required_layers", "crs", "overlaps", "outside_county", "code_name",
                "unique_ids", "admin_codes", "area_field"):
        assert status[cid] == "pass", (cid, run.result(cid).findings.frame().head())
    assert run.passed


def test_sample_small_parcels_are_fragments(sample_run):
    project, _ = sample_run
    # independent: every 现状 parcel under 200 m² (the smallest minimum), by GDAL's ST_Area
    small = pyogrio.read_dataframe(project.gpkg, sql='SELECT fid FROM "现状用地" WHERE '
                                   "ST_Area(geom) < 200", sql_dialect="SQLITE",
                                   fid_as_index=True)
    got = findings(project, "fragments")
    flagged = set(got.loc[got["layer"] == "现状用地", "feature_fid"].astype(int))
    assert len(small) >= 40
    assert set(small.index) <= flagged


def test_sample_gaps_are_the_dropped_crumbs(sample_run):
    project, run = sample_run
    # independent: county area minus the 现状 parcels' area, both by GDAL
    county = st_area(project, "行政区").sum()
    parcels = st_area(project, "现状用地").sum()
    res = run.result("gaps")
    assert res.errors == 0
    got = findings(project, "gaps")
    cur = got[got["layer"] == "现状用地"]
    assert (cur["severity"] == "info").all() and len(cur) == 3
    assert cur["area_m2"].sum() == pytest.approx(county - parcels, abs=1e-3)


def test_sample_pending_codes_are_listed(sample_run):
    project, _ = sample_run
    got = findings(project, "code_domain")
    assert (got["severity"] == "info").all()
    assert set(got["layer"]) == {"城市总体规划"} and len(got) == 271
