"""Public-disclosure export (issue 9 parts 4–6): gates, statistics tables, the manifest and
verify-export, on a small synthetic county built here (6 × 4 km, hand-countable areas).

Expected numbers come from hand computation, geopandas areas read back with pyogrio,
sqlite3 queries on the register, openpyxl/csv reading of the written files and hashlib —
never from the code under test.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pyogrio
import pytest
import shapely

from multiplan.core.project import Project
from multiplan.core.publish import (
    ExportRefused,
    export_package,
    plan_export,
    verify_export,
)
from multiplan.core.tasks import Cancelled, CancelToken, Task

EPSG = 4549
X0, Y0 = 480000.0, 3400000.0


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def _gdf(rows: list[dict], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=EPSG)


def build_project(folder: Path) -> Project:
    """County 6000 × 4000 m (2400 ha) in two townships; 现状 and 规划 tile it; three control
    lines; a round 1001 parcel (many vertices) for the generalisation test."""
    from multiplan.core.io import import_layer

    src = folder.parent / (folder.name + "_src")
    src.mkdir(parents=True, exist_ok=True)
    p = Project.create(folder, county="测试县", crs=EPSG)

    def imp(name: str, role: str, gdf: gpd.GeoDataFrame, **kw) -> None:
        path = src / f"{role}.gpkg"
        gdf.to_file(path)
        import_layer(p, path, name=name, role=role, synthetic=True, **kw)

    imp("行政区", "admin_boundary", _gdf([{"name": "测试县"}], [box(0, 0, 6000, 4000)]))
    imp("乡镇界", "township", _gdf([{"XZQMC": "西镇"}, {"XZQMC": "东镇"}],
                                  [box(0, 0, 3000, 4000), box(3000, 0, 6000, 4000)]),
        name_field="XZQMC")
    imp("现状用地", "current_use", _gdf(
        [{"DLBM": "0101"}, {"DLBM": "0301"}, {"DLBM": "0701"}, {"DLBM": "1701"}],
        [box(0, 0, 3000, 2000), box(0, 2000, 3000, 4000), box(3000, 0, 6000, 2000),
         box(3000, 2000, 6000, 4000)]), scheme="ydyh2023", code_field="DLBM")
    ring = shapely.Point(X0 + 4500, Y0 + 3250).buffer(500, quad_segs=64)
    imp("国土空间规划", "spatial_plan", _gdf(
        [{"DLBM": "0101"}, {"DLBM": "0301"}, {"DLBM": "0701"}, {"DLBM": "1701"},
         {"DLBM": "1001"}],
        [box(0, 0, 2000, 4000), box(2000, 0, 3000, 4000), box(3000, 0, 6000, 2500),
         box(3000, 2500, 6000, 4000).difference(ring), ring]),
        scheme="ydyh2023", code_field="DLBM")
    imp("生态保护红线", "eco_redline", _gdf([{"HXMC": "山地红线"}], [box(2500, 2000, 3500, 4000)]),
        name_field="HXMC")
    imp("永久基本农田", "basic_farmland", _gdf([{"DLBM": "0101"}], [box(0, 0, 1500, 3000)]),
        scheme="ydyh2023", code_field="DLBM")
    imp("城镇开发边界", "urban_boundary", _gdf([{"KFBJLX": "集中建设区"}],
                                          [box(3600, 0, 6000, 2400)]), name_field="KFBJLX")
    shutil.rmtree(src, ignore_errors=True)
    return p


_BUILT: dict[str, Path] = {}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    if "p" not in _BUILT:
        folder = tmp_path_factory.mktemp("publish") / "p"
        p = build_project(folder)
        from multiplan.core.conflicts import detect_conflicts
        detect_conflicts(p, "国土空间规划", "生态保护红线")
        _BUILT["p"] = folder
    return _BUILT["p"]


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Project:
    dst = tmp_path / "p"
    shutil.copytree(base, dst)
    return Project.open(dst)


def set_state(project: Project, state: str) -> None:
    """Put the plan into ``state`` the way the workflow stores it (one mp_workflow row)."""
    from multiplan.core import workflow

    with project.transaction() as conn:
        workflow.ensure_tables(conn)
        workflow._insert_state(conn, 1, state, None, datetime.now(UTC), "test", "test")
    assert workflow.current_state(project) == state


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".part-" in p.name or ".old-" in p.name)


# =========================================================================== gates

def test_public_export_refused_while_drafting_and_nothing_written(project, tmp_path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ExportRefused) as exc:
        export_package(project, out, public=True, sheets=[])
    assert exc.value.exit_code == 6
    assert "公布" in exc.value.zh and "published" in exc.value.en
    assert "编制中" in exc.value.zh
    assert not out.exists() and leftovers(tmp_path) == []


def test_internal_export_always_allowed_and_marked_internal(project, tmp_path) -> None:
    res = export_package(project, tmp_path / "out", public=False, sheets=[])
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert m["edition"] == "internal" and m["internal_mark"] == "内部"
    assert "内部" in m["edition_zh"]
    assert m["plan"]["watermark"] is None and m["plan"]["generalisation"] is None
    assert m["project"]["state"] == "编制中"
    assert res.folder == tmp_path / "out"


def test_notice_gives_a_draft_with_watermark(project, tmp_path) -> None:
    set_state(project, "公示中")
    plan = plan_export(project, public=True, sheets=[])
    assert plan.ok and plan.watermark == "征求意见稿"
    export_package(project, tmp_path / "out", public=True, sheets=[])
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert m["edition"] == "public" and m["plan"]["watermark"] == "征求意见稿"
    assert "征求意见稿" in m["edition_zh"]


def test_published_public_map_needs_review_number(project, base, tmp_path) -> None:
    set_state(project, "已公布")
    plan = plan_export(project, public=True, sheets=["landuse"])
    assert [g.key for g in plan.failures] == ["review_no"]
    err = plan.refusal()
    assert err.exit_code == 6 and "审图号" in err.zh
    assert plan_export(project, public=True, sheets=["landuse"], review_no="浙S(2025)12号").ok
    # a public export with no map sheet needs none; internal needs none
    assert plan_export(project, public=True, sheets=[]).ok
    assert plan_export(project, public=False, sheets=["landuse"]).ok
    # the project setting (set while drafting, before publication)
    other = tmp_path / "q"
    shutil.copytree(base, other)
    q = Project.open(other)
    q.set_settings(export_review_no="浙S(2025)34号")
    set_state(q, "已公布")
    got = plan_export(q, public=True, sheets=["landuse"])
    assert got.ok and got.review_no == "浙S(2025)34号"


def test_generalisation_default_source_and_effect(project, tmp_path) -> None:
    plan = plan_export(project, public=True, sheets=[])
    assert plan.generalise_m == 50.0 and "50" in plan.generalise_source
    assert "[L]" in plan.generalise_source
    project.set_settings(export_generalise_m=20.0)
    assert plan_export(project, public=True, sheets=[]).generalise_m == 20.0
    set_state(project, "已公布")
    assert plan_export(project, public=True, sheets=[], generalise_m=80).generalise_m == 80.0
    export_package(project, tmp_path / "pub", public=True, sheets=[], generalise_m=80)
    export_package(project, tmp_path / "int", public=False, sheets=[])
    pub = pyogrio.read_dataframe(tmp_path / "pub" / "data" / "规划数据包.gpkg", layer="GHYDYH")
    orig = pyogrio.read_dataframe(tmp_path / "int" / "data" / "规划数据包.gpkg",
                                  layer="GHYDYH")
    a = orig.loc[orig["YDYHFLDM"] == "1001"].geometry.iloc[0]
    b = pub.loc[pub["YDYHFLDM"] == "1001"].geometry.iloc[0]
    assert shapely.get_num_coordinates(b) < shapely.get_num_coordinates(a) / 4
    assert shapely.hausdorff_distance(a, b) <= 80.0
    assert "SRC_FID" in orig.columns and "SRC_FID" not in pub.columns  # internal ids stay in
    m = json.loads((tmp_path / "pub" / "manifest.json").read_text(encoding="utf-8"))
    assert m["plan"]["generalisation"]["tolerance_m"] == 80.0


def test_existing_folder_is_not_overwritten_unless_asked(project, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(ExportRefused):
        export_package(project, out, public=False, sheets=[])
    assert (out / "mine.txt").read_text() == "keep"
    with pytest.raises(ExportRefused):  # not an earlier export: never replaced
        export_package(project, out, public=False, sheets=[], overwrite=True)
    shutil.rmtree(out)
    export_package(project, out, public=False, sheets=[])
    (out / "tables" / "stale.csv").write_text("from before")
    export_package(project, out, public=False, sheets=[], overwrite=True)
    assert verify_export(out).ok and leftovers(tmp_path) == []
    assert not (out / "tables" / "stale.csv").exists()  # replaced, not merged


def test_cancel_and_failure_leave_no_half_package(project, tmp_path, monkeypatch) -> None:
    token = CancelToken()
    seen: list[float] = []

    def progress(f: float, msg: str) -> None:
        seen.append(f)
        if f > 0.7:
            token.cancel()

    with pytest.raises(Cancelled):
        export_package(project, tmp_path / "out", public=False, sheets=[],
                       task=Task(progress, token))
    assert seen and not (tmp_path / "out").exists() and leftovers(tmp_path) == []

    from multiplan.core.publish import export as ex

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ex, "write_package", boom)
    with pytest.raises(OSError):
        export_package(project, tmp_path / "out", public=False, sheets=[])
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_unknown_sheet_is_refused(project, tmp_path) -> None:
    with pytest.raises(ExportRefused) as exc:
        export_package(project, tmp_path / "out", public=False, sheets=["no_such_sheet"])
    assert "no_such_sheet" in exc.value.zh and not (tmp_path / "out").exists()


# =========================================================================== statistics

@pytest.fixture(scope="module")
def exported(base: Path, tmp_path_factory) -> tuple[Project, Path]:
    dst = tmp_path_factory.mktemp("exported")
    shutil.copytree(base, dst / "p")
    project = Project.open(dst / "p")
    _fake_assessment_run(project)
    export_package(project, dst / "out", public=False, sheets=[])
    return project, dst / "out"


def _fake_assessment_run(project: Project) -> None:
    """A recorded run with known township statistics (what run_assessment stores)."""
    from multiplan.core.assessment import records

    rows = [
        {"unit": "西镇", "result": "agri_suitability", "result_zh": "农业生产适宜性",
         "code": 1, "class": "适宜", "cells": 3000, "area_ha": 270.0, "share": 0.25},
        {"unit": "西镇", "result": "agri_suitability", "result_zh": "农业生产适宜性",
         "code": 3, "class": "不适宜", "cells": 9000, "area_ha": 810.0, "share": 0.75},
        {"unit": "东镇", "result": "agri_suitability", "result_zh": "农业生产适宜性",
         "code": 1, "class": "适宜", "cells": 1000, "area_ha": 90.0, "share": 1.0},
    ]
    cap = {"current": {"rows": [{"unit": "全县", "farmland_carrying_ha": 1234.5,
                                 "population_carrying": 56789}]}, "scenarios": {}}
    with project.transaction() as conn:
        records.insert_run(conn, {
            "run_id": "run-test", "time": "2026-01-01T00:00:00+00:00", "status": "complete",
            "multiplan_version": "t", "rule_file": {"version_id": "assessment_2019/1.0"},
            "params_sha256": "x", "params": {}, "cell_size_m": 30.0, "grid": {},
            "inputs": {}, "outputs": {}, "notes": [],
            "summary": {"stats_township": rows, "capacity": cap}})


def _sheet_table(ws) -> tuple[dict[str, str], list[str], list[list]]:
    """(notes by label, header, rows) of a statistics sheet."""
    rows = list(ws.iter_rows(values_only=True))
    notes = {}
    i = 1
    while rows[i] and any(v is not None for v in rows[i]):
        notes.setdefault(rows[i][0], rows[i][1])
        i += 1
    header = list(rows[i + 1])
    body = [list(r) for r in rows[i + 2:]]
    return notes, header, body


def test_statistics_workbook_has_every_table_with_method_and_versions(exported) -> None:
    _project, out = exported
    wb = openpyxl.load_workbook(out / "tables" / "统计表.xlsx")
    assert wb.sheetnames == ["用地用海结构", "三区三线面积", "三生空间", "差异图斑汇总", "双评价结果",
                             "承载规模"]
    want = {"用地用海结构": ["ydyh2023/1.0"], "三区三线面积": [],
            "三生空间": ["sansheng-default/1.0", "ydyh2023/1.0"],
            "差异图斑汇总": ["conflict_rules/1.0"], "双评价结果": ["assessment_2019/1.0"],
            "承载规模": ["assessment_2019/1.0"]}
    for name in wb.sheetnames:
        notes, _header, _ = _sheet_table(wb[name])
        assert notes.get("面积算法 area method")
        got = notes["版本 versions"].split("; ")
        assert got[:len(want[name])] == want[name] and got[-1].startswith("multiplan ")
        assert len(got) == len(set(got))  # each version once
    assert "EPSG:4549" in _sheet_table(wb["用地用海结构"])[0]["面积算法 area method"]
    csvs = sorted(p.name for p in (out / "tables").glob("*.csv"))
    assert len(csvs) == 6
    for p in (out / "tables").glob("*.csv"):
        raw = p.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
        rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
        for r in rows:
            assert r["面积算法 area method"] and "multiplan " in r["版本 versions"]


def test_statistics_name_the_crosswalk_of_a_legacy_plan(tmp_path, repo_root) -> None:
    """The sample's plan is a GB/T 21010-2017 土地利用规划: its crosswalk version is stated."""
    from multiplan.core.publish.stats import build_tables

    shutil.copytree(repo_root / "sample_data" / "changxing", tmp_path / "cx")
    t = build_tables(Project.open(tmp_path / "cx"))[0]
    assert t.key == "landuse_structure"
    assert t.versions == ["ydyh2023/1.0", "xwalk_gbt21010_2017_to_ydyh2023/1.0"]


def test_landuse_structure_matches_geopandas_areas(exported) -> None:
    project, out = exported
    _, header, body = _sheet_table(openpyxl.load_workbook(out / "tables" / "统计表.xlsx")[
        "用地用海结构"])
    rows = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    for layer, col in (("现状用地", "现状面积（公顷）"), ("国土空间规划", "规划面积（公顷）")):
        g = pyogrio.read_dataframe(project.gpkg, layer=layer)
        want = (g.geometry.area.groupby(g["DLBM"].str[:2]).sum() / 1e4)
        for code, ha in want.items():
            assert rows[code][col] == pytest.approx(ha, abs=1e-3)
        assert rows["合计"][col] == pytest.approx(2400.0, abs=1e-3)  # 6 km × 4 km
    # hand values: 耕地 600 → 800 ha; 居住 600 → 750 ha; 工矿 0 → π·500² m²
    assert rows["01"]["现状面积（公顷）"] == pytest.approx(600.0)
    assert rows["01"]["规划面积（公顷）"] == pytest.approx(800.0)
    assert rows["01"]["规划占比（%）"] == pytest.approx(800 / 2400 * 100, abs=1e-3)
    assert rows["01"]["一级类名称"] == "耕地"
    assert rows["07"]["增减（公顷）"] == pytest.approx(150.0)
    assert rows["10"]["现状面积（公顷）"] == 0
    assert rows["10"]["规划面积（公顷）"] == pytest.approx(3.14159 * 25, rel=2e-3)


def test_control_line_and_sansheng_tables_by_hand(exported) -> None:
    _, out = exported
    wb = openpyxl.load_workbook(out / "tables" / "统计表.xlsx")
    _, header, body = _sheet_table(wb["三区三线面积"])
    rows = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    assert rows["生态保护红线"]["面积（公顷）"] == pytest.approx(200.0)
    assert rows["生态保护红线"]["占县域（%）"] == pytest.approx(200 / 2400 * 100, abs=1e-3)
    assert rows["永久基本农田"]["面积（公顷）"] == pytest.approx(450.0)
    assert rows["城镇开发边界"]["面积（公顷）"] == pytest.approx(576.0)
    _, header, body = _sheet_table(wb["三生空间"])
    ss = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    # 规划: 0101 800 ha + 1001 (π·25 ha) 生产; 0701 750 ha 生活; 0301 400 + 1701 rest 生态
    ring = 3.14159265 * 25
    assert ss["生活"]["面积（公顷）"] == pytest.approx(750.0, abs=1e-3)
    assert ss["生产"]["面积（公顷）"] == pytest.approx(800 + ring, rel=1e-3)
    assert ss["生态"]["面积（公顷）"] == pytest.approx(400 + 450 - ring, rel=1e-3)
    assert sum(r["占比（%）"] for r in ss.values()) == pytest.approx(100.0, abs=1e-3)


def test_conflict_summary_equals_sql_on_the_register(exported) -> None:
    project, out = exported
    _, header, body = _sheet_table(openpyxl.load_workbook(out / "tables" / "统计表.xlsx")[
        "差异图斑汇总"])
    with sqlite3.connect(project.gpkg) as conn:
        sql = {(t, s): (n, a, p) for t, s, n, a, p in conn.execute(
            "SELECT conflict_type, severity, count(*), sum(area_ha), sum(pending) "
            "FROM mp_conflicts WHERE sliver = 0 GROUP BY conflict_type, severity")}
        total = conn.execute("SELECT count(*), sum(area_ha) FROM mp_conflicts "
                             "WHERE sliver = 0").fetchone()
    assert sql  # the plan builds on the red line: there are conflicts
    got = {(r[0], r[2]): dict(zip(header, r, strict=True)) for r in body if r[0] != "合计"}
    assert set(got) == set(sql)
    for k, (n, a, p) in sql.items():
        assert got[k]["图斑数"] == n
        assert got[k]["面积（公顷）"] == pytest.approx(a, abs=1e-3)
        assert got[k]["规则待定图斑数"] == p
        assert got[k]["已裁定图斑数"] == 0 and got[k]["未裁定图斑数"] == n  # no decision yet
    tot = next(dict(zip(header, r, strict=True)) for r in body if r[0] == "合计")
    assert tot["图斑数"] == total[0] and tot["面积（公顷）"] == pytest.approx(total[1], abs=1e-3)
    # the fixture is what it claims: 0701 inside the red line, 3000–3500 × 2000–2500 = 25 ha
    g = pyogrio.read_dataframe(project.gpkg, layer="国土空间规划")
    red = shapely.box(X0 + 2500, Y0 + 2000, X0 + 3500, Y0 + 4000)
    built = g.loc[g["DLBM"].isin(["0701", "1001"])].geometry.intersection(red).area.sum()
    assert built == pytest.approx(25 * 1e4, rel=1e-6)


def test_ellipsoidal_areas_when_asked(project) -> None:
    """Independent route: the county boundary densified to 10 m, to CGCS2000 geographic,
    area on the GRS80 ellipsoid (CGCS2000's, to < 0.1 mm in b)."""
    from pyproj import Geod, Transformer

    from multiplan.core.publish.stats import build_tables

    tables = {t.key: t for t in build_tables(project, area_method="ellipsoidal")}
    lu = tables["landuse_structure"]
    assert "椭球" in lu.area_method and "ellipsoidal" in lu.area_method
    total = lu.frame.set_index("一级类代码").loc["合计", "规划面积（公顷）"]
    tr = Transformer.from_crs(EPSG, 4490, always_xy=True)
    ring = shapely.segmentize(box(0, 0, 6000, 4000), 10.0)
    ll = shapely.transform(ring, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    want = abs(Geod(ellps="GRS80").geometry_area_perimeter(ll)[0]) / 1e4
    assert total == pytest.approx(want, abs=2e-3)
    assert abs(total - 2400.0) > 5e-3  # the Gauss-Krüger plane is not the ellipsoid
    cl = tables["control_lines"].frame.set_index("控制线")
    assert cl.loc["生态保护红线", "面积（公顷）"] == pytest.approx(want / 12, abs=2e-3)
    assert "椭球" in tables["control_lines"].area_method


def test_conflict_summary_counts_review_decisions(project) -> None:
    from multiplan.core import review
    from multiplan.core.publish.stats import conflict_summary

    with sqlite3.connect(project.gpkg) as conn:
        cid, ctype, sev, ha = conn.execute(
            "SELECT conflict_id, conflict_type, severity, area_ha FROM mp_conflicts "
            "WHERE sliver = 0 AND severity = '冲突' ORDER BY conflict_id LIMIT 1").fetchone()
    review.decide(project, cid, "按上位规划调整", reviewer="评审甲")
    t = conflict_summary(project).frame
    row = t[(t["类型"] == ctype) & (t["程度"] == sev)].iloc[0]
    assert row["已裁定图斑数"] == 1 and row["已裁定面积（公顷）"] == pytest.approx(ha, abs=1e-4)
    assert row["未裁定图斑数"] == row["图斑数"] - 1
    review.decide(project, cid, "待定", reviewer="评审甲")  # back to open
    t = conflict_summary(project).frame
    assert t[(t["类型"] == ctype) & (t["程度"] == sev)].iloc[0]["已裁定图斑数"] == 0


def test_assessment_tables_from_the_recorded_run(exported) -> None:
    _, out = exported
    wb = openpyxl.load_workbook(out / "tables" / "统计表.xlsx")
    _, header, body = _sheet_table(wb["双评价结果"])
    rows = {r[3]: dict(zip(header, r, strict=True)) for r in body}
    assert rows["适宜"]["面积（公顷）"] == pytest.approx(360.0)
    assert rows["不适宜"]["面积（公顷）"] == pytest.approx(810.0)
    assert rows["适宜"]["占比（%）"] == pytest.approx(4000 / 13000 * 100, abs=1e-3)
    _, header, body = _sheet_table(wb["承载规模"])
    cap = dict(zip(header, body[0], strict=True))
    assert cap["可承载耕地规模（公顷）"] == pytest.approx(1234.5)
    assert cap["可承载人口（人）"] == 56789


# =========================================================================== manifest

def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_manifest_lists_every_file_with_size_and_hash(exported) -> None:
    _project, out = exported
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    on_disk = {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}
    listed = {f["path"]: f for f in m["files"]}
    assert set(listed) == set(on_disk) - {"manifest.json", "manifest.sha256"}
    for rel, f in listed.items():
        assert f["size"] == on_disk[rel].stat().st_size
        assert f["sha256"] == _sha(on_disk[rel])
    kinds = {f["kind"] for f in m["files"]}
    assert {"geopackage", "qgis_style", "table_xlsx", "table_csv"} <= kinds
    # rule/parameter versions, project state, generator, time
    v = m["versions"]
    for key in ("conflict_rules", "qa_checks", "classification.ydyh2023",
                "assessment_params", "sansheng"):
        assert v[key]
    assert v["assessment_params"] == "assessment_2019/1.0"
    assert m["generator"]["name"] == "multiplan" and m["created_at"]
    assert m["project"]["county"] == "测试县" and m["project"]["state"] == "编制中"
    # input hashes: the plan layer hashed independently changes when the layer changes
    names = {i["name"] for i in m["inputs"]}
    assert {"国土空间规划", "现状用地", "生态保护红线", "mp_conflicts"} <= names
    # manifest.sha256 in sha256sum format checks with the system tool
    r = subprocess.run(["sha256sum", "-c", "manifest.sha256"], cwd=out, capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_input_hash_changes_with_the_layer(project, tmp_path) -> None:
    from multiplan.core.publish.manifest import input_hashes

    before = {i["name"]: i["sha256"] for i in input_hashes(project)[1]}
    with project.transaction() as conn:  # GDAL's R-tree triggers call ST_* functions
        conn.create_function("ST_IsEmpty", 1, lambda g: 0)
        for f in ("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY"):
            conn.create_function(f, 1, lambda g: 0.0)
        conn.execute('UPDATE "国土空间规划" SET "DLBM" = \'0102\' WHERE fid = 1')
    after = {i["name"]: i["sha256"] for i in input_hashes(project)[1]}
    changed = {k for k in before if before[k] != after.get(k)}
    assert changed == {"国土空间规划"}


def test_inputs_match_the_published_version(project, tmp_path) -> None:
    """Exported right after publication, the input roll-up equals the content hash the
    workflow recorded for the published snapshot (mp_plan_versions.content_sha256)."""
    from multiplan.core import versions, workflow

    with project.transaction() as conn:
        versions.create_snapshot(project, conn, 1)
        workflow.ensure_tables(conn)
        workflow._insert_state(conn, 1, "已公布", None, datetime.now(UTC), "test", "test")
    assert workflow.current_state(project) == "已公布"
    export_package(project, tmp_path / "out", public=True, sheets=[])
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    with sqlite3.connect(project.gpkg) as conn:
        want = conn.execute("SELECT content_sha256 FROM mp_plan_versions WHERE version = 1"
                            ).fetchone()[0]
    assert m["inputs_combined_sha256"] == want
    assert m["project"]["plan_version"] == 1 and m["project"]["state"] == "已公布"
    assert m["plan"]["watermark"] is None and m["edition"] == "public"


def _flip(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("rel", ["data/规划数据包.gpkg", "tables/统计表.xlsx", "data/GHYDYH.qml",
                                 "tables/01_用地用海结构.csv"])
def test_verify_detects_one_changed_byte(exported, tmp_path, rel) -> None:
    _, out = exported
    dst = tmp_path / "copy"
    shutil.copytree(out, dst)
    assert verify_export(dst).ok
    _flip(dst / rel)
    rep = verify_export(dst)
    assert not rep.ok and rep.changed == [rel] and rep.manifest_ok
    assert not rep.missing and not rep.extra


def test_verify_detects_manifest_edit_missing_and_extra_files(exported, tmp_path) -> None:
    _, out = exported
    dst = tmp_path / "copy"
    shutil.copytree(out, dst)
    text = (dst / "manifest.json").read_text(encoding="utf-8")
    (dst / "manifest.json").write_text(text.replace('"internal"', '"publix"', 1),
                                       encoding="utf-8")
    rep = verify_export(dst)
    assert not rep.ok and not rep.manifest_ok and "manifest.json" in rep.changed
    shutil.rmtree(dst)
    shutil.copytree(out, dst)
    (dst / "tables" / "01_用地用海结构.csv").unlink()
    (dst / "data" / "extra.txt").write_text("x")
    rep = verify_export(dst)
    assert rep.missing == ["tables/01_用地用海结构.csv"] and rep.extra == ["data/extra.txt"]
    (dst / "manifest.sha256").unlink()
    assert "manifest.sha256" in verify_export(dst).missing


def test_verify_refuses_paths_outside_the_folder(exported, tmp_path) -> None:
    """A manifest rewritten consistently (its hash file too) that lists a file outside the
    export folder is not intact."""
    _, out = exported
    dst = tmp_path / "copy"
    shutil.copytree(out, dst)
    (tmp_path / "outside.txt").write_text("x")
    m = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    m["files"].append({"path": "../outside.txt", "kind": "txt", "size": 1,
                       "sha256": _sha(tmp_path / "outside.txt")})
    data = (json.dumps(m, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    (dst / "manifest.json").write_bytes(data)
    (dst / "manifest.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  manifest.json\n")
    rep = verify_export(dst)
    assert rep.manifest_ok and not rep.ok
    assert [e["code"] for e in rep.errors] == ["verify.bad_path"]


def test_verify_an_empty_folder(tmp_path) -> None:
    rep = verify_export(tmp_path)
    assert not rep.ok and rep.missing == ["manifest.json"]
    assert not verify_export(tmp_path / "nope").ok


# =========================================================================== with sheets

@pytest.fixture(scope="module")
def draft_export(base: Path, tmp_path_factory) -> Path:
    """A public draft (公示中) with one sheet at A4 / low dpi."""
    dst = tmp_path_factory.mktemp("draft")
    shutil.copytree(base, dst / "p")
    project = Project.open(dst / "p")
    set_state(project, "公示中")
    export_package(project, dst / "out", public=True, sheets=["landuse"], paper="A4",
                   dpi=60, review_no="浙S(2026)001号")
    return dst / "out"


def test_public_draft_sheet_carries_watermark_and_review_number(draft_export) -> None:
    out = draft_export
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    pdfs = [f["path"] for f in m["files"] if f["kind"] == "map_pdf"]
    pngs = [f["path"] for f in m["files"] if f["kind"] == "map_png"]
    assert len(pdfs) == 1 and len(pngs) == 1 and pdfs[0].startswith("maps/")
    assert m["sheets"][0]["key"] == "landuse" and sorted(m["sheets"][0]["files"]) == sorted(
        pdfs + pngs)
    text = subprocess.run(["pdftotext", str(out / pdfs[0]), "-"], capture_output=True,
                          text=True, check=True).stdout
    flat = "".join(text.split())  # the watermark is set at an angle: one glyph per line
    assert "征求意见稿" in flat or "稿见意求征" in flat
    assert "浙S(2026)001号" in text
    assert "国土空间用地用海规划图" in text
    with open(out / pngs[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_verify_detects_a_changed_byte_in_the_pdf(draft_export, tmp_path) -> None:
    dst = tmp_path / "copy"
    shutil.copytree(draft_export, dst)
    pdf = next((dst / "maps").glob("*.pdf"))
    assert verify_export(dst).ok
    _flip(pdf)
    rep = verify_export(dst)
    assert rep.changed == [pdf.relative_to(dst).as_posix()] and not rep.ok
