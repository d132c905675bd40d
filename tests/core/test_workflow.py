"""Workflow state machine: every transition and every gate, holding and failing, on a small
project whose gate data are written by the real APIs (质检 run, 双评价 run and its plan
check in the conflict register, review decisions, committee sign-off, milestone records).
Expected values come from the data we set up and from direct SQLite reads."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import shapely
from test_assessment_support import X0, Y0, H, W, build_small_project, county_polygon
from test_qa import add_layer

from multiplan.core import qa, review, workflow
from multiplan.core.assessment import run_assessment
from multiplan.core.conflicts import read_register
from multiplan.core.project import Project
from multiplan.core.workflow import STATES, GateError, WorkflowError

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 China time


def _halves():
    c = county_polygon()
    west = shapely.box(X0 - 10, Y0 - 10, X0 + 3000, Y0 + H + 10).intersection(c)
    east = shapely.box(X0 + 3000, Y0 - 10, X0 + W + 10, Y0 + H + 10).intersection(c)
    return west, east


def build_gated_project(folder: Path) -> Project:
    """The small assessment project made 质检-clean (full-coverage plan, all control lines),
    then 质检 and 双评价 run; the 双评价 plan check leaves one 冲突 row in the register."""
    p = build_small_project(folder)
    west, east = _halves()
    add_layer(p, "国土空间规划", "spatial_plan", [west, east], codes=["0101", "0701"],
              names=["水田", "城镇住宅用地"])
    add_layer(p, "现状用地", "current_use", [west, east], codes=["0101", "0701"],
              extra={"BSM": ["1", "2"], "TBMJ": [west.area, east.area]})
    add_layer(p, "规划分区", "planning_zone", [west, east],
              extra={"GHFQDM": ["1", "2"], "GHFQMC": ["农田保护区", "城镇发展区"]})
    add_layer(p, "生态保护红线", "eco_redline",
              [shapely.box(X0 + 1000, Y0 + 1000, X0 + 1500, Y0 + 1500)])
    add_layer(p, "城镇开发边界", "urban_boundary",
              [shapely.box(X0 + 3500, Y0 + 500, X0 + 4500, Y0 + 1500)],
              extra={"KFBJLX": ["10"], "KFBJLXMC": ["城镇集中建设区"], "GNFQ": ["居住生活区"]})
    run = qa.run_checks(p)
    assert run.passed, run.blocking_failures
    run_assessment(p)
    return p


_SHARED: dict[str, Path] = {}


def shared_gated_base(tmp_path_factory) -> Path:
    """The gated project, built once per test session (callers copy it before changing it;
    the workflow, versions, comments and CLI tests all start from it)."""
    if "gated" not in _SHARED or not (_SHARED["gated"] / "plan.gpkg").is_file():
        _SHARED["gated"] = build_gated_project(tmp_path_factory.mktemp("wf") / "p").folder
    return _SHARED["gated"]


def copy_of(src: Path, dst: Path) -> Project:
    shutil.copytree(src, dst)
    return Project.open(dst)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return shared_gated_base(tmp_path_factory)


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Project:
    dst = tmp_path / "p"
    shutil.copytree(base, dst)
    return Project.open(dst)


def open_conflict_ids(p: Project) -> list[str]:
    """Independent: 冲突 rows of the register that are not slivers, straight from SQLite."""
    with sqlite3.connect(p.gpkg) as c:
        return [r[0] for r in c.execute(
            "SELECT conflict_id FROM mp_conflicts WHERE severity = '冲突' AND sliver = 0 "
            "ORDER BY conflict_id")]


def decide_all(p: Project, now: datetime = T0) -> None:
    for cid in open_conflict_ids(p):
        review.decide(p, cid, "认可例外", reviewer="李评审", comment="论证后认可", now=now)


def gate(gates, key):
    hit = [g for g in gates if g.key == key]
    assert len(hit) == 1, [g.key for g in gates]
    return hit[0]


def audit_actions(p: Project) -> list[str]:
    with sqlite3.connect(p.gpkg) as c:
        return [r[0] for r in c.execute('SELECT action FROM mp_audit ORDER BY fid')]


def to_notice(p: Project, now: datetime = T0) -> None:
    decide_all(p, now - timedelta(hours=1))
    workflow.advance(p, "已评价", actor="王规划", now=now)
    workflow.advance(p, "公示中", actor="王规划", now=now)


def committee(p: Project, outcome: str = "通过", now: datetime = T0) -> None:
    review.record_committee_decision(p, outcome, members=["张委员", "赵委员"], chair="张委员",
                                     now=now)


def to_published(p: Project, now: datetime = T0) -> datetime:
    to_notice(p, now)
    later = now + timedelta(days=31)
    committee(p, now=later)
    workflow.advance(p, "评议通过", actor="王规划", now=later)
    workflow.record_milestone(p, "人大审议", date="2026-04-10", doc_no="长人常〔2026〕3号",
                              actor="秘书", now=later)
    workflow.advance(p, "人大审议通过", actor="王规划", now=later)
    workflow.record_milestone(p, "备案", date="2026-04-20", doc_no="浙自然资备〔2026〕12号",
                              actor="秘书", now=later)
    workflow.advance(p, "已备案", actor="王规划", now=later)
    workflow.advance(p, "已公布", actor="王规划", now=later)
    return later


# ----------------------------------------------------------------------------- basics

def test_states_and_names():
    assert STATES == ["编制中", "已评价", "公示中", "评议通过", "人大审议通过", "已备案", "已公布"]
    assert workflow.STATE_EN["已公布"] == "published"
    assert set(workflow.ANCHORS) == set(STATES)
    assert workflow.state_key("public notice") == "公示中"
    assert workflow.state_key("People's Congress Approved") == "人大审议通过"
    with pytest.raises(WorkflowError):
        workflow.state_key("approved-ish")


def test_new_project_is_drafting_version_1_and_assessment_gate_holds(project: Project):
    st = workflow.status(project, now=T0)
    assert (st.state, st.version, st.next_state) == ("编制中", 1, "已评价")
    g = gate(st.gates, "assessment_current")
    assert g.holds and "最新" in g.zh
    assert st.to_dict()["anchor"]["zh"].startswith("中发〔2019〕18号")
    assert not workflow.is_published(project) and workflow.plan_version(project) == 1


def test_assessment_gate_fails_when_a_plan_input_changed(project: Project):
    west, east = _halves()
    add_layer(project, "国土空间规划", "spatial_plan", [west, east], codes=["0101", "0702"],
              names=["水田", "农村宅基地"])
    with pytest.raises(GateError) as exc:
        workflow.advance(project, "已评价", actor="王规划", now=T0)
    err = exc.value
    assert err.exit_code == 6 and err.failing[0].key == "assessment_current"
    assert "国土空间规划" in err.zh and "assessment" in err.en
    assert workflow.current_state(project) == "编制中"
    # the refused check is audited with its gates
    with sqlite3.connect(project.gpkg) as c:
        action, detail = c.execute("SELECT action, detail FROM mp_audit ORDER BY fid DESC "
                                   "LIMIT 1").fetchone()
    assert action == "workflow.gate_check"
    d = json.loads(detail)
    assert d["holds"] is False and d["to"] == "已评价" and d["gates"][0]["holds"] is False


def test_assessment_gate_never_run(tmp_path: Path):
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    g = gate(workflow.gates_for(p, "已评价", T0), "assessment_current")
    assert not g.holds and "尚未运行双评价" in g.zh


# ----------------------------------------------------------------------------- transitions

def test_only_next_state_or_rework(project: Project):
    with pytest.raises(WorkflowError) as exc:
        workflow.advance(project, "公示中", now=T0)
    assert exc.value.code == "workflow.bad_transition" and exc.value.exit_code == 6
    with pytest.raises(WorkflowError):
        workflow.advance(project, "编制中", now=T0)  # already there
    workflow.advance(project, "assessed", actor="王规划", now=T0)
    assert workflow.current_state(project) == "已评价"
    with pytest.raises(WorkflowError):
        workflow.advance(project, "已公布", now=T0)
    st = workflow.advance(project, "drafting", actor="王规划", now=T0, force_note="返工")
    assert st.state == "编制中" and st.version == 1
    with sqlite3.connect(project.gpkg) as c:
        rows = c.execute("SELECT version, state, from_state, actor FROM mp_workflow "
                         "ORDER BY fid").fetchall()
    assert rows == [(1, "已评价", "编制中", "王规划"), (1, "编制中", "已评价", "王规划")]
    acts = audit_actions(project)
    assert acts.count("workflow.advance") == 2 and "workflow.gate_check" in acts


def test_conflict_gate_names_open_conflicts_then_holds_after_decisions(project: Project):
    ids = open_conflict_ids(project)
    assert ids, "the 双评价 plan check should leave a 冲突 row"
    workflow.advance(project, "已评价", now=T0)
    g = gate(workflow.status(project, T0).gates, "no_open_conflicts")
    assert not g.holds and g.detail["open"] == len(ids)
    assert f"{len(ids)} 条冲突级差异图斑未决" in g.zh and ids[0] in g.zh
    with pytest.raises(GateError) as exc:
        workflow.advance(project, "公示中", now=T0)
    assert [f.key for f in exc.value.failing] == ["no_open_conflicts"]
    # a 待定 decision keeps it open; a real decision closes it
    review.decide(project, ids[0], "待定", reviewer="李评审", now=T0)
    assert not gate(workflow.gates_for(project, "公示中", T0), "no_open_conflicts").holds
    decide_all(project)
    assert gate(workflow.gates_for(project, "公示中", T0), "no_open_conflicts").holds
    # slivers and 警告 rows never count: the register has a 警告 row that stays undecided
    reg = read_register(project)
    assert (reg["severity"] == "警告").any()
    st = workflow.advance(project, "公示中", actor="王规划", now=T0)
    assert st.state == "公示中" and st.notice_start.startswith("2026-03-01")


def test_qa_gate_never_run_failed_stale_and_clean(tmp_path: Path, project: Project):
    # clean on the prepared project
    g = gate(workflow.gates_for(project, "公示中", T0), "qa_clean")
    assert g.holds and g.detail["failed"] == [] and g.detail["not_run"] == []
    # never run
    p = Project.create(tmp_path / "q", county="测试县", crs=4549)
    g = gate(workflow.gates_for(p, "公示中", T0), "qa_clean")
    assert not g.holds and "尚未运行质检" in g.zh
    # a blocking check fails: two overlapping plan parcels
    west, east = _halves()
    add_layer(project, "国土空间规划", "spatial_plan", [west, east, west.buffer(-100)],
              codes=["0101", "0701", "0101"], names=["水田", "城镇住宅用地", "水田"])
    g = gate(workflow.gates_for(project, "公示中", T0), "qa_clean")
    assert not g.holds and "国土空间规划" in g.zh  # stale: changed since the run
    qa.run_checks(project, only=["overlaps"])
    g = gate(workflow.gates_for(project, "公示中", T0), "qa_clean")
    assert not g.holds and "overlaps" in g.detail["failed"] and "图层内重叠" in g.zh
    # run only some checks on a fresh project: the others are "not run"
    add_layer(p, "行政区", "admin_boundary", [shapely.box(X0, Y0, X0 + 100, Y0 + 100)])
    qa.run_checks(p, only=["crs"])
    g = gate(workflow.gates_for(p, "公示中", T0), "qa_clean")
    assert not g.holds and "overlaps" in g.detail["not_run"] and "未运行" in g.zh


def test_force_note_passes_qa_but_never_conflicts_or_publication(project: Project):
    decide_all(project)
    workflow.advance(project, "已评价", now=T0)
    # make 质检 fail (and the assessment stale) without touching the conflicts
    with sqlite3.connect(project.gpkg) as c:
        c.execute("UPDATE mp_qa_runs SET status = 'fail', errors = 2 WHERE check_id = 'gaps'")
    with pytest.raises(GateError):
        workflow.advance(project, "公示中", now=T0)
    st = workflow.advance(project, "公示中", actor="王规划", now=T0,
                          force_note="缝隙为湖面，经委员会同意暂缓")
    assert st.state == "公示中"
    hist = workflow.history(project)
    assert hist[-1]["forced"] == ["qa_clean"] and "湖面" in hist[-1]["note"]
    assert "workflow.force" in audit_actions(project)
    # conflicts can never be forced
    workflow.advance(project, "编制中", now=T0)
    review.decide(project, open_conflict_ids(project)[0], "待定", reviewer="李评审", now=T0)
    workflow.advance(project, "已评价", now=T0)
    with pytest.raises(GateError):
        workflow.advance(project, "公示中", now=T0, force_note="想强行通过")


def test_notice_period_day_29_fails_day_30_holds(project: Project):
    to_notice(project, T0)
    committee(project, now=T0 + timedelta(days=1))
    day29 = T0 + timedelta(days=29)
    g = gate(workflow.status(project, day29).gates, "notice_period")
    assert not g.holds and g.detail["days_elapsed"] == 29 and g.detail["notice_days"] == 30
    assert g.detail["notice_start"] == "2026-03-01" and g.detail["earliest_end"] == "2026-03-31"
    assert "公示期未满" in g.zh
    with pytest.raises(GateError) as exc:
        workflow.advance(project, "评议通过", now=day29)
    assert [f.key for f in exc.value.failing] == ["notice_period"]
    day30 = T0 + timedelta(days=30)
    assert gate(workflow.status(project, day30).gates, "notice_period").holds
    st = workflow.advance(project, "committee approved", actor="王规划", now=day30)
    assert st.state == "评议通过"


def test_notice_days_setting_and_china_calendar_days(project: Project):
    project.set_settings(public_notice_days=45)
    to_notice(project, T0)
    g = gate(workflow.gates_for(project, "评议通过", T0 + timedelta(days=44)), "notice_period")
    assert not g.holds and "45" in g.zh
    # 23:30 China time on day 45 counts as day 45
    late = datetime(2026, 4, 15, 15, 30, tzinfo=UTC)  # 23:30 in China, 45 days after 1 March
    assert gate(workflow.gates_for(project, "评议通过", late), "notice_period").holds


def test_committee_gate_missing_rejected_and_passed(project: Project):
    to_notice(project, T0)
    day31 = T0 + timedelta(days=31)
    g = gate(workflow.gates_for(project, "评议通过", day31), "committee_decision")
    assert not g.holds and "未记录评议委员会决定" in g.zh
    committee(project, "不通过", now=day31)
    g = gate(workflow.gates_for(project, "评议通过", day31), "committee_decision")
    assert not g.holds and "不通过" in g.zh
    committee(project, "修改后通过", now=day31)
    assert gate(workflow.gates_for(project, "评议通过", day31), "committee_decision").holds


def test_milestone_records_gate_and_state_rules(project: Project):
    with pytest.raises(WorkflowError) as exc:
        workflow.record_milestone(project, "人大审议", date="2026-04-10", doc_no="x号",
                                  actor="秘书")
    assert exc.value.code == "workflow.milestone_state"
    to_notice(project, T0)
    later = T0 + timedelta(days=31)
    committee(project, now=later)
    workflow.advance(project, "评议通过", now=later)
    g = gate(workflow.status(project, later).gates, "congress_record")
    assert not g.holds and "人大常委会审议" in g.zh
    with pytest.raises(GateError):
        workflow.advance(project, "人大审议通过", now=later)
    with pytest.raises(WorkflowError):
        workflow.record_milestone(project, "congress", date="2026-13-01", doc_no="x",
                                  actor="秘书")
    with pytest.raises(WorkflowError):
        workflow.record_milestone(project, "congress", date="2026-04-10", doc_no=" ",
                                  actor="秘书")
    workflow.record_milestone(project, "congress", date="2026-04-10",
                              doc_no="长人常〔2026〕3号", actor="秘书", now=later)
    g = gate(workflow.status(project, later).gates, "congress_record")
    assert g.holds and g.detail == {"date": "2026-04-10", "doc_no": "长人常〔2026〕3号",
                                    "actor": "秘书"}
    workflow.advance(project, "人大审议通过", now=later)
    assert not gate(workflow.status(project, later).gates, "filing_record").holds
    workflow.record_milestone(project, "备案", date="2026-04-20", doc_no="备〔2026〕1号",
                              actor="秘书", now=later)
    st = workflow.advance(project, "filed", now=later)
    assert st.state == "已备案" and st.next_state == "已公布"
    assert all(g.holds for g in st.gates), [g.zh for g in st.gates if not g.holds]
    with sqlite3.connect(project.gpkg) as c:
        assert c.execute("SELECT kind, doc_no, version FROM mp_milestones ORDER BY fid"
                         ).fetchall() == [("人大审议", "长人常〔2026〕3号", 1),
                                          ("备案", "备〔2026〕1号", 1)]


def test_publication_rechecks_everything(project: Project):
    to_notice(project, T0)
    later = T0 + timedelta(days=31)
    committee(project, now=later)
    workflow.advance(project, "评议通过", now=later)
    workflow.record_milestone(project, "人大审议", date="2026-04-10", doc_no="a", actor="s")
    workflow.advance(project, "人大审议通过", now=later)
    workflow.record_milestone(project, "备案", date="2026-04-20", doc_no="b", actor="s")
    workflow.advance(project, "已备案", now=later)
    # reopen a conflict: publication is refused, and force_note cannot help
    review.decide(project, open_conflict_ids(project)[0], "待定", reviewer="李评审", now=later)
    with pytest.raises(GateError) as exc:
        workflow.advance(project, "已公布", now=later, force_note="急")
    assert "no_open_conflicts" in [g.key for g in exc.value.failing]
    assert workflow.current_state(project) == "已备案"
    assert not (project.folder / "versions" / "v1.gpkg").exists()


def test_full_walk_to_published_then_edit_starts_version_2(project: Project):
    later = to_published(project)
    assert workflow.is_published(project)
    with sqlite3.connect(project.gpkg) as c:
        states = [r[0] for r in c.execute("SELECT state FROM mp_workflow ORDER BY fid")]
        acts = [r[0] for r in c.execute("SELECT action FROM mp_audit ORDER BY fid")]
    assert states == STATES[1:]
    assert acts.count("workflow.advance") == 6 and acts.count("workflow.gate_check") == 6
    assert "versions.snapshot" in acts
    st = workflow.status(project, later)
    assert st.state == "已公布" and st.next_state is None and st.gates == []
    snap = project.folder / "versions" / "v1.gpkg"
    assert snap.is_file()
    # a plan write after publication starts version 2 in 编制中
    workflow.before_plan_write(project, "国土空间规划", actor="王规划", now=later)
    assert workflow.current_state(project) == "编制中" and workflow.plan_version(project) == 2
    assert audit_actions(project)[-1] == "workflow.new_version"
    workflow.before_plan_write(project, "国土空间规划")  # not published: nothing more
    assert workflow.plan_version(project) == 2
    from multiplan.core.versions import verify_snapshot
    chk = verify_snapshot(project, 1)
    assert chk.ok and chk.file_ok and not chk.live_checked


def test_before_plan_write_inside_callers_transaction(project: Project):
    to_published(project)
    with project.transaction() as conn:
        workflow.before_plan_write(project, "国土空间规划", conn)
        conn.execute("UPDATE mp_settings SET value = value WHERE 0")
    assert workflow.plan_version(project) == 2
    # rolled back with the caller's transaction
    with pytest.raises(RuntimeError), project.transaction() as conn:
        workflow.before_plan_write(project, "x", conn)
        raise RuntimeError("caller failed")
    assert workflow.plan_version(project) == 2


def test_export_gate(project: Project):
    g = workflow.export_gate(project, public=True)[0]
    assert not g.holds and "尚未公布" in g.zh
    assert workflow.export_gate(project, public=False)[0].holds
    to_notice(project, T0)
    g = workflow.export_gate(project, public=True)[0]
    assert g.holds and g.detail["watermark"] == "征求意见稿"
    workflow.advance(project, "编制中", now=T0)
    committee(project, now=T0)
    project2 = project
    decide_all(project2)
    to_published_from_drafting(project2)
    g = workflow.export_gate(project2, public=True)[0]
    assert g.holds and g.detail["watermark"] is None and g.detail["version"] == 1


def to_published_from_drafting(p: Project) -> None:
    t = T0 + timedelta(days=1)
    workflow.advance(p, "已评价", now=t)
    workflow.advance(p, "公示中", now=t)
    later = t + timedelta(days=30)
    committee(p, now=later)
    workflow.advance(p, "评议通过", now=later)
    workflow.record_milestone(p, "人大审议", date="2026-04-10", doc_no="a", actor="s")
    workflow.advance(p, "人大审议通过", now=later)
    workflow.record_milestone(p, "备案", date="2026-04-20", doc_no="b", actor="s")
    workflow.advance(p, "已备案", now=later)
    workflow.advance(p, "已公布", now=later)


def test_committee_decision_from_before_a_rework_does_not_count(project: Project):
    to_notice(project, T0)
    committee(project, now=T0 + timedelta(days=2))
    workflow.advance(project, "编制中", now=T0 + timedelta(days=3))
    workflow.advance(project, "已评价", now=T0 + timedelta(days=3))
    workflow.advance(project, "公示中", now=T0 + timedelta(days=3))
    g = gate(workflow.gates_for(project, "评议通过", T0 + timedelta(days=40)),
             "committee_decision")
    assert not g.holds and "早于本轮编制" in g.zh


def test_conflict_gate_fails_when_conflicts_were_never_detected(tmp_path: Path):
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    g = gate(workflow.gates_for(p, "公示中", T0), "no_open_conflicts")
    assert not g.holds and "尚未检测差异图斑" in g.zh and g.detail["register"] is False


def test_rework_from_published_starts_the_next_version(project: Project):
    later = to_published(project)
    st = workflow.advance(project, "编制中", actor="王规划", now=later,
                          force_note="上级批复要求修改")
    assert (st.state, st.version) == ("编制中", 2)
    with sqlite3.connect(project.gpkg) as c:
        last = c.execute("SELECT version, state, from_state, note FROM mp_workflow "
                         "ORDER BY fid DESC LIMIT 1").fetchone()
    assert last == (2, "编制中", "已公布", "上级批复要求修改")
    assert audit_actions(project)[-1] == "workflow.new_version"
    # the new version's round needs its own committee decision and records
    g = {x.key: x for x in workflow.gates_for(project, "已公布", later)}
    assert not g["congress_record"].holds and not g["filing_record"].holds
