"""Plan workflow state machine (issue 8 part 5) — minimal first cut.

States 编制中 → 已评价 → 公示中 → 评议通过 → 人大审议通过 → 已备案 → 已公布.
The full gates/advance/status API follows; this first version gives the state list and the
write hook that :meth:`Project.guard_write` calls before every plan-changing write.
"""
from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

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

WORKFLOW_TABLE = "mp_workflow"


def _table_exists(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                        (table,)).fetchone() is not None


def current_state(project: Any) -> str:
    with contextlib.closing(project.connect()) as conn:
        if not _table_exists(conn, WORKFLOW_TABLE):
            return STATES[0]
        row = conn.execute(f'SELECT "state" FROM "{WORKFLOW_TABLE}" '
                           'ORDER BY "fid" DESC LIMIT 1').fetchone()
    return row[0] if row else STATES[0]


def is_published(project: Any) -> bool:
    return current_state(project) == STATES[-1]


def before_plan_write(project: Any, target: str) -> None:
    """Called before every plan-changing write. Does nothing unless the plan is published."""
    if not is_published(project):
        return
