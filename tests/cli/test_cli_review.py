"""``multiplan decide``, ``decisions``, ``committee`` and ``report committee``: JSON output,
exit codes, what lands in the project (read back with sqlite3).

A small project: 土规 0701 on [0,100]² against 永农 0101 on [50,150]×[0,100] → one C6
冲突 piece of 50 × 100 = 5000 m² (0.5 公顷).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from multiplan.cli import main
from multiplan.core import conflicts as cf
from multiplan.core.classification import unify
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

X0, Y0 = 500_000.0, 3_430_000.0


def _layer(project: Project, name: str, role: str, boxes: list, codes: list) -> None:
    data: dict = {"DLBM": codes}
    u = unify(pd.Series(codes), "ydyh2023")
    for c in u.columns:
        data[c] = u[c].to_numpy()
    geoms = [shapely.box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes]
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs=project.epsg)
    project.write_vector_layer(gdf, LayerRecord(
        name=name, kind="vector", level="county", role=role, geometry_type="MultiPolygon",
        scheme="ydyh2023", code_field="DLBM"))


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, str]:
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    _layer(p, "土规", "land_use_plan", [(0, 0, 100, 100)], ["0701"])
    _layer(p, "永农", "basic_farmland", [(50, 0, 150, 100)], ["0101"])
    cf.detect_conflicts(p, "土规", "永农")
    with sqlite3.connect(p.gpkg) as conn:
        cid = conn.execute("SELECT conflict_id FROM mp_conflicts WHERE conflict_type='C6'"
                           ).fetchone()[0]
    return p.folder, cid


def q(folder: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(folder / "plan.gpkg") as conn:
        return conn.execute(sql).fetchall()


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_decide_json_and_stored_row(small, capsys):
    folder, cid = small
    code, out = run_json(capsys, "decide", str(folder), cid, "--status", "keep",
                         "--comment", "现状保留，已核实", "--reviewer", "王五")
    assert code == 0
    assert out["status"] == "按现状保留" and out["status_en"] == "keep current use"
    assert q(folder, "SELECT conflict_id, status, reviewer, comment, source FROM mp_decisions"
             ) == [(cid, "按现状保留", "王五", "现状保留，已核实", "cli")]
    assert q(folder, "SELECT action, target, actor FROM mp_audit ORDER BY fid DESC LIMIT 1"
             ) == [("review.decide", cid, "王五")]
    # Chinese status words work as well
    code, out = run_json(capsys, "decide", str(folder), cid, "--status", "认可例外",
                         "--reviewer", "王五")
    assert code == 0 and out["status"] == "认可例外"


def test_decide_refusals_exit_6(small, capsys):
    folder, cid = small
    code, out = run_json(capsys, "decide", str(folder), "CF-deadbeef-1-2", "--status", "keep",
                         "--reviewer", "王五")
    assert code == 6 and out["error"]["code"] == "review.item_not_found"
    assert "CF-deadbeef-1-2" in out["error"]["zh"]
    code, out = run_json(capsys, "decide", str(folder), cid, "--status", "同意",
                         "--reviewer", "王五")
    assert code == 6 and out["error"]["code"] == "review.status_invalid"
    Project.open(folder).set_roles(reviewers=["王五"])
    code, out = run_json(capsys, "decide", str(folder), cid, "--status", "keep",
                         "--reviewer", "张三")
    assert code == 6 and out["error"]["code"] == "review.not_reviewer"
    assert q(folder, "SELECT count(*) FROM sqlite_master WHERE name = 'mp_decisions'") == [(0,)]


def test_decide_apply_edits_the_plan(small, capsys):
    folder, cid = small
    code, out = run_json(capsys, "decide", str(folder), cid, "--status", "adjust",
                         "--apply", "--reviewer", "王五")
    assert code == 0, out
    assert out["status"] == "已修改"
    assert out["applied"]["layer"] == "土规" and out["applied"]["values"] == {"DLBM": "0101"}
    rows = q(folder, 'SELECT DLBM, mp_name FROM "土规" ORDER BY DLBM')
    assert rows == [("0101", "水田"), ("0701", "城镇住宅用地")]
    assert [r[0] for r in q(folder, "SELECT status FROM mp_decisions ORDER BY fid")] == [
        "按上位规划调整", "已修改"]
    code, out = run_json(capsys, "decide", str(folder), cid, "--status", "keep", "--apply",
                         "--reviewer", "王五")
    assert code == 2


def test_decisions_list_and_export(small, capsys, tmp_path):
    folder, cid = small
    main(["decide", str(folder), cid, "--status", "exception", "--reviewer", "王五"])
    capsys.readouterr()
    out_csv = tmp_path / "d.csv"
    code, out = run_json(capsys, "decisions", str(folder), "--export", str(out_csv))
    assert code == 0 and out["export"] == str(out_csv)
    n = q(folder, "SELECT count(*) FROM mp_conflicts WHERE severity <> '一致' AND sliver = 0"
          )[0][0]
    assert out["count"] == n
    row = next(r for r in out["items"] if r["item_id"] == cid)
    assert row["status"] == "认可例外" and row["area_ha"] == 0.5
    df = pd.read_csv(out_csv, encoding="utf-8-sig", dtype=str)
    assert df.set_index("编号 id").loc[cid, "评议状态 status"] == "认可例外"
    code = main(["decisions", str(folder)])
    text = capsys.readouterr().out
    assert code == 0 and cid in text and "认可例外" in text


def test_committee_and_report(small, capsys, tmp_path):
    folder, _ = small
    code, out = run_json(capsys, "committee", str(folder), "--outcome", "通过",
                         "--members", "甲，乙", "--chair", "丙")
    assert code == 0 and out["members"] == ["丙", "甲", "乙"]
    assert q(folder, "SELECT outcome, chair FROM mp_committee") == [("通过", "丙")]
    code, out = run_json(capsys, "committee", str(folder), "--outcome", "同意",
                         "--members", "甲", "--chair", "丙")
    assert code == 6
    pdf = tmp_path / "r" / "committee.pdf"
    code, out = run_json(capsys, "report", "committee", str(folder), "--out", str(pdf))
    assert code == 0 and out["pdf"] == str(pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"
