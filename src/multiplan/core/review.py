"""Review decisions (规划评议): one list of everything a reviewer must look at, a decision per
item with its history, the committee's sign-off, and the decision register export.

Items
    :func:`review_items` lists, in one frame with a ``kind`` column:

    * ``conflict``   — rows of the conflict register ``mp_conflicts`` (ids ``CF-…``);
    * ``assessment`` — the 双评价 plan-check rows the assessment writes into the same register
      (ids ``AS-…``, see :func:`multiplan.core.conflicts.replace_external_entries`);
    * ``redline``    — 三区三线 findings of ``mp_qa_errors`` (checks ``rl_*``);
    * ``qa``         — the other 质检 findings of ``mp_qa_errors``.

    Register ids are stable across detection reruns (the register is rewritten each run);
    质检 ids are ``<check>-<n>`` numbered per run, so a decision on a 质检 finding holds only
    while the same run's findings stand.

Decisions
    ``mp_decisions`` is an append-only GeoPackage attribute table: one row per decision
    (``conflict_id`` — the item id, ``status``, ``reviewer``, ``comment``, ``time`` in UTC ISO
    8601, ``source``); the latest row per id is the item's decision. Decisions live apart from
    the register, so rerunning detection never loses them; a decision whose item no longer
    exists (or whose piece is now 一致, consistent) is reported as 已失效 (obsolete), not
    dropped. Every decision writes an audit row
    (``review.decide``) in the same transaction.

Committee
    ``mp_committee`` holds the committee's sign-off records (outcome 通过 / 修改后通过 /
    不通过, members, chair, comment, time); the latest is the committee's decision.

Adjusting by precedence
    :func:`apply_precedence` turns a 按上位规划调整 decision into one undoable edit command
    through :mod:`multiplan.core.editing` (split the lower-precedence parcel along the piece,
    give the part inside the proposed class), saves it and records 已修改; the returned
    :class:`PrecedenceEdit` takes it back. Review mode refuses it, as any plan edit.

Export
    :func:`export_decisions` writes the decision register as XLSX or CSV (UTF-8 with BOM);
    the committee report PDF is :mod:`multiplan.core.committee_report`.

Pure Python; no Qt.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .commands import same_attrs
from .errors import MultiplanError
from .project import Project, register_attributes_table, table_exists

__all__ = [
    "COMMITTEE_OUTCOMES",
    "COMMITTEE_TABLE",
    "DECISIONS_TABLE",
    "DECISION_STATUSES",
    "KINDS",
    "OBSOLETE",
    "STATUS_EN",
    "STATUS_KEYS",
    "PrecedenceEdit",
    "ReviewError",
    "apply_precedence",
    "committee_decision",
    "committee_history",
    "decide",
    "decision_history",
    "decision_register",
    "decisions",
    "export_decisions",
    "normalise_status",
    "open_conflicts",
    "record_committee_decision",
    "review_items",
]

DECISIONS_TABLE = "mp_decisions"
COMMITTEE_TABLE = "mp_committee"

#: Decision statuses, Chinese first (the stored word).
DECISION_STATUSES = ["待定", "按上位规划调整", "按现状保留", "认可例外", "已修改"]
STATUS_EN = {
    "待定": "pending",
    "按上位规划调整": "adjust to higher-level plan",
    "按现状保留": "keep current use",
    "认可例外": "accepted exception",
    "已修改": "modified",
}
#: Short English keys accepted wherever a status is typed (CLI).
STATUS_KEYS = {
    "pending": "待定",
    "adjust": "按上位规划调整",
    "keep": "按现状保留",
    "exception": "认可例外",
    "modified": "已修改",
}
#: Shown for a decision whose item is gone from the register / 质检 findings.
OBSOLETE = "已失效"
OBSOLETE_EN = "obsolete"

#: Register severity of pieces where the plans agree: not a review item.
CONSISTENT = "一致"

COMMITTEE_OUTCOMES = ["通过", "修改后通过", "不通过"]
COMMITTEE_EN = {"通过": "approved", "修改后通过": "approved with modifications",
                "不通过": "rejected"}
_COMMITTEE_KEYS = {"approved": "通过", "approve": "通过", "pass": "通过",
                   "approved_with_modifications": "修改后通过", "modify": "修改后通过",
                   "rejected": "不通过", "reject": "不通过"}

#: kind of an item → (Chinese, English)
KINDS = {"conflict": ("差异图斑", "conflict"), "assessment": ("双评价核查", "assessment"),
         "redline": ("三区三线", "control lines"), "qa": ("质检", "quality check")}

_DECISION_COLUMNS = [("conflict_id", "TEXT NOT NULL"), ("kind", "TEXT"),
                     ("status", "TEXT NOT NULL"), ("reviewer", "TEXT NOT NULL"),
                     ("comment", "TEXT"), ("time", "TEXT NOT NULL"), ("source", "TEXT"),
                     ("item_key", "TEXT")]
_COMMITTEE_COLUMNS = [("outcome", "TEXT NOT NULL"), ("members", "TEXT NOT NULL"),
                      ("chair", "TEXT NOT NULL"), ("comment", "TEXT"),
                      ("time", "TEXT NOT NULL")]

#: columns of :func:`review_items` (plus ``geometry``)
ITEM_COLUMNS = ["item_id", "kind", "type", "type_name", "severity", "layer_a", "fid_a",
                "layer_b", "fid_b", "class_a", "class_b", "resolution", "winner_layer",
                "proposed_code", "proposed_name", "area_m2", "area_ha", "township", "sliver",
                "message", "status", "status_en", "reviewer", "comment", "time"]


class ReviewError(MultiplanError):
    """A review decision was refused; nothing was written."""

    exit_code = 6


# =========================================================================== helpers

def _time(now: datetime | str | None) -> str:
    if now is None:
        return datetime.now(UTC).isoformat(timespec="seconds")
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).isoformat(timespec="seconds")


def normalise_status(status: str) -> str:
    """The stored Chinese word for ``status`` given in Chinese, as a key (``keep``) or as
    its English text (``keep current use``); :class:`ReviewError` otherwise."""
    s = str(status).strip()
    if s in DECISION_STATUSES:
        return s
    low = s.lower()
    if low in STATUS_KEYS:
        return STATUS_KEYS[low]
    for zh, en in STATUS_EN.items():
        if low == en or low == en.replace(" ", "_"):
            return zh
    raise ReviewError("review.status_invalid",
                      f"无效的评议状态 {status!r}；可选：{'、'.join(DECISION_STATUSES)}",
                      f"invalid decision status {status!r}; choose one of "
                      f"{', '.join(f'{k} ({v})' for k, v in STATUS_KEYS.items())}")


def _normalise_outcome(outcome: str) -> str:
    s = str(outcome).strip()
    if s in COMMITTEE_OUTCOMES:
        return s
    key = s.lower().replace(" ", "_")
    if key in _COMMITTEE_KEYS:
        return _COMMITTEE_KEYS[key]
    raise ReviewError("review.outcome_invalid",
                      f"无效的评议结论 {outcome!r}；可选：{'、'.join(COMMITTEE_OUTCOMES)}",
                      f"invalid committee outcome {outcome!r}; choose one of "
                      f"{', '.join(f'{k} ({v})' for k, v in COMMITTEE_EN.items())}")


def _ensure_tables(conn: sqlite3.Connection) -> None:
    for table, cols, desc in (
            (DECISIONS_TABLE, _DECISION_COLUMNS,
             "multiplan review decisions (append-only; latest row per conflict_id wins)"),
            (COMMITTEE_TABLE, _COMMITTEE_COLUMNS, "multiplan review committee sign-off")):
        if table_exists(conn, table):
            have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
            for c, t in cols:  # columns added since the table was first written
                if c not in have:
                    conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{c}" '
                                 f'{t.replace(" NOT NULL", "")}')
            continue
        body = ", ".join(f'"{c}" {t}' for c, t in cols)
        conn.execute(f'CREATE TABLE "{table}" ("fid" INTEGER PRIMARY KEY AUTOINCREMENT '
                     f'NOT NULL, {body})')
        if table == DECISIONS_TABLE:
            conn.execute(f'CREATE INDEX "{table}_id" ON "{table}" ("conflict_id", "fid")')
        register_attributes_table(conn, table, desc)


def _kind_of_id(item_id: str) -> str:
    return "assessment" if item_id.startswith("AS-") else "conflict"


def _kind_of_check(check_id: str) -> str:
    return "redline" if str(check_id).startswith("rl_") else "qa"


_QA_KEY_COLUMNS = ("check_id", "layer", "feature_fid", "layer_other", "other_fid", "area_m2")


def _qa_key(check_id: Any, layer: Any, fid: Any, other: Any, other_fid: Any,
            area: Any) -> str:
    """What a 质检 finding is about: its ids ``<check>-<n>`` are numbered per run, so a
    decision also stores this key and counts only while the finding under the id matches."""
    a = "" if area is None else f"{float(area):.1f}"
    return "|".join("" if v is None else str(v) for v in (check_id, layer, fid, other,
                                                          other_fid)) + "|" + a


def _lookup_item(conn: sqlite3.Connection, item_id: str) -> tuple[str, str] | None:
    """(kind, key) of the current item ``item_id``, or None if there is none. The key of a
    register piece is its conflict type (a decision on a C6 piece does not carry over to
    whatever the piece becomes); of a 质检 finding see :func:`_qa_key`."""
    if table_exists(conn, "mp_conflicts"):
        row = conn.execute('SELECT "severity", "conflict_type" FROM "mp_conflicts" '
                           'WHERE "conflict_id" = ?', (item_id,)).fetchone()
        if row is not None:
            return None if row[0] == CONSISTENT else (_kind_of_id(item_id), str(row[1]))
    if table_exists(conn, "mp_qa_errors"):
        cols = ", ".join(f'"{c}"' for c in _QA_KEY_COLUMNS)
        row = conn.execute(f'SELECT {cols} FROM "mp_qa_errors" WHERE "error_id" = ?',
                           (item_id,)).fetchone()
        if row is not None:
            return _kind_of_check(row[0]), _qa_key(*row)
    return None


def _check_reviewer(project: Project, reviewer: str) -> str:
    name = str(reviewer or "").strip()
    if not name:
        raise ReviewError("review.reviewer_missing", "评议决定须填写评议人姓名",
                          "a review decision needs the reviewer's name")
    # the project's reviewer list (Project.roles / can_decide) binds once it has one
    roles = getattr(project, "roles", None)
    listed = roles()["reviewers"] if callable(roles) else []
    can = getattr(project, "can_decide", None)
    if listed and callable(can) and not can(name):
        raise ReviewError("review.not_reviewer",
                          f"{name} 不在本项目的评议人名单中，不能作出评议决定",
                          f"{name} is not on the project's list of reviewers and cannot "
                          f"record review decisions")
    return name


# =========================================================================== decisions

def decide(project: Project, item_id: str, status: str, *, reviewer: str, comment: str = "",
           now: datetime | str | None = None, source: str = "manual") -> dict[str, Any]:
    """Record a decision on the review item ``item_id`` (a register id ``CF-…``/``AS-…`` or
    a 质检 finding id): one history row plus one ``review.decide`` audit row, in one
    transaction. ``status`` may be Chinese, a key (``keep``) or English. Returns the row."""
    word = normalise_status(status)
    name = _check_reviewer(project, reviewer)
    item_id = str(item_id).strip()
    when = _time(now)
    with project.transaction() as conn:
        found = _lookup_item(conn, item_id)
        if found is None:
            raise ReviewError("review.item_not_found",
                              f"找不到评议对象 {item_id}（差异图斑登记表与质检结果中均无此编号，"
                              f"或该图斑两规一致、无需评议）",
                              f"no review item {item_id} (the id is neither in the conflict "
                              f"register nor among the quality-check findings, or the piece is "
                              f"consistent and needs no decision)",
                              feature=item_id)
        kind, key = found
        _ensure_tables(conn)
        cur = conn.execute(
            f'INSERT INTO "{DECISIONS_TABLE}" ("conflict_id", "kind", "status", "reviewer", '
            f'"comment", "time", "source", "item_key") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            (item_id, kind, word, name, comment or "", when, source, key))
        fid = int(cur.lastrowid)
        row = {"fid": fid, "item_id": item_id, "kind": kind, "status": word,
               "status_en": STATUS_EN[word], "reviewer": name, "comment": comment or "",
               "time": when, "source": source}
        project._audit(conn, "review.decide", item_id,
                       {"status": word, "comment": comment or "", "kind": kind,
                        "source": source, "time": when, "decision_fid": fid}, actor=name)
    return row


def _read_table(project: Project, table: str) -> pd.DataFrame:
    with contextlib.closing(project.connect()) as conn:
        if not table_exists(conn, table):
            return pd.DataFrame()
        return pd.read_sql_query(f'SELECT * FROM "{table}" ORDER BY "fid"', conn)


def _current_keys(project: Project) -> dict[str, str]:
    """id → key of every current review item (see :func:`_lookup_item`)."""
    keys: dict[str, str] = {}
    with contextlib.closing(project.connect()) as conn:
        if table_exists(conn, "mp_conflicts"):
            keys.update((r[0], str(r[1])) for r in conn.execute(
                'SELECT "conflict_id", "conflict_type" FROM "mp_conflicts" '
                'WHERE "severity" <> ?', (CONSISTENT,)))
        if table_exists(conn, "mp_qa_errors"):
            cols = ", ".join(f'"{c}"' for c in _QA_KEY_COLUMNS)
            keys.update((r[0], _qa_key(*r[1:])) for r in conn.execute(
                f'SELECT "error_id", {cols} FROM "mp_qa_errors"'))
    return keys


_DECISION_FRAME = ["item_id", "kind", "status", "status_en", "reviewer", "comment", "time",
                   "source", "obsolete", "shown_status"]


def decisions(project: Project) -> pd.DataFrame:
    """The latest decision per item (sorted by id): ``item_id``, ``kind``, ``status``,
    ``status_en``, ``reviewer``, ``comment``, ``time``, ``source``, ``obsolete`` (the item is
    gone, consistent now, or no longer what was decided on: another conflict type, another
    质检 finding under the same number) and ``shown_status`` (the status, or 已失效)."""
    hist = _read_table(project, DECISIONS_TABLE)
    if not len(hist):
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in _DECISION_FRAME})
    latest = hist.drop_duplicates("conflict_id", keep="last").rename(
        columns={"conflict_id": "item_id"})
    current = _current_keys(project)
    stored_key = (latest["item_key"] if "item_key" in latest.columns
                  else pd.Series([None] * len(latest), index=latest.index))
    out = pd.DataFrame({
        "item_id": latest["item_id"].astype(str).to_numpy(),
        "kind": latest["kind"].to_numpy(),
        "status": latest["status"].to_numpy(),
        "status_en": latest["status"].map(STATUS_EN).to_numpy(),
        "reviewer": latest["reviewer"].to_numpy(),
        "comment": latest["comment"].fillna("").to_numpy(),
        "time": latest["time"].to_numpy(),
        "source": latest["source"].to_numpy(),
    })
    now_key = out["item_id"].map(current)
    key = stored_key.to_numpy()
    out["obsolete"] = now_key.isna().to_numpy() | np.array(
        [k is not None and not (isinstance(k, float) and np.isnan(k)) and pd.notna(n)
         and str(k) != n for k, n in zip(key, now_key, strict=True)], dtype=bool)
    out["shown_status"] = np.where(out["obsolete"], OBSOLETE, out["status"])
    return out.sort_values("item_id", kind="stable").reset_index(drop=True)


def decision_history(project: Project, item_id: str) -> pd.DataFrame:
    """Every decision row of ``item_id``, oldest first."""
    hist = _read_table(project, DECISIONS_TABLE)
    if not len(hist):
        return pd.DataFrame(columns=["fid", "conflict_id", "kind", "status", "reviewer",
                                     "comment", "time", "source"])
    return hist[hist["conflict_id"] == str(item_id)].reset_index(drop=True)


# =========================================================================== items

def _register(project: Project) -> gpd.GeoDataFrame:
    from . import conflicts as cf

    return cf.read_register(project)


def _qa_findings(project: Project) -> gpd.GeoDataFrame:
    from . import qa

    return qa.read_errors(project)


def _rule_messages(project: Project, reg: pd.DataFrame) -> np.ndarray:
    """The Chinese message of each register row's rule (pair rules, else the stored
    descriptions of external sources)."""
    from . import conflicts as cf

    msgs = {r.id: r.message_zh for r in cf.load_rules().rules}
    rule_ids = reg["rule_id"].astype(object).where(reg["rule_id"].notna(), "")
    extra = cf._stored_rule_messages(project, set(rule_ids) - set(msgs) - {""})
    msgs.update({k: v[0] for k, v in extra.items()})
    return np.asarray([msgs.get(r) for r in rule_ids], dtype=object)


def _text_col(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), None, dtype=object)
    return df[col].astype(object).where(df[col].notna(), None).to_numpy()


def review_items(project: Project, *, include_consistent: bool = False,
                 include_slivers: bool = True) -> gpd.GeoDataFrame:
    """Everything a reviewer looks at, in one frame (see the module doc), with the latest
    decision of each item (``status`` 待定 where none is recorded). Register pieces of
    severity 一致 are left out unless ``include_consistent``; slivers stay (``sliver`` 1)
    unless ``include_slivers`` is False. Sorted by kind then id; geometry in the project CRS."""
    frames: list[gpd.GeoDataFrame] = []
    reg = _register(project)
    if len(reg):
        if not include_consistent:
            reg = reg[reg["severity"] != CONSISTENT]
        if not include_slivers:
            reg = reg[~reg["sliver"].fillna(0).astype(bool)]
        ids = reg["conflict_id"].astype(str)
        f = pd.DataFrame({
            "item_id": ids.to_numpy(),
            "kind": np.where(ids.str.startswith("AS-"), "assessment", "conflict"),
            "type": _text_col(reg, "conflict_type"), "type_name": _text_col(reg, "type_name"),
            "severity": _text_col(reg, "severity"),
            "layer_a": _text_col(reg, "layer_a"), "fid_a": reg["fid_a"].to_numpy(),
            "layer_b": _text_col(reg, "layer_b"), "fid_b": reg["fid_b"].to_numpy(),
            "class_a": _text_col(reg, "class_a"), "class_b": _text_col(reg, "class_b"),
            "resolution": _text_col(reg, "resolution"),
            "winner_layer": _text_col(reg, "winner_layer"),
            "proposed_code": _text_col(reg, "proposed_code"),
            "proposed_name": _text_col(reg, "proposed_name"),
            "area_m2": reg["area_m2"].astype(float).to_numpy(),
            "area_ha": reg["area_ha"].astype(float).to_numpy(),
            "township": _text_col(reg, "township"),
            "sliver": reg["sliver"].fillna(0).astype(int).to_numpy(),
            "message": _rule_messages(project, reg),
        })
        frames.append(gpd.GeoDataFrame(f, geometry=gpd.GeoSeries(
            reg.geometry.to_numpy(), crs=project.epsg)))
    qa = _qa_findings(project)
    if len(qa):
        area = qa["area_m2"].astype(float).to_numpy()
        f = pd.DataFrame({
            "item_id": qa["error_id"].astype(str).to_numpy(),
            "kind": [_kind_of_check(c) for c in qa["check_id"]],
            "type": _text_col(qa, "check_id"), "type_name": _text_col(qa, "check_zh"),
            "severity": _text_col(qa, "severity_zh"),
            "layer_a": _text_col(qa, "layer"),
            "fid_a": qa["feature_fid"].to_numpy(),
            "layer_b": _text_col(qa, "layer_other"), "fid_b": qa["other_fid"].to_numpy(),
            "class_a": None, "class_b": None, "resolution": None, "winner_layer": None,
            "proposed_code": None, "proposed_name": None,
            "area_m2": area, "area_ha": area / 10_000.0,
            "township": _text_col(qa, "township"), "sliver": 0,
            "message": _text_col(qa, "message_zh"),
        })
        frames.append(gpd.GeoDataFrame(f, geometry=gpd.GeoSeries(
            qa.geometry.to_numpy(), crs=project.epsg)))
    if frames:
        items = pd.concat(frames, ignore_index=True)
        items = gpd.GeoDataFrame(items, geometry="geometry", crs=project.epsg)
    else:
        data: dict[str, Any] = {c: pd.Series([], dtype=object) for c in ITEM_COLUMNS
                                if c not in ("status", "status_en", "reviewer", "comment",
                                             "time")}
        items = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=project.epsg))
    dec = decisions(project)
    dec = dec[~dec["obsolete"].astype(bool)].set_index("item_id")  # current items only
    ids = items["item_id"]
    status = ids.map(dec["status"]) if len(dec) else pd.Series([None] * len(items))
    items["status"] = status.fillna("待定").to_numpy()
    items["status_en"] = items["status"].map(STATUS_EN)
    for c in ("reviewer", "comment", "time"):
        items[c] = ids.map(dec[c]).to_numpy() if len(dec) else None
    order = {k: i for i, k in enumerate(KINDS)}
    items["_k"] = items["kind"].map(order)
    items = items.sort_values(["_k", "item_id"], kind="stable").drop(columns="_k")
    return items[[*ITEM_COLUMNS, "geometry"]].reset_index(drop=True)


def open_conflicts(project: Project, severity: str = "冲突") -> pd.DataFrame:
    """Register rows (conflicts and assessment findings) of ``severity`` that are not
    slivers and whose latest decision is missing or 待定 — what the workflow gate counts."""
    reg = _register(project)
    if not len(reg):
        return pd.DataFrame(reg.drop(columns=reg.geometry.name))
    sel = reg[(reg["severity"] == severity) & ~reg["sliver"].fillna(0).astype(bool)]
    dec = decisions(project)
    decided = set(dec.loc[(dec["status"] != "待定") & ~dec["obsolete"].astype(bool),
                          "item_id"]) if len(dec) else set()
    sel = sel[~sel["conflict_id"].isin(decided)]
    return pd.DataFrame(sel).reset_index(drop=True)


# =========================================================================== committee

def record_committee_decision(project: Project, outcome: str, *, members: Sequence[str],
                              chair: str, comment: str = "",
                              now: datetime | str | None = None) -> dict[str, Any]:
    """Record the review committee's sign-off (通过 / 修改后通过 / 不通过) with its members
    and chair; an audit row ``review.committee`` in the same transaction."""
    word = _normalise_outcome(outcome)
    names = [str(m).strip() for m in members if str(m).strip()]
    chair = str(chair or "").strip()
    if not names:
        raise ReviewError("review.members_missing", "评议委员会决定须列出参会委员",
                          "a committee decision needs the list of members present")
    if not chair:
        raise ReviewError("review.chair_missing", "评议委员会决定须填写主任委员（主持人）",
                          "a committee decision needs the chair's name")
    if chair not in names:
        names = [chair, *names]
    when = _time(now)
    with project.transaction() as conn:
        _ensure_tables(conn)
        cur = conn.execute(
            f'INSERT INTO "{COMMITTEE_TABLE}" ("outcome", "members", "chair", "comment", '
            f'"time") VALUES (?, ?, ?, ?, ?)',
            (word, json.dumps(names, ensure_ascii=False), chair, comment or "", when))
        fid = int(cur.lastrowid)
        project._audit(conn, "review.committee", word,
                       {"outcome": word, "members": names, "chair": chair,
                        "comment": comment or "", "time": when, "committee_fid": fid},
                       actor=chair)
    return {"fid": fid, "outcome": word, "outcome_en": COMMITTEE_EN[word], "members": names,
            "chair": chair, "comment": comment or "", "time": when}


def committee_history(project: Project) -> list[dict[str, Any]]:
    """Every committee record, oldest first."""
    rows = _read_table(project, COMMITTEE_TABLE)
    out = []
    for r in rows.to_dict("records"):
        out.append({"fid": int(r["fid"]), "outcome": r["outcome"],
                    "outcome_en": COMMITTEE_EN.get(r["outcome"], r["outcome"]),
                    "members": json.loads(r["members"]), "chair": r["chair"],
                    "comment": r["comment"] or "", "time": r["time"]})
    return out


def committee_decision(project: Project) -> dict[str, Any] | None:
    """The latest committee record, or None if the committee has not decided."""
    hist = committee_history(project)
    return hist[-1] if hist else None


# =========================================================================== precedence edit

@dataclass
class PrecedenceEdit:
    """What :func:`apply_precedence` did. ``session`` holds the edit: while not ``saved`` the
    command is on its undo stack (``session.undo()`` or :meth:`undo` takes it back exactly);
    after saving, :meth:`undo` applies the reverse edit (merge the split parts back, restore
    the code) as a new saved command."""

    item_id: str
    layer: str
    fid: int
    values: dict[str, Any]
    before: dict[str, Any]
    changed_fids: list[int]
    new_fids: list[int]
    session: Any
    command: Any
    saved: bool
    previous_status: str
    reviewer: str
    warnings: list[str] = field(default_factory=list)
    undone: bool = False

    def save(self, *, now: datetime | str | None = None) -> None:
        """Save the session and record 已修改 for the item."""
        if self.saved:
            return
        self.session.save()
        self.saved = True
        self._record_modified(now)

    def _record_modified(self, now: datetime | str | None) -> None:
        decide(self.session.project, self.item_id, "已修改", reviewer=self.reviewer,
               comment=f"已按上位规划调整：{self.layer} 要素 {self.changed_fids} → "
                       f"{next(iter(self.values.values()))}",
               now=now, source="apply_precedence")

    def undo(self, *, now: datetime | str | None = None) -> None:
        """Take the edit back and restore the item's previous decision status."""
        if self.undone:
            return
        project = self.session.project
        if not self.saved:
            if self.session.stack.done() and self.session.stack.done()[-1] is self.command:
                self.session.undo()
            else:
                raise ReviewError("review.undo_not_last",
                                  "撤销失败：按上位规划调整之后还有其他编辑，请先撤销它们",
                                  "cannot undo: other edits follow the precedence edit; undo "
                                  "them first")
        else:
            with self.session.stack.macro(f"撤销评议调整 {self.item_id}",
                                          f"Undo review adjustment {self.item_id}",
                                          reason=f"撤销评议 {self.item_id}"):
                if self.new_fids:
                    self.session.merge([self.fid, *self.new_fids], self.fid)
                if not same_attrs(self.session.feature(self.fid).attrs, self.before):
                    self.session.set_attributes(self.fid, _revert_values(self))
            self.session.save()
        self.undone = True
        decide(project, self.item_id, self.previous_status, reviewer=self.reviewer,
               comment="撤销按上位规划调整 / precedence edit undone", now=now,
               source="apply_precedence.undo")


def _revert_values(edit: PrecedenceEdit) -> dict[str, Any]:
    """Values that give back the feature's attributes before the edit: its own code (the
    unified mp_* columns follow it), plus its unified code where that was a person's
    decision rather than the crosswalk's."""
    from . import classification as cls

    rec = edit.session.record
    out: dict[str, Any] = {}
    if rec.code_field:
        out[rec.code_field] = edit.before.get(rec.code_field)
    if "mp_code" in edit.before and rec.scheme and edit.before.get("mp_code"):
        derived = cls.load_crosswalk(rec.scheme).map(edit.before.get(rec.code_field)).target \
            if edit.before.get(rec.code_field) else None
        if derived != edit.before["mp_code"]:
            out["mp_code"] = edit.before["mp_code"]
    return out


def apply_precedence(project: Project, item_id: str, *, reviewer: str, comment: str = "",
                     session: Any = None, save: bool = True,
                     now: datetime | str | None = None) -> PrecedenceEdit:
    """Decide 按上位规划调整 on a register conflict and apply it: the lower-precedence
    parcel's part inside the conflict piece takes the proposed class of the register row
    (``proposed_code``, the class of ``winner_layer`` — the merged 一张图's choice).

    The edit goes through the editing core as one undoable step: if the piece is only part
    of the parcel, the parcel is split along the piece's outline first, then the class is
    set on the part(s) inside the piece. A layer coded in 用地用海 2023 gets the code in its
    code field; a layer of another scheme keeps its own code and gets the unified class in
    ``mp_code`` (a person's decision). ``session``: an open editing session on that layer
    (the GUI's, so its Undo takes the edit back); otherwise one is opened (a locked layer is
    unlocked with the decision as the reason). ``save``: save now and record 已修改 after the
    decision (else call :meth:`PrecedenceEdit.save`)."""
    from . import classification as cls
    from .editing import EditSession

    name = _check_reviewer(project, reviewer)
    item_id = str(item_id).strip()
    reg = _register_row(project, item_id)
    winner = reg.get("winner_layer")
    code = reg.get("proposed_code")
    if not winner or not code or winner not in (reg["layer_a"], reg["layer_b"]):
        raise ReviewError("review.no_proposal",
                          f"差异图斑 {item_id} 没有上位规划给出的建议地类，无法自动按上位规划调整",
                          f"conflict {item_id} has no proposed class from the higher-precedence "
                          f"plan; it cannot be adjusted automatically", feature=item_id)
    loser, fid = ((reg["layer_b"], int(reg["fid_b"])) if winner == reg["layer_a"]
                  else (reg["layer_a"], int(reg["fid_a"])))
    rec = project.layer(loser)
    if rec.scheme == cls.TARGET_SCHEME and rec.code_field:
        values = {rec.code_field: code}
    else:
        with contextlib.closing(project.connect()) as conn:
            cols = {r[1] for r in conn.execute(f'PRAGMA table_info("{rec.name}")')}
        if "mp_code" not in cols:
            raise ReviewError("review.no_class_field",
                              f"图层 {loser} 没有地类字段，按上位规划调整须手工编辑（如修改边界）",
                              f"layer {loser} carries no land-use class; adjust it by hand "
                              f"(e.g. by editing its boundary)", feature=item_id)
        values = {"mp_code": code}
    if session is None:
        from .editing import is_locked

        reason = (f"评议决定 {item_id}：按上位规划调整 / review decision {item_id}: adjust to "
                  f"higher-level plan") if is_locked(project, loser) else None
        session = EditSession.open(project, loser, actor=name, unlock_reason=reason)
    elif session.layer != loser:
        raise ReviewError("review.wrong_session",
                          f"差异图斑 {item_id} 须修改图层 {loser}，而当前编辑的是 {session.layer}",
                          f"conflict {item_id} changes layer {loser}, but the open editing "
                          f"session is on {session.layer}", feature=item_id)
    feature = session.feature(fid)
    if feature is None:
        raise ReviewError("review.parcel_missing",
                          f"图层 {loser} 中已没有要素 {fid}（差异图斑 {item_id}），请重新检测冲突",
                          f"feature {fid} of layer {loser} (conflict {item_id}) no longer "
                          f"exists; rerun conflict detection", feature=item_id)
    before = dict(feature.attrs)
    piece = reg["geometry"]
    warnings: list[str] = []
    new_fids: list[int] = []
    label = (f"按上位规划调整 {item_id}", f"Adjust to higher-level plan {item_id}")
    with session.stack.macro(*label, reason=f"评议 {item_id}：按上位规划调整"):
        parcel = feature.geometry
        share = (float(shapely.area(shapely.intersection(parcel, piece)))
                 / float(parcel.area)) if parcel is not None and parcel.area > 0 else 1.0
        targets = [fid]
        if share < 0.999:
            for line in _cut_lines(piece, parcel):
                for f in [fid, *new_fids]:
                    g = session.feature(f).geometry
                    if g is None or not shapely.intersects(line, g) or shapely.covers(
                            shapely.boundary(g), line):
                        continue
                    split = session.split(line, [f])
                    new_fids += list(getattr(split, "new_fids", []))
            targets = []
            for f in [fid, *new_fids]:
                g = session.feature(f).geometry
                inside = float(shapely.area(shapely.intersection(g, piece)))
                if g.area > 0 and inside / g.area >= 0.5:
                    targets.append(f)
            if not new_fids or not targets:
                warnings.append("未能沿差异图斑边界分割地块，整个地块已按上位规划调整 / the parcel "
                                "could not be split along the piece; the whole parcel was "
                                "adjusted")
                targets = [fid]
        command = session.set_attributes(targets, values,
                                         reason=f"评议 {item_id}：按上位规划调整")
    command = session.stack.done()[-1]
    prev = decisions(project)
    prev_status = (prev.set_index("item_id")["status"].get(item_id, "待定")
                   if len(prev) else "待定")
    edit = PrecedenceEdit(item_id=item_id, layer=loser, fid=fid, values=values, before=before,
                          changed_fids=targets, new_fids=new_fids, session=session,
                          command=command, saved=False, previous_status=str(prev_status),
                          reviewer=name, warnings=warnings)
    note = comment or (f"{loser} 要素 {fid} 按 {winner} 调整为 {code} "
                       f"{reg.get('proposed_name') or ''}").strip()
    if save:
        # save first: a refused save (review mode, layer changed on disk …) takes the edit
        # back and records no decision
        try:
            session.save()
        except BaseException:
            if session.stack.done() and session.stack.done()[-1] is command:
                session.undo()
            raise
    decide(project, item_id, "按上位规划调整", reviewer=name, comment=note, now=now,
           source="apply_precedence")
    if save:
        edit.saved = True
        edit._record_modified(now)
    return edit


def _cut_lines(piece: Any, parcel: Any) -> list[Any]:
    """The piece's outline inside the parcel (its boundary minus the parcel's), as simple
    lines along which the parcel is split."""
    cut = shapely.difference(shapely.boundary(piece), shapely.boundary(parcel))
    merged = shapely.line_merge(cut) if not cut.is_empty else cut
    parts = shapely.get_parts(merged)
    return [p for p in parts if p.geom_type == "LineString" and p.length > 0]


def _register_row(project: Project, item_id: str) -> dict[str, Any]:
    import pyogrio

    with contextlib.closing(project.connect()) as conn:
        have = table_exists(conn, "mp_conflicts") and conn.execute(
            'SELECT 1 FROM "mp_conflicts" WHERE "conflict_id" = ?', (item_id,)).fetchone()
    if not have:
        raise ReviewError("review.item_not_found",
                          f"差异图斑登记表中没有 {item_id}",
                          f"no conflict {item_id} in the conflict register", feature=item_id)
    q = item_id.replace("'", "''")
    gdf = pyogrio.read_dataframe(project.gpkg, layer="mp_conflicts",
                                 where=f"conflict_id = '{q}'")
    row = gdf.iloc[0].to_dict()
    row["geometry"] = gdf.geometry.iloc[0]
    return row


# =========================================================================== export

#: (column of the decision register, header: Chinese then English)
REGISTER_EXPORT = [
    ("item_id", "编号 id"), ("kind_zh", "类别 kind"), ("type", "类型 type"),
    ("type_name", "类型名称 type name"), ("severity", "程度 severity"),
    ("area_ha", "面积（公顷）area ha"), ("township", "乡镇 township"),
    ("layer_a", "图层A layer A"), ("fid_a", "要素A fid A"), ("layer_b", "图层B layer B"),
    ("fid_b", "要素B fid B"), ("sliver", "碎片 sliver"), ("status", "评议状态 status"),
    ("status_en", "status (en)"), ("reviewer", "评议人 reviewer"),
    ("comment", "意见 comment"), ("time", "时间（UTC）time"),
]


def decision_register(project: Project, *, include_slivers: bool = False) -> pd.DataFrame:
    """The decision register: every review item (register pieces other than 一致 — slivers
    only with ``include_slivers`` — and 质检/三区三线 findings) with its latest decision
    (待定 where none), then the decisions whose item is gone (status 已失效). Columns as
    :data:`REGISTER_EXPORT` (internal names)."""
    items = pd.DataFrame(review_items(project, include_slivers=include_slivers)
                         .drop(columns="geometry"))
    dec = decisions(project)
    gone = dec[dec["obsolete"]] if len(dec) else dec
    if len(gone):
        extra = pd.DataFrame({
            "item_id": gone["item_id"], "kind": gone["kind"], "status": OBSOLETE,
            "status_en": OBSOLETE_EN + " (" + gone["status_en"].astype(str) + ")",
            "reviewer": gone["reviewer"], "comment": gone["comment"], "time": gone["time"]})
        items = pd.concat([items, extra], ignore_index=True)
    items["kind_zh"] = items["kind"].map(lambda k: KINDS.get(k, (k, k))[0])
    items["area_ha"] = items["area_ha"].astype(float).round(4)
    for c in ("fid_a", "fid_b", "sliver"):
        items[c] = pd.array([None if pd.isna(v) else int(v) for v in items[c]], dtype="Int64")
    return items[[c for c, _ in REGISTER_EXPORT]].reset_index(drop=True)


def export_decisions(project: Project, path: str | Path, *,
                     include_slivers: bool = False) -> Path:
    """Write the decision register to ``path``: ``.xlsx`` (sheets 评议决定, 统计 and 说明) or
    ``.csv`` (UTF-8 with BOM so Excel reads the Chinese; ids stay text). Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise ReviewError("review.export_format",
                          f"评议决定只能导出为 .xlsx 或 .csv，而不是 {path.name}",
                          f"the decision register exports to .xlsx or .csv, not {path.name}",
                          path=path)
    table = decision_register(project, include_slivers=include_slivers)
    out = table.rename(columns=dict(REGISTER_EXPORT))
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        out.to_csv(path, index=False, encoding="utf-8-sig")
        return path
    import openpyxl
    from openpyxl.utils import get_column_letter

    wb = openpyxl.Workbook(write_only=True)

    def sheet(title: str, rows: list[list[Any]], widths: Sequence[int] = ()) -> None:
        ws = wb.create_sheet(title)
        for i, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = w
        for row in rows:
            ws.append([None if v is None or (isinstance(v, float) and np.isnan(v))
                       or v is pd.NA else (v.item() if isinstance(v, np.generic) else v)
                       for v in row])

    body = out.astype(object).where(out.notna(), None)
    sheet("评议决定", [list(out.columns), *map(list, body.itertuples(index=False, name=None))],
          (26, 10, 18, 28, 8, 12, 12, 14, 8, 14, 8, 6, 14, 24, 10, 40, 24))
    counts = table.groupby(["kind_zh", "status"]).agg(
        n=("item_id", "size"), area=("area_ha", "sum")).reset_index()
    sheet("统计", [["类别 kind", "评议状态 status", "数量 count", "面积（公顷）area ha"],
                 *[[r.kind_zh, r.status, int(r.n), round(float(r.area), 4)]
                   for r in counts.itertuples()]], (14, 16, 12, 18))
    com = committee_decision(project)
    info = [["项目 item", "值 value"], ["县 county", project.county],
            ["导出时间 exported (UTC)", _time(None)],
            ["评议对象 items", int((table["status"] != OBSOLETE).sum())],
            ["已失效的决定 obsolete decisions", int((table["status"] == OBSOLETE).sum())],
            ["碎片 slivers", "包含 included" if include_slivers else
             "不含（见差异图斑登记表）/ left out (see the conflict register)"],
            ["评议委员会 committee", f"{com['outcome']}（{com['time']}，主任委员 {com['chair']}）"
             if com else "未记录 / not recorded"]]
    sheet("说明", info, (34, 70))
    wb.save(path)
    return path
