"""Plan workflow: the legal steps of a county plan, the gates between them, and plan versions.

States (``STATES``, English names in ``STATE_EN``)::

    编制中 → 已评价 → 公示中 → 评议通过 → 人大审议通过 → 已备案 → 已公布

Each step carries its legal anchor (domain.md §8.1, :data:`ANCHORS`). :func:`advance` moves
to the next state only, or back to 编制中 for rework from any state; every other move is
refused. A move forward is guarded by gates (:func:`gates_for`); each :class:`Gate` says why
it holds or fails. Gates read stored results only (assessment run record, conflict register
and decisions, stored 质检 runs, committee and milestone records), they never recompute.

================  =====================================================================
to                gates
================  =====================================================================
已评价             assessment current
公示中             assessment current · no open 冲突 conflict · 质检 blocking checks clean
评议通过           notice period ≥ ``public_notice_days`` (setting, default 30) elapsed ·
                  committee decision 通过/修改后通过 · no open 冲突 conflict
人大审议通过       人大常委会审议 record (date, document number)
已备案             备案 record (date, document number)
已公布             all of: assessment current · no open 冲突 conflict · 质检 clean ·
                  committee decision · 人大审议 and 备案 records
================  =====================================================================

"No open 冲突 conflict" reads :func:`multiplan.core.review.open_conflicts` (non-sliver
register rows of severity 冲突 whose latest decision is missing or 待定) and fails when
conflicts were never detected (no register). "质检 clean" needs every blocking check of the
packaged check table stored with status pass/warn/skip, and no plan layer written after the
oldest of those runs (audit order).

``force_note`` lets a planner pass a failing *assessment* or *质检* gate with a written reason
(audited as ``workflow.force``) on the steps before publication; the notice period, the
conflicts, the committee and the records can never be forced, and nothing is forced into
已公布.

Storage (GeoPackage attribute tables, created on first use)
    ``mp_workflow``   one row per state entered: ``version``, ``state``, ``from_state``,
                      ``time`` (ISO 8601, UTC), ``actor``, ``note``, ``gates`` (JSON),
                      ``forced`` (JSON list of gate keys passed by ``force_note``). The latest
                      row is the current state; no row means 编制中, version 1.
    ``mp_milestones`` 人大审议 / 备案 records: ``kind``, ``date``, ``doc_no``, ``actor``,
                      ``version``, ``workflow_fid`` (the state row current when recorded).

Every gate check and every transition is appended to the audit log (``workflow.gate_check``,
``workflow.advance``, ``workflow.new_version``, ``workflow.milestone``) inside the same
transaction as the change it records.

Versions
    A project starts at version 1. Reaching 已公布 stores an immutable snapshot of the plan
    (:mod:`multiplan.core.versions`). A plan-changing write to a published project
    (:func:`before_plan_write`, called by ``Project.guard_write``) starts version N+1 in
    编制中; the snapshot of version N stays for comparison.

Times: ``now`` arguments are datetimes (a naive one is taken as UTC). Day counts of the
notice period use calendar dates in China time (UTC+8): entering 公示中 on 1 March, day 30 is
31 March.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from .errors import MultiplanError
from .project import register_attributes_table, table_exists

STATES = ["编制中", "已评价", "公示中", "评议通过", "人大审议通过", "已备案", "已公布"]
STATE_EN = {
    "编制中": "drafting",
    "已评价": "assessed",
    "公示中": "public notice",
    "评议通过": "committee approved",
    "人大审议通过": "people's congress approved",
    "已备案": "filed",
    "已公布": "published",
}

#: Legal anchor of entering each state (domain.md §8.1): (Chinese, English).
ANCHORS: dict[str, tuple[str, str]] = {
    "编制中": ("土地管理法第十八条：已编制国土空间规划的，不再编制土地利用总体规划和城乡规划",
            ("Land Administration Law §18: once a territorial plan exists, no separate land-use "
            "or urban plan is compiled")),
    "已评价": ("中发〔2019〕18号：在资源环境承载能力和国土空间开发适宜性评价的基础上编制规划",
            ("CPC/State Council 2019 No. 18: plans are compiled on the basis of the carrying "
            "capacity and suitability assessment (双评价)")),
    "公示中": ("城乡规划法第二十六条：规划报送审批前，草案应予公告，时间不得少于三十日",
            ("Urban and Rural Planning Law §26: the draft is published for comment for at "
            "least 30 days before submission")),
    "评议通过": ("城乡规划法第二十六条（专家评审）；规划委员会评议按地方规定",
              ("Urban and Rural Planning Law §26 (expert review); planning committee per "
              "local rules")),
    "人大审议通过": ("城乡规划法第十六条：报送审批前，应先经本级人民代表大会常务委员会审议",
                ("Urban and Rural Planning Law §16: reviewed by the standing committee of the "
                "people's congress at the same level before submission")),
    "已备案": ("中发〔2019〕18号；GB/T 39972-2021：纳入国土空间基础信息平台“一张图”并备案",
            ("CPC/State Council 2019 No. 18; GB/T 39972-2021: entered into the 一张图 "
            "platform and filed")),
    "已公布": ("城乡规划法第八条：规划批准后应及时公布（涉密内容除外）",
            ("Urban and Rural Planning Law §8: the approved plan is published (except "
            "secret content)")),
}

WORKFLOW_TABLE = "mp_workflow"
MILESTONES_TABLE = "mp_milestones"
DEFAULT_NOTICE_DAYS = 30
NOTICE_SETTING = "public_notice_days"
CHINA_TZ = timezone(timedelta(hours=8))

#: milestone kind → (Chinese, English, state it is recorded in, state it unlocks)
MILESTONES: dict[str, tuple[str, str, str, str]] = {
    "人大审议": ("人大常委会审议", "people's congress review", "评议通过", "人大审议通过"),
    "备案": ("备案", "filing", "人大审议通过", "已备案"),
}
_MILESTONE_ALIASES = {"人大审议": "人大审议", "congress": "人大审议", "人大": "人大审议",
                      "people's congress": "人大审议", "备案": "备案", "filing": "备案",
                      "filed": "备案"}

#: gates a written ``force_note`` may pass (never on the way into 已公布)
FORCEABLE = ("assessment_current", "qa_clean")
COMMITTEE_PASS = ("通过", "修改后通过")
#: audit actions that change plan layers (a 质检 run older than one of them is stale)
PLAN_CHANGE_ACTIONS = ("layer.add", "layer.replace", "layer.remove", "edit.save")
_LIST_MAX = 10


class WorkflowError(MultiplanError):
    """A workflow step that is not allowed (wrong order, unknown state, bad record)."""

    exit_code = 6


class GateError(WorkflowError):
    """A transition refused because one or more gates fail; ``gates`` lists them all."""

    exit_code = 6

    def __init__(self, to: str, failing: list[Gate], all_gates: list[Gate]) -> None:
        zh = "；".join(f"{g.zh}" for g in failing)
        en = "; ".join(f"{g.en}" for g in failing)
        super().__init__(
            "workflow.gate_failed",
            f"不能进入“{to}”：{len(failing)} 项条件未满足 — {zh}",
            f"cannot move to {STATE_EN[to]}: {len(failing)} gate(s) fail — {en}",
            to=to, failing=[g.key for g in failing], gates=[g.to_dict() for g in all_gates])
        self.to = to
        self.failing = failing
        self.gates = all_gates


@dataclass
class Gate:
    """One condition of a transition: ``holds`` and why (Chinese first)."""

    key: str
    holds: bool
    zh: str
    en: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), ensure_ascii=False, default=str))


@dataclass
class WorkflowStatus:
    state: str
    since: str | None
    version: int
    next_state: str | None
    gates: list[Gate]
    notice_start: str | None
    notice_days: int

    @property
    def state_en(self) -> str:
        return STATE_EN[self.state]

    @property
    def ready(self) -> bool:
        """True when every gate of the next transition holds."""
        return self.next_state is not None and all(g.holds for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        nxt = self.next_state
        return {"state": self.state, "state_en": self.state_en, "since": self.since,
                "version": self.version, "next_state": nxt,
                "next_state_en": STATE_EN[nxt] if nxt else None,
                "anchor": _anchor_dict(nxt) if nxt else None, "ready": self.ready,
                "gates": [g.to_dict() for g in self.gates],
                "notice_start": self.notice_start, "notice_days": self.notice_days}


def _anchor_dict(state: str) -> dict[str, str]:
    zh, en = ANCHORS[state]
    return {"zh": zh, "en": en}


# ----------------------------------------------------------------------------- storage

def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create the workflow tables inside the caller's transaction (idempotent)."""
    if not table_exists(conn, WORKFLOW_TABLE):
        conn.execute(f'CREATE TABLE "{WORKFLOW_TABLE}" ('
                     '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                     '"version" INTEGER NOT NULL, "state" TEXT NOT NULL, "from_state" TEXT, '
                     '"time" TEXT NOT NULL, "actor" TEXT, "note" TEXT, "gates" TEXT, '
                     '"forced" TEXT)')
        register_attributes_table(conn, WORKFLOW_TABLE, "multiplan plan workflow states")
    if not table_exists(conn, MILESTONES_TABLE):
        conn.execute(f'CREATE TABLE "{MILESTONES_TABLE}" ('
                     '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                     '"kind" TEXT NOT NULL, "date" TEXT NOT NULL, "doc_no" TEXT NOT NULL, '
                     '"actor" TEXT, "version" INTEGER NOT NULL, "workflow_fid" INTEGER, '
                     '"recorded_at" TEXT NOT NULL)')
        register_attributes_table(conn, MILESTONES_TABLE, "multiplan workflow records (人大审议, 备案)")


def _rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    if not table_exists(conn, WORKFLOW_TABLE):
        return []
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute(f'SELECT * FROM "{WORKFLOW_TABLE}" ORDER BY "fid"')]


def history(project: Any) -> list[dict[str, Any]]:
    """Every state entered, oldest first (``gates`` and ``forced`` decoded)."""
    with contextlib.closing(project.connect()) as conn:
        rows = _rows(conn)
    for r in rows:
        r["gates"] = json.loads(r["gates"]) if r.get("gates") else []
        r["forced"] = json.loads(r["forced"]) if r.get("forced") else []
    return rows


def _latest(conn: sqlite3.Connection) -> dict[str, Any] | None:
    if not table_exists(conn, WORKFLOW_TABLE):
        return None
    conn.row_factory = sqlite3.Row
    row = conn.execute(f'SELECT * FROM "{WORKFLOW_TABLE}" ORDER BY "fid" DESC LIMIT 1'
                       ).fetchone()
    return dict(row) if row else None


def current_state(project: Any) -> str:
    with contextlib.closing(project.connect()) as conn:
        row = _latest(conn)
    return row["state"] if row else STATES[0]


def is_published(project: Any) -> bool:
    return current_state(project) == STATES[-1]


def plan_version(project: Any) -> int:
    with contextlib.closing(project.connect()) as conn:
        row = _latest(conn)
    return int(row["version"]) if row else 1


def state_key(value: str) -> str:
    """Accept a Chinese or English state name (case-insensitive, ``_``/``-`` as spaces)."""
    v = str(value).strip()
    if v in STATES:
        return v
    norm = v.lower().replace("_", " ").replace("-", " ")
    for zh, en in STATE_EN.items():
        if norm == en or norm == en.replace("'", ""):
            return zh
    aliases = {"people's congress": "人大审议通过", "congress approved": "人大审议通过",
               "congress": "人大审议通过", "committee": "评议通过", "notice": "公示中",
               "public": "公示中", "rework": "编制中", "draft": "编制中"}
    if norm in aliases:
        return aliases[norm]
    raise WorkflowError("workflow.unknown_state",
                        f"未知的状态 {value!r}；可用：{'、'.join(STATES)}",
                        f"unknown state {value!r}; use one of: "
                        f"{', '.join(STATE_EN.values())}")


def next_state(state: str) -> str | None:
    i = STATES.index(state)
    return STATES[i + 1] if i + 1 < len(STATES) else None


# ----------------------------------------------------------------------------- time

def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _iso(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="seconds")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return _aware(datetime.fromisoformat(str(text)))
    except ValueError:
        return None


def _china_date(t: datetime) -> date:
    return t.astimezone(CHINA_TZ).date()


def notice_days(project: Any) -> int:
    try:
        return max(int(project.setting(NOTICE_SETTING, DEFAULT_NOTICE_DAYS)), 0)
    except (TypeError, ValueError):
        return DEFAULT_NOTICE_DAYS


# ----------------------------------------------------------------------------- cycle info

def _cycle(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Facts about the current version's current pass: where it started (the latest entry
    into 编制中, fid 0 if none), when the state was entered, when the notice began."""
    if not rows:
        return {"version": 1, "state": STATES[0], "since": None, "start_fid": 0,
                "state_fid": 0, "notice_row": None}
    cur = rows[-1]
    start = 0
    for r in rows:
        if r["state"] == STATES[0] and r["version"] == cur["version"]:
            start = r["fid"]
    notice = None
    for r in rows:
        if r["fid"] >= start and r["version"] == cur["version"] and r["state"] == "公示中":
            notice = r
    return {"version": int(cur["version"]), "state": cur["state"], "since": cur["time"],
            "start_fid": start, "state_fid": cur["fid"], "notice_row": notice}


def _start_time(rows: list[dict[str, Any]], cyc: dict[str, Any]) -> datetime | None:
    for r in rows:
        if r["fid"] == cyc["start_fid"]:
            return _parse(r["time"])
    return None


# ----------------------------------------------------------------------------- gates

def _gate_assessment(project: Any) -> Gate:
    from .assessment.records import assessment_gate

    try:
        res = assessment_gate(project)
    except MultiplanError as exc:
        return Gate("assessment_current", False, f"双评价状态无法读取：{exc.zh}",
                    f"assessment state unreadable: {exc.en}", {"code": exc.code})
    if res.current:
        return Gate("assessment_current", True, f"双评价结果为最新（运行 {res.run_id}）",
                    f"the assessment is current (run {res.run_id})", res.to_dict())
    return Gate("assessment_current", False, f"双评价不是最新：{res.zh}",
                f"the assessment is not current: {res.en}", res.to_dict())


def open_conflict_rows(project: Any):
    """Open 冲突 rows of the register (:func:`multiplan.core.review.open_conflicts`: no
    decision, or 待定)."""
    from . import review

    return review.open_conflicts(project, severity="冲突")


def _gate_conflicts(project: Any) -> Gate:
    from .conflicts import REGISTER_TABLE

    with contextlib.closing(project.connect()) as conn:
        have = table_exists(conn, REGISTER_TABLE)
    if not have:
        return Gate("no_open_conflicts", False,
                    "尚未检测差异图斑（multiplan conflicts），无法确认没有未决冲突",
                    "conflicts were never detected (multiplan conflicts), so no open "
                    "conflict cannot be confirmed", {"open": None, "register": False})
    rows = open_conflict_rows(project)
    ids = [str(v) for v in rows["conflict_id"].tolist()] if len(rows) else []
    area = float(rows["area_ha"].sum()) if len(rows) and "area_ha" in rows else 0.0
    detail = {"open": len(ids), "conflict_ids": ids[:200], "area_ha": round(area, 4),
              "decisions_read": True, "register": True}
    if not ids:
        return Gate("no_open_conflicts", True, "无未决的冲突级差异图斑",
                    "no open conflict of severity 冲突", detail)
    shown = "、".join(ids[:_LIST_MAX]) + ("…" if len(ids) > _LIST_MAX else "")
    shown_en = ", ".join(ids[:_LIST_MAX]) + ("…" if len(ids) > _LIST_MAX else "")
    return Gate("no_open_conflicts", False,
                f"{len(ids)} 条冲突级差异图斑未决（{area:.2f} 公顷）：{shown}",
                f"{len(ids)} open conflict(s) of severity 冲突 ({area:.2f} ha): {shown_en}",
                detail)


def _qa_run_audit_fid(conn: sqlite3.Connection, run_ids: set[str]) -> int | None:
    """The earliest audit row of the stored 质检 runs (their ``run_id`` is in the detail)."""
    if not run_ids or not table_exists(conn, "mp_audit"):
        return None
    best = None
    for fid, detail in conn.execute('SELECT "fid", "detail" FROM "mp_audit" '
                                    'WHERE "action" = \'qa.run\' ORDER BY "fid"'):
        try:
            rid = json.loads(detail or "{}").get("run_id")
        except (ValueError, AttributeError):
            continue
        if rid in run_ids:
            best = fid
            break
    return best


def _gate_qa(project: Any) -> Gate:
    from . import qa

    try:
        specs = [c for c in qa.available_checks() if c["blocking"]]
        runs = {r["check_id"]: r for r in qa.read_runs(project)}
    except MultiplanError as exc:
        return Gate("qa_clean", False, f"质检结果无法读取：{exc.zh}",
                    f"质检 results unreadable: {exc.en}", {"code": exc.code})
    missing = [c["id"] for c in specs if c["id"] not in runs]
    failed = [c["id"] for c in specs if c["id"] in runs
              and runs[c["id"]]["status"] in ("fail", "error")]
    titles = {c["id"]: (c["zh"], c["en"]) for c in specs}
    run_ids = {str(runs[c["id"]]["run_id"]) for c in specs if c["id"] in runs}
    stale_after: list[str] = []
    with contextlib.closing(project.connect()) as conn:
        first = _qa_run_audit_fid(conn, run_ids)
        if first is not None:
            marks = ", ".join("?" for _ in PLAN_CHANGE_ACTIONS)
            stale_after = sorted({r[0] for r in conn.execute(
                f'SELECT "target" FROM "mp_audit" WHERE "fid" > ? AND "action" IN ({marks})',
                (first, *PLAN_CHANGE_ACTIONS)) if r[0]})
    detail = {"blocking_checks": len(specs), "failed": failed, "not_run": missing,
              "changed_since_run": stale_after,
              "errors": {c: int(runs[c]["errors"] or 0) for c in failed}}
    if not runs:
        return Gate("qa_clean", False, "尚未运行质检（multiplan check）",
                    "质检 has never been run (multiplan check)", detail)
    parts_zh, parts_en = [], []
    if failed:
        parts_zh.append("阻断性检查未通过：" + "、".join(
            f"{titles[c][0]}（{c}，{detail['errors'][c]} 个错误）" for c in failed))
        parts_en.append("blocking checks fail: " + ", ".join(
            f"{titles[c][1]} ({c}, {detail['errors'][c]} errors)" for c in failed))
    if missing:
        parts_zh.append("阻断性检查未运行：" + "、".join(missing))
        parts_en.append("blocking checks not run: " + ", ".join(missing))
    if stale_after:
        parts_zh.append("质检后图层已修改，须重新质检：" + "、".join(stale_after))
        parts_en.append("layers changed since the 质检 run, run it again: "
                        + ", ".join(stale_after))
    if parts_zh:
        return Gate("qa_clean", False, "质检未通过 — " + "；".join(parts_zh),
                    "质检 not clean — " + "; ".join(parts_en), detail)
    return Gate("qa_clean", True, f"质检 {len(specs)} 项阻断性检查均已通过",
                f"all {len(specs)} blocking 质检 checks pass", detail)


def _gate_notice(project: Any, cyc: dict[str, Any], now: datetime) -> Gate:
    days = notice_days(project)
    row = cyc["notice_row"]
    start = _parse(row["time"]) if row else None
    if start is None:
        return Gate("notice_period", False, "未记录公示开始日期（须先进入公示中）",
                    "no public-notice start date recorded (enter public notice first)",
                    {"notice_days": days})
    d0 = _china_date(start)
    elapsed = (_china_date(now) - d0).days
    end = d0 + timedelta(days=days)
    detail = {"notice_start": d0.isoformat(), "days_elapsed": elapsed, "notice_days": days,
              "earliest_end": end.isoformat()}
    if elapsed >= days:
        return Gate("notice_period", True,
                    f"公示期已满：自 {d0} 起已 {elapsed} 日（须 ≥ {days} 日）",
                    f"the notice period is over: {elapsed} days since {d0} (≥ {days} required)",
                    detail)
    return Gate("notice_period", False,
                f"公示期未满：自 {d0} 起仅 {elapsed} 日，须满 {days} 日（{end} 起可结束）",
                f"the notice period is not over: {elapsed} days since {d0}, {days} required "
                f"(can end from {end})", detail)


def _gate_committee(project: Any, since: datetime | None) -> Gate:
    from . import review

    dec = review.committee_decision(project)
    if not dec:
        return Gate("committee_decision", False, "未记录评议委员会决定",
                    "no committee decision recorded", {})
    detail = {k: dec.get(k) for k in ("outcome", "chair", "members", "time", "comment")}
    t = _parse(dec.get("time"))
    if since is not None and t is not None and t < since:
        return Gate("committee_decision", False,
                    f"评议委员会决定（{dec.get('time')}）早于本轮编制，须重新评议",
                    f"the committee decision ({dec.get('time')}) predates this drafting "
                    "round; the committee must decide again", detail)
    outcome = dec.get("outcome")
    if outcome in COMMITTEE_PASS:
        return Gate("committee_decision", True, f"评议委员会决定：{outcome}",
                    f"committee decision: {dec.get('outcome_en', outcome)}", detail)
    return Gate("committee_decision", False, f"评议委员会决定为“{outcome}”",
                f"the committee decided {dec.get('outcome_en', outcome)!r}", detail)


def _milestone_rows(conn: sqlite3.Connection, kind: str, version: int,
                    after_fid: int) -> list[dict[str, Any]]:
    if not table_exists(conn, MILESTONES_TABLE):
        return []
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute(
        f'SELECT * FROM "{MILESTONES_TABLE}" WHERE "kind" = ? AND "version" = ? '
        'AND "workflow_fid" >= ? ORDER BY "fid"', (kind, version, after_fid))]


def _gate_milestone(project: Any, kind: str, cyc: dict[str, Any]) -> Gate:
    zh, en, _, _ = MILESTONES[kind]
    key = "congress_record" if kind == "人大审议" else "filing_record"
    with contextlib.closing(project.connect()) as conn:
        rows = _milestone_rows(conn, kind, cyc["version"], cyc["start_fid"])
    if not rows:
        return Gate(key, False, f"未登记{zh}记录（日期、文号）",
                    f"no {en} record (date, document number)", {})
    r = rows[-1]
    detail = {"date": r["date"], "doc_no": r["doc_no"], "actor": r["actor"]}
    return Gate(key, True, f"已登记{zh}：{r['date']}，{r['doc_no']}",
                f"{en} recorded: {r['date']}, {r['doc_no']}", detail)


def gates_for(project: Any, to: str, now: datetime | None = None,
              _rows_cache: list[dict[str, Any]] | None = None) -> list[Gate]:
    """The gates of the move into ``to`` (forward moves only; rework has none)."""
    to = state_key(to)
    now = _aware(now)
    if _rows_cache is None:
        with contextlib.closing(project.connect()) as conn:
            _rows_cache = _rows(conn)
    cyc = _cycle(_rows_cache)
    since = _start_time(_rows_cache, cyc)
    if to == "已评价":
        return [_gate_assessment(project)]
    if to == "公示中":
        return [_gate_assessment(project), _gate_conflicts(project), _gate_qa(project)]
    if to == "评议通过":
        return [_gate_notice(project, cyc, now), _gate_committee(project, since),
                _gate_conflicts(project)]
    if to == "人大审议通过":
        return [_gate_milestone(project, "人大审议", cyc)]
    if to == "已备案":
        return [_gate_milestone(project, "备案", cyc)]
    if to == "已公布":
        return [_gate_assessment(project), _gate_conflicts(project), _gate_qa(project),
                _gate_committee(project, since), _gate_milestone(project, "人大审议", cyc),
                _gate_milestone(project, "备案", cyc)]
    return []


# ----------------------------------------------------------------------------- status

def status(project: Any, now: datetime | None = None) -> WorkflowStatus:
    now = _aware(now)
    with contextlib.closing(project.connect()) as conn:
        rows = _rows(conn)
    cyc = _cycle(rows)
    nxt = next_state(cyc["state"])
    gates = gates_for(project, nxt, now, rows) if nxt else []
    notice = cyc["notice_row"]["time"] if cyc["notice_row"] else None
    since = cyc["since"]
    if since is None:  # never moved: drafting since the project's first audit entry
        with contextlib.closing(project.connect()) as conn, contextlib.suppress(sqlite3.Error):
            row = conn.execute('SELECT "time" FROM "mp_audit" ORDER BY "fid" LIMIT 1').fetchone()
            since = row[0] if row else None
    return WorkflowStatus(cyc["state"], since, cyc["version"], nxt, gates, notice,
                          notice_days(project))


# ----------------------------------------------------------------------------- moves

def _insert_state(conn: sqlite3.Connection, version: int, state: str, from_state: str | None,
                  now: datetime, actor: str | None, note: str | None,
                  gates: list[Gate] | None = None, forced: list[str] | None = None) -> int:
    cur = conn.execute(
        f'INSERT INTO "{WORKFLOW_TABLE}" ("version", "state", "from_state", "time", "actor", '
        '"note", "gates", "forced") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        (version, state, from_state, _iso(now), actor, note,
         json.dumps([g.to_dict() for g in gates or []], ensure_ascii=False),
         json.dumps(forced or [], ensure_ascii=False)))
    return int(cur.lastrowid)


def advance(project: Any, to: str, *, actor: str | None = None, now: datetime | None = None,
            force_note: str | None = None) -> WorkflowStatus:
    """Move to ``to`` (the next state, or back to 编制中); raises :class:`GateError` listing
    every failing gate. The gate check is audited even when it refuses the move."""
    to = state_key(to)
    now = _aware(now)
    with contextlib.closing(project.connect()) as conn:
        rows = _rows(conn)
    cyc = _cycle(rows)
    cur = cyc["state"]
    if to == cur:
        raise WorkflowError("workflow.same_state", f"项目已处于“{cur}”",
                            f"the project is already in {STATE_EN[cur]}")
    if to == STATES[0]:
        return _rework(project, cyc, now, actor, force_note)
    if to != next_state(cur):
        nxt = next_state(cur)
        raise WorkflowError(
            "workflow.bad_transition",
            f"不能从“{cur}”直接进入“{to}”；下一步只能是“{nxt}”，或退回“编制中”",
            f"cannot move from {STATE_EN[cur]} to {STATE_EN[to]}; the next step is "
            f"{STATE_EN[nxt] if nxt else '(none)'}, or back to drafting", to=to, state=cur)
    gates = gates_for(project, to, now, rows)
    failing = [g for g in gates if not g.holds]
    forced: list[str] = []
    if (failing and force_note and str(force_note).strip() and to != STATES[-1]
            and all(g.key in FORCEABLE for g in failing)):
        forced = [g.key for g in failing]
        failing = []
    check = {"to": to, "from": cur, "version": cyc["version"], "time": _iso(now),
             "holds": not failing, "gates": [g.to_dict() for g in gates], "forced": forced}
    if failing:
        with project.transaction() as conn:
            project._audit(conn, "workflow.gate_check", to, check, actor=actor)
        raise GateError(to, failing, gates)
    snapshot = None
    with project.transaction() as conn:
        latest = _latest(conn)
        if (latest["state"] if latest else STATES[0]) != cur:
            raise WorkflowError("workflow.changed", "工作流状态已被他人修改，请重试",
                                "the workflow state changed meanwhile; try again")
        if to == STATES[-1]:  # first, before this transaction writes anything
            from .versions import create_snapshot
            snapshot = create_snapshot(project, conn, cyc["version"], now=now, actor=actor)
        ensure_tables(conn)
        project._audit(conn, "workflow.gate_check", to, check, actor=actor)
        note = force_note if forced else None
        fid = _insert_state(conn, cyc["version"], to, cur, now, actor, note, gates, forced)
        if forced:
            project._audit(conn, "workflow.force", to,
                           {"gates": forced, "note": force_note, "workflow_fid": fid},
                           actor=actor)
        detail = {"from": cur, "to": to, "to_en": STATE_EN[to], "version": cyc["version"],
                  "time": _iso(now), "workflow_fid": fid, "anchor": ANCHORS[to][0]}
        if to == "公示中":
            detail["notice_start"] = _china_date(now).isoformat()
            detail["notice_days"] = notice_days(project)
        if snapshot is not None:
            detail["snapshot"] = {k: snapshot[k] for k in ("path", "content_sha256")}
        project._audit(conn, "workflow.advance", to, detail, actor=actor)
    return status(project, now)


def _rework(project: Any, cyc: dict[str, Any], now: datetime, actor: str | None,
            note: str | None) -> WorkflowStatus:
    cur = cyc["state"]
    with project.transaction() as conn:
        ensure_tables(conn)
        version = cyc["version"] + (1 if cur == STATES[-1] else 0)
        fid = _insert_state(conn, version, STATES[0], cur, now, actor, note)
        action = "workflow.new_version" if version != cyc["version"] else "workflow.advance"
        project._audit(conn, action, STATES[0],
                       {"from": cur, "to": STATES[0], "version": version,
                        "previous_version": cyc["version"], "time": _iso(now),
                        "workflow_fid": fid, "note": note, "rework": True}, actor=actor)
    return status(project, now)


def before_plan_write(project: Any, target: str, conn: sqlite3.Connection | None = None,
                      *, actor: str | None = None, now: datetime | None = None) -> None:
    """Called before every plan-changing write. In 已公布 the write starts plan version N+1
    (state 编制中, audited ``workflow.new_version``); the published snapshot stays. Pass the
    caller's ``conn`` when called inside an open transaction."""
    if conn is None:
        if not is_published(project):
            return
        with project.transaction() as own:
            _new_version_for_write(project, own, target, actor, now)
        return
    latest = _latest(conn)
    if latest and latest["state"] == STATES[-1]:
        _new_version_for_write(project, conn, target, actor, now)


def _new_version_for_write(project: Any, conn: sqlite3.Connection, target: str,
                           actor: str | None, now: datetime | None) -> None:
    latest = _latest(conn)
    if not latest or latest["state"] != STATES[-1]:
        return  # someone else started the new version meanwhile
    now = _aware(now)
    version = int(latest["version"]) + 1
    note = f"发布后修改 {target}，开始第 {version} 版 / edit of {target} after publication"
    fid = _insert_state(conn, version, STATES[0], STATES[-1], now, actor, note)
    project._audit(conn, "workflow.new_version", target,
                   {"from": STATES[-1], "to": STATES[0], "version": version,
                    "previous_version": int(latest["version"]), "time": _iso(now),
                    "workflow_fid": fid, "reason": "plan write after publication"},
                   actor=actor)


# ----------------------------------------------------------------------------- milestones

def milestone_key(kind: str) -> str:
    k = _MILESTONE_ALIASES.get(str(kind).strip().lower()) or _MILESTONE_ALIASES.get(
        str(kind).strip())
    if k is None:
        raise WorkflowError("workflow.unknown_milestone",
                            f"未知的记录类型 {kind!r}；可用：人大审议、备案",
                            f"unknown record kind {kind!r}; use congress or filing")
    return k


def record_milestone(project: Any, kind: str, *, date: str | date, doc_no: str,
                     actor: str | None, now: datetime | None = None) -> dict[str, Any]:
    """Record the 人大常委会审议 (in 评议通过) or the 备案 (in 人大审议通过): date and
    document number, audited ``workflow.milestone``."""
    kind = milestone_key(kind)
    zh, en, in_state, _ = MILESTONES[kind]
    when = _parse_date(date)
    doc = str(doc_no or "").strip()
    if not doc:
        raise WorkflowError("workflow.doc_no_missing", f"{zh}记录须填写文号",
                            f"the {en} record needs a document number")
    now = _aware(now)
    with project.transaction() as conn:
        ensure_tables(conn)
        latest = _latest(conn)
        state = latest["state"] if latest else STATES[0]
        if state != in_state:
            raise WorkflowError(
                "workflow.milestone_state", f"只能在“{in_state}”状态登记{zh}（当前为“{state}”）",
                f"the {en} record can only be entered in {STATE_EN[in_state]} (now "
                f"{STATE_EN[state]})")
        version = int(latest["version"])
        cur = conn.execute(
            f'INSERT INTO "{MILESTONES_TABLE}" ("kind", "date", "doc_no", "actor", "version", '
            '"workflow_fid", "recorded_at") VALUES (?, ?, ?, ?, ?, ?, ?)',
            (kind, when, doc, actor, version, latest["fid"], _iso(now)))
        rec = {"fid": int(cur.lastrowid), "kind": kind, "kind_en": en, "date": when,
               "doc_no": doc, "actor": actor, "version": version}
        project._audit(conn, "workflow.milestone", kind, rec, actor=actor)
    return rec


def _parse_date(value: str | date) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise WorkflowError("workflow.bad_date", f"日期 {value!r} 无效，须为 YYYY-MM-DD",
                            f"invalid date {value!r}, use YYYY-MM-DD") from None


def milestones(project: Any) -> list[dict[str, Any]]:
    with contextlib.closing(project.connect()) as conn:
        if not table_exists(conn, MILESTONES_TABLE):
            return []
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(
            f'SELECT * FROM "{MILESTONES_TABLE}" ORDER BY "fid"')]


# ----------------------------------------------------------------------------- export

def export_gate(project: Any, *, public: bool, now: datetime | None = None) -> list[Gate]:
    """May the plan be exported? Internal exports always may. A public export needs 已公布;
    in 公示中 it is allowed as a draft marked 征求意见稿 (``detail["watermark"]``)."""
    state = current_state(project)
    version = plan_version(project)
    base = {"state": state, "state_en": STATE_EN[state], "version": version, "public": public}
    if not public:
        return [Gate("export_allowed", True, f"内部导出（当前状态：{state}）",
                     f"internal export (state: {STATE_EN[state]})",
                     {**base, "watermark": None})]
    if state == STATES[-1]:
        return [Gate("export_allowed", True, f"规划已公布（第 {version} 版），可公开导出",
                     f"the plan is published (version {version}); public export allowed",
                     {**base, "watermark": None})]
    if state == "公示中":
        return [Gate("export_allowed", True, "规划公示中，公开导出须加注“征求意见稿”",
                     "the plan is under public notice; public exports are marked as a draft "
                     "for comment (征求意见稿)", {**base, "watermark": "征求意见稿"})]
    return [Gate("export_allowed", False,
                 f"规划尚未公布（当前状态：{state}），不能公开导出；公示中可导出征求意见稿",
                 f"the plan is not published (state: {STATE_EN[state]}); no public export "
                 "(a draft for comment can be exported during public notice)",
                 {**base, "watermark": None})]
