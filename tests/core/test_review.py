"""Review decisions: statuses, the append-only history, audit rows, decisions surviving a
detection rerun (and shown 已失效 when their conflict is gone), the open-conflict gate query,
the committee record, 质检/三区三线 findings in the one review list, and the precedence
edit (undoable).

Expected counts and areas are hand computations on axis-aligned boxes; stored rows are read
back with plain sqlite3 queries, never through multiplan.core.review.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from multiplan.core import conflicts as cf
from multiplan.core import review as rv
from multiplan.core.classification import unify
from multiplan.core.errors import MultiplanError
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

X0, Y0 = 500_000.0, 3_430_000.0  # near 120°E, 31°N in EPSG:4549
T1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def add_layer(project: Project, name: str, role: str, geoms: list, codes: list,
              scheme: str = "ydyh2023") -> None:
    """A coded layer as io.import_layer leaves it (unified mp_* columns)."""
    data: dict = {"DLBM": codes}
    u = unify(pd.Series(codes), scheme)
    for c in u.columns:
        data[c] = u[c].to_numpy()
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs=project.epsg)
    rec = LayerRecord(name=name, kind="vector", level="county", role=role, title=name,
                      geometry_type="MultiPolygon", scheme=scheme, code_field="DLBM")
    project.write_vector_layer(gdf, rec, replace=project.has_layer(name))


def build(tmp_path: Path, plan_codes: tuple[str, str, str] = ("0701", "0101", "1001"),
          plan_scheme: str = "ydyh2023") -> Project:
    """土规 (land-use plan) × 永农 (permanent basic farmland, 0101):

    * fid 1 0701 box 0..100 × 0..100 against 永农 fid 1 box 50..150: C6 冲突, 5000 m²;
    * fid 2 0101 box 200..300 on 永农 fid 2 the same box: C0 一致;
    * fid 3 1001 box 400..500 against 永农 fid 3 box 400..420: C6 冲突, 2000 m².
    """
    project = Project.create(tmp_path / "p", county="测试县", crs=4549)
    add_layer(project, "土规", "land_use_plan",
              [box(0, 0, 100, 100), box(200, 0, 300, 100), box(400, 0, 500, 100)],
              list(plan_codes), scheme=plan_scheme)
    add_layer(project, "永农", "basic_farmland",
              [box(50, 0, 150, 100), box(200, 0, 300, 100), box(400, 0, 420, 100)],
              ["0101", "0101", "0101"])
    cf.detect_conflicts(project, "土规", "永农")
    return project


def c6_ids(project: Project) -> list[str]:
    with sqlite3.connect(project.gpkg) as conn:
        return [r[0] for r in conn.execute(
            "SELECT conflict_id FROM mp_conflicts WHERE conflict_type = 'C6' AND sliver = 0 "
            "ORDER BY area_m2 DESC")]


def sql(project: Project, q: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(project.gpkg) as conn:
        return conn.execute(q, params).fetchall()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return build(tmp_path)


# --------------------------------------------------------------------------- statuses

def test_statuses_and_aliases():
    assert rv.DECISION_STATUSES == ["待定", "按上位规划调整", "按现状保留", "认可例外", "已修改"]
    assert rv.STATUS_EN["按现状保留"] == "keep current use"
    assert rv.normalise_status("keep") == "按现状保留"
    assert rv.normalise_status("Accepted exception") == "认可例外"
    assert rv.normalise_status(" 已修改 ") == "已修改"
    with pytest.raises(rv.ReviewError) as e:
        rv.normalise_status("同意")
    assert "同意" in e.value.zh and "keep" in e.value.en


# --------------------------------------------------------------------------- decide

def test_decide_writes_history_and_audit(project: Project):
    big, small = c6_ids(project)
    audit_before = sql(project, "SELECT count(*) FROM mp_audit")[0][0]
    row = rv.decide(project, big, "待定", reviewer="张三", comment="先看现场", now=T1)
    assert row["status"] == "待定" and row["time"] == "2026-03-01T09:00:00+00:00"
    rv.decide(project, big, "keep", reviewer="李四", comment="按现状保留，已核实", now=T2)
    rows = sql(project, "SELECT conflict_id, status, reviewer, comment, time, kind "
                        "FROM mp_decisions ORDER BY fid")
    assert rows == [(big, "待定", "张三", "先看现场", "2026-03-01T09:00:00+00:00", "conflict"),
                    (big, "按现状保留", "李四", "按现状保留，已核实",
                     "2026-03-02T10:30:00+00:00", "conflict")]
    audit = sql(project, "SELECT action, target, actor FROM mp_audit ORDER BY fid")
    assert len(audit) == audit_before + 2
    assert audit[-2:] == [("review.decide", big, "张三"), ("review.decide", big, "李四")]
    # the table is a registered GeoPackage attribute table (QGIS/GDAL list it)
    assert sql(project, "SELECT data_type FROM gpkg_contents WHERE table_name='mp_decisions'"
               ) == [("attributes",)]
    from multiplan.core.audit import verify

    assert verify(project.folder).ok  # the decisions' audit rows extend the hash chain
    latest = rv.decisions(project)
    assert list(latest["item_id"]) == [big]
    assert latest.iloc[0]["status"] == "按现状保留" and latest.iloc[0]["reviewer"] == "李四"
    assert not latest.iloc[0]["obsolete"]
    hist = rv.decision_history(project, big)
    assert list(hist["status"]) == ["待定", "按现状保留"]
    assert len(rv.decision_history(project, small)) == 0


def test_decide_refuses_unknown_id_and_bad_input(project: Project):
    before = project.snapshot_state()
    with pytest.raises(rv.ReviewError) as e:
        rv.decide(project, "CF-00000000-9-9", "keep", reviewer="张三")
    assert "CF-00000000-9-9" in e.value.zh and "CF-00000000-9-9" in e.value.en
    big = c6_ids(project)[0]
    with pytest.raises(rv.ReviewError):
        rv.decide(project, big, "批准", reviewer="张三")
    with pytest.raises(rv.ReviewError):
        rv.decide(project, big, "keep", reviewer="  ")
    assert project.snapshot_state() == before


def test_reviewer_list_is_enforced_when_the_project_has_one(project: Project):
    big = c6_ids(project)[0]
    rv.decide(project, big, "待定", reviewer="张三")  # no reviewer list yet: anyone
    project.set_roles(planners=["赵六"], reviewers=["王五"])
    with pytest.raises(rv.ReviewError) as e:
        rv.decide(project, big, "keep", reviewer="张三")
    assert "张三" in e.value.zh
    with pytest.raises(rv.ReviewError):  # a planner is not a reviewer
        rv.decide(project, big, "keep", reviewer="赵六")
    rv.decide(project, big, "keep", reviewer="王五")
    assert sql(project, "SELECT reviewer FROM mp_decisions ORDER BY fid") == [("张三",),
                                                                              ("王五",)]


def test_decisions_survive_rerun_and_obsolete_is_shown(project: Project, tmp_path: Path):
    big, small = c6_ids(project)
    rv.decide(project, big, "认可例外", reviewer="张三", comment="重点项目", now=T1)
    rv.decide(project, small, "按现状保留", reviewer="张三", now=T1)
    cf.detect_conflicts(project, "土规", "永农")  # rewrites the register; ids are stable
    assert c6_ids(project) == [big, small]
    d = rv.decisions(project).set_index("item_id")
    assert d.loc[big, "status"] == "认可例外" and not d.loc[big, "obsolete"]
    # the plan changes: fid 3 becomes farmland, its C6 piece disappears on the next run
    add_layer(project, "土规", "land_use_plan",
              [box(0, 0, 100, 100), box(200, 0, 300, 100), box(400, 0, 500, 100)],
              ["0701", "0101", "0101"])
    cf.detect_conflicts(project, "土规", "永农")
    assert c6_ids(project) == [big]
    d = rv.decisions(project).set_index("item_id")
    assert bool(d.loc[small, "obsolete"]) and d.loc[small, "shown_status"] == "已失效"
    assert d.loc[small, "status"] == "按现状保留"  # the decision itself is kept
    assert sql(project, "SELECT count(*) FROM mp_decisions") == [(2,)]
    with pytest.raises(rv.ReviewError):  # an obsolete item cannot get new decisions
        rv.decide(project, small, "keep", reviewer="张三")


def test_open_conflicts_counts_undecided_non_sliver_conflicts(project: Project):
    big, small = c6_ids(project)
    want = sql(project, "SELECT count(*) FROM mp_conflicts WHERE severity='冲突' AND sliver=0")
    assert want == [(2,)]
    assert set(rv.open_conflicts(project)["conflict_id"]) == {big, small}
    rv.decide(project, big, "按上位规划调整", reviewer="张三")
    rv.decide(project, small, "待定", reviewer="张三")  # explicitly pending: still open
    assert list(rv.open_conflicts(project)["conflict_id"]) == [small]
    rv.decide(project, small, "认可例外", reviewer="张三")
    assert len(rv.open_conflicts(project)) == 0
    rv.decide(project, small, "待定", reviewer="张三")  # reopened by a later decision
    assert list(rv.open_conflicts(project)["conflict_id"]) == [small]
    # areas come through unchanged: 5000 m² and 2000 m² by hand
    oc = rv.open_conflicts(project)
    assert oc["area_m2"].round(3).tolist() == [2000.0]


def test_open_conflicts_on_a_project_without_register(tmp_path: Path):
    project = Project.create(tmp_path / "empty", county="空县", crs=4549)
    assert len(rv.open_conflicts(project)) == 0
    assert len(rv.review_items(project)) == 0
    assert len(rv.decisions(project)) == 0
    assert rv.committee_decision(project) is None


# --------------------------------------------------------------------------- items

def test_review_items_lists_conflicts_and_findings(project: Project):
    from multiplan.core import qa

    qa.run_checks(project, only=["rl_construction_farmland", "overlaps"])
    items = rv.review_items(project)
    reg_rows = sql(project, "SELECT count(*) FROM mp_conflicts WHERE severity <> '一致'")[0][0]
    rl_rows = sql(project, "SELECT count(*) FROM mp_qa_errors WHERE check_id LIKE 'rl\\_%' "
                           "ESCAPE '\\'")[0][0]
    qa_rows = sql(project, "SELECT count(*) FROM mp_qa_errors WHERE check_id NOT LIKE "
                           "'rl\\_%' ESCAPE '\\'")[0][0]
    assert rl_rows >= 2  # both construction parcels sit on farmland
    counts = items["kind"].value_counts().to_dict()
    assert counts.get("conflict", 0) == reg_rows
    assert counts.get("redline", 0) == rl_rows
    assert counts.get("qa", 0) == qa_rows
    assert set(items["status"]) == {"待定"}
    # a 三区三线 finding can be decided like a conflict
    rl_id = sql(project, "SELECT error_id FROM mp_qa_errors WHERE check_id = "
                         "'rl_construction_farmland' ORDER BY error_id LIMIT 1")[0][0]
    rv.decide(project, rl_id, "已修改", reviewer="张三", comment="已调出")
    items = rv.review_items(project).set_index("item_id")
    assert items.loc[rl_id, "status"] == "已修改" and items.loc[rl_id, "kind"] == "redline"
    assert sql(project, "SELECT kind FROM mp_decisions") == [("redline",)]
    # consistent pieces only on request
    every = rv.review_items(project, include_consistent=True)
    assert (every["kind"] == "conflict").sum() == sql(
        project, "SELECT count(*) FROM mp_conflicts")[0][0]


# --------------------------------------------------------------------------- committee

def test_committee_record_latest_wins(project: Project):
    assert rv.committee_decision(project) is None
    with pytest.raises(rv.ReviewError):
        rv.record_committee_decision(project, "同意", members=["a"], chair="a")
    with pytest.raises(rv.ReviewError):
        rv.record_committee_decision(project, "通过", members=[], chair="a")
    rv.record_committee_decision(project, "修改后通过", members=["甲", "乙"], chair="丙",
                                 comment="补充论证", now=T1)
    rv.record_committee_decision(project, "通过", members=["甲", "乙", "丙"], chair="丙",
                                 now=T2)
    got = rv.committee_decision(project)
    assert got["outcome"] == "通过" and got["chair"] == "丙"
    assert got["members"] == ["甲", "乙", "丙"] and got["time"] == "2026-03-02T10:30:00+00:00"
    rows = sql(project, "SELECT outcome, chair, time FROM mp_committee ORDER BY fid")
    assert rows == [("修改后通过", "丙", "2026-03-01T09:00:00+00:00"),
                    ("通过", "丙", "2026-03-02T10:30:00+00:00")]
    assert sql(project, "SELECT action, target, actor FROM mp_audit WHERE action = "
                        "'review.committee' ORDER BY fid") == [
        ("review.committee", "修改后通过", "丙"), ("review.committee", "通过", "丙")]


# --------------------------------------------------------------------------- precedence edit

def layer_rows(project: Project, layer: str = "土规") -> dict[int, tuple]:
    """fid → (attributes…, geometry blob) straight from the table."""
    with sqlite3.connect(project.gpkg) as conn:
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{layer}")')]
        rows = conn.execute(f'SELECT * FROM "{layer}" ORDER BY fid').fetchall()
    return {r[0]: dict(zip(cols, r, strict=True)) for r in rows}


def area_of(row: dict) -> float:
    from multiplan.core.editing import geometry_from_blob

    return geometry_from_blob(row["geom"]).area


def test_apply_precedence_unsaved_undo_restores_exactly(project: Project):
    big, _ = c6_ids(project)
    disk_before = layer_rows(project)
    edit = rv.apply_precedence(project, big, reviewer="张三", save=False)
    s = edit.session
    # the parcel (0701, 100×100) is split along the piece: the 50×100 half inside the
    # farmland takes 0101, the other half keeps 0701
    assert edit.layer == "土规" and edit.fid == 1 and len(edit.new_fids) == 1
    parts = {f: s.feature(f) for f in [1, *edit.new_fids]}
    by_code = {ft.attrs["DLBM"]: round(ft.geometry.area, 6) for ft in parts.values()}
    assert by_code == {"0101": 5000.0, "0701": 5000.0}
    inside = next(ft for ft in parts.values() if ft.attrs["DLBM"] == "0101")
    assert inside.attrs["mp_name"] == "水田"
    assert shapely.symmetric_difference(inside.geometry, box(50, 0, 100, 100)).area < 1e-6
    assert layer_rows(project) == disk_before  # nothing saved yet
    assert s.stack.can_undo and len(s.stack.done()) == 1
    # one undo step takes back split and class change
    s.undo()
    restored = s.feature(1)
    assert restored.geometry.equals_exact(edit.session.buffer._base(1).geometry, 0)
    assert dict(restored.attrs) == dict(edit.before)
    assert edit.new_fids[0] not in s.fids()
    s.save()  # nothing left to write
    assert layer_rows(project) == disk_before
    hist = rv.decision_history(project, big)
    assert list(hist["status"]) == ["按上位规划调整"]


def test_apply_precedence_saved_then_undone(project: Project):
    big, _ = c6_ids(project)
    before = layer_rows(project)
    edit = rv.apply_precedence(project, big, reviewer="张三", comment="按永久基本农田调整")
    after = layer_rows(project)
    assert len(after) == 4
    new = edit.new_fids[0]
    assert {after[f]["DLBM"]: round(area_of(after[f]), 6) for f in (1, new)} == {
        "0101": 5000.0, "0701": 5000.0}
    assert {k: after[k] for k in (2, 3)} == {k: before[k] for k in (2, 3)}
    hist = rv.decision_history(project, big)
    assert list(hist["status"]) == ["按上位规划调整", "已修改"]
    assert hist.iloc[0]["comment"] == "按永久基本农田调整"
    assert sql(project, "SELECT count(*) FROM mp_audit WHERE action = 'edit.save' AND "
                        "target = '土规'") == [(1,)]
    assert big not in set(rv.open_conflicts(project)["conflict_id"])
    edit.undo()
    back = layer_rows(project)
    assert sorted(back) == [1, 2, 3]
    for col in ("DLBM", "mp_code", "mp_name", "mp_status", "mp_candidates"):
        assert back[1][col] == before[1][col]
    assert round(area_of(back[1]), 6) == 10000.0
    assert {k: back[k] for k in (2, 3)} == {k: before[k] for k in (2, 3)}
    assert list(rv.decision_history(project, big)["status"]) == [
        "按上位规划调整", "已修改", "待定"]
    assert big in set(rv.open_conflicts(project)["conflict_id"])


def test_apply_precedence_other_scheme_sets_unified_class(tmp_path: Path):
    # the land-use plan in GB/T 21010-2017: 0701 城镇住宅用地 (construction)
    project = build(tmp_path, plan_codes=("0701", "0101", "0601"),
                    plan_scheme="gbt21010_2017")
    big = c6_ids(project)[0]
    edit = rv.apply_precedence(project, big, reviewer="张三")
    assert edit.values == {"mp_code": "0101"}
    rows = layer_rows(project)
    got = {rows[f]["mp_code"]: (rows[f]["DLBM"], round(area_of(rows[f]), 6))
           for f in (1, *edit.new_fids)}
    # the source plan's own code stays; the unified class of the half inside changes
    assert got == {"0101": ("0701", 5000.0), "0701": ("0701", 5000.0)}
    assert {rows[f]["mp_status"] for f in (1, *edit.new_fids)} == {"ok"}
    edit.undo()
    back = layer_rows(project)[1]
    assert (back["DLBM"], back["mp_code"], back["mp_name"]) == ("0701", "0701", "城镇住宅用地")


def test_apply_precedence_needs_a_proposal(project: Project):
    from multiplan.core.editing import register_gpkg_functions

    big = c6_ids(project)[0]
    with sqlite3.connect(project.gpkg) as conn:
        register_gpkg_functions(conn)  # GDAL's R-tree triggers call ST_* functions
        conn.execute("UPDATE mp_conflicts SET proposed_code = NULL WHERE conflict_id = ?",
                     (big,))
    before = layer_rows(project)
    with pytest.raises(rv.ReviewError) as e:
        rv.apply_precedence(project, big, reviewer="张三")
    assert big in e.value.zh
    assert layer_rows(project) == before
    assert len(rv.decision_history(project, big)) == 0


# --------------------------------------------------------------------------- export

def test_export_decisions_csv_and_xlsx(project: Project, tmp_path: Path):
    import openpyxl

    big, small = c6_ids(project)
    rv.decide(project, big, "认可例外", reviewer="张三", comment="重点项目，已批, 见附件", now=T1)
    rv.decide(project, small, "按现状保留", reviewer="李四", now=T2)
    # small's piece disappears: its decision is exported as 已失效
    add_layer(project, "土规", "land_use_plan",
              [box(0, 0, 100, 100), box(200, 0, 300, 100), box(400, 0, 500, 100)],
              ["0701", "0101", "0101"])
    cf.detect_conflicts(project, "土规", "永农")
    csv = rv.export_decisions(project, tmp_path / "out" / "decisions.csv")
    assert csv.read_bytes()[:3] == b"\xef\xbb\xbf"  # BOM: Excel reads UTF-8 Chinese
    df = pd.read_csv(csv, encoding="utf-8-sig", dtype=str)
    assert list(df.columns[:2]) == ["编号 id", "类别 kind"]
    rows = df.set_index("编号 id")
    assert rows.loc[big, "评议状态 status"] == "认可例外"
    assert rows.loc[big, "意见 comment"] == "重点项目，已批, 见附件"
    assert rows.loc[big, "面积（公顷）area ha"] == "0.5"  # 50 m × 100 m
    assert rows.loc[big, "时间（UTC）time"] == "2026-03-01T09:00:00+00:00"
    assert rows.loc[small, "评议状态 status"] == "已失效"
    assert rows.loc[small, "评议人 reviewer"] == "李四"
    want = sql(project, "SELECT count(*) FROM mp_conflicts WHERE severity <> '一致' "
                        "AND sliver = 0")[0][0]
    assert len(df) == want + 1
    xlsx = rv.export_decisions(project, tmp_path / "decisions.xlsx")
    wb = openpyxl.load_workbook(xlsx, read_only=True)
    assert wb.sheetnames == ["评议决定", "统计", "说明"]
    got = list(wb["评议决定"].iter_rows(values_only=True))
    assert got[0][0] == "编号 id" and len(got) == len(df) + 1
    by_id = {r[0]: r for r in got[1:]}
    assert by_id[big][12] == "认可例外" and by_id[big][5] == 0.5
    with pytest.raises(rv.ReviewError):
        rv.export_decisions(project, tmp_path / "decisions.pdf")


def test_apply_precedence_refused_in_review_mode(project: Project):
    big, _ = c6_ids(project)
    before = layer_rows(project)
    review = Project.open(project.folder, mode="review", user="张三")
    with pytest.raises(MultiplanError) as e:  # the editing core's refusal
        rv.apply_precedence(review, big, reviewer="张三")
    assert getattr(e.value, "code", "") == "project.review_mode"
    assert layer_rows(project) == before
    assert len(rv.decision_history(project, big)) == 0
    # a plain decision is what review mode allows
    rv.decide(review, big, "按现状保留", reviewer="张三")
    assert sql(project, "SELECT status FROM mp_decisions") == [("按现状保留",)]


def test_decision_lapses_when_the_item_under_its_id_changes(project: Project):
    from multiplan.core import qa

    big = c6_ids(project)[0]
    rv.decide(project, big, "认可例外", reviewer="张三")
    # the plan changes so that the same piece (same id) is now another type: C12 (警告,
    # farmland planned as non-cropland: 0301 woodland) — the old decision lapses
    add_layer(project, "土规", "land_use_plan",
              [box(0, 0, 100, 100), box(200, 0, 300, 100), box(400, 0, 500, 100)],
              ["0301", "0101", "1001"])
    cf.detect_conflicts(project, "土规", "永农")
    assert sql(project, "SELECT conflict_type FROM mp_conflicts WHERE conflict_id = ?",
               (big,)) == [("C12",)]
    d = rv.decisions(project).set_index("item_id")
    assert bool(d.loc[big, "obsolete"]) and d.loc[big, "shown_status"] == "已失效"
    items = rv.review_items(project).set_index("item_id")
    assert items.loc[big, "status"] == "待定"
    # 质检 numbers are per run: a decision holds only while the same finding has the number
    qa.run_checks(project, only=["rl_construction_farmland"])
    first = sql(project, "SELECT error_id FROM mp_qa_errors ORDER BY error_id LIMIT 1")[0][0]
    rv.decide(project, first, "已修改", reviewer="张三")
    assert not rv.decisions(project).set_index("item_id").loc[first, "obsolete"]
    from multiplan.core.editing import register_gpkg_functions

    with sqlite3.connect(project.gpkg) as conn:  # the next run numbers another finding so
        register_gpkg_functions(conn)
        conn.execute("UPDATE mp_qa_errors SET feature_fid = feature_fid + 100 "
                     "WHERE error_id = ?", (first,))
    assert bool(rv.decisions(project).set_index("item_id").loc[first, "obsolete"])


# --------------------------------------------------------------------------- the sample county

def test_sample_county_review_list_and_gate(repo_root: Path, tmp_path: Path):
    import shutil

    src = repo_root / "sample_data" / "changxing"
    if not (src / "plan.gpkg").is_file():
        pytest.skip("the sample county project is not built")
    folder = tmp_path / "changxing"
    shutil.copytree(src, folder)
    project = Project.open(folder)
    cf.detect_conflicts(project, "土地利用规划", "城市总体规划")
    want_open = sql(project, "SELECT conflict_id FROM mp_conflicts WHERE severity = '冲突' "
                             "AND sliver = 0 ORDER BY area_m2 DESC")
    assert len(want_open) >= 2  # the sample seeds C2/C3 conflicts between the two plans
    assert sorted(rv.open_conflicts(project)["conflict_id"]) == sorted(r[0] for r in want_open)
    items = rv.review_items(project)
    assert (items["kind"] == "conflict").sum() == sql(
        project, "SELECT count(*) FROM mp_conflicts WHERE severity <> '一致'")[0][0]
    largest = want_open[0][0]
    row = items.set_index("item_id").loc[largest]
    got = sql(project, "SELECT area_ha, township, conflict_type FROM mp_conflicts WHERE "
                       "conflict_id = ?", (largest,))[0]
    assert (round(row["area_ha"], 6), row["township"], row["type"]) == (
        round(got[0], 6), got[1], got[2])
    rv.decide(project, largest, "按现状保留", reviewer="评议人甲", comment="现状已建")
    assert largest not in set(rv.open_conflicts(project)["conflict_id"])
    assert len(rv.open_conflicts(project)) == len(want_open) - 1


@pytest.mark.parametrize(("farm", "want"), [
    # farmland covers the whole parcel: no split, the parcel changes class
    ((-10, -10, 110, 110), {"0101": [10000.0]}),
    # farmland is a strip through the middle: split twice, the middle changes class
    ((30, -10, 60, 110), {"0101": [3000.0], "0701": [3000.0, 4000.0]}),
    # farmland is a hole in the middle: cut along a closed ring
    ((30, 30, 70, 70), {"0101": [1600.0], "0701": [8400.0]}),
])
def test_apply_precedence_piece_shapes(tmp_path: Path, farm: tuple, want: dict):
    project = Project.create(tmp_path / "p", county="测试县", crs=4549)
    add_layer(project, "土规", "land_use_plan", [box(0, 0, 100, 100)], ["0701"])
    add_layer(project, "永农", "basic_farmland", [box(*farm)], ["0101"])
    cf.detect_conflicts(project, "土规", "永农")
    cid = c6_ids(project)[0]
    edit = rv.apply_precedence(project, cid, reviewer="张三")
    rows = layer_rows(project)
    got: dict[str, list[float]] = {}
    for r in rows.values():
        got.setdefault(r["DLBM"], []).append(round(area_of(r), 6))
    assert {k: sorted(v) for k, v in got.items()} == want
    assert sum(sum(v) for v in got.values()) == pytest.approx(10000.0)
    edit.undo()
    back = layer_rows(project)
    assert list(back) == [1] and back[1]["DLBM"] == "0701"
    assert area_of(back[1]) == pytest.approx(10000.0)
